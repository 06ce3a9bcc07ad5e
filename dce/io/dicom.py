"""DICOM series discovery, classification, sorting, timing and stacking for DCE MRI.

Overview
--------
:func:`discover_series` walks a folder tree, reads every DICOM header once and groups
the image files by SeriesInstanceUID, with a header summary per series (frames per slice
position, flip angles, TR/TE, ImageType, grid).  :func:`classify_series` sorts the series
into DCE, variable-flip-angle (VFA), B1 map, derived and other, from their headers (see
its notes; SeriesDescription patterns override a role), with a reason per series for
messages.  :func:`load_dce` stacks the single DCE series into a 4-D array
``(i, j, k, t)``; :func:`load_vfa` the VFA data (``(i, j, k, n_fa)``);
:func:`load_b1_series` a B1 map (``(i, j, k)``, values as stored, convention from
:func:`b1_convention`).  They return the NIfTI affine and a de-identified metadata
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
``InstanceNumber`` is never used for ordering (only to cross-check it).  Phases are found
in this order:

1. a temporal index present in every frame (``TemporalPositionIdentifier``
   (0020,0100) in classic files, e.g. Philips, checked against
   ``NumberOfTemporalPositions``; ``TemporalPositionIndex`` (0020,9128) in enhanced
   multi-frame files) defines the phases;
2. otherwise, at every slice position the frames are ranked by acquisition time.

Phase start times come from the first timing tag, in a vendor-dependent order, that is
present in every frame, valid, and actually varies between phases:

* GE: ``TriggerTime`` (0018,1060, ms; AcquisitionTime is constant across phases).  A
  missing TriggerTime is read as 0 ms (the QIBA GE files omit it in the first phase);
* Siemens, Philips and others: ``AcquisitionDateTime``, ``AcquisitionTime``,
  ``TriggerTime`` (Philips: dynamic scan start, ms), then ``ContentTime`` (image
  creation; last because it can be the reconstruction time);
* enhanced multi-frame MR: per-frame ``FrameAcquisitionDateTime``, then
  ``FrameReferenceDateTime``.

Every timing value is parsed strictly (:func:`parse_tm`: hours 00-23, minutes 00-59,
seconds 00-60, a fraction of 1-6 digits only after the seconds, the old ``HH:MM:SS``
form accepted; :func:`parse_dt` likewise, with a valid date).  A tag with an invalid
value in any frame (e.g. ``0969.500``: minutes 69, fraction after the minutes) is
*broken* for the whole series:

* if no other tag gives the phase times, loading fails with a message naming the
  file, the tag (keyword and (gggg,eeee)) and the value (the date part of a DT value is
  masked: dates are identifiers);
* FALLBACK: if the broken tag comes first in the order above and the next valid tag's
  phase order is confirmed by an independent reference (increasing with the temporal
  index; without one, AcquisitionNumber or InstanceNumber as below), its times are
  used with a WARNING: in the conversion report and log naming file, tag, value and the
  confirming reference (``DynamicSeries.timing_details``), in ``meta["TimingWarnings"]``
  (the sidecar) naming tag, count, reason and reference (no file name, no clock time);
  without such a confirmation loading fails;
* a broken tag that would not have been used anyway is also listed in
  ``TimingWarnings``.

The time order is cross-checked, and a disagreement is an error naming both files with
their time and reference values ("inconsistent timeline"; phases are never re-sorted
silently):

* with a temporal index: the phase times must increase with it;
* without: ``AcquisitionNumber`` (0020,0012), where constant within each phase and
  distinct between phases, must increase with time; ``InstanceNumber`` (0020,0013) per
  slice position, where in time order (or reversed) in at least 80 % of the steps,
  must be so in all of them (shuffled numbering, common in exports, carries no order
  and is ignored).  Confirming references are listed in ``meta["Notes"]``.

A phase starts at the earliest time of its slices; times are returned in seconds
relative to the first phase.  Clock times (TM) without dates are unwrapped across
midnight.  Other valid timing tags that also vary between phases are compared with the
chosen one; a disagreement of more than 0.5 s is reported in ``meta["Notes"]``.  Uneven
phase spacing is allowed and flagged in the metadata; a gap of about a whole multiple
(>= 2) of the median spacing is reported in ``meta["Notes"]`` as phase(s) possibly
missing from the export (with clock timing a lost phase leaves no other trace).

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
An error message about an invalid or inconsistent timing value quotes the stored time of
day (the user needs it to find and fix the file); the date part of a DT is masked.
SeriesInfo keeps the UID and the series start time in memory only.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import struct
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
from numpy.typing import NDArray

# isort: off
from dce.io._pydicom import pydicom  # first: pydicom without requests (dce.io._pydicom)
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import pixel_array
# isort: on

try:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _pkg_version

    __version__ = _pkg_version("dce")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "unknown"

__all__ = [
    "DEFAULT_EXCLUDE_PATTERN",
    "DEFAULT_VFA_EXCLUDE_PATTERN",
    "MIN_DCE_PHASES",
    "B1Series",
    "DicomError",
    "DynamicSeries",
    "SeriesGrid",
    "SeriesInfo",
    "SeriesRole",
    "SeriesRoles",
    "VFASeries",
    "b1_convention",
    "classify_series",
    "discover_series",
    "load_b1_series",
    "load_dce",
    "load_dce_series",
    "load_vfa",
    "load_vfa_series",
    "parse_dt",
    "parse_tm",
    "select_series",
]

log = logging.getLogger(__name__)

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
class SeriesGrid:
    """Geometry summary of a series, for telling series on the same grid apart.

    Attributes
    ----------
    orientation : tuple of float
        ImageOrientationPatient of the first frame (6 direction cosines).
    mixed_orientation : bool
        True if frames differ in orientation (localizers, multi-stack series).
    rows, columns : int
        Matrix.
    pixel_spacing_mm : tuple of float
        PixelSpacing (between rows, between columns), mm.
    slice_range_mm : tuple of float
        Lowest and highest slice position along the slice normal (mm).
    inplane_origin_mm : tuple of float
        Position of the lowest slice's first voxel along the row and column directions
        (mm).
    """

    orientation: tuple[float, ...]
    mixed_orientation: bool
    rows: int
    columns: int
    pixel_spacing_mm: tuple[float, float]
    slice_range_mm: tuple[float, float]
    inplane_origin_mm: tuple[float, float]

    def mismatch(self, other: SeriesGrid, n_self: int, n_other: int) -> str | None:
        """Why ``other`` is not on this grid (None if it is, within tolerance).

        Parameters
        ----------
        other : SeriesGrid
            The grid to compare with.
        n_self, n_other : int
            Numbers of slice positions of the two series.

        Returns
        -------
        str or None
            E.g. ``"matrix 128x128 vs 256x256"``; tolerances: direction cosines 1e-3,
            spacing 1 %, positions half a pixel / 0.5 mm.
        """
        if np.max(np.abs(np.subtract(self.orientation, other.orientation))) > 1e-3:
            return "orientation differs"
        if (self.rows, self.columns) != (other.rows, other.columns):
            return (f"matrix {other.rows}x{other.columns} vs {self.rows}x{self.columns}")
        if not np.allclose(self.pixel_spacing_mm, other.pixel_spacing_mm, rtol=0.01):
            return (f"pixel spacing {list(other.pixel_spacing_mm)} vs "
                    f"{list(self.pixel_spacing_mm)} mm")
        if n_self != n_other:
            return f"{n_other} slices vs {n_self}"
        tol = max(0.5, 0.5 * min(self.pixel_spacing_mm))
        if (np.max(np.abs(np.subtract(self.slice_range_mm, other.slice_range_mm))) > tol
                or np.max(np.abs(np.subtract(self.inplane_origin_mm,
                                             other.inplane_origin_mm))) > tol):
            return "slice positions differ"
        return None


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
    image_type : tuple of str
        ImageType (0008,0008) values of the first file, upper case.
    protocol_name, sequence_name : str
        ProtocolName (0018,1030) and SequenceName (0018,0024) (enhanced files:
        PulseSequenceName (0018,9005)), ``""`` if absent.
    n_positions : int
        Distinct slice positions (along the slice normal, 0.01 mm tolerance).
    n_temporal : int
        Distinct TemporalPositionIdentifier / TemporalPositionIndex values (0 if absent).
    echo_times_ms, repetition_times_ms : tuple of float
        Distinct echo and repetition times (ms).
    grid : SeriesGrid or None
        Image grid summary (None when a geometry tag is missing).
    value_units : str
        Units of the stored values after rescale, when the header says (RealWorldValue
        MappingSequence units code, else RescaleType), upper case; ``""`` if unknown.
    start_s : float or None
        Earliest acquisition date-time of the series (s since 0001-01-01, local time),
        in memory only (never written); None when a date or time is missing or invalid.
        Used to tell pre- from post-contrast single-phase series.
    headers : tuple of (Path, Dataset)
        The file headers read by :func:`discover_series` (pixel data not read), in memory
        only (not shown by ``repr``, not compared): the loaders reuse them instead of
        parsing every header a second time. Empty for a SeriesInfo made by hand (the
        loaders then read the headers).
    frames_by_file : dict of Path to tuple of _Frame
        The frames :func:`discover_series` took from those headers (geometry, timing,
        scaling), by file, in memory only (not shown, not compared): the loaders reuse
        them instead of taking every header apart a second time. Empty for a SeriesInfo
        made by hand.
    """

    description: str
    series_number: int | None
    manufacturer: str
    files: tuple[Path, ...] = field(repr=False)
    n_frames: int
    flip_angles_deg: tuple[float, ...]
    enhanced: bool
    uid: str = field(repr=False)
    image_type: tuple[str, ...] = ()
    protocol_name: str = ""
    sequence_name: str = ""
    n_positions: int = 0
    n_temporal: int = 0
    echo_times_ms: tuple[float, ...] = ()
    repetition_times_ms: tuple[float, ...] = ()
    grid: SeriesGrid | None = None
    value_units: str = ""
    start_s: float | None = field(default=None, repr=False)
    headers: tuple[tuple[Path, Dataset], ...] = field(default=(), repr=False, compare=False)
    frames_by_file: dict[Path, tuple[_Frame, ...]] = field(default_factory=dict, repr=False,
                                                           compare=False)

    @property
    def n_phases(self) -> int:
        """Frames per slice position (or distinct temporal positions, when given)."""
        if self.n_temporal > 1:
            return self.n_temporal
        return round(self.n_frames / self.n_positions) if self.n_positions else 0

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
        ``meta["TimingWarnings"]`` names tag, count and reason, never a file or value.
    timing_details : tuple of str
        The same timing warnings naming the file and the stored value, for the report
        and the log only (file names and clock times are not written to outputs).
    scaling : tuple of float or None
        ``(slope, intercept)`` shared by every frame (float32 values), ``data`` being
        exactly the stored integers times slope plus intercept: the image can be written
        losslessly as the 16-bit stored values (:func:`dce.io.nifti.write_nifti`).
        None when frames differ in rescale or the stored values are not integers.
    """

    data: NDArray[np.float32]
    t_s: NDArray[np.float64]
    affine: NDArray[np.float64]
    meta: dict[str, Any]
    timing_details: tuple[str, ...] = ()
    scaling: tuple[float, float] | None = None


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
    scaling : tuple of float or None
        As :attr:`DynamicSeries.scaling` (None when the flip angles' series differ in
        rescale).
    """

    data: NDArray[np.float32]
    flip_angles_deg: NDArray[np.float64]
    tr_s: float
    affine: NDArray[np.float64]
    meta: dict[str, Any]
    scaling: tuple[float, float] | None = None


