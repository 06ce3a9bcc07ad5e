"""ROI files in any of four formats, read onto the DCE grid in world coordinates.

Formats (detected from the file content, not only the extension)
-----------------------------------------------------------------
``nifti``
    NIfTI label volume (0 background, lesion labels 1, 2, ...; any non-zero voxel for a
    mask), matched to the grid by :func:`dce.roi.match_roi` (exact when the grids agree
    up to axis order/direction, else nearest neighbour).
``rtstruct``
    DICOM RT Structure Set (Modality ``RTSTRUCT``): each ROI of the
    ``StructureSetROISequence`` (``ROINumber``, ``ROIName``) with its ``CLOSED_PLANAR``
    contours of the ``ROIContourSequence``; the contour points (DICOM patient
    coordinates, LPS mm) are turned into RAS+ mm (x and y negated) and rasterised on the
    DCE grid by :func:`dce.contours.rasterise_contours` (voxel centre inside polygon,
    even-odd rule for holes, contours between slices projected onto the nearest slice
    within half a slice spacing, contours tilted against the slices an error). Other
    contour types (``POINT``, ``OPEN_PLANAR``, ...) enclose no area and are ignored (noted).
``seg``
    DICOM Segmentation (Modality ``SEG``), read with highdicom (``segread`` and
    ``Segmentation.get_volume``: one binary volume per segment with its LPS affine);
    each segment (``SegmentNumber``, ``SegmentLabel``) is matched to the grid like a NIfTI
    mask. A ``FRACTIONAL`` segment counts where its fraction is >= 0.5.
``nrrd``
    NRRD (``.nrrd``, ``.seg.nrrd``) read with pynrrd; ``space`` (``left-posterior-superior``,
    ``right-anterior-superior`` or ``left-anterior-superior``), ``space directions`` and
    ``space origin`` give the affine. A 3D Slicer segmentation (keys ``Segment<N>_Name``,
    ``Segment<N>_LabelValue``, ``Segment<N>_Layer``; one 3-D label volume or a 4-D stack
    of layers) has one region per segment: the voxels of its layer equal to its label
    value. A NRRD without segment keys is a label volume like a NIfTI one.

Regions and lesion matching
---------------------------
Each file holds *regions*: a number and a name. Numbers are the label values (NIfTI, plain
NRRD), ``Segment<N>_LabelValue`` (Slicer), ``SegmentNumber`` (DICOM-SEG) or ``ROINumber``
(RTSTRUCT); names are ``ROIName``, ``SegmentLabel`` or ``Segment<N>_Name`` (label
volumes have none). A lesion of ``lesions.tsv`` with a ``roi_name`` gets the voxels of
the region of that name (exact match after stripping spaces; a name that is missing or
given to several regions is an error listing the names present); a lesion without one
gets the region whose number equals its label. The lesion keeps its ``lesion`` label in
the output either way. Regions not asked for are not read (an RTSTRUCT from a planning
system may hold a body outline or organs outside the DCE field of view). Voxels claimed
by two selected regions belong to neither (noted).

Without a selection (normal-marrow and aorta masks, the spine prior of the AIF) every
region is read and the output holds each region's number; regions outside the field of
view are skipped with a note, as long as one region remains.
"""

from __future__ import annotations

import gzip
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dce.contours import rasterise_contours
from dce.roi import match_roi

__all__ = ["ROI_FORMATS", "ROIRegion", "read_roi_labels", "roi_format", "roi_regions"]

PathLike = str | os.PathLike[str]

#: Formats :func:`read_roi_labels` reads.
ROI_FORMATS = ("nifti", "rtstruct", "seg", "nrrd")

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_NRRD_SPACES = {"left-posterior-superior": (-1.0, -1.0), "lps": (-1.0, -1.0),
                "right-anterior-superior": (1.0, 1.0), "ras": (1.0, 1.0),
                "left-anterior-superior": (-1.0, 1.0), "las": (-1.0, 1.0)}


@dataclass(frozen=True)
class ROIRegion:
    """One region of an ROI file: its number and name (``""`` for label volumes)."""

    number: int
    name: str


# ----------------------------------------------------------------------------- formats

