"""DICOM series discovery, sorting, timing and stacking for DCE and VFA MRI.

Overview
--------
:func:`discover_series` walks a folder tree, reads every DICOM header once and groups
the image files by SeriesInstanceUID.  :func:`load_dce` selects the dynamic series by
a SeriesDescription regular expression and stacks it into a 4-D array
``(i, j, k, t)``; :func:`load_vfa` does the same for variable-flip-angle T1 data
(``(i, j, k, n_fa)``).  Both return the NIfTI affine and a de-identified metadata
dictionary meant to be written as the JSON sidecar (see :mod:`dce.io.nifti`).

Axis convention
---------------
Voxel order is kept as stored in the DICOM files, with the NIfTI/dcm2niix convention:

* ``i`` = DICOM column index (``pixel_array[row, col]`` -> ``data[col, row]``),
  stepping ``PixelSpacing[1]`` mm along the first ImageOrientationPatient vector;
* ``j`` = DICOM row index, stepping ``PixelSpacing[0]`` mm along the second vector;
* ``k`` = slice index, slices sorted by ascending ImagePositionPatient projected on the
  slice normal ``n = row_cosines x column_cosines``;
* the affine maps ``(i, j, k)`` to RAS+ millimetres: DICOM LPS with x and y negated.

A 2-D image of 80 rows and 50 columns is therefore ``data.shape[:2] == (50, 80)``.
nibabel's own DICOM wrapper (``nibabel.nicom.dicomwrappers``) uses the transposed
in-plane order (first axis = rows) and LPS; the tests check the two against each other.

Phase timing
------------
``InstanceNumber`` is never used for ordering.  Phases are found in this order:

1. a temporal index present in every frame (``TemporalPositionIdentifier``
   (0020,0100) in classic files, e.g. Philips, checked against
   ``NumberOfTemporalPositions``; ``TemporalPositionIndex`` (0020,9128) in enhanced
   multi-frame files) defines the phases;
2. otherwise, at every slice position the frames are ranked by acquisition time.

Phase start times come from the first timing tag, in a vendor-dependent order, that is
present in every frame and actually varies between phases:

* GE: ``TriggerTime`` (0018,1060, ms; AcquisitionTime is constant across phases).  A
  missing TriggerTime is read as 0 ms (the QIBA GE files omit it in the first phase);
* Siemens, Philips and others: ``AcquisitionDateTime``, ``AcquisitionTime``,
  ``TriggerTime`` (Philips: dynamic scan start, ms), then ``ContentTime`` (image
  creation; last because it can be the reconstruction time);
* enhanced multi-frame MR: per-frame ``FrameAcquisitionDateTime``, then
  ``FrameReferenceDateTime``.

A phase starts at the earliest time of its slices; times are returned in seconds
relative to the first phase.  Clock times (TM) without dates are unwrapped across
midnight.  Other timing tags that also vary between phases are compared with the chosen
one; a disagreement of more than 0.5 s is reported in ``meta["Notes"]``.  Uneven phase
spacing is allowed and flagged in the metadata; a gap of about a whole multiple (>= 2) of
the median spacing is reported in ``meta["Notes"]`` as phase(s) possibly missing from the
export (with clock timing a lost phase leaves no other trace).

Errors
------
Every problem raises :class:`DicomError` (a ``ValueError``) naming the file or the
series and the problem.  Files without the DICOM ``DICM`` marker, DICOMDIR files and
non-image objects are skipped silently (logged at DEBUG level).  A file that has the
DICOM marker but whose header is truncated or corrupt so that it cannot be assigned to
a series raises at discovery, naming the file (it could be a lost frame of the series
you want, so it is not skipped).  A file whose header is intact but whose pixel data is
truncated raises only when its series is loaded.

De-identification
-----------------
The metadata returned is built from an explicit allow-list of acquisition parameters;
no patient, institution, physician, date, clock-time or UID attribute is ever copied.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

try:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _pkg_version

    __version__ = _pkg_version("dce")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "unknown"

__all__ = [
    "DEFAULT_DCE_PATTERN",
    "DEFAULT_EXCLUDE_PATTERN",
    "DEFAULT_VFA_EXCLUDE_PATTERN",
    "DEFAULT_VFA_PATTERN",
    "DicomError",
    "DynamicSeries",
    "SeriesInfo",
    "VFASeries",
    "discover_series",
    "load_dce",
    "load_dce_series",
    "load_vfa",
    "load_vfa_series",
    "select_series",
]

log = logging.getLogger(__name__)

#: SeriesDescription regex (case-insensitive search) for the dynamic series.
DEFAULT_DCE_PATTERN = r"dce|dyn|perf|twist|disco|multi.?phase|(?<![a-z])mph(?![a-z])"
#: SeriesDescription regex for variable-flip-angle series ("vfa", "t1_vibe_fa2", "FA 15").
DEFAULT_VFA_PATTERN = r"vfa|variable.?flip|despot|(?<![a-z])fa.?\d+"
#: Derived series excluded by default (subtractions, MIPs, reformats, motion corrected).
DEFAULT_EXCLUDE_PATTERN = r"sub(traction)?(?![a-z])|mip|mpr|moco"
#: For VFA also exclude anything that looks dynamic (a "dyn fa12" series is DCE).
DEFAULT_VFA_EXCLUDE_PATTERN = DEFAULT_EXCLUDE_PATTERN + r"|dce|dyn|perf"

_DICOMDIR_SOP = "1.2.840.10008.1.3.10"
_MR_IMAGE_SOPS = {
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR Image Storage
}
_POS_TOL_MM = 0.01  # slice positions closer than this are the same slice
_ANGLE_TOL = 1e-4  # direction cosine tolerance
_FA_DECIMALS = 3
_TIME_TOL_S = 1e-3  # two frames closer in time than this at one position are duplicates


class DicomError(ValueError):
    """A DICOM file or series cannot be converted; the message names the file or series."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _quiet(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Silence pydicom's cosmetic VR-validation warnings (e.g. UIDs with leading zeros)."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Invalid value for VR",
                                    category=UserWarning)
            return func(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM image series found by :func:`discover_series`.

    Attributes
    ----------
    description : str
        SeriesDescription (0008,103E), ``""`` if absent.
    series_number : int or None
        SeriesNumber (0020,0011).
    manufacturer : str
        Manufacturer (0008,0070).
    files : tuple of Path
        The series' files, sorted by path.
    n_frames : int
        Number of 2-D frames (files times NumberOfFrames).
    flip_angles_deg : tuple of float
        Distinct flip angles, sorted.
    enhanced : bool
        True if the files are enhanced multi-frame objects.
    uid : str
        SeriesInstanceUID: the grouping key, kept in memory only (not shown by ``repr``
        and never written to any output).
    """

    description: str
    series_number: int | None
    manufacturer: str
    files: tuple[Path, ...] = field(repr=False)
    n_frames: int
    flip_angles_deg: tuple[float, ...]
    enhanced: bool
    uid: str = field(repr=False)

    @property
    def n_files(self) -> int:
        """Number of files in the series."""
        return len(self.files)

    @property
    def label(self) -> str:
        """Short human-readable name used in messages (no identifiers)."""
        desc = repr(self.description) if self.description else "(no description)"
        num = f"series {self.series_number}" if self.series_number is not None else "no number"
        return f"{desc} ({num}, {self.n_files} files, {self.n_frames} frames)"


@dataclass(frozen=True)
class DynamicSeries:
    """A stacked DCE series.

    Attributes
    ----------
    data : ndarray, shape (nx, ny, nz, nt), float32
        Rescaled signal, axes ``(i = columns, j = rows, k = slices, t = phases)``.
    t_s : ndarray, shape (nt,)
        Phase start times in seconds relative to the first phase (``t_s[0] == 0``).
    affine : ndarray, shape (4, 4)
        Voxel ``(i, j, k)`` to RAS+ mm.
    meta : dict
        De-identified sidecar metadata (allow-list only; see :func:`load_dce_series`).
    """

    data: NDArray[np.float32]
    t_s: NDArray[np.float64]
    affine: NDArray[np.float64]
    meta: dict[str, Any]


@dataclass(frozen=True)
class VFASeries:
    """Stacked variable-flip-angle data.

    Attributes
    ----------
    data : ndarray, shape (nx, ny, nz, n_fa), float32
        Rescaled signal, one volume per flip angle, flip angles ascending.
    flip_angles_deg : ndarray, shape (n_fa,)
        Flip angles in degrees, ascending.
    tr_s : float
        Repetition time in seconds (the same for every flip angle).
    affine : ndarray, shape (4, 4)
        Voxel ``(i, j, k)`` to RAS+ mm.
    meta : dict
        De-identified sidecar metadata.
    """

    data: NDArray[np.float32]
    flip_angles_deg: NDArray[np.float64]
    tr_s: float
    affine: NDArray[np.float64]
    meta: dict[str, Any]


@dataclass
class _Frame:
    """Header information of one 2-D frame (one classic file or one enhanced frame)."""

    path: Path
    frame: int | None  # index in a multi-frame file, None for a single-frame file
    rows: int
    cols: int
    spacing: tuple[float, float] | None  # PixelSpacing: (between rows, between columns)
    orientation: NDArray[np.float64] | None  # 6 direction cosines
    position: NDArray[np.float64] | None  # ImagePositionPatient
    slope: float
    intercept: float
    temporal_index: int | None
    n_temporal: int | None
    times: dict[str, float | None]
    flip_angle: float | None
    tr_ms: float | None
    te_ms: float | None
    thickness: float | None
    spacing_between: float | None

    @property
    def name(self) -> str:
        return str(self.path) if self.frame is None else f"{self.path} [frame {self.frame + 1}]"


# --------------------------------------------------------------------------- value parsing


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _int(value: Any) -> int | None:
    f = _float(value)
    return None if f is None else round(f)


_TM_RE = re.compile(r"(\d{2})(\d{2})?(\d{2})?(\.\d+)?")


def _tm_seconds(value: Any) -> float | None:
    """DICOM TM ``HHMMSS.FFFFFF`` (or old ``HH:MM:SS``) to seconds of the day."""
    if value is None:
        return None
    s = str(value).strip().replace(":", "")
    m = _TM_RE.fullmatch(s)
    if not m:
        return None
    h, mi, se, frac = m.groups()
    return int(h) * 3600 + int(mi or 0) * 60 + int(se or 0) + float(frac or 0.0)


def _dt_seconds(value: Any) -> float | None:
    """DICOM DT ``YYYYMMDDHHMMSS.FFFFFF&ZZXX`` to seconds since 0001-01-01 (local time)."""
    if value is None:
        return None
    s = re.sub(r"[+-]\d{4}$", "", str(value).strip())
    if len(s) < 8 or not s[:8].isdigit():
        return None
    try:
        days = date(int(s[:4]), int(s[4:6]), int(s[6:8])).toordinal()
    except ValueError:
        return None
    tm = _tm_seconds(s[8:]) if len(s) > 8 else 0.0
    return None if tm is None else days * 86400.0 + tm


def _seq_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    seq = ds.get(keyword)
    if seq is None or len(seq) == 0:
        return None
    item = seq[0]
    return item if isinstance(item, Dataset) else None


# --------------------------------------------------------------------------- header -> frames


def _is_enhanced(ds: Dataset) -> bool:
    return "PerFrameFunctionalGroupsSequence" in ds


def _classic_frame(ds: Dataset, path: Path) -> _Frame:
    spacing = ds.get("PixelSpacing")
    iop = ds.get("ImageOrientationPatient")
    ipp = ds.get("ImagePositionPatient")
    trig = ds.get("TriggerTime")
    return _Frame(
        path=path,
        frame=None,
        rows=int(ds.Rows),
        cols=int(ds.Columns),
        spacing=(float(spacing[0]), float(spacing[1])) if spacing and len(spacing) == 2 else None,
        orientation=np.array([float(v) for v in iop]) if iop and len(iop) == 6 else None,
        position=np.array([float(v) for v in ipp]) if ipp and len(ipp) == 3 else None,
        slope=_float(ds.get("RescaleSlope")) or 1.0,
        intercept=_float(ds.get("RescaleIntercept")) or 0.0,
        temporal_index=_int(ds.get("TemporalPositionIdentifier")),
        n_temporal=_int(ds.get("NumberOfTemporalPositions")),
        times={
            "AcquisitionDateTime": _dt_seconds(ds.get("AcquisitionDateTime")),
            "AcquisitionTime": _tm_seconds(ds.get("AcquisitionTime")),
            "ContentTime": _tm_seconds(ds.get("ContentTime")),
            "TriggerTime": None if _float(trig) is None else float(trig) / 1000.0,
        },
        flip_angle=_float(ds.get("FlipAngle")),
        tr_ms=_float(ds.get("RepetitionTime")),
        te_ms=_float(ds.get("EchoTime")),
        thickness=_float(ds.get("SliceThickness")),
        spacing_between=_float(ds.get("SpacingBetweenSlices")),
    )


def _enhanced_frames(ds: Dataset, path: Path) -> list[_Frame]:
    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.PerFrameFunctionalGroupsSequence
    n_frames = _int(ds.get("NumberOfFrames")) or len(per_frame)
    if len(per_frame) != n_frames:
        raise DicomError(
            f"{path}: NumberOfFrames is {n_frames} but PerFrameFunctionalGroupsSequence has "
            f"{len(per_frame)} items (corrupt enhanced multi-frame file)")
    frames = []
    for idx, item in enumerate(per_frame):

        def get(seq: str, kw: str, item: Dataset = item) -> Any:
            for grp in (item, shared):
                sub = _seq_item(grp, seq)
                if sub is not None and kw in sub:
                    return sub.get(kw)
            return ds.get(kw)

        spacing = get("PixelMeasuresSequence", "PixelSpacing")
        iop = get("PlaneOrientationSequence", "ImageOrientationPatient")
        ipp = get("PlanePositionSequence", "ImagePositionPatient")
        frames.append(_Frame(
            path=path,
            frame=idx,
            rows=int(ds.Rows),
            cols=int(ds.Columns),
            spacing=(float(spacing[0]), float(spacing[1])) if spacing and len(spacing) == 2
            else None,
            orientation=np.array([float(v) for v in iop]) if iop and len(iop) == 6 else None,
            position=np.array([float(v) for v in ipp]) if ipp and len(ipp) == 3 else None,
            slope=_float(get("PixelValueTransformationSequence", "RescaleSlope")) or 1.0,
            intercept=_float(get("PixelValueTransformationSequence", "RescaleIntercept")) or 0.0,
            temporal_index=_int(get("FrameContentSequence", "TemporalPositionIndex")),
            n_temporal=None,
            times={
                "FrameAcquisitionDateTime": _dt_seconds(
                    get("FrameContentSequence", "FrameAcquisitionDateTime")),
                "FrameReferenceDateTime": _dt_seconds(
                    get("FrameContentSequence", "FrameReferenceDateTime")),
            },
            flip_angle=_float(get("MRTimingAndRelatedParametersSequence", "FlipAngle")),
            tr_ms=_float(get("MRTimingAndRelatedParametersSequence", "RepetitionTime")),
            te_ms=_float(get("MREchoSequence", "EffectiveEchoTime")
                         if get("MREchoSequence", "EffectiveEchoTime") is not None
                         else ds.get("EchoTime")),
            thickness=_float(get("PixelMeasuresSequence", "SliceThickness")),
            spacing_between=_float(get("PixelMeasuresSequence", "SpacingBetweenSlices")),
        ))
    return frames


def _frames_of(ds: Dataset, path: Path) -> list[_Frame]:
    try:
        if _is_enhanced(ds):
            return _enhanced_frames(ds, path)
        n_frames = _int(ds.get("NumberOfFrames")) or 1
        if n_frames > 1:
            raise DicomError(
                f"{path}: multi-frame file ({n_frames} frames) without per-frame functional "
                "groups is not supported")
        return [_classic_frame(ds, path)]
    except DicomError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise DicomError(f"{path}: cannot read image geometry/timing tags ({exc})") from None


def _read_header(path: Path) -> Dataset | None:
    """Header of ``path``; None for non-DICOM files; DicomError for unreadable DICOM."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        return None  # no DICM marker: not a DICOM file
    except OSError as exc:
        raise DicomError(f"{path}: cannot read file ({exc})") from None
    except Exception as exc:  # pydicom raises many types on corrupt input
        raise DicomError(f"{path}: truncated or corrupt DICOM file "
                         f"({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------- discovery


@_quiet
def discover_series(root: str | os.PathLike[str]) -> list[SeriesInfo]:
    """Find all DICOM image series under ``root``.

    Parameters
    ----------
    root : path-like
        A folder (searched recursively, any file names) or a single file.

    Returns
    -------
    list of SeriesInfo
        One entry per SeriesInstanceUID, sorted by series number then description.

    Raises
    ------
    DicomError
        ``root`` does not exist, or a file carries the DICOM marker but its header is
        truncated or corrupt (no SeriesInstanceUID, or an MR image without Rows/Columns),
        so it cannot be assigned to a series.  The message names the file.

    Notes
    -----
    Files without the ``DICM`` marker (text, NIfTI, ...), DICOMDIR files and non-image
    objects (structured reports, presentation states) are skipped.  Old ACR-NEMA files
    without a preamble are skipped too.
    """
    root = Path(root)
    if not root.exists():
        raise DicomError(f"{root}: no such file or folder")
    paths = [root] if root.is_file() else sorted(_walk(root))
    groups: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for path in paths:
        ds = _read_header(path)
        if ds is None:
            log.debug("skipping non-DICOM file %s", path)
            continue
        meta = getattr(ds, "file_meta", None)
        sop = str(ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else "")
                  or "")
        if sop == _DICOMDIR_SOP:
            log.debug("skipping DICOMDIR %s", path)
            continue
        uid = ds.get("SeriesInstanceUID")
        if not uid or (meta is not None and "TransferSyntaxUID" not in meta):
            raise DicomError(
                f"{path}: truncated or corrupt DICOM file: no SeriesInstanceUID/transfer "
                f"syntax in the header ({len(ds)} elements read), so it cannot be assigned "
                "to a series")
        has_image = "Rows" in ds and "Columns" in ds
        if not has_image:
            if sop in _MR_IMAGE_SOPS:
                raise DicomError(
                    f"{path}: truncated or corrupt MR image: header has no Rows/Columns "
                    f"({len(ds)} elements read)")
            log.debug("skipping non-image DICOM object %s", path)
            continue
        groups[str(uid)].append((path, ds))

    out = []
    for uid, items in groups.items():
        first = items[0][1]
        n_frames = 0
        fas: set[float] = set()
        enhanced = False
        for path, ds in items:
            frames = _frames_of(ds, path)
            enhanced = enhanced or _is_enhanced(ds)
            n_frames += len(frames)
            fas.update(round(f.flip_angle, _FA_DECIMALS) for f in frames
                       if f.flip_angle is not None)
        out.append(SeriesInfo(
            description=str(first.get("SeriesDescription", "") or "").strip(),
            series_number=_int(first.get("SeriesNumber")),
            manufacturer=str(first.get("Manufacturer", "") or "").strip(),
            files=tuple(sorted(p for p, _ in items)),
            n_frames=n_frames,
            flip_angles_deg=tuple(sorted(fas)),
            enhanced=enhanced,
            uid=uid,
        ))
    out.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30,
                            s.description, s.files[0]))
    return out


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            yield Path(dirpath) / name


