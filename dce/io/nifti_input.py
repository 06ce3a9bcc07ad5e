"""Image input from NIfTI + JSON sidecars (dcm2niix / BIDS) instead of a DICOM folder.

A session of ``sessions.tsv`` has exactly one image source (:func:`image_source`):

* ``dicom_dir``: a DICOM folder (:func:`dce.io.convert.convert_visit`), or
* ``dce_nifti``: a 4-D DCE NIfTI whose sidecar is the ``.json`` next to it (dcm2niix /
  BIDS style), with optional ``vfa_nifti`` (one 4-D NIfTI whose sidecar ``FlipAngle`` is a
  list with one angle per volume, or several 3-D NIfTIs separated by ``;``, each with its
  own ``FlipAngle``, BIDS qMRI ``..._flip-<n>_VFA.nii.gz`` style) and an optional timing
  override ``dce_times_s`` (a one-column text/TSV file of phase start times in s, or the
  numbers themselves separated by ``;``).

:func:`convert_nifti_session` writes the same files, with the same sidecar keys, as the
DICOM conversion (``sub-<s>_ses-<t>_dce.nii.gz`` + ``.json``, optional ``_vfa``), so
every later step is unchanged.

Phase times come from the sidecar's per-volume timing, in this order of names:
``VolumeTiming`` (BIDS, s), ``FrameTimesStart`` (s) and a per-volume list of
``AcquisitionTime`` clock times (``HH:MM:SS.ffffff``).  A single ``AcquisitionTime``
string (what dcm2niix writes for a series) is *not* per-volume timing.  Every key found
must have one value per volume, be strictly increasing and agree with the other keys
(within :data:`TIMING_TOLERANCE_S`); missing or ambiguous timing is an error naming the
file and the key (or the sheet column) needed.  The ``dce_times_s`` column overrides the
sidecar (a disagreement is noted in the conversion summary).  Times are stored relative
to the first volume, as for DICOM.

BIDS units are checked: ``RepetitionTime`` and ``EchoTime`` in s (a value > 1 "looks
like ms"), ``FlipAngle`` in deg (all angles <= pi/2 "looks like radians"),
``MagneticFieldStrength`` in T.

Voxel data are copied as stored (scaled by the header's ``scl_slope``/``scl_inter`` when
set, then float32 like the DICOM conversion), in the file's voxel order; the affine is
the header's sform when its code is non-zero and it is finite and invertible, else the
qform (the sidecar's ``AxisConvention`` says which).  No reorientation.

De-identification: only the allow-listed acquisition keys of :data:`COPIED_KEYS` are read
from the input sidecars (dcm2niix sidecars may hold PatientName, PatientID,
AcquisitionDateTime, InstitutionName, DeviceSerialNumber, StationName, ...); clock times
are used only as differences; no input path or file name is written to an output.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from dce.io.convert import output_paths, write_converted
from dce.io.dicom import (
    DynamicSeries,
    VFASeries,
    __version__,
    _phase_gap_notes,
    _spacing_meta,
)
from dce.io.nifti import sidecar_path

__all__ = [
    "COPIED_KEYS",
    "TIMING_KEYS",
    "TIMING_TOLERANCE_S",
    "ImageSource",
    "NiftiInputError",
    "convert_nifti_session",
    "image_source",
    "load_dce_nifti",
    "load_vfa_nifti",
    "phase_times",
    "read_times_file",
]

#: Per-volume timing keys of an input sidecar, in order of preference.
TIMING_KEYS = ("VolumeTiming", "FrameTimesStart", "AcquisitionTime")
#: Two timing sources (relative to their first volume) agreeing within this are the same.
TIMING_TOLERANCE_S = 0.05
#: The only keys read from an input sidecar (besides the timing keys), BIDS units.
COPIED_KEYS = ("Modality", "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength",
               "MRAcquisitionType", "SliceThickness", "SeriesDescription", "SeriesNumber",
               "FlipAngle", "RepetitionTime", "EchoTime")
#: Sessions sheet columns of this input.
COLUMNS = ("dce_nifti", "vfa_nifti", "dce_times_s")

Reporter = Callable[[str], None]

_NUMBER_LIST = re.compile(r"\s*[-+0-9.eE]+(\s*[;,]\s*[-+0-9.eE]+)+\s*;?\s*")
_CLOCK = re.compile(r"(\d{2}):?(\d{2}):?(\d{2}(?:\.\d+)?)")


class NiftiInputError(ValueError):
    """A NIfTI/JSON input that cannot be used; the message names the file and the key."""


# --------------------------------------------------------------------------- sheet row


@dataclass(frozen=True)
class ImageSource:
    """The image input of one session (from :func:`image_source`).

    Attributes
    ----------
    kind : {"dicom", "nifti"}
    dicom_dir : str or None
        DICOM folder (``kind == "dicom"``).
    dce_nifti : str or None
        4-D DCE NIfTI (``kind == "nifti"``); its sidecar is :func:`dce_sidecar`.
    vfa_nifti : tuple of str
        VFA NIfTI file(s), possibly empty.
    dce_times_s : str, tuple of float or None
        Timing override: a file of phase start times (s) or the times themselves.
    """

    kind: str
    dicom_dir: str | None = None
    dce_nifti: str | None = None
    vfa_nifti: tuple[str, ...] = ()
    dce_times_s: str | tuple[float, ...] | None = None

    def inputs(self) -> dict[str, str]:
        """Every input file (folder for DICOM) by role: ``dicom``, or ``dce_nifti``,
        ``dce_json``, ``vfa_nifti_<n>``, ``vfa_json_<n>`` and ``dce_times_s`` (a file)."""
        if self.kind == "dicom":
            assert self.dicom_dir is not None
            return {"dicom": self.dicom_dir}
        assert self.dce_nifti is not None
        out = {"dce_nifti": self.dce_nifti, "dce_json": str(sidecar_path(self.dce_nifti))}
        for n, path in enumerate(self.vfa_nifti, start=1):
            out[f"vfa_nifti_{n}"] = path
            out[f"vfa_json_{n}"] = str(sidecar_path(path))
        if isinstance(self.dce_times_s, str):
            out["dce_times_s"] = self.dce_times_s
        return out

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (Snakemake params)."""
        times = self.dce_times_s
        return {"kind": self.kind, "dicom_dir": self.dicom_dir, "dce_nifti": self.dce_nifti,
                "vfa_nifti": list(self.vfa_nifti),
                "dce_times_s": list(times) if isinstance(times, tuple) else times}