@dataclass(frozen=True)
class B1Series:
    """A B1 / flip-angle map on its own grid, values as stored (after rescale).

    Attributes
    ----------
    data : ndarray, shape (nx, ny, nz), float32
        Stored value * RescaleSlope + RescaleIntercept; the unit depends on
        ``meta["B1Convention"]`` (see :func:`b1_convention`).
    affine : ndarray, shape (4, 4)
        Voxel ``(i, j, k)`` to RAS+ mm (the map's own grid).
    meta : dict
        De-identified sidecar metadata.
    """

    data: NDArray[np.float32]
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
    times: dict[str, float | None]  # seconds; None when absent or invalid
    raw_times: dict[str, str | None]  # the stored values, for messages
    bad_times: dict[str, str]  # tag keyword -> why the stored value is invalid
    flip_angle: float | None
    tr_ms: float | None
    te_ms: float | None
    thickness: float | None
    spacing_between: float | None
    instance: int | None = None  # InstanceNumber
    acq_number: int | None = None  # AcquisitionNumber
    image_type: tuple[str, ...] = ()

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


_TM_LOOSE = re.compile(r"(\d{2})(\d{2})?(\d{2})?(\.\d*)?")
_TM_OLD = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?")


class _TimeFormatError(ValueError):
    """A TM/DT value that is not valid DICOM; the message says why (no file, no tag)."""


def _tm_parts(s: str) -> float:
    """Strict DICOM TM to seconds of the day; raises :class:`_TimeFormatError`."""
    m = _TM_OLD.fullmatch(s)  # ACR-NEMA "HH:MM:SS.frac", still written by some software
    loose = m or _TM_LOOSE.fullmatch(s)
    if not loose:
        raise _TimeFormatError("not of the form HHMMSS.FFFFFF")
    h, mi, se, frac = loose.groups()
    problems = []
    if int(h) > 23:
        problems.append(f"hours {h} > 23")
    if mi is not None and int(mi) > 59:
        problems.append(f"minutes {mi} > 59")
    if se is not None and int(se) > 60:
        problems.append(f"seconds {se} > 60")
    if frac is not None and se is None:
        problems.append("a fraction is only allowed after the seconds (HHMMSS.FFFFFF)")
    if frac is not None and not 1 <= len(frac) - 1 <= 6:
        problems.append("the fraction must have 1 to 6 digits")
    if problems:
        raise _TimeFormatError("; ".join(problems))
    return int(h) * 3600 + int(mi or 0) * 60 + int(se or 0) + float(frac or 0.0)


def parse_tm(value: Any) -> float | None:
    """Parse a DICOM TM (time) value strictly.

    Parameters
    ----------
    value : str or None
        ``HH``, ``HHMM``, ``HHMMSS`` or ``HHMMSS.F`` (1-6 fraction digits), hours 00-23,
        minutes 00-59, seconds 00-60 (leap second); the old ACR-NEMA form ``HH:MM[:SS[.F]]``
        is accepted too.  Trailing padding spaces are ignored.

    Returns
    -------
    float or None
        Seconds since midnight (s); None for an absent or empty value.

    Raises
    ------
    ValueError
        The value is not a valid TM; the message says why (e.g. ``minutes 69 > 59``).
        A fraction after the minutes (``0920.000``) is invalid.
    """
    if value is None:
        return None
    s = str(value).strip()
    return None if s == "" else _tm_parts(s)


_DT_RE = re.compile(r"(\d{4})(\d{2})?(\d{2})?([0-9.:]*?)([+-]\d{4})?")


def parse_dt(value: Any) -> float | None:
    """Parse a DICOM DT (date time) value strictly.

    Parameters
    ----------
    value : str or None
        ``YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX]``; the time part follows :func:`parse_tm`.
        The UTC offset is ignored (times of one series share it).

    Returns
    -------
    float or None
        Seconds since 0001-01-01 00:00 local time (s); None for an absent or empty value.

    Raises
    ------
    ValueError
        Invalid date or time component (the message says which).
    """
    if value is None:
        return None
    s = str(value).strip()
    if s == "":
        return None
    m = _DT_RE.fullmatch(s)
    if not m:
        raise _TimeFormatError("not of the form YYYYMMDDHHMMSS.FFFFFF&ZZXX")
    yy, mm, dd, tm, _ = m.groups()
    if dd is None and tm:
        raise _TimeFormatError("a time needs the full date YYYYMMDD before it")
    try:
        days = date(int(yy), int(mm or 1), int(dd or 1)).toordinal()
    except ValueError as exc:
        raise _TimeFormatError(f"invalid date ({exc})") from None
    if tm and not tm[:2].isdigit():
        raise _TimeFormatError("not of the form YYYYMMDDHHMMSS.FFFFFF&ZZXX")
    if ":" in tm:
        raise _TimeFormatError("no ':' allowed in a DT value")
    return days * 86400.0 + (_tm_parts(tm) if tm else 0.0)


