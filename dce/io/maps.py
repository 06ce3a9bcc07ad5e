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

__all__ = ["read_maps", "read_roi", "read_session_quality", "read_session_rois", "write_map"]

PathLike = str | os.PathLike[str]


def write_map(path: PathLike, name: str, data: ArrayLike, affine: ArrayLike,
              sidecar: Mapping[str, Any] | None = None) -> Path:
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

    Returns
    -------
    Path
        The image path.
    """
    arr = np.asarray(data).astype(output_map(name).dtype)
    return write_nifti(path, arr, affine, {**sidecar_fields(name), **(sidecar or {})})


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
