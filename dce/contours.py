"""Planar polygon contours (e.g. DICOM RTSTRUCT ``CLOSED_PLANAR``) rasterised onto a grid.

Pure numerics (numpy); reading the contours from a file is :mod:`dce.io.rois`' job.

Rule
----
Contour points are given in world mm (RAS+, the frame of the NIfTI affine; DICOM patient
coordinates are LPS, so the reader negates x and y first). Each contour is mapped into the
voxel index space of the grid with the inverse of the grid's affine, so the grid may have
any orientation (oblique, tilted slab, any axis order):

* the contour's *plane axis* is the grid axis along which its points spread least, and its
  *slice* the nearest grid plane along that axis (``round(mean index)``);
* a contour whose points all lie within ``PLANE_TOL_VOX`` (voxel index units) of that
  plane is *on the plane*; one whose points deviate by more, but by at most half a
  slice spacing, is *projected* onto it (reported in the notes); a contour any of whose
  points lies more than half a slice spacing away (a contour tilted against the image
  slices, e.g. axial planning-CT contours on a sagittal DCE series) is an error: there is
  no single image slice it belongs to;
* in its plane, a voxel belongs to the contour when its centre lies inside the polygon
  (crossing-number test by scanlines, vectorised over grid rows and polygon edges); several
  contours of one ROI on the same plane combine by the even-odd rule (a contour inside
  another is a hole; disjoint contours add up);
* contours on planes outside the grid, and parts of polygons outside the grid, are lost
  (reported in the notes); an ROI with no contour on the grid, or whose polygons contain
  no voxel centre, is an error.

Voxel centres exactly on a polygon edge are decided by the crossing-number convention
(half-open edges): a polygon traced along voxel edges (at half-integer voxel indices)
contains exactly the voxels it outlines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PLANE_TOL_VOX", "grid_in_polygon", "points_in_polygon", "rasterise_contours"]

#: Largest distance (voxel index units along the plane axis) of a contour point from its
#: slice for the contour to count as lying on the slice (no projection note).
PLANE_TOL_VOX = 1e-2
#: Voxel centres x polygon edges evaluated per block of the crossing-number test.
_BLOCK = 1 << 22

_F64 = NDArray[np.float64]


def points_in_polygon(points: ArrayLike, polygon: ArrayLike) -> NDArray[np.bool_]:
    """Even-odd (crossing-number) test of 2-D points against one closed polygon.

    Parameters
    ----------
    points : array_like, shape (n, 2)
        Query points (any length unit).
    polygon : array_like, shape (m, 2)
        Polygon vertices in order (m >= 3, same unit); the last vertex connects back to
        the first (a repeated closing vertex is allowed).

    Returns
    -------
    ndarray of bool, shape (n,)
        True where a ray from the point towards +x crosses the polygon boundary an odd
        number of times (self-intersecting polygons: even-odd rule).
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    v = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x1, y1 = v[:, 0], v[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    keep = y1 != y2                                     # horizontal edges never cross
    x1, y1, x2, y2 = x1[keep], y1[keep], x2[keep], y2[keep]
    slope = (x2 - x1) / (y2 - y1)
    out = np.zeros(p.shape[0], dtype=bool)
    step = max(1, _BLOCK // max(1, x1.size))
    for s in range(0, p.shape[0], step):               # blocks of points, vectorised
        px, py = p[s:s + step, 0:1], p[s:s + step, 1:2]
        spans = (y1 > py) != (y2 > py)
        x_cross = x1 + (py - y1) * slope
        out[s:s + step] = (np.count_nonzero(spans & (px < x_cross), axis=1) % 2) == 1
    return out


def grid_in_polygon(polygon: ArrayLike, lo: Sequence[int], hi: Sequence[int]
                    ) -> NDArray[np.bool_]:
    """:func:`points_in_polygon` on the integer grid ``lo[0]..hi[0]`` x ``lo[1]..hi[1]``
    (inclusive), by scanlines: the same decisions in O(rows x (edges + columns)).

    Along each grid row ``y`` the polygon edges spanning ``y`` (half-open, as in
    :func:`points_in_polygon`) cross at ``x_c``; a point is inside when an odd number of
    crossings lie to its right, i.e. (a closed polygon crosses every row an even number
    of times) an odd number satisfy ``x_c <= x``: a cumulative count of toggles placed
    at ``ceil(x_c)``.

    Returns
    -------
    ndarray of bool, shape (hi[0] - lo[0] + 1, hi[1] - lo[1] + 1)
    """
    v = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x1, y1 = v[:, 0], v[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    keep = y1 != y2
    x1, y1, x2, y2 = x1[keep, None], y1[keep, None], x2[keep, None], y2[keep, None]
    n_x, n_y = int(hi[0]) - int(lo[0]) + 1, int(hi[1]) - int(lo[1]) + 1
    ys = np.arange(int(lo[1]), int(hi[1]) + 1, dtype=np.float64)[None, :]
    spans = (y1 > ys) != (y2 > ys)                              # (edges, rows)
    x_cross = x1 + (ys - y1) * ((x2 - x1) / (y2 - y1))
    e, r = np.nonzero(spans)
    col = np.clip(np.ceil(x_cross[e, r]) - int(lo[0]), 0, n_x).astype(np.int64)
    toggles = np.zeros((n_x + 1, n_y), dtype=np.int64)
    np.add.at(toggles, (col, r), 1)
    return (np.cumsum(toggles, axis=0)[:n_x] % 2) == 1


def _box(points: _F64) -> str:
    lo, hi = points.min(axis=1), points.max(axis=1)
    return ", ".join(f"{ax} {a:.1f}..{b:.1f}" for ax, a, b in zip("xyz", lo, hi, strict=True))


def rasterise_contours(contours: Sequence[ArrayLike], shape: Sequence[int],
                       affine: ArrayLike, *, name: str
                       ) -> tuple[NDArray[np.bool_], list[str]]:
    """Voxels of a grid inside the planar polygon contours of one ROI (module rule).

    Parameters
    ----------
    contours : sequence of array_like, each shape (n_points, 3)
        Closed planar polygons, points in world mm (RAS+), n_points >= 3.
    shape : sequence of int
        Grid shape ``(n_i, n_j, n_k)`` (further axes ignored).
    affine : array_like, shape (4, 4)
        Voxel index to RAS+ mm of the grid.
    name : str
        The ROI (file and ROI name), at the start of every message.

    Returns
    -------
    mask : ndarray of bool, shape ``shape[:3]``
        True inside the ROI.
    notes : list of str
        Projected contours and contours (or parts) outside the grid, for the log.

    Raises
    ------
    ValueError
        No contour, a contour with fewer than 3 points or non-finite coordinates, a
        contour off the image planes by more than half a slice spacing, every contour
        outside the grid, or no voxel centre inside any polygon.
    """
    dims = tuple(int(n) for n in shape)[:3]
    aff = np.asarray(affine, dtype=np.float64)
    inv = np.linalg.inv(aff)
    spacing_mm = np.linalg.norm(aff[:3, :3], axis=0)
    if len(contours) == 0:
        raise ValueError(f"{name}: the ROI has no contour")
    mask = np.zeros(dims, dtype=bool)
    n_proj, worst_proj, outside, clipped = 0, 0.0, [], 0
    all_world = []
    for n, c in enumerate(contours, start=1):
        pts = np.asarray(c, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < 3:
            raise ValueError(f"{name}: contour {n} has shape {pts.shape}; a closed planar "
                             "contour needs at least 3 points (x, y, z)")
        if not np.all(np.isfinite(pts)):
            raise ValueError(f"{name}: contour {n} has NaN or infinite coordinates")
        all_world.append(pts.T)
        vox = inv[:3, :3] @ pts.T + inv[:3, 3:4]            # (3, n) voxel indices
        a = int(np.argmin(np.ptp(vox, axis=1)))            # plane axis
        sl = int(np.rint(vox[a].mean()))
        dev = float(np.max(np.abs(vox[a] - sl)))
        if dev > 0.5 + PLANE_TOL_VOX:
            centred = pts - pts.mean(axis=0)
            normal = np.linalg.svd(centred, full_matrices=False)[2][-1]
            grad = inv[a, :3] / np.linalg.norm(inv[a, :3])   # normal of axis-a planes
            tilt = float(np.degrees(np.arccos(min(1.0, abs(float(normal @ grad))))))
            raise ValueError(
                f"{name}: contour {n} does not lie in an image slice plane: its points are "
                f"up to {dev:.2f} voxels ({dev * spacing_mm[a]:.2f} mm) from the nearest "
                f"plane of image axis {a} (more than half a slice spacing; contour tilted "
                f"by about {tilt:.0f} deg against the slices). Contours must be drawn on "
                "planes parallel to the DCE slices; otherwise convert the structure to a "
                "label volume (NIfTI/NRRD/DICOM-SEG) in the planning system or 3D Slicer")
        if dev > PLANE_TOL_VOX:
            n_proj, worst_proj = n_proj + 1, max(worst_proj, dev * spacing_mm[a])
        if not 0 <= sl < dims[a]:
            outside.append(n)
            continue
        b, cax = (ax for ax in range(3) if ax != a)
        poly = vox[[b, cax]].T
        lo = np.maximum(np.ceil(poly.min(axis=0)), 0).astype(int)
        hi = np.minimum(np.floor(poly.max(axis=0)), [dims[b] - 1, dims[cax] - 1]).astype(int)
        if np.any(poly.min(axis=0) < -0.5) or np.any(
                poly.max(axis=0) > np.array([dims[b], dims[cax]]) - 0.5):
            clipped += 1
        if np.any(hi < lo):
            outside.append(n)
            continue
        inside = grid_in_polygon(poly, lo, hi)
        idx: list[Any] = [slice(None)] * 3
        idx[a], idx[b], idx[cax] = sl, slice(lo[0], hi[0] + 1), slice(lo[1], hi[1] + 1)
        mask[tuple(idx)] ^= inside                        # even-odd across contours
    notes = []
    if len(outside) == len(contours):
        corners = np.array(np.meshgrid(*[[-0.5, d - 0.5] for d in dims], indexing="ij"))
        fov = aff[:3, :3] @ corners.reshape(3, -1) + aff[:3, 3:4]
        raise ValueError(
            f"{name}: every contour lies outside the image field of view (contour points "
            f"span world mm {_box(np.hstack(all_world))} (RAS); the image covers "
            f"{_box(fov)}): structure set of another series or patient position?")
    if not np.any(mask):
        raise ValueError(f"{name}: no image voxel centre lies inside any of the "
                         f"{len(contours)} contour(s) (ROI smaller than the image voxels?)")
    if n_proj:
        notes.append(f"{name}: {n_proj} of {len(contours)} contour(s) lie between image "
                     f"slices (up to {worst_proj:.2f} mm off-plane, less than half a slice "
                     "spacing) and were projected onto the nearest slice")
    if outside:
        notes.append(f"{name}: {len(outside)} of {len(contours)} contour(s) lie outside the "
                     "image field of view and were ignored")
    if clipped:
        notes.append(f"{name}: {clipped} contour(s) extend beyond the image field of view "
                     "in-plane; only the part inside is used")
    return mask, notes