def roi_format(path: PathLike) -> str:
    """The format of an ROI file (:data:`ROI_FORMATS`), from its content.

    Raises
    ------
    ValueError
        Missing file, or a file that is none of the formats (naming what was found).
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: ROI file not found")
    with open(p, "rb") as fh:
        head = fh.read(132)
    if head[:4] == b"NRRD":
        return "nrrd"
    if head[:2] == b"\x1f\x8b":
        with gzip.open(p, "rb") as fh:
            head = fh.read(348)
    if head[128:132] != b"DICM" and len(head) >= 4 and (
            int.from_bytes(head[:4], "little") in (348, 540)
            or int.from_bytes(head[:4], "big") in (348, 540)):
        return "nifti"
    modality = _dicom_modality(p, force=head[128:132] != b"DICM")
    if modality == "RTSTRUCT":
        return "rtstruct"
    if modality == "SEG":
        return "seg"
    if modality:
        raise ValueError(f"{p}: DICOM Modality {modality!r} is not an ROI; give an RTSTRUCT "
                         "or SEG file, or a NIfTI/NRRD label volume")
    raise ValueError(f"{p}: not a recognised ROI file (supported: NIfTI label volume, DICOM "
                     "RTSTRUCT, DICOM SEG, NRRD / 3D Slicer .seg.nrrd)")


def _dicom_modality(path: Path, *, force: bool) -> str:
    """Modality of a DICOM file (``force``: also without the DICM preamble); ``""`` when
    the file is not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"],
                             force=force)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return ""
    return str(ds.get("Modality", "") or "")


# ------------------------------------------------------------------------------ readers

@dataclass
class _Source:
    """An opened ROI file: its regions and how to put one on a grid."""

    path: str
    format: str
    regions: list[ROIRegion]
    label_volume: tuple[NDArray[Any], NDArray[np.float64]] | None = None  # data, RAS affine
    contours: dict[int, list[NDArray[np.float64]]] = field(default_factory=dict)
    volumes: dict[int, tuple[NDArray[np.bool_], NDArray[np.float64]]] = field(
        default_factory=dict)                            # region index -> mask, RAS affine
    notes: list[str] = field(default_factory=list)

    def describe(self, k: int) -> str:
        r = self.regions[k]
        what = {"rtstruct": "ROI", "seg": "segment", "nrrd": "segment"}.get(self.format,
                                                                           "label")
        return f"{self.path} [{what} {r.number}" + (f" {r.name!r}]" if r.name else "]")

    def mask(self, k: int, shape: tuple[int, ...], affine: NDArray[np.float64]
             ) -> tuple[NDArray[np.bool_], list[str]]:
        """Region ``k`` on the grid, with notes."""
        name = self.describe(k)
        if self.format == "rtstruct":
            return rasterise_contours(self.contours.get(k, []), shape, affine, name=name)
        data, aff = self.volumes[k]
        if not np.any(data):
            raise ValueError(f"{name}: the segment contains no voxel")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = match_roi(data, aff, shape, affine, name=name) > 0
        return out, [str(w.message) for w in caught]


def _read_rtstruct(path: str) -> _Source:
    import pydicom

    ds = pydicom.dcmread(path)
    items = list(ds.get("StructureSetROISequence", []))
    if not items:
        raise ValueError(f"{path}: RTSTRUCT without StructureSetROISequence (no ROI)")
    regions = [ROIRegion(int(it.ROINumber), str(it.get("ROIName", "")).strip())
               for it in items]
    index = {r.number: k for k, r in enumerate(regions)}
    src = _Source(path, "rtstruct", regions)
    skipped: dict[str, int] = {}
    for roi in ds.get("ROIContourSequence", []):
        k = index.get(int(roi.ReferencedROINumber))
        if k is None:
            src.notes.append(f"{path}: ROIContourSequence refers to ROINumber "
                             f"{int(roi.ReferencedROINumber)}, absent from the "
                             "StructureSetROISequence: ignored")
            continue
        for c in roi.get("ContourSequence", []):
            kind = str(c.get("ContourGeometricType", ""))
            if kind != "CLOSED_PLANAR":
                skipped[kind] = skipped.get(kind, 0) + 1
                continue
            pts = np.asarray(c.ContourData, dtype=np.float64).reshape(-1, 3)
            pts[:, :2] *= -1.0                                  # LPS -> RAS
            src.contours.setdefault(k, []).append(pts)
    if skipped:
        src.notes.append(f"{path}: contours of type "
                         + ", ".join(f"{t or '(none)'} ({n})" for t, n in skipped.items())
                         + " enclose no area and were ignored (CLOSED_PLANAR only)")
    return src


def _read_seg(path: str) -> _Source:
    import highdicom as hd

    seg = hd.seg.segread(path)
    numbers = [int(n) for n in seg.segment_numbers]
    regions = [ROIRegion(n, str(seg.get_segment_description(n).segment_label).strip())
               for n in numbers]
    try:
        vol = seg.get_volume(combine_segments=False, segment_numbers=numbers,
                             allow_missing_positions=True)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{path}: the DICOM-SEG frames do not form a regular 3-D volume "
                         f"(highdicom: {exc}); export the segmentation on the image grid "
                         "or as a NIfTI/NRRD label volume") from None
    arr = np.asarray(vol.array)
    if arr.ndim == 3:
        arr = arr[..., None]
    frac = str(seg.segmentation_type.value) == "FRACTIONAL"
    aff = _LPS_TO_RAS @ np.asarray(vol.affine, dtype=np.float64)
    src = _Source(path, "seg", regions)
    for k in range(len(regions)):
        a = arr[..., k]
        src.volumes[k] = ((a >= 0.5) if frac else (a > 0)), aff
    return src