def _listing(series: Sequence[SeriesInfo]) -> str:
    if not series:
        return " (no DICOM image series found)"
    return "".join(f"\n  - {s.label}" for s in series)


def select_series(series: Sequence[SeriesInfo], pattern: str, *,
                  exclude: str | None = None) -> list[SeriesInfo]:
    """Series whose SeriesDescription matches ``pattern`` and not ``exclude``.

    Parameters
    ----------
    series : sequence of SeriesInfo
        Usually the output of :func:`discover_series`.
    pattern : str
        Regular expression searched (``re.search``, case-insensitive) in the description.
    exclude : str, optional
        Regular expression; matching series are dropped.

    Returns
    -------
    list of SeriesInfo
        The matches, possibly empty.
    """
    try:
        rx = re.compile(pattern, re.IGNORECASE)
        rx_ex = re.compile(exclude, re.IGNORECASE) if exclude else None
    except re.error as exc:
        raise ValueError(f"invalid series pattern {pattern!r} / {exclude!r}: {exc}") from None
    return [s for s in series
            if rx.search(s.description) and not (rx_ex and rx_ex.search(s.description))]


def _as_series_list(source: str | os.PathLike[str] | Sequence[SeriesInfo]) -> list[SeriesInfo]:
    if isinstance(source, (str, os.PathLike)):
        return discover_series(source)
    return list(source)