def _time_or_bad(value: Any, parse: Callable[[Any], float | None]
                 ) -> tuple[float | None, tuple[str, str] | None]:
    """``(seconds, None)`` for a valid or absent value, ``(None, (raw, reason))`` else."""
    try:
        return parse(value), None
    except _TimeFormatError as exc:
        return None, (str(value).strip(), str(exc))


def _seq_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    seq = ds.get(keyword)
    if seq is None or len(seq) == 0:
        return None
    item = seq[0]
    return item if isinstance(item, Dataset) else None


# --------------------------------------------------------------------------- header -> frames


def _parse_ms(value: Any) -> float | None:
    """A DS value in ms (TriggerTime) to seconds; raises for a non-number."""
    if value is None or str(value).strip() == "":
        return None
    out = _float(value)
    if out is None:
        raise _TimeFormatError("not a number")
    return out / 1000.0


def _frame_times(entries: dict[str, tuple[Any, Callable[[Any], float | None]]]
                 ) -> dict[str, Any]:
    """``times``, ``raw_times`` and ``bad_times`` of a :class:`_Frame` (seconds)."""
    times: dict[str, float | None] = {}
    raw: dict[str, str | None] = {}
    bad: dict[str, str] = {}
    for kw, (value, parse) in entries.items():
        raw[kw] = None if value is None else str(value).strip()
        times[kw], problem = _time_or_bad(value, parse)
        if problem is not None:
            bad[kw] = problem[1]
    return {"times": times, "raw_times": raw, "bad_times": bad}


def _image_type(ds: Dataset) -> tuple[str, ...]:
    """ImageType (0008,0008) values, upper case (empty tuple when absent)."""
    value = ds.get("ImageType")
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else list(value)
    return tuple(str(v).strip().upper() for v in values)


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
        **_frame_times({
            "AcquisitionDateTime": (ds.get("AcquisitionDateTime"), parse_dt),
            "AcquisitionTime": (ds.get("AcquisitionTime"), parse_tm),
            "ContentTime": (ds.get("ContentTime"), parse_tm),
            "TriggerTime": (trig, _parse_ms),
        }),
        instance=_int(ds.get("InstanceNumber")),
        acq_number=_int(ds.get("AcquisitionNumber")),
        image_type=_image_type(ds),
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
            **_frame_times({
                "FrameAcquisitionDateTime": (
                    get("FrameContentSequence", "FrameAcquisitionDateTime"), parse_dt),
                "FrameReferenceDateTime": (
                    get("FrameContentSequence", "FrameReferenceDateTime"), parse_dt),
            }),
            image_type=_image_type(ds),
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
        frames: list[_Frame] = []
        enhanced = False
        by_file: dict[Path, tuple[_Frame, ...]] = {}
        for path, ds in items:
            by_file[path] = tuple(_frames_of(ds, path))
            frames += by_file[path]
            enhanced = enhanced or _is_enhanced(ds)
        n_frames = len(frames)
        fas = {round(f.flip_angle, _FA_DECIMALS) for f in frames if f.flip_angle is not None}
        grid, n_positions = _grid_summary(frames)
        seq = first.get("SequenceName") or first.get("PulseSequenceName") or ""
        out.append(SeriesInfo(
            description=str(first.get("SeriesDescription", "") or "").strip(),
            series_number=_int(first.get("SeriesNumber")),
            manufacturer=str(first.get("Manufacturer", "") or "").strip(),
            files=tuple(sorted(p for p, _ in items)),
            n_frames=n_frames,
            flip_angles_deg=tuple(sorted(fas)),
            enhanced=enhanced,
            uid=uid,
            image_type=_image_type(first),
            protocol_name=str(first.get("ProtocolName", "") or "").strip(),
            sequence_name=str(seq).strip(),
            n_positions=n_positions,
            n_temporal=len({f.temporal_index for f in frames
                            if f.temporal_index is not None}),
            echo_times_ms=tuple(sorted({round(f.te_ms, 3) for f in frames
                                        if f.te_ms is not None})),
            repetition_times_ms=tuple(sorted({round(f.tr_ms, 3) for f in frames
                                              if f.tr_ms is not None})),
            grid=grid,
            value_units=_value_units(first),
            start_s=_series_start(items, frames),
            headers=tuple(sorted(items, key=lambda item: item[0])),
            frames_by_file=by_file,
        ))
    out.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30,
                            s.description, s.files[0]))
    return out


def _grid_summary(frames: Sequence[_Frame]) -> tuple[SeriesGrid | None, int]:
    """Grid summary and number of distinct slice positions of a series' frames."""
    if not frames or any(f.orientation is None or f.position is None or f.spacing is None
                         for f in frames):
        n = len({tuple(np.round(f.position, 2)) for f in frames if f.position is not None})
        return None, n
    iop = np.array([f.orientation for f in frames], dtype=np.float64)
    mixed = bool(np.any(np.abs(iop - iop[0]) > 1e-3))
    row, col = iop[0, :3], iop[0, 3:]
    normal = np.cross(row, col)
    pos = np.array([f.position for f in frames], dtype=np.float64)
    if mixed:
        return (SeriesGrid(tuple(iop[0].tolist()), True, frames[0].rows, frames[0].cols,
                           (0.0, 0.0), (0.0, 0.0), (0.0, 0.0)),
                len({tuple(v) for v in np.round(pos, 2)}))
    proj = np.sort(pos @ normal)
    n_positions = int(1 + np.sum(np.diff(proj) > _POS_TOL_MM))
    low = pos[int(np.argmin(pos @ normal))]
    f0 = frames[0]
    assert f0.spacing is not None
    return (SeriesGrid(tuple(float(v) for v in iop[0]), False, f0.rows, f0.cols,
                       (float(f0.spacing[0]), float(f0.spacing[1])),
                       (float(proj[0]), float(proj[-1])),
                       (float(low @ row), float(low @ col))), n_positions)


def _series_start(items: Sequence[tuple[Path, Dataset]],
                  frames: Sequence[_Frame]) -> float | None:
    """Earliest acquisition date-time (s) of a series, None if not known exactly."""
    fdt = [f.times.get("FrameAcquisitionDateTime") for f in frames]
    if fdt and all(v is not None for v in fdt):
        return min(v for v in fdt if v is not None)
    out: list[float] = []
    for _, ds in items:
        try:
            v = parse_dt(ds.get("AcquisitionDateTime"))
            if v is None:
                day = next((ds.get(k) for k in ("AcquisitionDate", "ContentDate", "SeriesDate")
                            if ds.get(k)), None)
                tm = parse_tm(ds.get("AcquisitionTime") or ds.get("SeriesTime"))
                d = parse_dt(day)
                v = None if d is None or tm is None else d + tm
        except ValueError:
            return None
        if v is None:
            return None
        out.append(v)
    return min(out) if out else None


def _value_units(ds: Dataset) -> str:
    """Units of the rescaled values: RWVM units code value, else RescaleType."""
    for item in ds.get("RealWorldValueMappingSequence") or []:
        for unit in item.get("MeasurementUnitsCodeSequence") or []:
            code = str(unit.get("CodeValue", "") or "").strip()
            if code:
                return code.upper()
    return str(ds.get("RescaleType", "") or "").strip().upper()


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            yield Path(dirpath) / name


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


#: Minimum number of phases (frames per slice position) of a DCE series found by headers.
MIN_DCE_PHASES = 2
_DERIVED_TOKENS = {"SUBTRACTION", "SUB", "MIP", "MNIP", "MINIP", "MPR", "MOCO", "REFORMATTED",
                   "PROJECTION IMAGE", "CPR", "CURVED"}
_B1_TYPE_RE = re.compile(r"B1|FLIP.?ANGLE.?MAP|RF.?MAP", re.IGNORECASE)
_B1_NAME_RE = re.compile(r"b1.?map|tfl.?b1|rf.?map|flip.?angle.?map", re.IGNORECASE)
_B1_DESC_RE = re.compile(r"(?<![a-z0-9])b1(?![0-9])", re.IGNORECASE)
_TFL_RE = re.compile(r"tfl.?b1", re.IGNORECASE)


