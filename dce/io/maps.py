"""A session's output maps and ROIs on disk: registry-labelled NIfTI maps, ROIs (NIfTI,
RTSTRUCT, DICOM-SEG, NRRD; :mod:`dce.io.rois`) on the image grid, and the quality records
of a session.

Every map is written with the sidecar fields of its :mod:`dce.registry` entry
(``Quantity``, ``Column``, ``Units``) and in the entry's data type; the rule scripts add
``Sources`` (:func:`dce.io.derivatives.derived_sources`, BIDS URIs of the inputs inside
the results), a required key of the results' naming rules
(:func:`dce.io.derivatives.check_derivatives`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dce.io.nifti import read_nifti, sidecar_path, write_nifti
from dce.registry import output_map, sidecar_fields

if TYPE_CHECKING:
    from dce.quality import SessionQuality

# The ROI readers (dce.io.rois, dce.roi) and the quality records (dce.quality, pandas) are
# imported by the functions using them: a job writing maps (fit, semiquant) needs neither.

__all__ = ["map_precision", "read_maps", "read_roi", "read_session_quality",
           "read_session_rois", "round_significand", "write_map"]

PathLike = str | os.PathLike[str]


#: float32 significand (mantissa) bits stored explicitly.
_F32_BITS = 23


def round_significand(data: ArrayLike, significant_bits: int) -> NDArray[np.float32]:
    """float32 values rounded to ``significant_bits`` significand bits ("bit rounding").

    Round to nearest, ties to even, on the binary significand (Klöwer et al., Nat Comput
    Sci 2021; the BitRound quantisation of netCDF-4.9): the dropped low bits become zero,
    so the compressor sees long runs of zeros. The relative error is at most
    ``2 ** -(significant_bits + 1)`` for normal numbers (e.g. 1.2e-4 at 12 bits); zeros,
    NaN and infinities are kept, and a value that would round to infinity is truncated
    instead.

    Parameters
    ----------
    data : array_like
        Values (converted to float32).
    significant_bits : int
        Explicit significand bits kept, 1 .. 23 (23: unchanged).

    Returns
    -------
    ndarray of float32
    """
    bits = int(significant_bits)
    if not 1 <= bits <= _F32_BITS:
        raise ValueError(f"significant_bits: must be 1 .. {_F32_BITS}, got {significant_bits}")
    arr = np.array(data, dtype=np.float32)          # a copy, rounded in place
    if bits == _F32_BITS or arr.size == 0:
        return arr
    drop = _F32_BITS - bits
    u = arr.view(np.uint32)
    keep = np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    odd = (u >> np.uint32(drop)) & np.uint32(1)      # ties to even
    rounded = (u + np.uint32((1 << (drop - 1)) - 1) + odd) & keep
    finite = np.isfinite(arr)
    overflow = finite & ~np.isfinite(rounded.view(np.float32))
    u[...] = np.where(finite, np.where(overflow, u & keep, rounded), u)
    return arr


def map_precision(significant_bits: int | None) -> dict[str, Any]:
    """Sidecar record of a map's stored precision (:func:`round_significand`); ``{}``
    for None (lossless float32)."""
    if significant_bits is None:
        return {}
    bits = int(significant_bits)
    return {"StoredPrecision": {
        "SignificantBits": bits,
        "MaxRelativeError": float(2.0 ** -(bits + 1)),
        "Method": "float32 significand rounded to the nearest (ties to even) with "
                  f"{bits} of 23 bits kept (bit rounding, Kloewer et al. 2021; netCDF-4 "
                  "BitRound); lossy, config outputs.map_significant_bits"}}


def write_map(path: PathLike, name: str, data: ArrayLike, affine: ArrayLike,
              sidecar: Mapping[str, Any] | None = None, *,
              significant_bits: int | None = None) -> Path:
    """Write an output map in its registry data type, with its registry sidecar fields.

    Parameters
    ----------
    path : path-like
        Destination ``.nii.gz``.
    name : str
        Map name (:func:`dce.registry.output_map`), e.g. ``"ktrans"`` or ``"iauc60"``.
    data : array_like
        The map (in the units of the registry entry).
    affine : array_like, shape (4, 4)
        Voxel to RAS+ mm.
    sidecar : mapping, optional
        Further sidecar fields, after ``Quantity``, ``Column`` and ``Units`` (in the
        workflow: ``Sources`` and the method's settings).
    significant_bits : int, optional
        Lossy storage of a float32 (continuous) map: :func:`round_significand`, recorded
        in the sidecar (:func:`map_precision`); integer maps (status codes, TIC types)
        are never rounded. None: lossless float32.

    Returns
    -------
    Path
        The image path.
    """
    arr = np.asarray(data).astype(output_map(name).dtype)
    extra: dict[str, Any] = {}
    if significant_bits is not None and arr.dtype == np.float32:
        arr, extra = round_significand(arr, significant_bits), map_precision(significant_bits)
    return write_nifti(path, arr, affine, {**sidecar_fields(name), **(sidecar or {}), **extra})


def read_maps(paths: Mapping[str, PathLike]) -> dict[str, NDArray[Any]]:
    """Read maps given by name (``{"ktrans": path, ...}``), keyed by their registry columns."""
    return {output_map(name).column: read_nifti(p).data for name, p in paths.items()}


def read_roi(path: PathLike, shape: tuple[int, ...], affine: ArrayLike, *,
             labels: Sequence[int] | None = None, names: Mapping[int, str] | None = None
             ) -> tuple[NDArray[np.int32], list[str]]:
    """Read an ROI file of any supported format onto an image grid.

    NIfTI label volumes are matched with :func:`dce.roi.match_roi`; DICOM RTSTRUCT,
    DICOM-SEG and NRRD / 3D Slicer files are read by :func:`dce.io.rois.read_roi_labels`
    (format from the content; regions chosen by number or by name, rules in
    :mod:`dce.io.rois`).

    Parameters
    ----------
    path : path-like
        ROI file.
    shape, affine
        Image grid (voxels; voxel to RAS+ mm).
    labels, names : optional
        Lesion labels to read and ROI/segment names of some of them
        (:func:`dce.io.rois.read_roi_labels`); without them every region is read.

    Returns
    -------
    labels : ndarray of int32
        Labels on the image grid.
    notes : list of str
        Warnings for the log (ROI voxels lost, projected contours, overlaps).
    """
    from dce.io.rois import read_roi_labels

    return read_roi_labels(path, shape, affine, labels=labels, names=names)


def read_session_rois(lesion_roi: PathLike, marrow_roi: PathLike | None,
                      shape: tuple[int, ...], affine: ArrayLike, *, expected: list[int],
                      expected_from: str, subject: str,
                      names: Mapping[int, str] | None = None
                      ) -> tuple[NDArray[Any], NDArray[np.int32] | None, list[str]]:
    """Read a session's lesion labels and normal-marrow ROI on the image grid.

    Parameters
    ----------
    lesion_roi, marrow_roi : path-like
        Lesion ROI file; normal-marrow ROI file (or None). Any format of
        :func:`read_roi`; the marrow ROI is every non-zero voxel (the union of the
        file's regions).
    shape, affine
        Image grid (voxels; voxel to RAS+ mm).
    expected : list of int
        The subject's lesion labels (every one must be present; others are dropped).
    expected_from, subject : str
        Sheet listing the labels and the subject, for messages.
    names : mapping of int to str, optional
        ROI/segment name of lesion labels (lesion sheet column ``roi_name``; empty: by
        number), :mod:`dce.io.rois`.

    Returns
    -------
    lesions : ndarray
        Lesion labels on the grid (labels not expected set to 0).
    marrow : ndarray of int32 or None
        1 inside the normal-marrow ROI.
    notes : list of str
        Warnings for the log (ROI voxels lost, labels dropped).
    """
    from dce.roi import keep_expected_labels

    try:
        lesions, notes = read_roi(lesion_roi, shape, affine, labels=expected, names=names)
    except ValueError as exc:
        raise ValueError(f"{exc} (subject {subject}, lesions from {expected_from})") from None
    lesions, extra = keep_expected_labels(lesions, expected, str(lesion_roi),
                                          expected_from=expected_from)
    if extra:
        notes.append(f"{lesion_roi}: label(s) {extra} not listed in {expected_from} for "
                     f"subject {subject}: ignored")
    marrow = None
    if marrow_roi is not None:
        mar, more = read_roi(marrow_roi, shape, affine)
        marrow, notes = (mar > 0).astype(np.int32), notes + more
    return lesions, marrow, notes


def read_session_quality(t1_map: PathLike, aif_qc: PathLike) -> SessionQuality:
    """The quality of a session from the T1 map's sidecar and the AIF QC record (JSON)."""
    from dce.quality import SessionQuality

    t1_side = sidecar_path(t1_map)
    return SessionQuality.from_records(
        json.loads(t1_side.read_text(encoding="utf-8")),
        json.loads(Path(aif_qc).read_text(encoding="utf-8")),
        name=f"{t1_side}, {aif_qc}")