def _nrrd_affine(path: str, hdr: Mapping[str, Any], spatial: list[int]) -> NDArray[np.float64]:
    space = str(hdr.get("space", "")).strip().lower()
    if space not in _NRRD_SPACES:
        raise ValueError(f"{path}: NRRD key 'space' is {hdr.get('space')!r}; need one of "
                         "left-posterior-superior, right-anterior-superior, "
                         "left-anterior-superior (world frame of the patient)")
    if "space origin" not in hdr:
        raise ValueError(f"{path}: NRRD key 'space origin' missing (needed to place the ROI "
                         "in world coordinates)")
    dirs = np.asarray(hdr["space directions"], dtype=np.float64)[spatial]
    aff = np.eye(4)
    aff[:3, :3] = dirs.T
    aff[:3, 3] = np.asarray(hdr["space origin"], dtype=np.float64)
    sx, sy = _NRRD_SPACES[space]
    return np.diag([sx, sy, 1.0, 1.0]) @ aff


def _read_nrrd(path: str) -> _Source:
    import nrrd

    data, hdr = nrrd.read(path)
    if "space directions" not in hdr:
        raise ValueError(f"{path}: NRRD key 'space directions' missing (needed to place the "
                         "ROI in world coordinates)")
    dirs = np.asarray(hdr["space directions"], dtype=np.float64)
    spatial = [a for a in range(dirs.shape[0]) if np.all(np.isfinite(dirs[a]))]
    if len(spatial) != 3 or dirs.shape[1] != 3:
        raise ValueError(f"{path}: NRRD with {len(spatial)} spatial axes (space directions "
                         f"{dirs.tolist()}); need a 3-D volume")
    aff = _nrrd_affine(path, hdr, spatial)
    other = [a for a in range(data.ndim) if a not in spatial]
    if len(other) > 1:
        raise ValueError(f"{path}: NRRD of shape {data.shape} with more than one non-spatial "
                         "axis")
    layers = np.moveaxis(data, other[0], 0) if other else data[None]
    keys = sorted({int(k[len("Segment"):k.index("_")]) for k in hdr
                   if k.startswith("Segment") and k.endswith("_Name")
                   and k[len("Segment"):k.index("_")].isdigit()})
    if not keys:                                          # plain label volume
        if layers.shape[0] != 1:
            raise ValueError(f"{path}: 4-D NRRD without 3D Slicer segment keys "
                             "(Segment<N>_Name); give one 3-D label volume")
        vals = np.unique(layers[0][layers[0] != 0])
        src = _Source(path, "nrrd", [ROIRegion(int(v), "") for v in vals],
                      label_volume=(layers[0], aff))
        return src
    regions: list[ROIRegion] = []
    src_vols: dict[int, tuple[NDArray[np.bool_], NDArray[np.float64]]] = {}
    for n in keys:
        name = str(hdr.get(f"Segment{n}_Name", "")).strip()
        try:
            value = int(hdr.get(f"Segment{n}_LabelValue", 1))
            layer = int(hdr.get(f"Segment{n}_Layer", 0))
        except ValueError:
            raise ValueError(f"{path}: Segment{n}_LabelValue / Segment{n}_Layer must be whole "
                             f"numbers, got {hdr.get(f'Segment{n}_LabelValue')!r} / "
                             f"{hdr.get(f'Segment{n}_Layer')!r}") from None
        if not 0 <= layer < layers.shape[0]:
            raise ValueError(f"{path}: Segment{n}_Layer = {layer} but the file has "
                             f"{layers.shape[0]} layer(s)")
        src_vols[len(regions)] = (layers[layer] == value, aff)
        regions.append(ROIRegion(value, name))
    return _Source(path, "nrrd", regions, volumes=src_vols)


def _read_nifti(path: str) -> _Source:
    from dce.io.nifti import read_nifti

    img = read_nifti(path)
    return _Source(path, "nifti", [], label_volume=(img.data, img.affine))


def _open(path: PathLike) -> _Source:
    p = str(path)
    fmt = roi_format(p)
    return {"nifti": _read_nifti, "rtstruct": _read_rtstruct, "seg": _read_seg,
            "nrrd": _read_nrrd}[fmt](p)


def roi_regions(path: PathLike) -> list[ROIRegion]:
    """The regions of an ROI file (number, name), in file order; label volumes: their
    non-zero labels without names."""
    src = _open(path)
    if src.label_volume is not None and not src.regions:
        data = np.asarray(src.label_volume[0])
        return [ROIRegion(int(v), "") for v in np.unique(data[data != 0])]
    return src.regions