@dataclass(frozen=True)
class SeriesRole:
    """The role :func:`classify_series` gave a series, and why.

    Attributes
    ----------
    series : SeriesInfo
    role : {"dce", "vfa", "b1", "derived", "other"}
        ``dce``/``vfa``/``b1`` are candidates; ``derived`` series (subtractions, MIPs,
        motion corrected, reformats) are never used; ``other`` is anything else.
    reason : str
        Human-readable header evidence (no identifiers).
    """

    series: SeriesInfo
    role: str
    reason: str


@dataclass(frozen=True)
class SeriesRoles:
    """Series of one visit sorted into DCE, VFA and B1 map by :func:`classify_series`.

    Attributes
    ----------
    roles : tuple of SeriesRole
        Every series with its role and reason, in discovery order.
    dce_candidates : tuple of SeriesInfo
        Series that qualify as the DCE series (use :meth:`dce`).
    vfa : tuple of SeriesInfo
        The variable-flip-angle series (empty when none qualifies).
    b1_candidates : tuple of SeriesInfo
        B1 / flip-angle map series, strongest header evidence first (use :meth:`b1`).
    override : dict
        ``{"dce": pattern or None, "vfa": ..., "b1": ...}``: the SeriesDescription
        overrides used.
    """

    roles: tuple[SeriesRole, ...]
    dce_candidates: tuple[SeriesInfo, ...]
    vfa: tuple[SeriesInfo, ...]
    b1_candidates: tuple[SeriesInfo, ...]
    override: dict[str, str | None] = field(default_factory=dict)
    b1_top: int = 0  # how many of b1_candidates share the strongest evidence

    def reason(self, info: SeriesInfo) -> str:
        """The role and reason of one series, e.g. ``"VFA: single phase, FA 5 deg"``."""
        for r in self.roles:
            if r.series.uid == info.uid:
                return f"{r.role.upper() if r.role in ('dce', 'vfa', 'b1') else r.role}: {r.reason}"
        return "not classified"

    def lines(self, name: Callable[[SeriesInfo], str] | None = None) -> list[str]:
        """One line per series: ``<label>: <role>: <reason>``."""
        name = name or (lambda s: s.label)
        return [f"{name(r.series)}: {self.reason(r.series)}" for r in self.roles]

    def dce(self, where: str = "", name: Callable[[SeriesInfo], str] | None = None
            ) -> SeriesInfo:
        """The single DCE series.

        Parameters
        ----------
        where : str
            Prefix of error messages (e.g. the folder).
        name : callable, optional
            Series label function for messages.

        Raises
        ------
        DicomError
            None or several series qualify; the message lists every series with its role
            and reason and says which pattern to set.
        """
        name = name or (lambda s: s.label)
        prefix = f"{where}: " if where else ""
        every = "; ".join(self.lines(name)) if self.roles else "no DICOM image series found"
        how = (f"SeriesDescription pattern {self.override['dce']!r}"
               if self.override.get("dce") else "headers")
        if not self.dce_candidates:
            raise DicomError(f"{prefix}no DCE series: none qualifies by {how} (a DCE series "
                             f"has >= {MIN_DCE_PHASES} phases, one flip angle, one "
                             "geometry and is not derived); set a SeriesDescription pattern "
                             "(workflow: config convert.dce_pattern; dce convert: "
                             f"--dce-pattern) if it is there; {len(self.roles)} series "
                             f"found: {every}")
        if len(self.dce_candidates) > 1:
            raise DicomError(f"{prefix}{len(self.dce_candidates)} series match the DCE "
                             f"series by {how}: "
                             + "; ".join(name(s) for s in self.dce_candidates)
                             + "; pass a more specific DCE pattern (workflow: config "
                             "convert.dce_pattern; dce convert: --dce-pattern) or move the "
                             f"unwanted series out of the folder; all series: {every}")
        return self.dce_candidates[0]

    def b1(self, where: str = "", name: Callable[[SeriesInfo], str] | None = None
           ) -> SeriesInfo | None:
        """The B1 map series, None if there is none.

        Raises
        ------
        DicomError
            Several candidates with equally strong evidence (ImageType > SequenceName /
            ProtocolName / SeriesDescription naming a B1 map > ``b1`` in the name);
            set ``b1_pattern``.
        """
        name = name or (lambda s: s.label)
        top = self.b1_candidates[:self.b1_top]
        if len(top) > 1:
            prefix = f"{where}: " if where else ""
            raise DicomError(f"{prefix}{len(top)} series qualify as the B1 map: "
                             + "; ".join(f"{name(s)}: {self.reason(s)}" for s in top)
                             + "; choose one with a SeriesDescription pattern (workflow: "
                             "config convert.b1_pattern; dce convert: --b1-pattern)")
        return top[0] if top else None


def _derived_cue(s: SeriesInfo) -> str | None:
    tokens = sorted(set(s.image_type) & _DERIVED_TOKENS)
    if tokens:
        return f"derived (ImageType {'/'.join(s.image_type)})"
    m = re.search(DEFAULT_EXCLUDE_PATTERN, s.description, re.IGNORECASE)
    if m:
        what = "derived" if not s.image_type or s.image_type[0] != "DERIVED" else "DERIVED"
        return f"{what}: SeriesDescription contains {m.group(0)!r} (subtraction/MIP/MPR/MOCO)"
    return None


def _b1_cue(s: SeriesInfo) -> tuple[str, int] | None:
    """(reason, strength) if the headers say B1 / flip-angle map.

    Strength 2: ImageType (e.g. FLIP ANGLE MAP, B1, B1MAP); 1: SequenceName,
    ProtocolName or SeriesDescription names a B1 / flip-angle / RF map (the anatomical
    companion of a Siemens ``tfl_b1map`` has the name but not the ImageType); 0: ``b1``
    as a word in the name of a single-phase series.
    """
    hits = [t for t in s.image_type if _B1_TYPE_RE.search(t)]
    if hits:
        return f"B1 map: ImageType {'/'.join(s.image_type)}", 2
    for kw, text in (("SequenceName", s.sequence_name), ("ProtocolName", s.protocol_name),
                     ("SeriesDescription", s.description)):
        if _B1_NAME_RE.search(text):
            return f"B1 map: {kw} {text!r}", 1
    single = s.n_positions > 0 and s.n_frames == s.n_positions
    if single and (_B1_DESC_RE.search(s.description) or _B1_DESC_RE.search(s.protocol_name)):
        return f"B1 map (weak cue): SeriesDescription/ProtocolName {s.description!r}", 0
    return None


def _fa_text(fas: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in fas) + " deg"