def _cell(row: Mapping[str, Any], column: str) -> str:
    value = row.get(column, "")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def image_source(row: Mapping[str, Any], *, base_dir: str | os.PathLike[str] = ".",
                 sheet: str = "sessions.tsv") -> ImageSource:
    """The image source of a session-sheet row: exactly one of ``dicom_dir`` and
    ``dce_nifti``.

    Parameters
    ----------
    row : mapping
        The row (``subject``, ``session``, ``dicom_dir``, ``dce_nifti``, ``vfa_nifti``,
        ``dce_times_s``; absent or empty columns are unset).
    base_dir : path-like
        Folder the NIfTI paths are relative to (the sheet's folder).  ``dicom_dir`` is
        taken as given (the sheet reader resolves it).
    sheet : str
        Sheet name for messages.

    Returns
    -------
    ImageSource

    Raises
    ------
    NiftiInputError
        Both or neither image source given, NIfTI-only columns on a DICOM session, a
        ``vfa_nifti`` or ``dce_nifti`` that is not a ``.nii``/``.nii.gz`` name.
    """
    who = f"{sheet}: session {_cell(row, 'subject')}/{_cell(row, 'session')}"
    dicom, dce = _cell(row, "dicom_dir"), _cell(row, "dce_nifti")
    vfa, times = _cell(row, "vfa_nifti"), _cell(row, "dce_times_s")
    if dicom and dce:
        raise NiftiInputError(f"{who}: both dicom_dir and dce_nifti are given; a session has "
                              "exactly one image source: clear one of the two columns")
    if not dicom and not dce:
        raise NiftiInputError(f"{who}: no image source; a session has exactly one: column "
                              "dicom_dir (a DICOM folder) or dce_nifti (a 4-D NIfTI with its "
                              "JSON sidecar)")
    if dicom:
        extra = [c for c, v in (("vfa_nifti", vfa), ("dce_times_s", times)) if v]
        if extra:
            raise NiftiInputError(f"{who}: column(s) {', '.join(extra)} apply to dce_nifti "
                                  "sessions only; this session reads dicom_dir")
        return ImageSource(kind="dicom", dicom_dir=dicom)
    base = Path(base_dir)

    def resolve(p: str, column: str) -> str:
        if not p.endswith((".nii", ".nii.gz")):
            raise NiftiInputError(f"{who}: column {column}: {p!r} is not a .nii or .nii.gz "
                                  "file name")
        return os.path.normpath(base / p)

    vfas = tuple(resolve(p.strip(), "vfa_nifti") for p in vfa.split(";") if p.strip())
    parsed: str | tuple[float, ...] | None = None
    if times:
        if _NUMBER_LIST.fullmatch(times):
            try:
                parsed = tuple(float(v) for v in re.split(r"[;,]", times) if v.strip())
            except ValueError:
                parsed = None
        if parsed is None:
            parsed = os.path.normpath(base / times)
    return ImageSource(kind="nifti", dce_nifti=resolve(dce, "dce_nifti"), vfa_nifti=vfas,
                       dce_times_s=parsed)