# --------------------------------------------------------------------------- selection

def _listing(src: _Source) -> str:
    return ", ".join(f"{r.number} {r.name!r}" if r.name else str(r.number)
                     for r in src.regions) or "none"


def _select(src: _Source, labels: Sequence[int], names: Mapping[int, str]
            ) -> list[tuple[int, int]]:
    """(region index, output label) of each lesion label (module rule)."""
    out = []
    for lab in labels:
        want = str(names.get(lab, "") or "").strip()
        if want:
            hits = [k for k, r in enumerate(src.regions) if r.name == want]
            what = f"name {want!r}"
        else:
            hits = [k for k, r in enumerate(src.regions) if r.number == lab]
            what = f"number {lab}"
        if len(hits) != 1:
            problem = "no region" if not hits else f"{len(hits)} regions"
            fix = ("give the ROI/segment name in the roi_name column of the lesion sheet"
                   if not want else "correct roi_name in the lesion sheet")
            raise ValueError(f"{src.path}: lesion {lab}: {problem} with {what} (regions "
                             f"present, number and name: {_listing(src)}); {fix}")
        out.append((hits[0], int(lab)))
    used = [k for k, _ in out]
    dup = sorted({src.describe(k) for k in used if used.count(k) > 1})
    if dup:
        raise ValueError(f"{dup[0]}: selected for more than one lesion; each lesion needs its "
                         "own region")
    return out


def read_roi_labels(path: PathLike, shape: Sequence[int], affine: ArrayLike, *,
                    labels: Sequence[int] | None = None,
                    names: Mapping[int, str] | None = None
                    ) -> tuple[NDArray[np.int32], list[str]]:
    """Read an ROI file of any format (:func:`roi_format`) as labels on an image grid.

    Parameters
    ----------
    path : path-like
        NIfTI, RTSTRUCT, DICOM-SEG or NRRD file.
    shape : sequence of int
        Image grid shape (spatial axes first).
    affine : array_like, shape (4, 4)
        Image voxel to RAS+ mm.
    labels : sequence of int, optional
        Lesion labels to read (module rule: by ``names`` where given, else by region
        number). Without it every region is read with its number as label. Label
        volumes (NIfTI, plain NRRD) are returned whole (the caller checks the labels,
        :func:`dce.roi.keep_expected_labels`).
    names : mapping of int to str, optional
        ROI/segment name of a lesion label (``lesions.tsv`` column ``roi_name``); empty
        names are ignored. Not possible for label volumes (NIfTI, plain NRRD).

    Returns
    -------
    labels : ndarray of int32, shape ``shape[:3]``
        Labels on the image grid.
    notes : list of str
        Warnings for the log (voxels lost outside the field of view, projected contours,
        overlapping regions, skipped regions).

    Raises
    ------
    ValueError
        Message starting with the file (and region): unreadable or unknown format, name
        or number not found (listing the regions present), a region outside the field of
        view, empty, or (RTSTRUCT) off the image planes.
    """
    names = {int(k): str(v) for k, v in (names or {}).items() if str(v or "").strip()}
    shp = tuple(int(n) for n in shape)[:3]
    aff = np.asarray(affine, dtype=np.float64)
    src = _open(path)
    if src.label_volume is not None:
        if names:
            raise ValueError(f"{src.path}: a {src.format} label volume has no ROI names, but "
                             f"roi_name is given for lesion(s) {sorted(names)}; leave roi_name "
                             "empty (lesions are matched by label value)")
        data, vaff = src.label_volume
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            whole = match_roi(data, vaff, shp, aff, name=src.path)
        return whole, src.notes + [str(w.message) for w in caught]
    notes = list(src.notes)
    out = np.zeros(shp, dtype=np.int32)
    count = np.zeros(shp, dtype=np.int16)
    if labels is None:
        chosen = [(k, r.number) for k, r in enumerate(src.regions)]
        errors = []
        for k, lab in chosen:
            try:
                m, more = src.mask(k, shp, aff)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            out[m] = lab
            count += m
            notes += more
        if len(errors) == len(chosen):
            raise ValueError(errors[0] if len(errors) == 1 else
                             f"{src.path}: no region could be used: " + " | ".join(errors))
        notes += [f"skipped: {e}" for e in errors]
    else:
        for k, lab in _select(src, [int(v) for v in labels], names):
            m, more = src.mask(k, shp, aff)
            out[m] = lab
            count += m
            notes += more
    overlap = count > 1
    if labels is not None and np.any(overlap):
        notes.append(f"{src.path}: {int(overlap.sum())} voxel(s) belong to more than one of "
                     "the selected regions and were left out of all of them")
        out[overlap] = 0
    return out, notes