def _pattern_text(pattern: str, exclude: str | None) -> str:
    return f"pattern {pattern!r}" + (f" (excluding {exclude!r})" if exclude else "")


# --------------------------------------------------------------------------- public loaders


@_quiet
def load_dce(source: str | os.PathLike[str] | Sequence[SeriesInfo], *,
             pattern: str = DEFAULT_DCE_PATTERN,
             exclude: str | None = DEFAULT_EXCLUDE_PATTERN) -> DynamicSeries:
    """Find the single DCE series under ``source`` and stack it into 4-D.

    Parameters
    ----------
    source : path-like or sequence of SeriesInfo
        A folder tree to search, or the output of :func:`discover_series`.
    pattern : str
        SeriesDescription regular expression (case-insensitive) of the DCE series.
    exclude : str or None
        SeriesDescription regular expression of series to ignore (derived series).

    Returns
    -------
    DynamicSeries

    Raises
    ------
    DicomError
        No series or more than one series matches (the message lists every series found
        with its description and number of files), or the series is invalid
        (see :func:`load_dce_series`).
    """
    series = _as_series_list(source)
    hits = select_series(series, pattern, exclude=exclude)
    if len(hits) != 1:
        what = "no series matches" if not hits else f"{len(hits)} series match"
        raise DicomError(f"DCE: {what} {_pattern_text(pattern, exclude)}; "
                         f"pass a more specific pattern. Series found:{_listing(series)}")
    return load_dce_series(hits[0])