def classify_series(series: Sequence[SeriesInfo], *, dce_pattern: str | None = None,
                    vfa_pattern: str | None = None,
                    b1_pattern: str | None = None) -> SeriesRoles:
    """Sort the series of one visit into DCE, VFA and B1 map from their headers.

    Parameters
    ----------
    series : sequence of SeriesInfo
        From :func:`discover_series`.
    dce_pattern, vfa_pattern, b1_pattern : str, optional
        SeriesDescription regular expressions (case-insensitive search) that OVERRIDE the
        header detection of that role; None (default) detects from headers.

    Returns
    -------
    SeriesRoles
        Every series with its role and reason; the DCE candidates (exactly one expected,
        see :meth:`SeriesRoles.dce`), the VFA series, the B1 map candidates.

    Notes
    -----
    Header rules, in this order:

    * **B1 map**: ImageType contains B1 / FLIP ANGLE MAP / RF MAP (e.g. Siemens
      ``tfl_b1map``'s flip angle map, Philips/GE B1 maps); else SequenceName,
      ProtocolName or SeriesDescription names a B1/flip-angle/RF map; else ``b1`` as a
      word in the name of a single-phase series.  Only the candidates with the
      strongest evidence compete (two of them: error).  Any grid.
    * **derived** (never used): ImageType holds SUBTRACTION/SUB, MIP, MPR, MOCO,
      REFORMATTED, PROJECTION IMAGE..., or the description matches
      :data:`DEFAULT_EXCLUDE_PATTERN`.
    * **DCE**: >= :data:`MIN_DCE_PHASES` frames per slice position (or temporal
      positions) that are repetitions (not one frame per flip angle), one echo time,
      one orientation.  A stray second flip angle keeps it a candidate, so that
      loading reports the mixed flip angle.
    * **VFA**: one frame per slice position and flip angle, one echo time, on the DCE
      grid (orientation, matrix, pixel spacing, slice positions; see
      :meth:`SeriesGrid.mismatch`), not acquired after the DCE series started (when
      both acquisition date-times are known), together >= 2 distinct flip angles (one
      multi-flip-angle series or several single-angle series; a mixed TR is an error
      when loading).  Without a single DCE candidate the largest group of series
      sharing a grid is taken.
    """
    def compile_rx(what: str, rx: str | None) -> None:
        try:
            re.compile(rx or "")
        except re.error as exc:
            raise ValueError(f"{what} series pattern {rx!r}: invalid regular expression "
                             f"({exc})") from None

    for what, rx in (("DCE", dce_pattern), ("VFA", vfa_pattern), ("B1", b1_pattern)):
        compile_rx(what, rx)
    role: dict[str, tuple[str, str]] = {}

    # B1 maps
    b1: list[tuple[SeriesInfo, int]] = []
    if b1_pattern:
        for s in select_series(series, b1_pattern):
            role[s.uid] = ("b1", f"SeriesDescription matches b1_pattern {b1_pattern!r}")
            b1.append((s, 2))
    else:
        for s in series:
            cue = _b1_cue(s)
            if cue is not None:
                role[s.uid] = ("b1", cue[0])
                b1.append((s, cue[1]))
    b1.sort(key=lambda x: -x[1])
    b1_top = sum(tier == b1[0][1] for _, tier in b1) if b1 else 0

    # derived series
    for s in series:
        if s.uid not in role and (why := _derived_cue(s)) is not None:
            role[s.uid] = ("derived", why)

    # DCE
    dce: list[SeriesInfo] = []
    if dce_pattern:
        for s in select_series(series, dce_pattern, exclude=DEFAULT_EXCLUDE_PATTERN):
            role[s.uid] = ("dce", f"SeriesDescription matches dce_pattern {dce_pattern!r}")
            dce.append(s)
    else:
        for s in series:
            if s.uid in role:
                continue
            why = _dce_evidence(s)
            if why.startswith("dynamic"):
                role[s.uid] = ("dce", why)
                dce.append(s)
    ref = dce[0] if len(dce) == 1 else None

    # VFA
    vfa: list[SeriesInfo] = []
    if vfa_pattern:
        for s in select_series(series, vfa_pattern, exclude=DEFAULT_VFA_EXCLUDE_PATTERN):
            if ref is None or s.uid != ref.uid:
                role[s.uid] = ("vfa", f"SeriesDescription matches vfa_pattern "
                                      f"{vfa_pattern!r}")
                vfa.append(s)
    else:
        vfa = _vfa_by_headers([s for s in series if s.uid not in role], ref, role)

    roles = []
    for s in series:
        r, why = role.get(s.uid, ("other", _dce_evidence(s)))
        roles.append(SeriesRole(s, r, why))
    return SeriesRoles(tuple(roles), tuple(dce), tuple(vfa), tuple(s for s, _ in b1),
                       {"dce": dce_pattern, "vfa": vfa_pattern, "b1": b1_pattern},
                       b1_top)


def _dce_evidence(s: SeriesInfo) -> str:
    """``"dynamic: ..."`` when ``s`` qualifies as DCE, else why not."""
    if s.grid is None:
        return "no complete plane geometry (ImageOrientation/Position, PixelSpacing)"
    if s.grid.mixed_orientation:
        return "several orientations (localizer or multi-stack)"
    n_ph = s.n_phases
    if len(s.echo_times_ms) > 1:
        return f"{len(s.echo_times_ms)} echo times (multi-echo)"
    n_fa = len(s.flip_angles_deg)
    if n_fa > 1 and s.n_frames <= s.n_positions * n_fa:
        return f"single phase per flip angle ({_fa_text(s.flip_angles_deg)})"
    if n_ph < MIN_DCE_PHASES:
        return (f"{n_ph} frame(s) per slice position over {s.n_positions} position(s): "
                f"not dynamic (a DCE series has >= {MIN_DCE_PHASES} phases)")
    fa = _fa_text(s.flip_angles_deg) if s.flip_angles_deg else "no flip angle"
    if n_fa > 1:
        fa = f"MIXED {fa}"
    derived = " (ImageType DERIVED)" if s.image_type[:1] == ("DERIVED",) else ""
    return (f"dynamic: {n_ph} phases x {s.n_positions} slice(s), FA {fa}, one "
            f"geometry{derived}")


def _vfa_by_headers(pool: Sequence[SeriesInfo], ref: SeriesInfo | None,
                    role: dict[str, tuple[str, str]]) -> list[SeriesInfo]:
    """VFA series among ``pool`` (single-phase, on the DCE grid, >= 2 flip angles)."""
    cands: list[SeriesInfo] = []
    for s in pool:
        if s.grid is None or s.grid.mixed_orientation or not s.flip_angles_deg:
            continue
        if s.n_frames != s.n_positions * len(s.flip_angles_deg) or len(s.echo_times_ms) > 1:
            continue
        if (ref is not None and ref.start_s is not None and s.start_s is not None
                and s.start_s > ref.start_s):
            role[s.uid] = ("other", f"single phase, FA {_fa_text(s.flip_angles_deg)}, but "
                                    "acquired after the DCE series started (post-contrast)")
            continue
        if ref is not None and ref.grid is not None:
            why = ref.grid.mismatch(s.grid, ref.n_positions, s.n_positions)
            if why is not None:
                role[s.uid] = ("other", f"single phase, FA {_fa_text(s.flip_angles_deg)}, "
                                        f"but not on the DCE grid ({why})")
                continue
        cands.append(s)
    # groups of one grid (TR is checked when loading: a mixed TR is an error)
    groups: list[list[SeriesInfo]] = []
    for s in cands:
        for g in groups:
            g0 = g[0]
            assert g0.grid is not None and s.grid is not None
            if g0.grid.mismatch(s.grid, g0.n_positions, s.n_positions) is None:
                g.append(s)
                break
        else:
            groups.append([s])

    def n_fa(g: Sequence[SeriesInfo]) -> int:
        return len({a for s in g for a in s.flip_angles_deg})

    groups.sort(key=lambda g: -n_fa(g))
    best = groups[0] if groups and n_fa(groups[0]) >= 2 else []
    grid_text = "the DCE grid" if ref is not None else "one grid"
    for s in cands:
        if s in best:
            tr = "/".join(f"{v:g}" for v in s.repetition_times_ms) or "?"
            role[s.uid] = ("vfa", f"single phase, FA {_fa_text(s.flip_angles_deg)}, TR "
                                  f"{tr} ms, on {grid_text}; {n_fa(best)} flip angles "
                                  "together")
        else:
            role[s.uid] = ("other", f"single phase, FA {_fa_text(s.flip_angles_deg)}, but no "
                                    "second flip angle on the same grid")
    return best


def b1_convention(info: SeriesInfo) -> tuple[str | None, str]:
    """Infer how a B1 map series stores its values, from its headers.

    Parameters
    ----------
    info : SeriesInfo
        The B1 map series.

    Returns
    -------
    convention : {"siemens_tfl_b1map", "percent", "factor"} or None
        ``"siemens_tfl_b1map"``: flip angle in 0.1 deg for a nominal 80 deg (factor =
        value / 800); ``"percent"``: 100 = nominal; ``"factor"``: 1 = nominal; None when
        the headers do not say.
    evidence : str
        Which header told (for the sidecar and the report).
    """
    vendor = info.manufacturer.upper()
    for kw, text in (("SequenceName", info.sequence_name),
                     ("ProtocolName", info.protocol_name),
                     ("SeriesDescription", info.description)):
        if _TFL_RE.search(text):
            return "siemens_tfl_b1map", f"{kw} {text!r} (Siemens tfl_b1map)"
    if "SIEMENS" in vendor and any("FLIP ANGLE MAP" in t.replace("_", " ")
                                   for t in info.image_type):
        return "siemens_tfl_b1map", "Siemens ImageType FLIP ANGLE MAP"
    units = info.value_units
    if units in ("%", "PERCENT", "PCT"):
        return "percent", f"value units {units!r}"
    if units in ("1", "{RATIO}", "RATIO", "FACTOR", "NO UNITS"):
        return "factor", f"value units {units!r}"
    if "PHILIPS" in vendor:
        return "percent", "Philips B1 map (percent of the nominal flip angle)"
    return None, "not recognised from the headers (Manufacturer, ImageType, units)"


