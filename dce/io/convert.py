"""Convert one visit folder of DICOM files to NIfTI images with JSON sidecars.

:func:`convert_visit` is the single conversion step shared by the ``dce convert``
command and the workflow: it sorts the series under a folder into DCE, variable-flip-angle
(VFA) and B1 map from their headers (:func:`dce.io.dicom.classify_series`;
SeriesDescription patterns override), stacks them (:mod:`dce.io.dicom`, which validates
the grid and the timing) and writes, in the output folder::

    sub-<subject>_ses-<session>_dce.nii.gz        4-D signal (i, j, k, t)
    sub-<subject>_ses-<session>_dce.json          phase times (s), FA, TR, TE, field, ...
    sub-<subject>_ses-<session>_vfa.nii.gz        4-D signal (i, j, k, flip angle)
    sub-<subject>_ses-<session>_vfa.json          FlipAngles_deg, TR, TE, ...
    sub-<subject>_ses-<session>_desc-raw_B1map.nii.gz  B1 map as stored (after rescale), own grid
    sub-<subject>_ses-<session>_desc-raw_B1map.json    Manufacturer, ImageType, B1Convention, ...

The DCE and VFA signal are stored as the DICOM stored integers (16 bits) with the
series' rescale as ``scl_slope``/``scl_inter`` when one rescale covers every frame (a
lossless copy; :func:`dce.io.nifti.read_nifti` returns float32), else as float32.

A visit without VFA series converts with a ``WARNING`` line (the T1 step decides what to
do, config ``t1.missing_vfa``); ``require_vfa=True`` makes it an error.  The B1 map is
written only when the visit has one; its values are not converted (``B1Convention`` in
the sidecar says how to read them).

All series are read and validated before anything is written, and the files are
written atomically (:func:`dce.io.nifti.write_nifti`); if a later file cannot be
written, the files already written by this call are removed.  So an invalid visit
leaves no output, and a failed write no partial set of files.

De-identification: the sidecars are built from an allow-list of acquisition
parameters (:mod:`dce.io.dicom`); the summary lines passed to ``report`` hold series
descriptions, numbers, matrix sizes, times relative to the first phase and the output
paths, never a patient, institution, date, clock time or UID.  (Error messages about an
invalid time value quote that value, which is a clock time: it is needed to fix the file.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dce.io.dicom import (
    B1Series,
    DicomError,
    DynamicSeries,
    SeriesInfo,
    VFASeries,
    classify_series,
    discover_series,
    load_b1_series,
    load_dce_series,
    load_vfa_series,
)
from dce.io.nifti import sidecar_path, write_nifti

__all__ = ["ID_PATTERN", "convert_visit", "output_paths", "write_converted"]

#: Subject and session IDs: letters and digits only (BIDS-like ``sub-<id>``).
ID_PATTERN = re.compile(r"[A-Za-z0-9]+")

Reporter = Callable[[str], None]


def _check_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ValueError(f"{name}: IDs must be letters and digits only ([A-Za-z0-9]+), "
                         f"got {value!r}")
    return value


def output_paths(out_dir: str | os.PathLike[str], subject: str,
                 session: str) -> dict[str, Path]:
    """The files :func:`convert_visit` writes.

    Parameters
    ----------
    out_dir : path-like
        Output folder (usually ``results/sub-<subject>/ses-<session>``).
    subject, session : str
        IDs, ``[A-Za-z0-9]+``.

    Returns
    -------
    dict
        ``{"dce": ..., "dce_json": ..., "vfa": ..., "vfa_json": ..., "b1": ...,
        "b1_json": ...}`` (B1: ``..._desc-raw_B1map.nii.gz``, values as stored).
    """
    stem = f"sub-{_check_id('subject', subject)}_ses-{_check_id('session', session)}"
    out = Path(out_dir)
    dce, vfa = out / f"{stem}_dce.nii.gz", out / f"{stem}_vfa.nii.gz"
    b1 = out / f"{stem}_desc-raw_B1map.nii.gz"
    return {"dce": dce, "dce_json": sidecar_path(dce), "vfa": vfa, "vfa_json": sidecar_path(vfa),
            "b1": b1, "b1_json": sidecar_path(b1)}


def _listing(series: Sequence[SeriesInfo]) -> str:
    if not series:
        return "no DICOM image series found"
    return f"{len(series)} series found: " + "; ".join(s.label for s in series)


def _where(info: SeriesInfo, root: Path) -> str:
    """Series label plus its folder relative to ``root`` (tells apart equal labels)."""
    try:
        folder = Path(os.path.commonpath(info.files)).relative_to(root)
    except ValueError:
        return info.label
    if len(info.files) == 1:
        folder = folder.parent
    return info.label if folder == Path(".") else f"{info.label} in {folder.as_posix()}/"


def _fmt_s(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:.0f}"


def _dce_lines(info: SeriesInfo, d: DynamicSeries) -> list[str]:
    m = d.meta
    nx, ny, nz, nt = d.data.shape
    vox = " x ".join(_fmt_s(v) for v in m["VoxelSize_mm"])
    lines = [f"DCE: {info.label}",
             f"  {nx} x {ny} x {nz} voxels of {vox} mm, {nt} phases; FA "
             f"{_fmt_s(m['FlipAngle'])} deg, TR {_fmt_s(m['RepetitionTime'] * 1000)} ms"]
    if nt > 1:
        spacing = f"spacing {_fmt_s(m['PhaseSpacing_s'])} s"
        if m["PhaseSpacingUneven"]:
            lo, hi = m["PhaseSpacingRange_s"]
            spacing = (f"UNEVEN spacing {_fmt_s(lo)} .. {_fmt_s(hi)} s (median "
                       f"{_fmt_s(m['PhaseSpacing_s'])} s; recorded in the sidecar)")
        lines.append(f"  phase times 0 .. {_fmt_s(float(d.t_s[-1]))} s, {spacing}")
    lines.append(f"  timing from {m['TimingSource']}; phase order from "
                 f"{m['PhaseOrderSource']}")
    lines += [f"  note: {n}" for n in m.get("Notes", [])]
    lines += [f"  WARNING (timing): {w}" for w in d.timing_details]
    return lines


def _vfa_lines(infos: Sequence[SeriesInfo], v: VFASeries, d: DynamicSeries) -> list[str]:
    nx, ny, nz, nf = v.data.shape
    fas = ", ".join(_fmt_s(float(a)) for a in v.flip_angles_deg)
    lines = [f"VFA: {len(infos)} series: " + "; ".join(s.label for s in infos),
             f"  {nx} x {ny} x {nz} voxels, {nf} flip angles ({fas} deg), TR "
             f"{_fmt_s(v.tr_s * 1000)} ms"]
    if v.data.shape[:3] != d.data.shape[:3] or not np.allclose(v.affine, d.affine, atol=1e-3):
        diff = (float(np.max(np.abs(v.affine - d.affine)))
                if v.data.shape[:3] == d.data.shape[:3] else float("nan"))
        what = (f"shape {v.data.shape[:3]} vs {d.data.shape[:3]}"
                if np.isnan(diff) else f"affines differ by up to {diff:.3g} mm")
        lines.append(f"  note: the VFA grid differs from the DCE grid ({what}); T1 maps "
                     "need resampling to the DCE grid")
    lines += [f"  note: {n}" for n in v.meta.get("Notes", [])]
    return lines


def _b1_lines(info: SeriesInfo, b: B1Series) -> list[str]:
    nx, ny, nz = b.data.shape
    conv, why = b.meta["B1Convention"], b.meta["B1ConventionSource"]
    lines = [f"B1: {info.label}",
             f"  {nx} x {ny} x {nz} voxels on its own grid; values as stored (after "
             f"rescale), {float(np.min(b.data)):.4g} .. {float(np.max(b.data)):.4g}"]
    if conv is None:
        lines.append(f"  WARNING: B1 value convention {why}; B1Convention is null in the "
                     "sidecar: the B1 correction step must be told the convention")
    else:
        lines.append(f"  B1Convention {conv} ({why})")
    return lines


def convert_visit(dicom_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                  subject: str, session: str, dce_pattern: str | None = None,
                  vfa_pattern: str | None = None, b1_pattern: str | None = None,
                  require_vfa: bool = False,
                  report: Reporter | None = None) -> dict[str, Path]:
    """Convert the DCE (and VFA, B1 map) series of one visit to NIfTI + JSON sidecars.

    Parameters
    ----------
    dicom_dir : path-like
        Folder searched recursively for DICOM files (any names, other files skipped).
    out_dir : path-like
        Output folder (created).  Files are named ``sub-<subject>_ses-<session>_<what>``.
    subject, session : str
        IDs, letters and digits only.  They are used in the file names only.
    dce_pattern, vfa_pattern, b1_pattern : str, optional
        SeriesDescription regular expressions (case-insensitive search) that override
        the header detection of that series (:func:`dce.io.dicom.classify_series`);
        default None = from the headers.  Derived series (subtractions, MIPs,
        reformats, motion corrected) are always excluded from DCE and VFA.
    require_vfa : bool
        If True, a visit without VFA series is an error; otherwise (default, as in the
        workflow) only the DCE (and B1) files are written and a ``WARNING`` line is
        reported.  A VFA series that is found but invalid is always an error.
    report : callable, optional
        Called with each line of a short, de-identified summary (series found with their
        roles, series chosen, shape, phase times and spacing, timing source, warnings,
        files written).

    Returns
    -------
    dict of Path
        ``"dce"`` and ``"dce_json"``, plus ``"vfa"``/``"vfa_json"`` when VFA data and
        ``"b1"``/``"b1_json"`` when a B1 map were converted.

    Raises
    ------
    DicomError
        No or several DCE series qualify (the message lists every series with its role
        and reason and names the pattern to set), the DCE series has a single phase, no
        VFA series and ``require_vfa``, several B1 maps, or a series is invalid (invalid
        DICOM time values, inconsistent timeline, missing phase or slice, duplicated
        position, mixed flip angle or TR, ...; see :func:`dce.io.dicom.load_dce_series`).
        The message names the folder, series or file and the problem.
    ValueError
        Invalid subject/session ID or pattern.
    OSError
        The output cannot be written.
    """
    say: Reporter = report or (lambda _line: None)
    paths = output_paths(out_dir, subject, session)
    dicom_dir = Path(dicom_dir)
    series = discover_series(dicom_dir)
    roles = classify_series(series, dce_pattern=dce_pattern, vfa_pattern=vfa_pattern,
                            b1_pattern=b1_pattern)

    def name(s: SeriesInfo) -> str:
        return _where(s, dicom_dir)

    say(f"{len(series)} series found:" if series else _listing(series))
    for line in roles.lines(name):
        say(f"  - {line}")
    dce_info = roles.dce(str(dicom_dir), name)
    b1_info = roles.b1(str(dicom_dir), name)
    vfa_infos = list(roles.vfa)
    if not vfa_infos and require_vfa:
        how = (f"SeriesDescription pattern {vfa_pattern!r}" if vfa_pattern
               else "headers (single-phase series on the DCE grid with >= 2 flip angles)")
        raise DicomError(f"{dicom_dir}: no VFA series: none qualifies by {how} (VFA data "
                         f"required); {_listing(series)}")

    dce = load_dce_series(dce_info)
    if dce.data.shape[3] < 2:
        raise DicomError(f"DCE series {dce_info.label}: only one phase (a single volume "
                         "per slice position); not a dynamic series, pass another DCE "
                         "pattern")
    for line in _dce_lines(dce_info, dce):
        say(line)
    vfa = load_vfa_series(vfa_infos) if vfa_infos else None
    for line in (_vfa_lines(vfa_infos, vfa, dce) if vfa is not None
                 else ["VFA: none found (no T1 map from this visit)",
                       "WARNING: no VFA series in this visit: converted without; the T1 "
                       "step decides (workflow config t1.missing_vfa); set "
                       "convert.vfa_pattern / --vfa-pattern if the VFA series is there"]):
        say(line)
    b1 = load_b1_series(b1_info) if b1_info is not None else None
    if b1 is not None and b1_info is not None:
        for line in _b1_lines(b1_info, b1):
            say(line)

    out = write_converted(paths, {"dce": dce, "vfa": vfa, "b1": b1})
    say("wrote " + ", ".join(str(out[k]) for k in ("dce", "vfa", "b1") if k in out)
        + " (+ .json sidecars)")
    return out


def write_converted(paths: dict[str, Path], images: dict[str, Any]) -> dict[str, Path]:
    """Write the converted images (``{"dce": series, "vfa": series or None, ...}``, each
    with ``data``, ``affine`` and ``meta``) to ``paths[key]`` + ``paths[key + "_json"]``;
    on any error remove what was written (no partial outputs) and re-raise.

    Returns
    -------
    dict
        The paths written, ``{key: path, key + "_json": path}`` per image given.
    """
    out: dict[str, Path] = {}
    try:
        for key, img in images.items():
            if img is None:
                continue
            write_nifti(paths[key], img.data, img.affine, img.meta,
                        scaling=getattr(img, "scaling", None))
            out[key], out[f"{key}_json"] = paths[key], paths[f"{key}_json"]
    except BaseException:
        for p in out.values():
            p.unlink(missing_ok=True)
        raise
    return out