@_quiet
def load_vfa(source: str | os.PathLike[str] | Sequence[SeriesInfo], *,
             pattern: str = DEFAULT_VFA_PATTERN,
             exclude: str | None = DEFAULT_VFA_EXCLUDE_PATTERN) -> VFASeries:
    """Find the variable-flip-angle series under ``source`` and stack them.

    Either one series holding several flip angles or several series (one per flip
    angle, all matching ``pattern``) are accepted.

    Parameters
    ----------
    source : path-like or sequence of SeriesInfo
        A folder tree to search, or the output of :func:`discover_series`.
    pattern : str
        SeriesDescription regular expression (case-insensitive) of the VFA series.
    exclude : str or None
        SeriesDescription regular expression of series to ignore.

    Returns
    -------
    VFASeries

    Raises
    ------
    DicomError
        No series matches (the message lists the series found), or the data are invalid
        (see :func:`load_vfa_series`).
    """
    series = _as_series_list(source)
    hits = select_series(series, pattern, exclude=exclude)
    if not hits:
        raise DicomError(f"VFA: no series matches {_pattern_text(pattern, exclude)}. "
                         f"Series found:{_listing(series)}")
    return load_vfa_series(hits)


@_quiet
def load_dce_series(info: SeriesInfo) -> DynamicSeries:
    """Stack one DCE series into ``(i, j, k, t)`` with phase times.

    Parameters
    ----------
    info : SeriesInfo
        The series, from :func:`discover_series`.

    Returns
    -------
    DynamicSeries
        ``meta`` holds (BIDS keys in BIDS units where BIDS defines one): Manufacturer,
        ManufacturerModelName, MagneticFieldStrength (T), SeriesDescription, SeriesNumber,
        FlipAngle (deg), RepetitionTime (s), EchoTime (s), SliceThickness (mm),
        VoxelSize_mm, NumberOfPhases, VolumeTiming (s; phase start times relative to the
        first phase), TimingSource, PhaseOrderSource,
        PhaseSpacing_s (median), PhaseSpacingRange_s, PhaseSpacingUneven, Notes, and
        the axis convention and conversion software.

    Raises
    ------
    DicomError
        Inconsistent matrix size, pixel spacing or orientation; mixed flip angle, TR or
        TE; a missing phase or slice (incomplete grid); two frames at the same position
        in one phase; duplicate or non-increasing phase times; no timing tag; unreadable
        or truncated pixel data.  The message names the series and the problem.
    """
    label = f"DCE series {info.label}"
    frames, first = _read_frames(info.files)
    _check_matrix(frames, label)
    fa = _single_value(frames, "flip_angle", "flip angle", "deg", label)
    tr = _single_value(frames, "tr_ms", "repetition time (TR)", "ms", label)
    te = _single_value(frames, "te_ms", "echo time (TE)", "ms", label, required=False)
    geom = _geometry(frames, label)
    vendor = _vendor(first)
    phase, t_s, timing, order, notes = _assign_phases(frames, geom.slice_index, vendor, label)
    data = _assemble(frames, geom, phase, len(t_s), label)

    meta = _common_meta(first, geom)
    meta.update({
        "SeriesDescription": info.description,
        "SeriesNumber": info.series_number,
        "FlipAngle": fa,
        "RepetitionTime": _ms_to_s(tr),
        "EchoTime": _ms_to_s(te),
        "NumberOfPhases": len(t_s),
        "VolumeTiming": [float(v) for v in t_s],
        "TimingSource": timing,
        "PhaseOrderSource": order,
    })
    meta.update(_spacing_meta(t_s))
    meta["Notes"] = notes + _phase_gap_notes(t_s)
    return DynamicSeries(data=data, t_s=t_s, affine=geom.affine, meta=meta)