# --------------------------------------------------------------------------- timing


def read_times_file(path: str | os.PathLike[str]) -> NDArray[np.float64]:
    """Phase start times (s) from a one-column text/TSV file.

    One number per line; blank lines and lines starting with ``#`` are skipped, and the
    first line may be a header (e.g. ``time_s``).

    Raises
    ------
    NiftiInputError
        Missing file, more than one column, a cell that is not a finite number.
    """
    p = Path(path)
    if not p.is_file():
        raise NiftiInputError(f"{p}: no such timing file (sessions.tsv column dce_times_s)")
    values: list[float] = []
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    for n, line in enumerate(lines):
        cells = line.split()
        if len(cells) != 1:
            raise NiftiInputError(f"{p}: line {line!r} has {len(cells)} columns; the timing "
                                  "file holds one column of phase start times in s")
        try:
            v = float(cells[0])
        except ValueError:
            if n == 0:
                continue                      # header
            raise NiftiInputError(f"{p}: {cells[0]!r} is not a number (phase start time "
                                  "in s)") from None
        if not math.isfinite(v):
            raise NiftiInputError(f"{p}: {cells[0]!r} is not a finite time in s")
        values.append(v)
    return np.asarray(values, dtype=np.float64)


def _clock_s(value: Any, where: str, i: int) -> float:
    m = _CLOCK.fullmatch(str(value).strip())
    if m is None:
        raise NiftiInputError(f"{where}: AcquisitionTime[{i}] {value!r} is not a clock time "
                              "HH:MM:SS(.ffffff)")
    h, mi, s = int(m[1]), int(m[2]), float(m[3])
    if h > 23 or mi > 59 or s >= 61:
        raise NiftiInputError(f"{where}: AcquisitionTime[{i}] {value!r}: hours 0-23, "
                              "minutes 0-59, seconds < 61")
    return h * 3600.0 + mi * 60.0 + s


def _numbers(value: Any, key: str, where: str) -> NDArray[np.float64]:
    ok = isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    arr = np.asarray(value if ok else [], dtype=np.float64)
    if not ok or not np.all(np.isfinite(arr)):
        raise NiftiInputError(f"{where}: {key} must be a list of numbers (s), one per "
                              f"volume; got {str(value)[:60]}")
    return arr