def _as_series_list(source: str | os.PathLike[str] | Sequence[SeriesInfo]) -> list[SeriesInfo]:
    if isinstance(source, (str, os.PathLike)):
        return discover_series(source)
    return list(source)


# --------------------------------------------------------------------------- public loaders


@_quiet
def load_dce(source: str | os.PathLike[str] | Sequence[SeriesInfo], *,
             pattern: str | None = None) -> DynamicSeries:
    """Find the single DCE series under ``source`` and stack it into 4-D.

    Parameters
    ----------
    source : path-like or sequence of SeriesInfo
        A folder tree to search, or the output of :func:`discover_series`.
    pattern : str, optional
        SeriesDescription regular expression (case-insensitive) of the DCE series; it
        overrides the header detection of :func:`classify_series` (default None).
        Derived series (:data:`DEFAULT_EXCLUDE_PATTERN`) are excluded either way.

    Returns
    -------
    DynamicSeries

    Raises
    ------
    DicomError
        No series or more than one series qualifies (the message lists every series found
        with its role and reason), or the series is invalid (see :func:`load_dce_series`).
    """
    roles = classify_series(_as_series_list(source), dce_pattern=pattern)
    return load_dce_series(roles.dce("DCE"))


@_quiet
def load_vfa(source: str | os.PathLike[str] | Sequence[SeriesInfo], *,
             pattern: str | None = None) -> VFASeries:
    """Find the variable-flip-angle series under ``source`` and stack them.

    Either one series holding several flip angles or several series (one per flip
    angle) are accepted; by default they are found from their headers
    (:func:`classify_series`: single phase, on the DCE grid, >= 2 flip angles).

    Parameters
    ----------
    source : path-like or sequence of SeriesInfo
        A folder tree to search, or the output of :func:`discover_series`.
    pattern : str, optional
        SeriesDescription regular expression (case-insensitive) of the VFA series,
        overriding the header detection; anything matching
        :data:`DEFAULT_VFA_EXCLUDE_PATTERN` is excluded.

    Returns
    -------
    VFASeries

    Raises
    ------
    DicomError
        No series qualifies (the message lists the series with their roles), or the
        data are invalid (see :func:`load_vfa_series`).
    """
    roles = classify_series(_as_series_list(source), vfa_pattern=pattern)
    if not roles.vfa:
        how = f"SeriesDescription pattern {pattern!r}" if pattern else "headers"
        raise DicomError(f"VFA: no series qualifies by {how}. Series found: "
                         + ("; ".join(roles.lines()) or "none"))
    return load_vfa_series(roles.vfa)


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
    frames, first = _read_frames(info.files, _header_cache([info]), _frame_cache([info]))
    _check_matrix(frames, label)
    fa = _single_value(frames, "flip_angle", "flip angle", "deg", label)
    tr = _single_value(frames, "tr_ms", "repetition time (TR)", "ms", label)
    te = _single_value(frames, "te_ms", "echo time (TE)", "ms", label, required=False)
    geom = _geometry(frames, label)
    vendor = _vendor(first)
    phase, t_s, timing, order, notes, warns = _assign_phases(frames, geom.slice_index,
                                                              vendor, label)
    data, scaling = _assemble(frames, geom, phase, len(t_s), label, _header_cache([info]))

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
    meta["TimingWarnings"] = [deid for _, deid in warns]
    return DynamicSeries(data=data, t_s=t_s, affine=geom.affine, meta=meta,
                         timing_details=tuple(detail for detail, _ in warns), scaling=scaling)


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
    headers = _header_cache(infos)
    frames, first = _read_frames(files, headers, _frame_cache(infos))
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
    data, scaling = _assemble(frames, geom, group, fas.size, label, headers)
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
                     tr_s=round(tr / 1000.0, 9), affine=geom.affine, meta=meta,
                     scaling=scaling)


@_quiet
def load_b1_series(info: SeriesInfo) -> B1Series:
    """Stack a B1 / flip-angle map series into 3-D on its own grid.

    Parameters
    ----------
    info : SeriesInfo
        The B1 map series (see :func:`classify_series`).

    Returns
    -------
    B1Series
        Stored values after RescaleSlope/Intercept, unconverted (the convention is
        recorded, not applied).  ``meta`` (allow-list) holds Manufacturer, ImageType,
        B1Convention (see :func:`b1_convention`), B1ConventionSource,
        SeriesDescription, SeriesNumber, FlipAngle (nominal, if given), the grid and
        the conversion software.

    Raises
    ------
    DicomError
        More than one frame per slice position, inconsistent geometry, unreadable
        pixel data.
    """
    label = f"B1 map series {info.label}"
    headers = _header_cache([info])
    frames, first = _read_frames(info.files, headers, _frame_cache([info]))
    _check_matrix(frames, label)
    geom = _geometry(frames, label)
    group = np.zeros(len(frames), dtype=np.intp)
    if len(frames) != geom.n_slices:
        raise DicomError(f"{label}: {len(frames)} frames at {geom.n_slices} slice positions; "
                         "a B1 map has one frame per slice (if it holds an anatomical image "
                         "too, set convert.b1_pattern / --b1-pattern to the map series)")
    _check_grid(frames, geom, group, ["the map"], label)
    data = _assemble(frames, geom, group, 1, label, headers)[0][..., 0]
    convention, evidence = b1_convention(info)
    meta = _common_meta(first, geom)
    fa = _float(first.get("FlipAngle"))
    meta.update({
        "SeriesDescription": info.description,
        "SeriesNumber": info.series_number,
        "ImageType": list(info.image_type),
        "B1Convention": convention,
        "B1ConventionSource": evidence,
        "FlipAngle": fa,
        "Notes": ["stored values after RescaleSlope/Intercept, not converted to a factor: "
                  "see B1Convention"],
    })
    return B1Series(data=data, affine=geom.affine, meta=meta)


# --------------------------------------------------------------------------- internals


def _header_cache(infos: Sequence[SeriesInfo]) -> dict[Path, Dataset]:
    """The headers :func:`discover_series` read, by path (empty for hand-made infos)."""
    return {path: ds for info in infos for path, ds in info.headers}


def _frame_cache(infos: Sequence[SeriesInfo]) -> dict[Path, tuple[_Frame, ...]]:
    """The frames :func:`discover_series` took from those headers, by path."""
    return {path: fr for info in infos for path, fr in info.frames_by_file.items()}


def _read_frames(files: Sequence[Path], headers: dict[Path, Dataset] | None = None,
                 cached: dict[Path, tuple[_Frame, ...]] | None = None
                 ) -> tuple[list[_Frame], Dataset]:
    """Frames and first header of ``files``; headers from ``headers`` where given (read
    by :func:`discover_series`), else read from the files; frames from ``cached`` where
    given (taken from those headers by :func:`discover_series`), else from the header."""
    frames: list[_Frame] = []
    first: Dataset | None = None
    for path in files:
        ds = headers.get(path) if headers else None
        if ds is None:
            ds = _read_header(path)
        if ds is None:
            raise DicomError(f"{path}: not a DICOM file (anymore?)")
        if first is None:
            first = ds
        known = cached.get(path) if cached and headers and path in headers else None
        frames.extend(_frames_of(ds, path) if known is None else known)
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


_VR = {"TriggerTime": "DS (ms)", "AcquisitionTime": "TM", "ContentTime": "TM",
       "AcquisitionDateTime": "DT", "FrameAcquisitionDateTime": "DT",
       "FrameReferenceDateTime": "DT"}
_INSTANCE = "InstanceNumber (0020,0013)"
_ACQ_NUMBER = "AcquisitionNumber (0020,0012)"
_MAX_DISAGREE = 0.2  # InstanceNumber steps against time, at most: "mostly ordered"


def _broken_sources(frames: Sequence[_Frame], sources: Sequence[str]) -> dict[str, list[int]]:
    """Timing tags with an invalid stored value in some frame -> those frames' indices."""
    out: dict[str, list[int]] = {}
    for src in sources:
        bad = [i for i, f in enumerate(frames) if src in f.bad_times]
        if bad:
            out[src] = bad
    return out


def _shown(frame: _Frame, src: str) -> str:
    """The stored timing value for messages; the date part of a DT is masked."""
    raw = frame.raw_times.get(src)
    if raw is None:
        return "absent"
    if _VR[src] == "DT" and len(raw) >= 8:
        raw = "YYYYMMDD" + raw[8:]  # dates are identifiers: never printed
    return repr(raw)