@_quiet
def load_vfa_series(infos: Sequence[SeriesInfo]) -> VFASeries:
    """Stack variable-flip-angle data from one or several series.

    Parameters
    ----------
    infos : sequence of SeriesInfo
        One series with several flip angles, or one series per flip angle.  All must
        share matrix, orientation, slice positions and TR.

    Returns
    -------
    VFASeries
        Volumes ordered by ascending flip angle.  ``meta`` holds FlipAngles_deg (one per
        volume; BIDS has no list key), RepetitionTime (s), EchoTime (s),
        SeriesDescriptions, SeriesNumbers, and the acquisition parameters of
        :func:`load_dce_series` that apply.

    Raises
    ------
    DicomError
        Fewer than two flip angles, a frame without flip angle, mixed TR, the same flip
        angle twice at one slice (e.g. in two series), missing slices, inconsistent
        geometry, unreadable pixel data.

    Notes
    -----
    Each series is rescaled with its own RescaleSlope/Intercept.  Receiver-gain or
    vendor-private scaling that differs between series (e.g. the Philips private scale
    slope (2005,100E)) is not corrected.
    """
    if not infos:
        raise DicomError("VFA: no series given")
    names = ", ".join(s.label for s in infos)
    label = f"VFA series {names}"
    files = [p for s in infos for p in s.files]
    frames, first = _read_frames(files)
    _check_matrix(frames, label)
    missing = [f.name for f in frames if f.flip_angle is None]
    if missing:
        raise DicomError(f"{label}: {len(missing)} frame(s) without FlipAngle, e.g. {missing[0]}")
    tr = _single_value(frames, "tr_ms", "repetition time (TR)", "ms", label)
    te = _single_value(frames, "te_ms", "echo time (TE)", "ms", label, required=False)
    geom = _geometry(frames, label)
    fa_key = np.array([round(f.flip_angle or 0.0, _FA_DECIMALS) for f in frames])
    fas = np.unique(fa_key)
    if fas.size < 2:
        raise DicomError(f"{label}: only one flip angle ({fas[0]:g} deg); VFA T1 mapping needs "
                         "at least two")
    group = np.searchsorted(fas, fa_key)
    _check_grid(frames, geom, group, [f"flip angle {v:g} deg" for v in fas], label)
    data = _assemble(frames, geom, group, fas.size, label)
    meta = _common_meta(first, geom)
    meta.update({
        "SeriesDescriptions": [s.description for s in infos],
        "SeriesNumbers": [s.series_number for s in infos],
        "FlipAngles_deg": [float(v) for v in fas],
        "RepetitionTime": _ms_to_s(tr),
        "EchoTime": _ms_to_s(te),
        "Notes": ["each series rescaled with its own RescaleSlope/Intercept; no "
                  "cross-series gain correction"] if len(infos) > 1 else [],
    })
    assert tr is not None  # required=True above
    return VFASeries(data=data, flip_angles_deg=fas.astype(np.float64),
                     tr_s=round(tr / 1000.0, 9), affine=geom.affine, meta=meta)


# --------------------------------------------------------------------------- internals


def _read_frames(files: Sequence[Path]) -> tuple[list[_Frame], Dataset]:
    frames: list[_Frame] = []
    first: Dataset | None = None
    for path in files:
        ds = _read_header(path)
        if ds is None:
            raise DicomError(f"{path}: not a DICOM file (anymore?)")
        if first is None:
            first = ds
        frames.extend(_frames_of(ds, path))
    if first is None or not frames:
        raise DicomError("no frames to load (empty series)")
    return frames, first


def _vendor(ds: Dataset) -> str:
    m = str(ds.get("Manufacturer", "") or "").upper()
    if m.startswith("GE"):
        return "GE"
    if "SIEMENS" in m:
        return "SIEMENS"
    if "PHILIPS" in m:
        return "PHILIPS"
    return m or "UNKNOWN"


def _count_text(values: Sequence[Any], frames: Sequence[_Frame], unit: str) -> str:
    counts = Counter(values)
    parts = []
    for v, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        example = next(f.name for f, x in zip(frames, values, strict=True) if x == v)
        shown = "missing" if v is None else f"{v:g} {unit}".strip()
        parts.append(f"{shown} in {n} frame(s) (e.g. {example})")
    return "; ".join(parts)


def _single_value(frames: Sequence[_Frame], attr: str, what: str, unit: str, label: str, *,
                  required: bool = True) -> float | None:
    vals = [getattr(f, attr) for f in frames]
    keyed = [None if v is None else round(float(v), _FA_DECIMALS) for v in vals]
    distinct = set(keyed)
    if len(distinct) > 1:
        raise DicomError(f"{label}: mixed {what} inside the series: "
                         f"{_count_text(keyed, frames, unit)}")
    val = keyed[0]
    if val is None and required:
        raise DicomError(f"{label}: {what} missing in every frame")
    return val


def _check_matrix(frames: Sequence[_Frame], label: str) -> None:
    sizes = [(f.rows, f.cols) for f in frames]
    if len(set(sizes)) > 1:
        counts = Counter(sizes)
        parts = []
        for (r, c), n in counts.most_common():
            example = next(f.name for f in frames if (f.rows, f.cols) == (r, c))
            parts.append(f"{r} rows x {c} columns in {n} frame(s) (e.g. {example})")
        raise DicomError(f"{label}: inconsistent matrix size: " + "; ".join(parts))


@dataclass
class _Geometry:
    slice_index: NDArray[np.intp]
    n_slices: int
    slice_positions: NDArray[np.float64]
    affine: NDArray[np.float64]
    voxel_mm: tuple[float, float, float]
    rows: int
    cols: int