def _check_times(t: NDArray[np.float64], n: int, what: str, where: str) -> None:
    if t.size != n:
        raise NiftiInputError(f"{where}: {what} has {t.size} values but the image has {n} "
                              "volumes; one phase start time (s) per volume is needed")
    bad = np.nonzero(np.diff(t) <= 0)[0]
    if bad.size:
        i = int(bad[0])
        raise NiftiInputError(f"{where}: {what} is not increasing: volume {i + 1} at "
                              f"{t[i + 1]:g} s follows volume {i} at {t[i]:g} s")


def phase_times(sidecar: Mapping[str, Any], n_volumes: int, *, where: str,
                override: str | os.PathLike[str] | Sequence[float] | None = None,
                ) -> tuple[NDArray[np.float64], str, list[str]]:
    """Phase start times (s, relative to the first volume) of a dynamic NIfTI.

    Parameters
    ----------
    sidecar : mapping
        The input sidecar (keys of :data:`TIMING_KEYS` are read).
    n_volumes : int
        Number of volumes of the image.
    where : str
        The sidecar file, for messages.
    override : path-like or sequence of float, optional
        The ``dce_times_s`` column: a timing file (:func:`read_times_file`) or the times
        (s).  Used instead of the sidecar.

    Returns
    -------
    t_s : ndarray, shape (n_volumes,)
        Times in s, ``t_s[0] == 0``.
    source : str
        Where they came from (recorded as ``TimingSource``).
    notes : list of str
        Disagreement of the sidecar with the override, if any.

    Raises
    ------
    NiftiInputError
        No per-volume timing, a key with the wrong number of values or not increasing,
        two keys disagreeing (message names the file and keys).
    """
    found: dict[str, NDArray[np.float64]] = {}
    for key in TIMING_KEYS[:2]:
        if key in sidecar:
            found[key] = _numbers(sidecar[key], key, where)
    acq = sidecar.get("AcquisitionTime")
    if isinstance(acq, list):
        clock = np.array([_clock_s(v, where, i) for i, v in enumerate(acq)])
        step = np.diff(clock)
        clock[1:] += 86400.0 * np.cumsum(step < -43200.0)   # past midnight
        found["AcquisitionTime"] = clock
    for key, t in found.items():
        _check_times(t, n_volumes, f"sidecar key {key}", where)
    rel = {k: t - t[0] for k, t in found.items()}
    notes: list[str] = []
    if override is not None:
        if isinstance(override, (str, os.PathLike)):
            t = read_times_file(override)
            what = f"the timing file {Path(override).name} (sessions.tsv column dce_times_s)"
        else:
            t = np.asarray(list(override), dtype=np.float64)
            what = "sessions.tsv column dce_times_s"
        _check_times(t, n_volumes, what, where)
        for key, r in rel.items():
            diff = float(np.max(np.abs(r - (t - t[0]))))
            if diff > TIMING_TOLERANCE_S:
                notes.append(f"sidecar {key} disagrees with sessions.tsv column dce_times_s "
                             f"by up to {diff:.3g} s; the column is used")
        return t - t[0], "sessions.tsv column dce_times_s", notes
    if not found:
        single = (" (its single AcquisitionTime is the start of the series, not per-volume "
                  "timing)" if acq is not None else "")
        raise NiftiInputError(
            f"{where}: no per-volume timing{single}: the sidecar needs VolumeTiming (list of "
            f"{n_volumes} volume start times in s; or FrameTimesStart, or a list of "
            "AcquisitionTime clock times), or give the phase start times in the sessions.tsv "
            "column dce_times_s (a one-column file or numbers separated by ';')")
    keys = list(rel)
    for other in keys[1:]:
        diff = np.abs(rel[other] - rel[keys[0]])
        if float(diff.max()) > TIMING_TOLERANCE_S:
            i = int(np.argmax(diff))
            raise NiftiInputError(
                f"{where}: ambiguous timing: {keys[0]} and {other} disagree by "
                f"{float(diff[i]):.3g} s at volume {i}; remove the wrong key or give the "
                "phase start times in the sessions.tsv column dce_times_s")
    return rel[keys[0]], f"sidecar {keys[0]}", notes