def _bad_value_text(frames: Sequence[_Frame], src: str, bad: Sequence[int]) -> str:
    """``FILE: TAG = 'value' is not a valid DICOM TM: why (n of N frames, also ...)``."""
    f = frames[bad[0]]
    others = [f"{frames[i].name}: {_shown(frames[i], src)}" for i in bad[1:3]]
    more = f"; also {', '.join(others)}" if others else ""
    return (f"{f.name}: {_TAGS[src]} = {_shown(f, src)} is not a valid DICOM "
            f"{_VR[src]}: {f.bad_times[src]} ({len(bad)} of {len(frames)} frames invalid"
            f"{more})")


def _order_pair_text(frames: Sequence[_Frame], a: int, b: int, src: str,
                     ref: str | None = None) -> str:
    """Two frames with their stored timing (and reference) values, for messages."""
    def one(i: int) -> str:
        f = frames[i]
        parts = [f"{_TAGS[src].split()[0]} {_shown(f, src)}"]
        if ref == "instance":
            parts.append(f"InstanceNumber {f.instance}")
        elif ref == "acq":
            parts.append(f"AcquisitionNumber {f.acq_number}")
        elif ref == "tpi":
            parts.append(f"TemporalPositionIdentifier {f.temporal_index}")
        return f"{f.name} ({', '.join(parts)})"

    return f"{one(a)} and {one(b)}"


def _first_of_phase(vals: NDArray[np.float64], phase: NDArray[np.intp],
                    n_phases: int) -> NDArray[np.intp]:
    """Index of the earliest frame of every phase."""
    order = np.lexsort((vals, phase))
    first = np.empty(n_phases, dtype=np.intp)
    first[phase[order[::-1]]] = order[::-1]
    return first


def _check_acq_number(frames: Sequence[_Frame], phase: NDArray[np.intp], n_phases: int,
                      slice_index: NDArray[np.intp], src: str, label: str) -> str | None:
    """Cross-check the time order of the phases with AcquisitionNumber.

    Returns the reference's name when it confirms the order, None when it carries no
    phase order (absent, constant, or varying within a phase); raises when it disagrees.
    """
    nums = [f.acq_number for f in frames]
    if any(v is None for v in nums):
        return None
    arr = np.array(nums, dtype=np.int64)
    lo = np.full(n_phases, np.iinfo(np.int64).max)
    hi = np.full(n_phases, np.iinfo(np.int64).min)
    np.minimum.at(lo, phase, arr)
    np.maximum.at(hi, phase, arr)
    if np.any(lo != hi) or np.unique(lo).size < n_phases:
        return None
    steps = np.diff(lo)
    if np.all(steps > 0):
        return _ACQ_NUMBER
    p = int(np.argmax(steps <= 0))
    k = int(slice_index[int(np.flatnonzero(phase == p)[0])])
    a = int(np.flatnonzero((phase == p) & (slice_index == k))[0])
    b = int(np.flatnonzero((phase == p + 1) & (slice_index == k))[0])
    raise DicomError(
        f"{label}: inconsistent timeline: the phase order from {_TAGS[src]} disagrees with "
        f"{_ACQ_NUMBER}: {_order_pair_text(frames, a, b, src, 'acq')} are phases {p} and "
        f"{p + 1} by time but AcquisitionNumber {lo[p]} -> {lo[p + 1]}; check the timing "
        "tags of these files (phases are never re-sorted silently)")


def _check_instance(frames: Sequence[_Frame], phase: NDArray[np.intp], n_phases: int,
                    slice_index: NDArray[np.intp], n_slices: int, src: str,
                    label: str) -> str | None:
    """Cross-check the time order at each slice position with InstanceNumber.

    InstanceNumber is often not in time order (shuffled exports), so it counts only when
    it is mostly ordered: in time order (or reversed) at every slice position confirms
    the timeline; ordered except for a few steps (at most 20 %) is an error naming the
    files; otherwise (shuffled) it is not used and None is returned.
    """
    nums = [f.instance for f in frames]
    if n_phases < 2 or any(v is None for v in nums):
        return None
    grid = np.zeros((n_slices, n_phases), dtype=np.int64)
    where = np.zeros((n_slices, n_phases), dtype=np.intp)
    grid[slice_index, phase] = np.array(nums, dtype=np.int64)
    where[slice_index, phase] = np.arange(len(frames))
    steps = np.diff(grid, axis=1)
    ups, downs, total = int((steps > 0).sum()), int((steps < 0).sum()), steps.size
    if ups == total:
        return f"{_INSTANCE} per slice position"
    if downs == total:
        return f"{_INSTANCE} per slice position (descending)"
    minority = min(ups, downs)
    if ups + downs < total or minority > _MAX_DISAGREE * total:
        return None  # ties or shuffled: carries no order
    wrong = (steps < 0) if ups > downs else (steps > 0)
    k, p = (int(v[0]) for v in np.nonzero(wrong))
    raise DicomError(
        f"{label}: inconsistent timeline: the phase order from {_TAGS[src]} disagrees with "
        f"{_INSTANCE} at slice {k}: "
        f"{_order_pair_text(frames, where[k, p], where[k, p + 1], src, 'instance')} "
        f"are phases {p} and {p + 1} by time, but InstanceNumber runs "
        f"{'up' if ups > downs else 'down'} with time in {max(ups, downs)} of {total} "
        "steps; check the timing tags of these files (phases are never re-sorted "
        "silently)")


def _assign_phases(frames: Sequence[_Frame], slice_index: NDArray[np.intp], vendor: str,
                   label: str) -> tuple[NDArray[np.intp], NDArray[np.float64], str, str,
                                        list[str], list[tuple[str, str]]]:
    """Phase index per frame, phase start times (s, relative to the first phase), the
    timing and order sources, notes and timing warnings (see the module notes)."""
    n = len(frames)
    n_slices = int(slice_index.max()) + 1
    notes: list[str] = []
    sources = _time_sources(frames, vendor)
    tidx = [f.temporal_index for f in frames]
    if n == n_slices:
        return (np.zeros(n, dtype=np.intp), np.zeros(1), "single phase", "single phase",
                notes, [])
    broken = _broken_sources(frames, sources)

    def warnings_for(chosen: str, confirmed_by: str) -> list[tuple[str, str]]:
        """(detail naming file and value, de-identified text for the sidecar)."""
        out = []
        for src, bad in broken.items():
            if sources.index(src) < sources.index(chosen):
                tail = (f"FALLBACK: phase times from {_TAGS[chosen]} instead, whose order "
                        f"agrees with {confirmed_by}")
            else:
                tail = f"not used (phase times from {_TAGS[chosen]})"
            deid = (f"{_TAGS[src]}: {len(bad)} of {len(frames)} frames hold a value that is "
                    f"not a valid DICOM {_VR[src]} ({frames[bad[0]].bad_times[src]})")
            out.append((f"{_bad_value_text(frames, src, bad)}; {tail}", f"{deid}; {tail}"))
        return out

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
            if src in broken:
                continue
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
                first = _first_of_phase(vals, phase, n_phases)
                raise DicomError(
                    f"{label}: inconsistent timeline: {kind} phase times from {_TAGS[src]}: "
                    f"phase {present[k]} at {rel[k]:.3f} s, phase {present[k + 1]} at "
                    f"{rel[k + 1]:.3f} s (phases ordered by {order_src}): "
                    f"{_order_pair_text(frames, first[k], first[k + 1], src, 'tpi')}; "
                    "check the timing tags of these files (phases are never re-sorted)")
            if n_def:
                notes.append(f"{_TAGS[src]} absent in {n_def} frame(s), read as 0 ms")
            notes += _cross_check(frames, phase, n_phases, src, start, sources, broken)
            return (phase, _relative(start), _TAGS[src], order_src, notes,
                    warnings_for(src, order_src))
        if broken:
            src = next(iter(broken))
            raise DicomError(f"{label}: {_bad_value_text(frames, src, broken[src])}; no "
                             "other timing tag gives the phase times; fix the header or "
                             "re-export the series")
        raise DicomError(f"{label}: no timing tag varies between phases (tried "
                         f"{', '.join(_TAGS[s] for s in sources)})")

    # no temporal index: rank frames by time at each slice position
    counts = np.bincount(slice_index, minlength=n_slices)
    chosen: tuple[str, NDArray[np.float64], int] | None = None
    for src in sources:
        if src in broken:
            continue
        got = _time_values(frames, src)
        if got is not None and np.ptp(got[0]) > 0:
            chosen = (src, got[0], got[1])
            break
    if chosen is None:
        if broken:
            src = next(iter(broken))
            raise DicomError(f"{label}: {_bad_value_text(frames, src, broken[src])}; no "
                             "other timing tag can order the phases; fix the header or "
                             "re-export the series")
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
        fallback = [s for s in broken if sources.index(s) < sources.index(src)]
        if fallback:  # the broken tag may be the reason; say so first
            s0 = fallback[0]
            raise DicomError(f"{label}: {_bad_value_text(frames, s0, broken[s0])}; "
                             f"{_TAGS[src]} cannot replace it (incomplete grid by its times)")
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
    refs = [r for r in (_check_acq_number(frames, phase, n_phases, slice_index, src, label),
                        _check_instance(frames, phase, n_phases, slice_index, n_slices, src,
                                        label)) if r is not None]
    fallback = [s for s in broken if sources.index(s) < sources.index(src)]
    if fallback and not refs:
        s0 = fallback[0]
        raise DicomError(
            f"{label}: {_bad_value_text(frames, s0, broken[s0])}; {_TAGS[src]} could give "
            "the phase times instead, but neither TemporalPositionIdentifier, "
            "AcquisitionNumber nor InstanceNumber confirms its order; fix the header or "
            "re-export the series")
    if n_def:
        notes.append(f"{_TAGS[src]} absent in {n_def} frame(s), read as 0 ms")
    if refs:
        notes.append(f"phase order cross-checked with {' and '.join(refs)}")
    notes += _cross_check(frames, phase, n_phases, src, start, sources, broken)
    return (phase, _relative(start), _TAGS[src], order_src, notes,
            warnings_for(src, " and ".join(refs)) if broken else [])