def _geometry(frames: Sequence[_Frame], label: str) -> _Geometry:
    for attr, tag in (("orientation", "ImageOrientationPatient"),
                      ("position", "ImagePositionPatient"), ("spacing", "PixelSpacing")):
        bad = [f.name for f in frames if getattr(f, attr) is None]
        if bad:
            raise DicomError(f"{label}: {tag} missing in {len(bad)} frame(s), e.g. {bad[0]}")
    iop = np.array([f.orientation for f in frames], dtype=np.float64)
    if np.any(np.abs(iop - iop[0]) > _ANGLE_TOL):
        i = int(np.argmax(np.any(np.abs(iop - iop[0]) > _ANGLE_TOL, axis=1)))
        raise DicomError(f"{label}: mixed ImageOrientationPatient: {frames[0].name} has "
                         f"{iop[0].tolist()}, {frames[i].name} has {iop[i].tolist()}")
    spacing = np.array([f.spacing for f in frames], dtype=np.float64)
    if np.any(np.abs(spacing - spacing[0]) > 1e-4):
        i = int(np.argmax(np.any(np.abs(spacing - spacing[0]) > 1e-4, axis=1)))
        raise DicomError(f"{label}: mixed PixelSpacing: {frames[0].name} has "
                         f"{spacing[0].tolist()}, {frames[i].name} has {spacing[i].tolist()}")
    row_dir = iop[0, :3] / np.linalg.norm(iop[0, :3])
    col_dir = iop[0, 3:] / np.linalg.norm(iop[0, 3:])
    if abs(float(row_dir @ col_dir)) > 1e-3:
        raise DicomError(f"{label}: ImageOrientationPatient vectors are not orthogonal "
                         f"({iop[0].tolist()})")
    normal = np.cross(row_dir, col_dir)
    pos = np.array([f.position for f in frames], dtype=np.float64)
    proj = pos @ normal

    order = np.argsort(proj, kind="stable")
    sorted_proj = proj[order]
    new_slice = np.concatenate([[True], np.diff(sorted_proj) > _POS_TOL_MM])
    slice_of_sorted = np.cumsum(new_slice) - 1
    slice_index = np.empty(len(frames), dtype=np.intp)
    slice_index[order] = slice_of_sorted
    n_slices = int(slice_of_sorted[-1]) + 1
    centres = np.array([sorted_proj[slice_of_sorted == k].mean() for k in range(n_slices)])

    # every frame of one slice must sit at the same point (no in-plane shifts / shear)
    first_of_slice = np.array([int(order[np.argmax(slice_of_sorted == k)])
                               for k in range(n_slices)])
    ref = pos[first_of_slice[slice_index]]
    if np.any(np.linalg.norm(pos - ref, axis=1) > 10 * _POS_TOL_MM):
        i = int(np.argmax(np.linalg.norm(pos - ref, axis=1)))
        raise DicomError(f"{label}: frames at the same slice position have different "
                         f"ImagePositionPatient, e.g. {frames[i].name}")
    origin = pos[first_of_slice[0]]
    f0 = frames[0]
    if n_slices > 1:
        gaps = np.diff(centres)
        step = float(np.median(gaps))
        if np.max(np.abs(gaps - step)) > max(0.02, 0.01 * step):
            raise DicomError(
                f"{label}: uneven slice spacing (gaps {np.round(gaps, 3).tolist()} mm): a "
                "slice is missing in every phase, or the series mixes stacks")
        inplane = pos[first_of_slice] - origin - np.outer(centres - centres[0], normal)
        if np.max(np.linalg.norm(inplane, axis=1)) > 0.05 + 0.001 * abs(step) * n_slices:
            raise DicomError(f"{label}: slices are not stacked along the slice normal "
                             "(sheared or multi-stack series)")
    else:
        step = f0.spacing_between or f0.thickness or 1.0
    dr, dc = spacing[0]
    lps = np.eye(4)
    lps[:3, 0] = row_dir * dc  # i: along a row = column index, PixelSpacing[1]
    lps[:3, 1] = col_dir * dr  # j: down a column = row index, PixelSpacing[0]
    lps[:3, 2] = normal * step
    lps[:3, 3] = origin
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return _Geometry(slice_index=slice_index, n_slices=n_slices, slice_positions=centres,
                     affine=affine, voxel_mm=(float(dc), float(dr), float(abs(step))),
                     rows=f0.rows, cols=f0.cols)


def _time_values(frames: Sequence[_Frame], source: str) -> tuple[NDArray[np.float64], int] | None:
    """Per-frame times (s) from ``source`` or None when not usable; also # defaulted."""
    raw = [f.times.get(source) for f in frames]
    n_missing = sum(v is None for v in raw)
    if n_missing == len(raw):
        return None
    if n_missing and source != "TriggerTime":
        return None
    vals = np.array([0.0 if v is None else v for v in raw], dtype=np.float64)
    if source in ("AcquisitionTime", "ContentTime") and np.ptp(vals) > 43200:
        vals = np.where(vals < 43200, vals + 86400.0, vals)  # acquisition crossed midnight
    return vals, n_missing


def _time_sources(frames: Sequence[_Frame], vendor: str) -> tuple[str, ...]:
    if any(f.frame is not None for f in frames):
        return ("FrameAcquisitionDateTime", "FrameReferenceDateTime")
    if vendor == "GE":
        return ("TriggerTime", "AcquisitionDateTime", "AcquisitionTime", "ContentTime")
    return ("AcquisitionDateTime", "AcquisitionTime", "TriggerTime", "ContentTime")


_TAGS = {
    "TriggerTime": "TriggerTime (0018,1060)",
    "AcquisitionDateTime": "AcquisitionDateTime (0008,002A)",
    "AcquisitionTime": "AcquisitionTime (0008,0032)",
    "ContentTime": "ContentTime (0008,0033)",
    "FrameAcquisitionDateTime": "FrameAcquisitionDateTime (0018,9074)",
    "FrameReferenceDateTime": "FrameReferenceDateTime (0018,9151)",
}