# --------------------------------------------------------------------------- images


def _read_sidecar(path: Path) -> tuple[Path, dict[str, Any]]:
    jpath = sidecar_path(path)
    if not path.is_file():
        raise NiftiInputError(f"{path}: no such NIfTI file")
    if not jpath.is_file():
        raise NiftiInputError(f"{jpath}: JSON sidecar of {path.name} is missing (dcm2niix "
                              "-b y writes it next to the image)")
    try:
        side = json.loads(jpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NiftiInputError(f"{jpath}: invalid JSON sidecar ({exc})") from None
    if not isinstance(side, dict):
        raise NiftiInputError(f"{jpath}: the sidecar must be a JSON object")
    return jpath, side


def _load_image(path: Path) -> tuple[NDArray[np.float32], NDArray[np.float64], str]:
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises several types for a bad file
        raise NiftiInputError(f"{path}: cannot read as NIfTI ({exc})") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise NiftiInputError(f"{path}: not a NIfTI image ({type(img).__name__})")
    hdr = img.header
    affine, source = None, ""
    for name, (aff, code) in (("sform", hdr.get_sform(coded=True)),
                              ("qform", hdr.get_qform(coded=True))):
        if aff is not None and code > 0 and np.all(np.isfinite(aff)) \
                and abs(np.linalg.det(aff[:3, :3])) > 1e-12:
            affine, source = np.asarray(aff, dtype=np.float64), f"{name} (code {int(code)})"
            break
    if affine is None:
        raise NiftiInputError(f"{path}: the header has neither a valid sform nor a valid "
                              "qform (codes 0 or singular): the orientation is unknown; "
                              "re-export with dcm2niix")
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as exc:
        raise NiftiInputError(f"{path}: cannot read the voxel data ({exc})") from None
    if not np.all(np.isfinite(data)):
        raise NiftiInputError(f"{path}: {int(np.sum(~np.isfinite(data)))} voxel value(s) are "
                              "NaN or infinite")
    return data, affine, source


def _number(side: Mapping[str, Any], key: str, where: str, *, required: bool,
            unit: str) -> float | None:
    if key not in side or side[key] is None:
        if required:
            raise NiftiInputError(f"{where}: sidecar key {key} ({unit}) is missing")
        return None
    v = side[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise NiftiInputError(f"{where}: {key} {v!r} must be a positive number in {unit}")
    return float(v)


def _acquisition(side: Mapping[str, Any], where: str) -> dict[str, float | None]:
    """TR, TE and field strength in BIDS units, checked."""
    tr = _number(side, "RepetitionTime", where, required=True, unit="s")
    te = _number(side, "EchoTime", where, required=False, unit="s")
    b0 = _number(side, "MagneticFieldStrength", where, required=False, unit="T")
    for key, v in (("RepetitionTime", tr), ("EchoTime", te)):
        if v is not None and v > 1.0:
            raise NiftiInputError(f"{where}: {key} {v:g} looks like ms; {key} is in s (BIDS), "
                                  f"e.g. {v / 1000:g}")
    if b0 is not None and b0 > 12.0:
        raise NiftiInputError(f"{where}: MagneticFieldStrength {b0:g} is not a field strength "
                              "in T (BIDS unit), e.g. 1.5 or 3")
    return {"RepetitionTime": tr, "EchoTime": te, "MagneticFieldStrength": b0}


def _check_flip_angles(fas: NDArray[np.float64], where: str) -> None:
    if np.any(fas <= 0) or np.any(fas > 90):
        raise NiftiInputError(f"{where}: FlipAngle {fas.tolist()} outside (0, 90] deg")
    if float(fas.max()) <= math.pi / 2:
        raise NiftiInputError(f"{where}: FlipAngle {fas.tolist()} looks like radians; "
                              "FlipAngle is in deg (BIDS)")


def _text(side: Mapping[str, Any], key: str) -> str | None:
    v = side.get(key)
    return str(v).strip() if isinstance(v, (str, int, float)) and str(v).strip() else None


def _common_meta(side: Mapping[str, Any], shape: tuple[int, ...], affine: NDArray[np.float64],
                 affine_source: str) -> dict[str, Any]:
    """The DICOM conversion's common sidecar keys, from allow-listed input keys only."""
    thick = side.get("SliceThickness")
    return {
        "Modality": _text(side, "Modality"),
        "Manufacturer": _text(side, "Manufacturer"),
        "ManufacturerModelName": _text(side, "ManufacturerModelName"),
        "MagneticFieldStrength": None,
        "MRAcquisitionType": _text(side, "MRAcquisitionType"),
        "SliceThickness": float(thick) if isinstance(thick, (int, float))
        and not isinstance(thick, bool) else None,
        "VoxelSize_mm": [round(float(v), 6) for v in np.linalg.norm(affine[:3, :3], axis=0)],
        "MatrixRowsColumns": None,
        "NumberOfSlices": int(shape[2]),
        "SignalScaling": "stored value * scl_slope + scl_inter of the NIfTI header (as read "
                         "by nibabel), as float32",
        "AxisConvention": ("voxel order of the source NIfTI, unchanged; affine to RAS+ mm "
                           f"from its {affine_source}"),
        "ConversionSoftware": "dce.io.nifti_input",
        "ConversionSoftwareVersion": __version__,
    }


def load_dce_nifti(path: str | os.PathLike[str], *,
                   times: str | os.PathLike[str] | Sequence[float] | None = None,
                   ) -> DynamicSeries:
    """Read a 4-D DCE NIfTI and its dcm2niix/BIDS sidecar.

    Parameters
    ----------
    path : path-like
        ``.nii``/``.nii.gz``; the sidecar is the ``.json`` of the same name.
    times : path-like or sequence of float, optional
        Timing override (sessions.tsv ``dce_times_s``), see :func:`phase_times`.

    Returns
    -------
    DynamicSeries
        ``data`` float32 (i, j, k, t) as stored, ``t_s`` relative to the first volume,
        ``affine`` sform (or qform), ``meta`` with the keys of the DICOM conversion.

    Raises
    ------
    NiftiInputError
        Missing file or sidecar, not 4-D or a single volume, unknown orientation,
        non-finite voxels, missing/invalid timing, FlipAngle, RepetitionTime, units.
    """
    p = Path(path)
    jpath, side = _read_sidecar(p)
    data, affine, affine_source = _load_image(p)
    if data.ndim != 4 or data.shape[3] < 2:
        raise NiftiInputError(f"{p}: a DCE image must be 4-D with at least two volumes, got "
                              f"shape {data.shape}")
    where = str(jpath)
    fa = _number(side, "FlipAngle", where, required=True, unit="deg")
    assert fa is not None
    _check_flip_angles(np.array([fa]), where)
    acq = _acquisition(side, where)
    t_s, source, notes = phase_times(side, data.shape[3], where=where, override=times)
    meta = _common_meta(side, data.shape, affine, affine_source)
    meta.update({
        "MagneticFieldStrength": acq["MagneticFieldStrength"],
        "SeriesDescription": _text(side, "SeriesDescription"),
        "SeriesNumber": side.get("SeriesNumber") if isinstance(side.get("SeriesNumber"), int)
        else None,
        "FlipAngle": fa,
        "RepetitionTime": acq["RepetitionTime"],
        "EchoTime": acq["EchoTime"],
        "NumberOfPhases": int(data.shape[3]),
        "VolumeTiming": [float(v) for v in t_s],
        "TimingSource": source,
        "PhaseOrderSource": "volume order of the NIfTI file",
    })
    meta.update(_spacing_meta(t_s))
    meta["Notes"] = notes + _phase_gap_notes(t_s)
    meta["TimingWarnings"] = notes      # as for DICOM: timing sources that disagree
    return DynamicSeries(data=data, t_s=t_s, affine=affine, meta=meta)


def load_vfa_nifti(paths: Sequence[str | os.PathLike[str]]) -> VFASeries:
    """Read variable-flip-angle NIfTIs: one 4-D file whose sidecar ``FlipAngle`` lists one
    angle per volume, or several 3-D files each with its own ``FlipAngle``.

    Returns
    -------
    VFASeries
        Volumes sorted by ascending flip angle (deg), float32; ``meta`` with the keys
        of the DICOM conversion.

    Raises
    ------
    NiftiInputError
        Missing file or sidecar, flip angles not one per volume, fewer than two distinct
        flip angles or one twice, differing TR or grid, units.
    """
    if not paths:
        raise NiftiInputError("VFA: no NIfTI file given")
    vols: list[NDArray[np.float32]] = []
    fas: list[float] = []
    trs: list[tuple[float, str]] = []
    first: tuple[dict[str, Any], tuple[int, ...], NDArray[np.float64], str] | None = None
    descriptions, numbers = [], []
    for path in map(Path, paths):
        jpath, side = _read_sidecar(path)
        where = str(jpath)
        data, affine, affine_source = _load_image(path)
        if data.ndim == 3:
            data = data[..., None]
        if data.ndim != 4:
            raise NiftiInputError(f"{path}: a VFA image must be 3-D or 4-D, got {data.shape}")
        n = data.shape[3]
        raw = side.get("FlipAngle")
        if isinstance(raw, list) and n > 1:
            angles = _numbers(raw, "FlipAngle", where)
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool) and n == 1:
            angles = np.array([float(raw)])
        else:
            raise NiftiInputError(
                f"{where}: FlipAngle {str(raw)[:60]} does not fit the {n} volume(s) of "
                f"{path.name}: a 3-D image needs one FlipAngle (deg), a 4-D VFA image a list "
                "with one flip angle per volume")
        if angles.size != n:
            raise NiftiInputError(f"{where}: FlipAngle has {angles.size} values but the image "
                                  f"has {n} volumes")
        _check_flip_angles(angles, where)
        acq = _acquisition(side, where)
        assert acq["RepetitionTime"] is not None
        trs.append((acq["RepetitionTime"], where))
        if first is None:
            first = (side | {"_acq": acq}, data.shape[:3], affine, affine_source)
        elif data.shape[:3] != first[1] or not np.allclose(affine, first[2], atol=1e-3):
            raise NiftiInputError(f"{path}: grid {data.shape[:3]} / affine differs from the "
                                  f"first VFA image ({first[1]}); all VFA images need one grid")
        vols.append(data)
        fas += angles.tolist()
        descriptions.append(_text(side, "SeriesDescription"))
        numbers.append(side.get("SeriesNumber") if isinstance(side.get("SeriesNumber"), int)
                       else None)
    assert first is not None
    if len({round(tr, 9) for tr, _ in trs}) > 1:
        raise NiftiInputError("VFA: RepetitionTime differs between the sidecars: "
                              + "; ".join(f"{w}: {tr:g} s" for tr, w in trs))
    arr = np.asarray(fas)
    if np.unique(np.round(arr, 3)).size != arr.size:
        raise NiftiInputError(f"VFA: a flip angle occurs twice ({sorted(fas)} deg)")
    if arr.size < 2:
        raise NiftiInputError(f"VFA: only one flip angle ({fas[0]:g} deg); VFA T1 mapping "
                              "needs at least two (list the files separated by ';')")
    order = np.argsort(arr, kind="stable")
    data = np.concatenate(vols, axis=3)[..., order]
    side0, shape, affine, affine_source = first
    acq0 = side0["_acq"]
    meta = _common_meta(side0, shape, affine, affine_source)
    meta.update({
        "MagneticFieldStrength": acq0["MagneticFieldStrength"],
        "SeriesDescriptions": descriptions,
        "SeriesNumbers": numbers,
        "FlipAngles_deg": [float(v) for v in arr[order]],
        "RepetitionTime": acq0["RepetitionTime"],
        "EchoTime": acq0["EchoTime"],
        "Notes": [],
    })
    return VFASeries(data=np.ascontiguousarray(data), flip_angles_deg=arr[order],
                     tr_s=float(acq0["RepetitionTime"]), affine=affine, meta=meta)


# --------------------------------------------------------------------------- session


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:.0f}"


