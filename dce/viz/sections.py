"""Display geometry shared by the session and cohort figures: RAS+ reordering of voxel
arrays and sagittal sections (no resampling, no file I/O).

Images are shown as sagittal sections in radiological convention for the spine:
superior up, anterior left. The voxel axes are first brought to RAS+ order with the
voxel-to-world affine (:func:`nibabel.orientations.io_orientation`: each voxel axis goes
to the world axis it is closest to, flipped where it points the other way), so any
acquisition order works. For a sagittal slab the section is an acquired slice; other
acquisitions are shown as reformatted sagittal sections.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform
from numpy.typing import ArrayLike, NDArray

__all__ = ["sagittal_section", "to_ras"]

_RAS = axcodes2ornt("RAS")


def to_ras(volume: ArrayLike, affine: ArrayLike) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Reorder (and flip) the first three axes of ``volume`` to RAS+; no resampling.

    Parameters
    ----------
    volume : array_like, shape (n_i, n_j, n_k, ...)
    affine : array_like, shape (4, 4)
        Voxel-to-world (RAS+ mm).

    Returns
    -------
    volume_ras : ndarray, shape (n_x, n_y, n_z, ...)
        Index ``x`` increases to the right, ``y`` anteriorly, ``z`` superiorly.
    zooms : ndarray, shape (3,)
        Voxel sizes (mm) along x, y, z.
    """
    v = np.asarray(volume)
    if v.ndim < 3:
        raise ValueError(f"volume: need at least 3 dimensions, got shape {v.shape}")
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError(f"affine: need a finite 4x4 matrix, got shape {a.shape}")
    zooms = np.linalg.norm(a[:3, :3], axis=0)
    if np.any(zooms <= 0):
        raise ValueError("affine: zero voxel size")
    ornt = ornt_transform(io_orientation(a), _RAS)
    zooms_ras = np.empty(3)
    zooms_ras[ornt[:, 0].astype(int)] = zooms
    return np.asarray(apply_orientation(v, ornt)), zooms_ras


def sagittal_section(volume_ras: ArrayLike, x: int) -> NDArray[Any]:
    """Sagittal section ``x`` of a RAS-ordered volume as a display array.

    Rows run superior (top) to inferior, columns anterior (left) to posterior.
    """
    v = np.asarray(volume_ras)
    return np.asarray(v[x, ::-1, ::-1].T)