def _assign_phases(frames: Sequence[_Frame], slice_index: NDArray[np.intp], vendor: str,
                   label: str) -> tuple[NDArray[np.intp], NDArray[np.float64], str, str,
                                        list[str]]:
    """Phase index per frame and phase start times (s, relative to the first phase)."""
    n = len(frames)
    n_slices = int(slice_index.max()) + 1
    notes: list[str] = []
    sources = _time_sources(frames, vendor)
    tidx = [f.temporal_index for f in frames]
    if n == n_slices:
        return (np.zeros(n, dtype=np.intp), np.zeros(1), "single phase", "single phase",
                notes)

    if all(v is not None for v in tidx):
        enhanced = frames[0].frame is not None
        order_src = ("TemporalPositionIndex (0020,9128)" if enhanced
                     else "TemporalPositionIdentifier (0020,0100)")
        idx = np.array(tidx, dtype=np.int64)
        present = np.unique(idx)
        n_decl = {f.n_temporal for f in frames if f.n_temporal is not None}
        expected_n = max(n_decl) if n_decl else None
        lo = int(present.min())
        if expected_n is not None:
            if present.size > expected_n:
                raise DicomError(f"{label}: {present.size} distinct {order_src} values but "
                                 f"NumberOfTemporalPositions is {expected_n}")
            expected = np.arange(min(lo, 1), min(lo, 1) + expected_n)
        else:
            expected = np.arange(lo, int(present.max()) + 1)
        missing = np.setdiff1d(expected, present)
        if missing.size:
            raise DicomError(
                f"{label}: missing phase(s): {order_src} {missing.tolist()} absent "
                f"(expected {expected[0]}..{expected[-1]}); incomplete grid")
        phase = np.searchsorted(present, idx).astype(np.intp)
        _check_grid(frames, _GridView(slice_index, n_slices), phase,
                    [f"phase {v} ({order_src.split()[0]})" for v in present], label)
        n_phases = present.size
        for src in sources:
            got = _time_values(frames, src)
            if got is None:
                continue
            vals, n_def = got
            start = np.full(n_phases, np.inf)
            np.minimum.at(start, phase, vals)
            if np.ptp(start) == 0:
                continue
            steps = np.diff(start)
            if np.any(steps <= _TIME_TOL_S):
                k = int(np.argmax(steps <= _TIME_TOL_S))
                kind = "duplicate" if abs(steps[k]) <= _TIME_TOL_S else "non-increasing"
                rel = start - start[0]
                raise DicomError(
                    f"{label}: {kind} phase times from {_TAGS[src]}: phase {present[k]} at "
                    f"{rel[k]:.3f} s, phase {present[k + 1]} at {rel[k + 1]:.3f} s "
                    f"(phases ordered by {order_src})")
            if n_def:
                notes.append(f"{_TAGS[src]} absent in {n_def} frame(s), read as 0 ms")
            notes += _cross_check(frames, phase, n_phases, src, start, sources)
            return phase, _relative(start), _TAGS[src], order_src, notes
        raise DicomError(f"{label}: no timing tag varies between phases (tried "
                         f"{', '.join(_TAGS[s] for s in sources)})")

    # no temporal index: rank frames by time at each slice position
    counts = np.bincount(slice_index, minlength=n_slices)
    chosen: tuple[str, NDArray[np.float64], int] | None = None
    for src in sources:
        got = _time_values(frames, src)
        if got is not None and np.ptp(got[0]) > 0:
            chosen = (src, got[0], got[1])
            break
    if chosen is None:
        raise DicomError(f"{label}: {n} frames at {n_slices} slice position(s) but no timing "
                         f"tag varies between them (tried "
                         f"{', '.join(_TAGS[s] for s in sources)}) and no "
                         "TemporalPositionIdentifier: cannot order the phases")
    src, vals, n_def = chosen
    order_src = f"time order per slice position ({_TAGS[src]})"
    phase = np.empty(n, dtype=np.intp)
    for k in range(n_slices):
        members = np.flatnonzero(slice_index == k)
        members = members[np.argsort(vals[members], kind="stable")]
        dup = np.flatnonzero(np.diff(vals[members]) <= _TIME_TOL_S)
        if dup.size:
            a, b = frames[members[dup[0]]], frames[members[dup[0] + 1]]
            raise DicomError(
                f"{label}: duplicated position within a phase: {a.name} and {b.name} are "
                f"both at slice {k} and time {vals[members[dup[0]]] - vals.min():.3f} s "
                f"({_TAGS[src]})")
        phase[members] = np.arange(members.size)
    n_phases = int(counts.max())
    if np.any(counts != n_phases):
        bad = np.flatnonzero(counts != n_phases)
        ref = np.sort(vals[slice_index == int(np.argmax(counts))]) - vals.min()
        parts = []
        for k in bad[:5]:
            have = vals[slice_index == k] - vals.min()
            lacking = [f"{t:.3f}" for t in ref if np.all(np.abs(have - t) > 0.5)]
            hint = f" (no frame near t = {', '.join(lacking[:5])} s)" if lacking else ""
            parts.append(f"slice {k} has {counts[k]} of {n_phases} phases{hint}")
        raise DicomError(f"{label}: incomplete grid, missing phase or slice: "
                         + "; ".join(parts))
    start = np.full(n_phases, np.inf)
    stop = np.full(n_phases, -np.inf)
    np.minimum.at(start, phase, vals)
    np.maximum.at(stop, phase, vals)
    if np.any(stop[:-1] >= start[1:]):
        p = int(np.argmax(stop[:-1] >= start[1:]))
        raise DicomError(f"{label}: cannot separate phases {p} and {p + 1} by {_TAGS[src]}: "
                         "their slice times overlap (no TemporalPositionIdentifier)")
    if n_def:
        notes.append(f"{_TAGS[src]} absent in {n_def} frame(s), read as 0 ms")
    notes += _cross_check(frames, phase, n_phases, src, start, sources)
    return phase, _relative(start), _TAGS[src], order_src, notes


def _cross_check(frames: Sequence[_Frame], phase: NDArray[np.intp], n_phases: int,
                 chosen: str, start: NDArray[np.float64],
                 sources: Sequence[str]) -> list[str]:
    """Notes for other varying timing tags whose phase times disagree with ``chosen``."""
    notes = []
    ref = start - start[0]
    for src in sources:
        if src == chosen:
            continue
        got = _time_values(frames, src)
        if got is None:
            continue
        other = np.full(n_phases, np.inf)
        np.minimum.at(other, phase, got[0])
        if np.ptp(other) == 0:
            continue
        diff = np.abs((other - other[0]) - ref)
        if diff.max() > 0.5:
            p = int(np.argmax(diff))
            notes.append(f"{_TAGS[src]} disagrees with {_TAGS[chosen]} by up to "
                         f"{diff.max():.3f} s (phase {p}); {_TAGS[chosen]} used")
    return notes