def convert_nifti_session(dce_nifti: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                          *, subject: str, session: str,
                          vfa_nifti: Sequence[str | os.PathLike[str]] = (),
                          times: str | os.PathLike[str] | Sequence[float] | None = None,
                          report: Reporter | None = None) -> dict[str, Path]:
    """Convert a NIfTI + JSON session to the files of the DICOM conversion.

    Parameters
    ----------
    dce_nifti : path-like
        4-D DCE NIfTI with its sidecar (:func:`load_dce_nifti`).
    out_dir : path-like
        Output folder; files ``sub-<subject>_ses-<session>_dce.nii.gz`` (+ ``.json``) and,
        with VFA images, ``_vfa.nii.gz`` (+ ``.json``).
    subject, session : str
        IDs, letters and digits only.
    vfa_nifti : sequence of path-like
        VFA NIfTI file(s) (:func:`load_vfa_nifti`); empty for none.
    times : path-like or sequence of float, optional
        Timing override (sessions.tsv ``dce_times_s``).
    report : callable, optional
        Called with each line of a de-identified summary (no file names).

    Returns
    -------
    dict of Path
        As :func:`dce.io.convert.convert_visit`.

    Raises
    ------
    NiftiInputError
        An invalid input (see the loaders); nothing is written then.
    """
    say: Reporter = report or (lambda _line: None)
    paths = output_paths(out_dir, subject, session)
    dce = load_dce_nifti(dce_nifti, times=times)
    vfa = load_vfa_nifti(vfa_nifti) if vfa_nifti else None
    m = dce.meta
    nx, ny, nz, nt = dce.data.shape
    say("source: NIfTI + JSON sidecar (dcm2niix/BIDS), not DICOM")
    say(f"DCE: 4-D NIfTI, {nx} x {ny} x {nz} voxels of "
        + " x ".join(_fmt(v) for v in m["VoxelSize_mm"])
        + f" mm, {nt} phases; FA {_fmt(m['FlipAngle'])} deg, TR "
        f"{_fmt(m['RepetitionTime'] * 1000)} ms")
    say(f"  phase times 0 .. {_fmt(float(dce.t_s[-1]))} s, spacing "
        + (f"UNEVEN {_fmt(m['PhaseSpacingRange_s'][0])} .. {_fmt(m['PhaseSpacingRange_s'][1])}"
           f" s (median {_fmt(m['PhaseSpacing_s'])} s)" if m["PhaseSpacingUneven"]
           else f"{_fmt(m['PhaseSpacing_s'])} s"))
    say(f"  timing from {m['TimingSource']}; {m['AxisConvention']}")
    for note in m["Notes"]:
        say(f"  note: {note}")
    if vfa is None:
        say("VFA: none given (no T1 map from this visit)")
    else:
        fas = ", ".join(_fmt(float(a)) for a in vfa.flip_angles_deg)
        say(f"VFA: {len(vfa_nifti)} NIfTI file(s), {vfa.data.shape[3]} flip angles ({fas} "
            f"deg), TR {_fmt(vfa.tr_s * 1000)} ms")
        if vfa.data.shape[:3] != dce.data.shape[:3] or not np.allclose(vfa.affine, dce.affine,
                                                                        atol=1e-3):
            say("  note: the VFA grid differs from the DCE grid; T1 maps need resampling to "
                "the DCE grid")
    return write_converted(paths, {"dce": dce, "vfa": vfa})  # a NIfTI session has no B1