def _cross_check(frames: Sequence[_Frame], phase: NDArray[np.intp], n_phases: int,
                 chosen: str, start: NDArray[np.float64],
                 sources: Sequence[str], broken: dict[str, list[int]]) -> list[str]:
    """Notes for other varying timing tags whose phase times disagree with ``chosen``."""
    notes = []
    ref = start - start[0]
    for src in sources:
        if src == chosen or src in broken:
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
              n_groups: int, label: str, headers: dict[Path, Dataset] | None = None
              ) -> tuple[NDArray[np.float32], tuple[float, float] | None]:
    """Read pixel data file by file and place frames into ``(cols, rows, nz, n_groups)``.

    Values are stored value * RescaleSlope + RescaleIntercept (float64 arithmetic, then
    float32). When every frame has the same slope and intercept, these are first rounded
    to float32 (a relative change below 6e-8, under float32 resolution) and returned as
    ``scaling``: the image is then exactly its integer stored values times the float32
    slope plus intercept, what a NIfTI reader computes from 16-bit data with
    ``scl_slope``/``scl_inter`` (:func:`dce.io.nifti.write_nifti`, lossless and much
    smaller than float32 for 12-bit scanner data). Otherwise ``scaling`` is None.

    A file whose header is in ``headers`` (read by :func:`discover_series`) has only its
    pixel data read (:func:`_native_pixels`, else :func:`pydicom.pixels.pixel_array`),
    without a second parse of the header.
    """
    # NIfTI's own (Fortran) order: each frame is one contiguous block, and the image is
    # written without a reordering copy
    data = np.empty((geom.cols, geom.rows, geom.n_slices, n_groups), dtype=np.float32,
                    order="F")
    pairs = {(f.slope, f.intercept) for f in frames}
    scaling = None
    if len(pairs) == 1:
        one_slope, one_inter = next(iter(pairs))
        scaling = (float(np.float32(one_slope)), float(np.float32(one_inter)))
    integer = True
    by_file: dict[Path, list[int]] = defaultdict(list)
    for i, f in enumerate(frames):
        by_file[f.path].append(i)
    for path, members in by_file.items():
        try:
            head = headers.get(path) if headers else None
            ds = head if head is not None else pydicom.dcmread(path)
            if int(ds.get("SamplesPerPixel", 1)) != 1:
                raise DicomError(f"{path}: colour images are not supported")
            if head is None:
                pix = np.asarray(ds.pixel_array)
            else:
                native = _native_pixels(path, head)
                pix = np.asarray(pixel_array(path)) if native is None else native
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
        integer = integer and np.issubdtype(pix.dtype, np.integer)
        for lo in range(0, len(members), 64):  # bounded float64 temporaries
            chunk = members[lo:lo + 64]
            fidx = [frames[i].frame or 0 for i in chunk]
            if scaling == (1.0, 0.0) and pix.dtype.kind in "iu" and pix.dtype.itemsize <= 4:
                # the identity rescale of integers: v * 1.0 + 0.0 is v exactly in float64,
                # so the values are the stored ones cast to float32 directly (one rounding
                # either way, none below 2**24)
                data[:, :, geom.slice_index[chunk], group[chunk]] = np.transpose(
                    pix[fidx], (2, 1, 0))
                continue
            if scaling is not None:
                slopes = np.full((len(chunk), 1, 1), scaling[0])
                inter = np.full((len(chunk), 1, 1), scaling[1])
            else:
                slopes = np.array([frames[i].slope for i in chunk])[:, None, None]
                inter = np.array([frames[i].intercept for i in chunk])[:, None, None]
            vals = pix[fidx].astype(np.float64) * slopes + inter
            data[:, :, geom.slice_index[chunk], group[chunk]] = np.transpose(vals, (2, 1, 0))
    return data, scaling if integer else None


#: Uncompressed little-endian transfer syntaxes (explicit and implicit VR).
_NATIVE_LE = {"1.2.840.10008.1.2.1": True, "1.2.840.10008.1.2": False}
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian


def _native_pixels(path: Path, ds: Dataset) -> NDArray[Any] | None:
    """The stored pixel values of an uncompressed little-endian, single-sample file whose
    Pixel Data element is the last in the file, read directly from its bytes; None for any
    other file (the caller decodes it with pydicom).

    ``ds`` is the file's header (read up to the pixel data). The element is found at the
    end of the file and checked (tag, VR and length of the expected frames); values are
    those of :func:`pydicom.pixels.pixel_array` (same dtype and shape; when BitsStored <
    BitsAllocated the unused high bits are cleared or sign-extended as pydicom does).
    Several times faster than ``pixel_array(path)``, which parses the header again.
    """
    meta = getattr(ds, "file_meta", None)
    explicit = _NATIVE_LE.get(str(meta.get("TransferSyntaxUID", "")) if meta else "")
    try:
        alloc, stored = int(ds.BitsAllocated), int(ds.BitsStored)
        signed = int(ds.PixelRepresentation) == 1
        rows, cols = int(ds.Rows), int(ds.Columns)
        n_frames = _int(ds.get("NumberOfFrames")) or 1
        samples = int(ds.get("SamplesPerPixel", 1))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if explicit is None or alloc not in (8, 16, 32) or samples != 1 or not 0 < stored <= alloc:
        return None
    n_bytes = rows * cols * n_frames * alloc // 8
    length = n_bytes + n_bytes % 2                        # padded to even
    size = struct.pack("<I", length)
    heads = ([_PIXEL_DATA_TAG + vr + b"\x00\x00" + size for vr in (b"OW", b"OB")]
             if explicit else [_PIXEL_DATA_TAG + size])
    with open(path, "rb") as fh:
        raw = fh.read()
    start = len(raw) - length
    n_head = len(heads[0])
    if start < n_head or raw[start - n_head:start] not in heads:
        return None
    dtype = np.dtype(f"<{'i' if signed else 'u'}{alloc // 8}")
    arr = np.frombuffer(raw, dtype=dtype, count=rows * cols * n_frames, offset=start)
    if stored < alloc:                                    # pydicom's unused-bits correction
        shift = alloc - stored
        arr = np.right_shift(np.left_shift(arr, shift), shift)
    shape = (rows, cols) if n_frames == 1 else (n_frames, rows, cols)
    return arr.reshape(shape)


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