def _relative(start: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.round(start - start[0], 6)


@dataclass
class _GridView:
    slice_index: NDArray[np.intp]
    n_slices: int


def _check_grid(frames: Sequence[_Frame], geom: _Geometry | _GridView,
                group: NDArray[np.intp], group_names: Sequence[str], label: str) -> None:
    """Exactly one frame per (slice, group); messages name the files."""
    n_groups = len(group_names)
    key = group * geom.n_slices + geom.slice_index
    counts = np.bincount(key, minlength=n_groups * geom.n_slices)
    if np.any(counts > 1):
        kk = int(np.argmax(counts > 1))
        who = [frames[int(i)].name for i in np.flatnonzero(key == kk)]
        raise DicomError(f"{label}: duplicated position within {group_names[kk // geom.n_slices]}"
                         f": slice {kk % geom.n_slices} appears {len(who)} times "
                         f"({', '.join(who[:4])})")
    if np.any(counts == 0):
        holes = np.flatnonzero(counts == 0)
        parts = [f"{group_names[h // geom.n_slices]} lacks slice {h % geom.n_slices}"
                 for h in holes[:6]]
        more = f" (and {holes.size - 6} more)" if holes.size > 6 else ""
        raise DicomError(f"{label}: incomplete grid, missing phase or slice: "
                         + "; ".join(parts) + more)


def _assemble(frames: Sequence[_Frame], geom: _Geometry, group: NDArray[np.intp],
              n_groups: int, label: str) -> NDArray[np.float32]:
    """Read pixel data file by file and place frames into ``(cols, rows, nz, n_groups)``."""
    data = np.empty((geom.cols, geom.rows, geom.n_slices, n_groups), dtype=np.float32)
    by_file: dict[Path, list[int]] = defaultdict(list)
    for i, f in enumerate(frames):
        by_file[f.path].append(i)
    for path, members in by_file.items():
        try:
            ds = pydicom.dcmread(path)
            if int(ds.get("SamplesPerPixel", 1)) != 1:
                raise DicomError(f"{path}: colour images are not supported")
            pix = np.asarray(ds.pixel_array)
        except DicomError:
            raise
        except Exception as exc:
            raise DicomError(f"{path} ({label}): cannot decode pixel data: "
                             f"{type(exc).__name__}: {exc}") from None
        if pix.ndim == 2:
            pix = pix[np.newaxis]
        if pix.shape[1:] != (geom.rows, geom.cols) or pix.shape[0] < len(members):
            raise DicomError(f"{path} ({label}): pixel data shape {pix.shape} does not match "
                             f"{len(members)} frame(s) of {geom.rows}x{geom.cols}")
        for lo in range(0, len(members), 64):  # bounded float64 temporaries
            chunk = members[lo:lo + 64]
            fidx = [frames[i].frame or 0 for i in chunk]
            slopes = np.array([frames[i].slope for i in chunk])[:, None, None]
            inter = np.array([frames[i].intercept for i in chunk])[:, None, None]
            vals = pix[fidx].astype(np.float64) * slopes + inter
            data[:, :, geom.slice_index[chunk], group[chunk]] = np.transpose(vals, (2, 1, 0))
    return data


def _ms_to_s(value: float | None) -> float | None:
    return None if value is None else round(value / 1000.0, 9)


def _field_strength(ds: Dataset) -> float | None:
    b0 = _float(ds.get("MagneticFieldStrength"))
    if b0 is not None and b0 > 100:  # some old files store gauss
        b0 = b0 / 10000.0
    return b0


def _common_meta(first: Dataset, geom: _Geometry) -> dict[str, Any]:
    """Allow-listed acquisition metadata (never copy headers wholesale)."""
    def text(kw: str) -> str | None:
        v = first.get(kw)
        return str(v).strip() if v not in (None, "") else None

    return {
        "Modality": text("Modality"),
        "Manufacturer": text("Manufacturer"),
        "ManufacturerModelName": text("ManufacturerModelName"),
        "MagneticFieldStrength": _field_strength(first),
        "MRAcquisitionType": text("MRAcquisitionType"),
        "SliceThickness": _float(first.get("SliceThickness")),
        "VoxelSize_mm": [round(v, 6) for v in geom.voxel_mm],
        "MatrixRowsColumns": [geom.rows, geom.cols],
        "NumberOfSlices": geom.n_slices,
        "SignalScaling": "stored value * RescaleSlope + RescaleIntercept (per frame)",
        "AxisConvention": ("i = DICOM columns, j = DICOM rows, k = slices ascending along "
                           "the slice normal (row x column cosines); affine to RAS+ mm"),
        "ConversionSoftware": "dce.io.dicom",
        "ConversionSoftwareVersion": __version__,
    }


def _phase_gap_notes(t_s: NDArray[np.float64]) -> list[str]:
    """Notes for gaps of about a whole multiple (>= 2) of the median phase spacing: with
    timing from clock tags a phase lost from the export leaves no other trace."""
    if t_s.size < 4:
        return []
    dt = np.diff(t_s)
    med = float(np.median(dt))
    if med <= 0:
        return []
    ratio = dt / med
    gaps = np.nonzero((ratio > 1.5) & (np.abs(ratio - np.round(ratio)) < 0.1))[0]
    return [f"phase gap: {dt[i]:.4g} s between phases {i} and {i + 1} (t = {t_s[i]:.4g} .. "
            f"{t_s[i + 1]:.4g} s) is {round(ratio[i])} x the median spacing {med:.4g} s: "
            f"{round(ratio[i]) - 1} phase(s) may be missing from the export (the fit uses "
            "the real times)" for i in gaps]


def _spacing_meta(t_s: NDArray[np.float64]) -> dict[str, Any]:
    if t_s.size < 2:
        return {"PhaseSpacing_s": None, "PhaseSpacingRange_s": None,
                "PhaseSpacingUneven": False}
    dt = np.diff(t_s)
    med = float(np.median(dt))
    uneven = bool(float(dt.max() - dt.min()) > max(0.1, 0.01 * med))
    return {"PhaseSpacing_s": round(med, 6),
            "PhaseSpacingRange_s": [round(float(dt.min()), 6), round(float(dt.max()), 6)],
            "PhaseSpacingUneven": uneven}
