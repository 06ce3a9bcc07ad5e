"""Regions of interest: ROI geometry, lesion statistics and ROI time-intensity curves.

Pure numerics (numpy, pandas); reading ROI files is :mod:`dce.io`'s job. Every function
that can fail because of a particular ROI file takes the file's name (``name``) and puts
it at the start of the ``ValueError`` message, so that the pipeline's error for one
subject says which file to fix.

ROI geometry
------------
A label volume (0 = background, 1, 2, ... = lesions; any non-zero value = the region for
a binary mask such as the normal-marrow ROI) drawn in any software may come in a
different voxel order, orientation or resolution than the DCE series. With a correct
voxel-to-world affine (NIfTI ``sform``/``qform``, RAS+ mm) :func:`match_roi` puts it on
the image grid:

* identical grids (same shape, affines equal to 1e-3 voxel over the grid): returned as is;
* the same voxels in another axis order and/or direction (e.g. a mask exported from a
  viewer in LPS or axial order, or with reversed slices): transposed and flipped,
  exactly, without interpolation;
* anything else (other resolution, partial coverage, oblique): nearest-neighbour
  resampling. Every image voxel centre is mapped into the ROI's voxel coordinates with
  ``inv(roi_affine) @ image_affine`` and rounded to the nearest ROI voxel; image voxels
  whose centre falls outside the ROI grid get label 0. Ties (a centre exactly halfway
  between two ROI voxel centres, as for an ROI at exactly twice the image resolution)
  go to the higher ROI index, robustly against affine rounding of up to 1e-4 voxel.

Nearest-neighbour sampling of an ROI *finer* than the image keeps the label of the ROI
voxel at each image voxel's centre; it neither dilates nor applies a partial-volume
threshold.

Statistics
----------
:func:`roi_statistics` summarises parameter maps (e.g. :meth:`dce.fit.TracerKineticFit.maps`)
per label: mean, median, SD, 5th/25th/75th/95th percentiles and maximum of the finite
voxel values, the number of finite values and the fraction of voxels whose fit failed
(status not in ``usable_status``). The seed review quotes "maximum" Vp/Ktrans values
of lesions; a true maximum follows single noisy voxels, so both the 95th percentile and
the maximum are reported. :func:`roi_curves` averages the signal per label and :func:`roi_tic_table`
applies :mod:`dce.semiquant` to the mean curves of the lesions and of normal marrow,
including RSlope_max.

Session tables
--------------
:func:`session_roi_table` joins the statistics of the lesions and of normal marrow with
their TIC metrics (one row per ROI, the table the ``roi`` rule writes);
:func:`roi_curve_table` gives the mean curves in long format; :func:`long_roi_table` gives
the map statistics of an ROI table in long format (one row per ROI, map and statistic:
``subject, session, roi, label, map, statistic, value, unit``; for R and pandas users,
written next to each wide table); :func:`shown_map` masks a
kinetic parameter map by fit status for display (:mod:`dce.registry`:
``masked_by_status``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import pandas as pd

from dce.registry import STATUS_SHOWN, STATUS_USABLE, OutputMap, map_by_column, output_map
from dce.semiquant import (
    TICRule,
    classify_tic,
    normalized_peak_enhancement,
    relative_enhancement,
    rslope_max,
    tic_metrics,
)

__all__ = [
    "LONG_COLUMNS",
    "MAP_STATISTICS",
    "PERCENTILES",
    "ROICurves",
    "ROIWarning",
    "cohort_long_table",
    "flag_summary",
    "keep_expected_labels",
    "lesion_names",
    "long_roi_table",
    "map_panel_fields",
    "map_statistic_columns",
    "match_roi",
    "require_labels",
    "roi_curve_table",
    "roi_curves",
    "roi_statistics",
    "roi_tic_table",
    "session_roi_table",
    "shown_map",
    "tic_curve_fields",
]

#: Percentiles reported by :func:`roi_statistics` (column suffixes ``_p5`` ... ``_p95``).
PERCENTILES = (5, 25, 75, 95)

#: Statistics of each map in the ROI tables, in column order: column ``<map column>_<statistic>``
#: (e.g. ``ktrans_per_min_p95``; ``n_finite``: the number of finite voxel values).
MAP_STATISTICS: tuple[str, ...] = ("mean", "median", "sd", *(f"p{q}" for q in PERCENTILES),
                                   "max", "n_finite")
#: Columns of :func:`long_roi_table`.
LONG_COLUMNS: tuple[str, ...] = ("subject", "session", "roi", "label", "map", "statistic",
                                 "value", "unit")
#: Unit of the ``n_finite`` statistic in :func:`long_roi_table`.
COUNT_UNIT = "voxels"
_IAUC_COLUMN = re.compile(r"iauc_(\d+)s")

#: Largest displacement (in voxels, anywhere on the grid) for which two grids count as
#: identical or as an exact axis permutation/flip of each other.
_GRID_TOL_VOX = 1e-3
#: Rounding offset that sends exact ties to the higher ROI index despite affine rounding.
_TIE_EPS_VOX = 1e-4
#: Largest deviation from a whole number accepted in a floating-point label volume.
_LABEL_TOL = 1e-3
#: Image voxels processed per block in nearest-neighbour resampling (memory bound).
_BLOCK_VOXELS = 1 << 22

_F64 = NDArray[np.float64]
_I64 = NDArray[np.int64]


class ROIWarning(UserWarning):
    """An ROI was used, but part of it was lost (outside the image, or overlapping)."""


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------

def _labels_from(data: ArrayLike, what: str) -> _I64:
    """Non-negative whole-number labels as int64; ``what`` starts every error message."""
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{what}: labels must be numbers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{what}: empty array")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            n_bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise ValueError(f"{what}: {n_bad} NaN or infinite label value(s)")
        rounded = np.rint(arr)
        off = np.abs(arr - rounded) > _LABEL_TOL
        if np.any(off):
            bad = np.unique(arr[off])
            shown = ", ".join(f"{v:g}" for v in bad[:5]) + (", ..." if bad.size > 5 else "")
            raise ValueError(
                f"{what}: non-integer label values ({shown}; {int(off.sum())} voxels): a "
                "label volume must hold whole numbers (0 = background); is this a "
                "probability map or a mask resampled with linear interpolation?")
        arr = rounded
    if arr.min() < 0:
        raise ValueError(f"{what}: negative label value {arr.min():g}; labels must be >= 0 "
                         "(0 = background)")
    if arr.max() > np.iinfo(np.int32).max:
        raise ValueError(f"{what}: label value {arr.max():g} is too large (max 2**31 - 1)")
    return np.asarray(arr, dtype=np.int64)


def _label_volume(data: ArrayLike, name: str) -> _I64:
    """A 3-D ROI volume; a trailing singleton 4th axis (one volume) is dropped."""
    arr = np.asarray(data)
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        extra = (f" with {arr.shape[3]} volumes; give one 3-D label volume (several lesions "
                 "are several labels in one volume, not several volumes)"
                 if arr.ndim == 4 else "")
        raise ValueError(f"{name}: expected a 3-D ROI label volume, got {arr.ndim}-D shape "
                         f"{arr.shape}{extra}")
    return _labels_from(arr, name)


def _affine(aff: ArrayLike, what: str) -> _F64:
    try:
        a = np.asarray(aff, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a 4x4 array of numbers") from None
    if a.shape != (4, 4):
        raise ValueError(f"{what}: expected a 4x4 voxel-to-world matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: contains NaN or infinite values")
    if not np.allclose(a[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError(f"{what}: last row must be [0, 0, 0, 1], got {a[3].tolist()}")
    cols = np.linalg.norm(a[:3, :3], axis=0)
    if np.any(cols == 0) or abs(np.linalg.det(a[:3, :3] / cols)) < 1e-6:
        raise ValueError(f"{what}: singular (zero voxel size or collinear axes)")
    return a


def _shape3(shape: Any, what: str) -> tuple[int, int, int]:
    try:
        s = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a shape (n_i, n_j, n_k[, n_t]), got "
                         f"{shape!r}") from None
    if len(s) not in (3, 4) or min(s) < 1:
        raise ValueError(f"{what}: expected 3 or 4 positive sizes (spatial axes first), got "
                         f"{s}")
    return s[0], s[1], s[2]


# --------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------

def _corners(shape: tuple[int, ...]) -> _F64:
    """Homogeneous voxel coordinates (4, 8) of the corner voxel centres of a grid."""
    hi = np.asarray(shape[:3], dtype=np.float64) - 1.0
    c = np.array(np.meshgrid([0.0, hi[0]], [0.0, hi[1]], [0.0, hi[2]], indexing="ij"))
    return np.vstack([c.reshape(3, -1), np.ones((1, 8))])


def _plan(m: _F64, roi_shape: tuple[int, ...], img_shape: tuple[int, int, int]
          ) -> tuple[str, tuple[int, int, int], tuple[bool, bool, bool]]:
    """How to bring the ROI onto the image grid.

    ``m`` maps image voxel indices to ROI voxel indices. Returns ``("identity", ...)``,
    ``("permute", axes, flips)`` with ``np.flip(np.transpose(roi, axes), flipped axes)``
    equal to the ROI on the image grid, or ``("resample", ...)``.
    """
    none = ((0, 1, 2), (False, False, False))
    snapped = np.rint(m)
    err = np.max(np.abs((m - snapped) @ _corners(img_shape)))
    if err > _GRID_TOL_VOX:
        return "resample", *none
    r = snapped[:3, :3]
    if not (np.all(np.sum(np.abs(r), axis=0) == 1) and np.all(np.sum(np.abs(r), axis=1) == 1)):
        return "resample", *none
    axes = [0, 0, 0]
    flips = [False, False, False]
    for b in range(3):                      # image axis b comes from ROI axis a
        a = int(np.flatnonzero(r[:, b])[0])
        if roi_shape[a] != img_shape[b]:
            return "resample", *none
        flip = bool(r[a, b] < 0)
        if snapped[a, 3] != (roi_shape[a] - 1 if flip else 0):
            return "resample", *none
        axes[b] = a
        flips[b] = flip
    if axes == [0, 1, 2] and not any(flips):
        return "identity", *none
    return "permute", (axes[0], axes[1], axes[2]), (flips[0], flips[1], flips[2])


def _nearest(roi: _I64, m: _F64, img_shape: tuple[int, int, int]) -> _I64:
    """Nearest-neighbour sample of ``roi`` at every image voxel centre (vectorised)."""
    ni, nj, nk = img_shape
    out = np.zeros(img_shape, dtype=np.int64)
    ii = np.arange(ni, dtype=np.float64)[:, None, None]
    jj = np.arange(nj, dtype=np.float64)[None, :, None]
    step = max(1, _BLOCK_VOXELS // max(1, ni * nj))
    rs = np.asarray(roi.shape)
    for k0 in range(0, nk, step):
        kk = np.arange(k0, min(nk, k0 + step), dtype=np.float64)[None, None, :]
        idx = []
        valid = np.ones((ni, nj, kk.size), dtype=bool)
        for a in range(3):
            c = m[a, 0] * ii + m[a, 1] * jj + m[a, 2] * kk + m[a, 3]
            ia = np.floor(c + (0.5 + _TIE_EPS_VOX)).astype(np.int64)
            valid &= (ia >= 0) & (ia < rs[a])
            idx.append(ia)
        block = np.zeros(valid.shape, dtype=np.int64)
        block[valid] = roi[idx[0][valid], idx[1][valid], idx[2][valid]]
        out[:, :, k0:k0 + kk.size] = block
    return out


def _fmt_box(lo: _F64, hi: _F64) -> str:
    return ", ".join(f"{ax} {a:.1f}..{b:.1f}" for ax, a, b in zip("xyz", lo, hi, strict=True))


def _bbox(roi: _I64) -> tuple[_F64, _F64]:
    """Lowest and highest voxel index (3,) of the labelled voxels along each axis."""
    lo, hi = np.zeros(3), np.zeros(3)
    for a in range(3):
        hit = np.flatnonzero(np.any(roi > 0, axis=tuple(b for b in range(3) if b != a)))
        lo[a], hi[a] = hit[0], hit[-1]
    return lo, hi


def _coverage(roi: _I64, a_roi: _F64, a_img: _F64, img_shape: tuple[int, int, int],
              *, per_voxel: bool) -> tuple[_I64, _I64, _I64, bool, _F64]:
    """Per ROI label: voxel count and voxels whose centre is inside the image FOV box.

    Also whether any labelled ROI voxel box overlaps the FOV box at all (computed only
    with ``per_voxel``), and the world coordinates (3, n) of the labelled voxel centres
    (the 8 bounding-box corners without ``per_voxel``). Without ``per_voxel`` the
    voxel-by-voxel test is skipped when the bounding box of the labelled voxels lies
    inside the field of view (then every voxel does).
    """
    inv_img = np.linalg.inv(a_img)
    to_img = inv_img @ a_roi                                    # ROI index -> image index
    hi_img = np.asarray(img_shape, dtype=np.float64)[:, None] - 0.5
    tol = _TIE_EPS_VOX

    def centre_inside(vox: _F64) -> NDArray[np.bool_]:
        c = to_img[:3, :3] @ vox + to_img[:3, 3:4]
        return np.all((c >= -0.5 - tol) & (c <= hi_img + tol), axis=0)

    vals = roi[roi > 0]
    if vals.max() <= 1 << 16:
        n_all = np.bincount(vals)
        ulab = np.flatnonzero(n_all)
        n_all = n_all[ulab]
    else:
        ulab, n_all = np.unique(vals, return_counts=True)
    ulab, n_all = ulab.astype(np.int64), n_all.astype(np.int64)
    lo, hi = _bbox(roi)
    corners = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1)
    if not per_voxel and np.all(centre_inside(corners)):
        world = a_roi[:3, :3] @ corners + a_roi[:3, 3:4]
        return ulab, n_all, n_all.copy(), True, world
    vox = np.argwhere(roi > 0).T.astype(np.float64)            # (3, n), C order like vals
    _, inv = np.unique(vals, return_inverse=True)
    inside = centre_inside(vox)
    n_in = np.bincount(inv, weights=inside, minlength=ulab.size).astype(np.int64)
    world = a_roi[:3, :3] @ vox + a_roi[:3, 3:4]
    overlaps = bool(np.any(inside))
    if per_voxel and not overlaps:
        # half-extent of an ROI voxel along each image axis (axis-aligned bounding box)
        c = to_img[:3, :3] @ vox + to_img[:3, 3:4]
        half = 0.5 * np.sum(np.abs(to_img[:3, :3]), axis=1)[:, None]
        overlaps = bool(np.any(np.all((c + half > -0.5) & (c - half < hi_img), axis=0)))
    return ulab, n_all, n_in, overlaps, world


def match_roi(roi_data: ArrayLike, roi_affine: ArrayLike, image_shape: Iterable[int],
              image_affine: ArrayLike, *, name: str) -> NDArray[np.int32]:
    """Put an ROI label volume on the grid of an image, matching in world coordinates.

    Parameters
    ----------
    roi_data : array_like, shape (n_x, n_y, n_z) or (n_x, n_y, n_z, 1)
        Label volume: 0 background, positive whole numbers for regions (lesion labels,
        or 1 for a binary mask). Integer, boolean or floating point with whole-number
        values (to 1e-3, as NIfTI scaling may leave). A trailing axis of length 1 is
        dropped.
    roi_affine : array_like, shape (4, 4)
        Voxel-to-world (RAS+ mm) affine of ``roi_data``. Any orientation and voxel order.
    image_shape : sequence of int
        Shape of the image, ``(n_i, n_j, n_k)`` or ``(n_i, n_j, n_k, n_t)`` (only the
        spatial axes are used).
    image_affine : array_like, shape (4, 4)
        Voxel-to-world (RAS+ mm) affine of the image.
    name : str
        Name of the ROI file, used in every error and warning message.

    Returns
    -------
    ndarray of int32, shape ``image_shape[:3]``
        Labels on the image grid (a new array). Identical grids pass through, grids
        that differ only in axis order and direction are transposed/flipped exactly,
        other grids are resampled by nearest neighbour (rules in the module docstring).

    Raises
    ------
    ValueError
        Message starting with ``name``: the ROI is not 3-D (e.g. 4-D with several
        volumes), holds non-integer, negative, NaN or no non-zero labels, an affine is
        not a valid 4x4 voxel-to-world matrix, no labelled ROI voxel overlaps the image
        field of view (wrong image, wrong affine), or the ROI overlaps it but no image
        voxel centre falls inside any labelled ROI voxel (empty after matching).

    Warns
    -----
    ROIWarning
        Labels partly outside the image field of view (the statistics then use only the
        part inside) and labels lost entirely by nearest-neighbour sampling.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: the ROI file name is required, got {name!r}")
    roi = _label_volume(roi_data, name)
    a_roi = _affine(roi_affine, f"{name}: ROI affine")
    img_shape = _shape3(image_shape, f"{name}: image_shape")
    a_img = _affine(image_affine, f"{name}: image affine")
    if not np.any(roi):
        raise ValueError(f"{name}: the ROI contains no labelled (non-zero) voxel")

    m = np.linalg.inv(a_roi) @ a_img        # image voxel index -> ROI voxel index
    kind, axes, flips = _plan(m, roi.shape, img_shape)
    if kind == "identity":
        return roi.astype(np.int32)
    if kind == "permute":
        out = np.transpose(roi, axes)
        flip_axes = tuple(b for b in range(3) if flips[b])
        if flip_axes:
            out = np.flip(out, axis=flip_axes)
        return np.ascontiguousarray(out, dtype=np.int32)

    out = _nearest(roi, m, img_shape)
    empty = not np.any(out)
    ulab, n_all, n_in, overlaps, world = _coverage(roi, a_roi, a_img, img_shape,
                                                   per_voxel=empty)
    if empty:
        if not overlaps:
            fov = a_img @ _corners(img_shape)
            half = 0.5 * np.sum(np.abs(a_img[:3, :3]), axis=1)
            raise ValueError(
                f"{name}: the ROI lies entirely outside the image field of view (labelled "
                f"ROI voxel centres span world mm {_fmt_box(world.min(1), world.max(1))}; "
                f"the image covers {_fmt_box(fov[:3].min(1) - half, fov[:3].max(1) + half)}"
                "): ROI of another series or session, or a wrong affine?")
        raise ValueError(
            f"{name}: empty after matching to the image grid: the labelled ROI voxels "
            "overlap the image field of view but no image voxel centre falls inside any of "
            "them (ROI much thinner than the image voxels, e.g. drawn on one thin slice?)")
    present = np.unique(out[out > 0])
    notes = []
    for lab, na, ni_ in zip(ulab.tolist(), n_all.tolist(), n_in.tolist(), strict=True):
        if lab not in present:
            notes.append(f"label {lab} lost entirely ({na} ROI voxels, "
                         f"{na - ni_} of them outside the image field of view)")
        elif ni_ < na:
            notes.append(f"label {lab}: {100.0 * (na - ni_) / na:.0f}% of its {na} ROI voxels "
                         "lie outside the image field of view")
    if notes:
        warnings.warn(f"{name}: " + "; ".join(notes), ROIWarning, stacklevel=2)
    return out.astype(np.int32)


def require_labels(labels: ArrayLike, expected: Iterable[int], name: str, *,
                   expected_from: str | None = None) -> NDArray[np.int64]:
    """Check that every expected label has at least one voxel.

    Parameters
    ----------
    labels : array_like of int
        Label volume, usually the output of :func:`match_roi`.
    expected : iterable of int
        Labels that must be present, e.g. the lesion labels of this subject in
        ``lesions.tsv``.
    name : str
        Name of the ROI file (start of the error message).
    expected_from : str, optional
        Where the expected labels come from (e.g. ``"lesions.tsv"``), for the message.

    Returns
    -------
    ndarray of int64
        The non-zero labels present, sorted (may include labels not expected).

    Raises
    ------
    ValueError
        ``"<name>: lesion label(s) 3, 5 listed in <expected_from> not found in the ROI
        (labels present: 1, 2)"``; also for invalid label arrays or expected values.
    """
    lab = _labels_from(labels, name)
    present = np.unique(lab[lab > 0])
    try:
        exp = np.unique(np.asarray(list(expected), dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected labels must be whole numbers, got "
                         f"{expected!r}") from None
    if np.any(exp != np.rint(exp)) or np.any(exp <= 0):
        raise ValueError(f"{name}: expected labels must be positive whole numbers, got "
                         f"{exp.tolist()}")
    missing = np.setdiff1d(exp.astype(np.int64), present)
    if missing.size:
        src = f" listed in {expected_from}" if expected_from else " expected"
        have = ", ".join(map(str, present.tolist())) or "none"
        raise ValueError(f"{name}: lesion label(s) {', '.join(map(str, missing.tolist()))}"
                         f"{src} not found in the ROI (labels present: {have})")
    return present.astype(np.int64)


# --------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------

class _Groups(NamedTuple):
    labels: _I64      # (n_labels,) sorted non-zero labels
    voxels: _I64      # (n_roi,) flat voxel indices, ordered by label
    group: _I64       # (n_roi,) label index of each voxel
    counts: _I64      # (n_labels,)
    starts: _I64      # (n_labels,) first position of each label in ``voxels``


def _groups(labels: ArrayLike, what: str) -> _Groups:
    lab = _labels_from(labels, what).ravel()
    vox = np.flatnonzero(lab)
    if vox.size == 0:
        raise ValueError(f"{what}: no labelled (non-zero) voxel")
    ulab, grp = np.unique(lab[vox], return_inverse=True)
    order = np.argsort(grp, kind="stable")
    counts = np.bincount(grp, minlength=ulab.size).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return _Groups(ulab.astype(np.int64), vox[order].astype(np.int64),
                   grp[order].astype(np.int64), counts, starts)


def _lerp(a: _F64, b: _F64, t: _F64) -> _F64:
    """numpy's linear interpolation (same rounding as ``np.percentile``)."""
    d = b - a
    return np.where(t >= 0.5, b - d * (1.0 - t), a + d * t)


def _grouped_stats(values: _F64, g: _Groups, ddof: int) -> dict[str, _F64]:
    """Per-label statistics of ``values`` (already ordered like ``g.voxels``)."""
    n_lab = g.labels.size
    fin = np.isfinite(values)
    nf = np.bincount(g.group, weights=fin, minlength=n_lab)
    x = np.where(fin, values, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(nf > 0, np.bincount(g.group, weights=x, minlength=n_lab) / nf, np.nan)
        dev = np.where(fin, values - mean[g.group], 0.0)
        ss = np.bincount(g.group, weights=dev * dev, minlength=n_lab)
        sd = np.where(nf > ddof, np.sqrt(ss / (nf - ddof)), np.nan)
    # sort by value within each label, non-finite values last
    srt = values[np.lexsort((np.where(fin, values, np.inf), g.group))]
    nfi = nf.astype(np.int64)
    has = nfi > 0
    last = np.maximum(nfi - 1, 0)

    def pct(q: float) -> _F64:
        pos = last * (q / 100.0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        val = _lerp(srt[g.starts + lo], srt[g.starts + hi], pos - lo)
        return np.where(has, val, np.nan)

    out = {"mean": mean, "median": pct(50.0), "sd": sd}
    for q in PERCENTILES:
        out[f"p{q}"] = pct(float(q))
    out["max"] = np.where(has, srt[g.starts + last], np.nan)
    out["n_finite"] = nf
    return out


def roi_statistics(maps: Mapping[str, ArrayLike], labels: ArrayLike, *,
                   status: ArrayLike | None = None, voxel_volume_mm3: float | None = None,
                   usable_status: tuple[int, ...] = (0,),
                   ddof: int = 1) -> pd.DataFrame:
    """Per-label summary statistics of parameter maps (vectorised over voxels).

    Parameters
    ----------
    maps : mapping of str to array_like
        Parameter maps with the shape of ``labels``, keyed by output name with units
        (``ktrans_per_min``, ``kep_per_min``, ``ve``, ``vp``, ``r2``, ...), e.g.
        :meth:`dce.fit.TracerKineticFit.maps`. A ``"status"`` entry is taken as the fit
        status (as if passed as ``status``), not summarised.
    labels : array_like of int
        Label volume (0 = background), e.g. from :func:`match_roi`.
    status : array_like of int, optional
        Per-voxel fit status (:data:`dce.fit.STATUS_FIT`; 0 = ok). A value not in
        ``usable_status``, including -1 (outside the fit mask), counts as a failed fit.
    usable_status : tuple of int
        Status codes that count as fitted (default ``(0,)``; the workflow passes
        :data:`dce.fit.STATUS_USABLE`, which adds "no uptake", "not enhancing" and the
        nested-model codes).
    voxel_volume_mm3 : float, optional
        Voxel volume (mm^3); adds a ``volume_mm3`` column.
    ddof : int
        Delta degrees of freedom of the SD; default 1 (sample SD), 0 for the population
        SD (``np.std`` default).

    Returns
    -------
    pandas.DataFrame
        One row per non-zero label present, sorted, with columns ``label``,
        ``n_voxels``, [``volume_mm3``], [``n_fit_failed``, ``fit_failed_fraction``], and
        for each map ``<map>_mean``, ``_median``, ``_sd``, ``_p5``, ``_p25``, ``_p75``,
        ``_p95``, ``_max`` (in the map's units) and ``_n_finite``. Statistics use the
        finite voxel values only: NaN/inf voxels (e.g. kep where Ktrans = 0, failed
        fits) are left out and counted by ``n_voxels - <map>_n_finite``; a label without
        finite values gets NaN. Percentiles are those of ``np.percentile`` (linear
        interpolation between order statistics); the median is the 50th percentile.
        ``fit_failed_fraction = n_fit_failed / n_voxels`` (0..1).

    Raises
    ------
    ValueError
        Invalid labels (negative, non-integer, none non-zero), a map or status whose
        shape differs from ``labels``, non-numeric maps, ``status`` given twice.
    """
    import pandas as pd  # lazy: the ROI readers (dce.io.rois) import this module

    lab_arr = np.asarray(labels)
    g = _groups(lab_arr, "labels")
    maps = dict(maps)
    if "status" in maps:
        if status is not None:
            raise ValueError("status: given both as maps['status'] and as status=")
        status = maps.pop("status")
    cols: dict[str, Any] = {"label": g.labels, "n_voxels": g.counts}
    if voxel_volume_mm3 is not None:
        vv = float(voxel_volume_mm3)
        if not (np.isfinite(vv) and vv > 0):
            raise ValueError(f"voxel_volume_mm3: must be > 0, got {voxel_volume_mm3!r}")
        cols["volume_mm3"] = g.counts * vv
    if isinstance(ddof, bool) or not isinstance(ddof, (int, np.integer)) or ddof < 0:
        raise ValueError(f"ddof: expected a non-negative integer, got {ddof!r}")
    if status is not None:
        st = np.asarray(status)
        if st.shape != lab_arr.shape:
            raise ValueError(f"status: shape {st.shape} differs from labels {lab_arr.shape}")
        if not np.issubdtype(st.dtype, np.integer):
            raise ValueError(f"status: expected integer status codes, got dtype {st.dtype}")
        failed = ~np.isin(st.ravel()[g.voxels], np.asarray(usable_status))
        n_failed = np.bincount(g.group, weights=failed, minlength=g.labels.size)
        cols["n_fit_failed"] = n_failed.astype(np.int64)
        cols["fit_failed_fraction"] = n_failed / g.counts
    for key, arr in maps.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"maps: keys must be non-empty names, got {key!r}")
        try:
            a = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"maps[{key!r}]: expected numbers") from None
        if a.shape != lab_arr.shape:
            raise ValueError(f"maps[{key!r}]: shape {a.shape} differs from labels "
                             f"{lab_arr.shape}")
        stats = _grouped_stats(a.ravel()[g.voxels], g, int(ddof))
        for stat, val in stats.items():
            cols[f"{key}_{stat}"] = val.astype(np.int64) if stat == "n_finite" else val
    return pd.DataFrame(cols)


# --------------------------------------------------------------------------------------
# curves
# --------------------------------------------------------------------------------------

class ROICurves(NamedTuple):
    """Per-label signal curves: ``labels, mean, sd = roi_curves(signal, labels)``.

    Attributes
    ----------
    labels : ndarray of int64, shape (n_labels,)
        Sorted non-zero labels.
    mean : ndarray, shape (n_labels, n_times)
        Mean signal of the label's voxels at each phase (signal units).
    sd : ndarray, shape (n_labels, n_times)
        Standard deviation across the label's voxels (signal units).
    """

    labels: NDArray[np.int64]
    mean: _F64
    sd: _F64


def _signal_rows(signal_4d: ArrayLike, lab_shape: tuple[int, ...]) -> NDArray[Any]:
    """The signal as an array, checked against the label shape (not reshaped: a
    Fortran-ordered image would be copied whole)."""
    sig = np.asarray(signal_4d)
    if not (np.issubdtype(sig.dtype, np.number) or sig.dtype == np.bool_):
        raise ValueError(f"signal_4d: expected numbers, got dtype {sig.dtype}")
    if sig.ndim != len(lab_shape) + 1 or sig.shape[:-1] != lab_shape:
        raise ValueError(f"signal_4d: shape {sig.shape} does not match the labels "
                         f"{lab_shape} + (n_times,)")
    if sig.shape[-1] < 1:
        raise ValueError("signal_4d: no time points")
    return sig


def roi_curves(signal_4d: ArrayLike, labels: ArrayLike, *, ddof: int = 1) -> ROICurves:
    """Mean and SD time-intensity curve of each label.

    Parameters
    ----------
    signal_4d : array_like, shape (n_i, n_j, n_k, n_times)
        Dynamic signal (signal units), or concentration (mM); any spatial rank works
        as long as it matches ``labels`` plus a trailing time axis.
    labels : array_like of int, shape (n_i, n_j, n_k)
        Label volume on the same grid (0 = background), e.g. from :func:`match_roi`.
    ddof : int
        Delta degrees of freedom of the SD (default 1).

    Returns
    -------
    ROICurves
        ``(labels, mean, sd)``; NaN/inf samples are left out of the mean and SD of their
        phase (a phase without finite samples gives NaN).
    """
    lab_arr = np.asarray(labels)
    g = _groups(lab_arr, "labels")
    sig = _signal_rows(signal_4d, lab_arr.shape)
    if isinstance(ddof, bool) or not isinstance(ddof, (int, np.integer)) or ddof < 0:
        raise ValueError(f"ddof: expected a non-negative integer, got {ddof!r}")
    rows = sig[np.unravel_index(g.voxels, lab_arr.shape)]   # (n_voxels, n_times), ROI only
    n_lab, n_t = g.labels.size, rows.shape[1]
    mean = np.empty((n_lab, n_t))
    sd = np.empty((n_lab, n_t))
    for k in range(n_t):                    # loop over phases, vectorised over voxels
        x = np.asarray(rows[:, k], dtype=np.float64)
        fin = np.isfinite(x)
        nf = np.bincount(g.group, weights=fin, minlength=n_lab)
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = np.bincount(g.group, weights=np.where(fin, x, 0.0), minlength=n_lab) / nf
            dev = np.where(fin, x - mu[g.group], 0.0)
            ss = np.bincount(g.group, weights=dev * dev, minlength=n_lab)
            mean[:, k] = np.where(nf > 0, mu, np.nan)
            sd[:, k] = np.where(nf > ddof, np.sqrt(ss / (nf - ddof)), np.nan)
    return ROICurves(g.labels, mean, sd)


def roi_tic_table(signal_4d: ArrayLike, t_s: ArrayLike, lesion_labels: ArrayLike,
                  marrow_roi: ArrayLike | None = None, *, n_baseline: int | None = None,
                  baseline_idx: ArrayLike | None = None, t_arrival_s: float | None = None,
                  iauc_windows_s: ArrayLike = (60.0, 90.0), rule: TICRule | None = None,
                  rslope_from: Literal["pct", "absolute"] = "pct") -> pd.DataFrame:
    """TIC metrics and TIC type of each lesion's and of normal marrow's mean curve.

    Parameters
    ----------
    signal_4d : array_like, shape (n_i, n_j, n_k, n_times)
        Dynamic signal (signal units, not concentration: the metrics are relative to
        the pre-contrast signal).
    t_s : array_like, shape (n_times,)
        Phase times (s), strictly increasing.
    lesion_labels : array_like of int, shape (n_i, n_j, n_k)
        Lesion label volume on the image grid (:func:`match_roi`).
    marrow_roi : array_like of int, shape (n_i, n_j, n_k), optional
        Normal-marrow reference ROI on the image grid; every non-zero voxel counts.
        Without it the marrow row is absent and ``rslope_max`` and
        ``normalized_peak_enhancement`` are NaN.
    n_baseline, baseline_idx, t_arrival_s, iauc_windows_s
        As in :func:`dce.semiquant.tic_metrics` (``t_arrival_s``: one arrival time (s)
        for all curves, default the last baseline phase).
    rule : dce.semiquant.TICRule, optional
        TIC type thresholds (default ``TICRule()``).
    rslope_from : {"pct", "absolute"}
        Slope used for RSlope_max: ``max_slope_pct_per_s`` (default; relative to each
        curve's own S0, so receive-coil sensitivity cancels) or ``max_slope_per_s``.

    Returns
    -------
    pandas.DataFrame
        One row per lesion label (``roi = "lesion"``, ``label`` the lesion label) and,
        with ``marrow_roi``, a last row ``roi = "marrow"`` (``label`` <NA>). Columns:
        ``roi``, ``label`` (nullable Int64), ``n_voxels``, every column of
        :meth:`dce.semiquant.TICMetrics.as_dict` (``s0``, ``peak_enhancement_pct``,
        ``time_to_peak_s``, ``max_slope_per_s``, ``max_slope_pct_per_s``,
        ``iauc_60s``, ``washout_pct``, ``flags``, ...), ``tic_type`` (``"A"``..``"E"``,
        ``""`` if unclassifiable), ``tic_early_fraction``, ``tic_late_change_pct``
        (:class:`dce.semiquant.TICFeatures`), ``normalized_peak_enhancement`` (lesion
        peak SE% / marrow peak SE%) and ``rslope_max`` (lesion max slope / marrow max
        slope, dimensionless; 1 in the marrow row).

    Raises
    ------
    ValueError
        Invalid labels or shapes, or invalid arguments (see :mod:`dce.semiquant`).

    Warns
    -----
    ROIWarning
        If the marrow ROI overlaps lesion voxels (the reference is then contaminated).
    """
    import pandas as pd  # lazy: the ROI readers (dce.io.rois) import this module

    if rslope_from not in ("pct", "absolute"):
        raise ValueError(f"rslope_from: must be 'pct' or 'absolute', got {rslope_from!r}")
    les = roi_curves(signal_4d, lesion_labels)
    les_lab = _labels_from(lesion_labels, "lesion_labels")
    lab_shape = les_lab.shape
    n_vox = np.unique(les_lab[les_lab > 0], return_counts=True)[1]
    curves = les.mean
    has_marrow = marrow_roi is not None
    if marrow_roi is not None:
        mar = _labels_from(marrow_roi, "marrow_roi")
        if mar.shape != lab_shape:
            raise ValueError(f"marrow_roi: shape {mar.shape} differs from lesion_labels "
                             f"{lab_shape}")
        mar_bin = (mar > 0).astype(np.int64)
        overlap = int(np.count_nonzero(mar_bin & (les_lab > 0)))
        if overlap:
            warnings.warn(f"marrow_roi: {overlap} voxel(s) also belong to a lesion; the "
                          "normal-marrow reference includes them", ROIWarning, stacklevel=2)
        mc = roi_curves(signal_4d, mar_bin)
        curves = np.vstack([curves, mc.mean])
        n_vox = np.append(n_vox, int(mar_bin.sum()))
    kw: dict[str, Any] = {"n_baseline": n_baseline, "baseline_idx": baseline_idx,
                          "t_arrival_s": t_arrival_s, "allow_nan": True}
    met = tic_metrics(curves, t_s, iauc_windows_s=iauc_windows_s, **kw)
    types, feat = classify_tic(curves, t_s, rule=rule, return_details=True, **kw)

    n_les = les.labels.size
    label_col = pd.array([*les.labels.tolist(), *([None] if has_marrow else [])],
                         dtype="Int64")
    table: dict[str, Any] = {
        "roi": ["lesion"] * n_les + (["marrow"] if has_marrow else []),
        "label": label_col, "n_voxels": n_vox.astype(np.int64)}
    table.update(met.as_dict())
    table["tic_type"] = types
    table["tic_early_fraction"] = feat.early_fraction
    table["tic_late_change_pct"] = feat.late_change_pct
    slope = met.max_slope_pct_per_s if rslope_from == "pct" else met.max_slope_per_s
    if has_marrow:
        table["normalized_peak_enhancement"] = normalized_peak_enhancement(
            met.peak_enhancement_pct, met.peak_enhancement_pct[-1])
        table["rslope_max"] = rslope_max(slope, slope[-1])
    else:
        table["normalized_peak_enhancement"] = np.full(n_les, np.nan)
        table["rslope_max"] = np.full(n_les, np.nan)
    return pd.DataFrame(table)


# ----------------------------------------------------------------------------- sessions

def keep_expected_labels(labels: ArrayLike, expected: Iterable[int], name: str, *,
                         expected_from: str | None = None) -> tuple[NDArray[Any], list[int]]:
    """Check the expected labels (:func:`require_labels`) and drop the others.

    Returns
    -------
    labels : ndarray
        The label volume (its own dtype) with labels not in ``expected`` set to 0.
    extra : list of int
        The labels present but not expected (dropped), sorted.
    """
    exp = list(expected)
    lab = np.asarray(labels)
    present = require_labels(lab, exp, name, expected_from=expected_from)
    extra = sorted(set(present.tolist()) - set(exp))
    if extra:
        lab = np.where(np.isin(lab, exp), lab, 0)
    return lab, extra


def lesion_names(levels: Mapping[int, str]) -> dict[int, str]:
    """Display names ``"lesion 2 (L3)"`` of lesion labels (``levels``: label -> level,
    ``""`` when unknown)."""
    return {int(k): f"lesion {k}" + (f" ({v})" if v else "") for k, v in levels.items()}


def session_roi_table(maps: Mapping[str, ArrayLike], signal_4d: ArrayLike, t_s: ArrayLike,
                      lesions: ArrayLike, marrow: ArrayLike | None, *,
                      voxel_volume_mm3: float, n_baseline: int,
                      iauc_windows_s: ArrayLike, rule: TICRule,
                      rslope_from: Literal["pct", "absolute"],
                      index: Mapping[str, Any], levels: Mapping[int, str]
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Statistics and TIC metrics of each lesion and of normal marrow of one session.

    Parameters
    ----------
    maps : mapping of str to array_like
        Parameter maps keyed by column (:mod:`dce.registry`), including ``status`` (the
        fit status, :data:`dce.fit.STATUS_FIT`; fits outside :data:`dce.fit.STATUS_USABLE`
        count as failed).
    signal_4d, t_s, lesions, marrow
        Dynamic signal, phase times (s), lesion labels and the normal-marrow ROI (or
        None), on one grid (:func:`roi_tic_table`).
    voxel_volume_mm3 : float
        Volume of one voxel (mm^3).
    n_baseline, iauc_windows_s, rule, rslope_from
        As in :func:`roi_tic_table`.
    index : mapping
        Leading columns (e.g. ``subject``, ``session``, ``days_from_rt``).
    levels : mapping of int to str
        Vertebral level of each lesion label (column ``level``; ``""`` when unknown).

    Returns
    -------
    table : pandas.DataFrame
        One row per lesion and one for marrow: ``index`` columns, ``roi``, ``label``,
        the :func:`roi_statistics` columns, ``level`` and the TIC columns (prefixed
        ``tic_`` except ``rslope_max`` and ``normalized_peak_enhancement``).
    tic : pandas.DataFrame
        The :func:`roi_tic_table` of the session.
    """
    import pandas as pd  # lazy: the ROI readers (dce.io.rois) import this module

    values = dict(maps)
    status = np.asarray(values.pop("status")).astype(np.int64)
    parts = [roi_statistics(values, lesions, status=status, voxel_volume_mm3=voxel_volume_mm3,
                            usable_status=STATUS_USABLE).assign(roi="lesion")]
    if marrow is not None:
        parts.append(roi_statistics(values, marrow, status=status,
                                    voxel_volume_mm3=voxel_volume_mm3,
                                    usable_status=STATUS_USABLE)
                     .assign(roi="marrow", label=pd.NA))  # type: ignore[arg-type]
    stats = pd.concat(parts, ignore_index=True)
    stats["label"] = stats["label"].astype("Int64")
    tic = roi_tic_table(signal_4d, t_s, lesions, marrow, n_baseline=n_baseline,
                        iauc_windows_s=iauc_windows_s, rule=rule, rslope_from=rslope_from)
    renamed = tic.drop(columns=["n_voxels"]).rename(
        columns=lambda c: c if c in ("roi", "label") or c.startswith(("tic_", "rslope"))
        or c == "normalized_peak_enhancement" else f"tic_{c}")
    table = stats.merge(renamed, on=["roi", "label"], how="left", validate="one_to_one")
    for k, (col, val) in enumerate(index.items()):
        table.insert(k, col, val)
    table.insert(len(index) + 2, "level", [levels.get(int(lab), "") if pd.notna(lab) else ""
                                           for lab in table["label"]])
    return table, tic


def roi_curve_table(signal_4d: ArrayLike, t_s: ArrayLike, lesions: ArrayLike,
                    marrow: ArrayLike | None, *, n_baseline: int,
                    index: Mapping[str, Any]
                    ) -> tuple[pd.DataFrame, list[tuple[str, int | None, _F64, _F64]]]:
    """Mean and SD curve of each lesion and of normal marrow, long format.

    Returns
    -------
    table : pandas.DataFrame
        ``index`` columns, ``roi``, ``label`` (Int64, <NA> for marrow), ``t_s``,
        ``signal_mean``, ``signal_sd`` (signal units) and ``enhancement_pct``
        (:func:`dce.semiquant.relative_enhancement` of the mean curve, %).
    curves : list of (roi, label, mean, sd)
        The curves by ROI (``label`` None for marrow; signal units), for figures.
    """
    import pandas as pd  # lazy: the ROI readers (dce.io.rois) import this module

    t = np.asarray(t_s, dtype=np.float64)
    rows: list[pd.DataFrame] = []
    curves: list[tuple[str, int | None, _F64, _F64]] = []
    for roi_name, lab_vol in (("lesion", lesions), ("marrow", marrow)):
        if lab_vol is None:
            continue
        cur = roi_curves(signal_4d, lab_vol)
        enh = 100.0 * relative_enhancement(cur.mean, n_baseline=n_baseline, allow_nan=True)
        for k, lab in enumerate(cur.labels):
            label = int(lab) if roi_name == "lesion" else None
            curves.append((roi_name, label, cur.mean[k], cur.sd[k]))
            rows.append(pd.DataFrame({
                **index, "roi": roi_name, "label": pd.NA if label is None else label,
                "t_s": t, "signal_mean": cur.mean[k], "signal_sd": cur.sd[k],
                "enhancement_pct": enh[k]}))
    table = pd.concat(rows, ignore_index=True)
    table["label"] = table["label"].astype("Int64")
    return table, curves


#: Fit status codes hidden in every map figure, kinetic or not: outside the fitted mask
#: (-1), curve not finite (1), not enhancing (5) -- the anatomy shows through there.
STATUS_HIDDEN_ALL: tuple[int, ...] = (-1, 1, 5)


def shown_map(name: str, data: ArrayLike, status: ArrayLike) -> _F64:
    """A map for display (float, NaN where not shown): a map that is
    ``masked_by_status`` (:mod:`dce.registry`) only where the fit status is in
    :data:`dce.registry.STATUS_SHOWN`; any other map not where the status is in
    :data:`STATUS_HIDDEN_ALL` (not fitted, not enhancing)."""

    out = np.asarray(data).astype(float)
    st = np.asarray(status)
    keep = np.isin(st, STATUS_SHOWN) if output_map(name).masked_by_status else \
        ~np.isin(st, STATUS_HIDDEN_ALL)
    return np.where(keep, out, np.nan)


def map_panel_fields(maps: Mapping[str, ArrayLike], names: Iterable[str],
                     status: ArrayLike) -> list[dict[str, Any]]:
    """Title, unit and display data (:func:`shown_map`, in display units) of each named
    map (the fields of :class:`dce.viz.session.MapPanel`): name, unit and scale from
    :func:`dce.viz.quantities.quantity`.

    ``maps`` is keyed by column (:func:`dce.io.maps.read_maps`)."""
    from dce.viz.quantities import quantity

    out = []
    for name in names:
        m = output_map(name)
        q = quantity(m.column)
        title, unit, scale = (q.symbol, q.unit, q.scale) if q else (m.label, m.unit, 1.0)
        out.append({"title": title, "unit": unit,
                    "data": shown_map(name, maps[m.column], status) * scale})
    return out


def tic_curve_fields(curves: Iterable[tuple[str, int | None, ArrayLike, ArrayLike]],
                     tic: pd.DataFrame, levels: Mapping[int, str]) -> list[dict[str, Any]]:
    """Name, mean and SD curve, TIC type and RSlope_max of each ROI curve (the fields of
    :class:`dce.viz.session.TICCurve`), from :func:`roi_curve_table` and
    :func:`roi_tic_table`."""
    import pandas as pd  # lazy: the ROI readers (dce.io.rois) import this module

    rows: list[Any] = list(tic.itertuples())
    tic_by = {(r.roi, r.label if pd.notna(r.label) else None): r for r in rows}
    out = []
    for roi_name, lab, mean, sd in curves:
        r: Any = tic_by.get((roi_name, lab))
        if lab is None:
            name = "normal marrow"
        else:
            lev = levels.get(lab, "")
            name = f"lesion {lab}" + (f" ({lev})" if lev else "")
        out.append({"name": name, "mean": mean, "sd": sd,
                    "tic_type": str(r.tic_type) if r is not None else "",
                    "rslope_max": float(r.rslope_max) if r is not None else None,
                    "reference": roi_name == "marrow"})
    return out


def flag_summary(table: pd.DataFrame) -> str:
    """``"lesion 1: t10_fixed; marrow: ..."``: the quality flags (``qc_flags``,
    :func:`dce.quality.add_quality_columns`) of the flagged rows of a session table
    (``""`` when none)."""
    import pandas as pd  # lazy: the ROI readers (dce.io.rois) import this module

    flagged: list[Any] = list(table[table["qc_flags"] != ""].itertuples())
    return "; ".join(("marrow" if pd.isna(r.label) else f"lesion {int(r.label)}")
                     + f": {r.qc_flags}" for r in flagged)


# --------------------------------------------------------------------------------------
# long format
# --------------------------------------------------------------------------------------

def _map_of_column(column: str) -> OutputMap | None:
    try:
        return map_by_column(column)
    except KeyError:
        m = _IAUC_COLUMN.fullmatch(column)
        return output_map(f"iauc{m.group(1)}") if m else None


def map_statistic_columns(columns: Iterable[str]) -> list[tuple[str, OutputMap, str]]:
    """The map-statistic columns among ``columns``: ``(column, map, statistic)`` in column
    order, for columns named ``<map column>_<statistic>`` (:data:`MAP_STATISTICS`) whose map
    column is one of :mod:`dce.registry` with ROI statistics (``ktrans_per_min_mean`` ->
    ``ktrans``, ``mean``; ``iauc_60s_p95`` -> ``iauc60``, ``p95``). Other columns (``n_voxels``,
    the TIC metrics such as ``rslope_max``, quality columns) are not map statistics."""
    out = []
    for col in columns:
        for stat in MAP_STATISTICS:
            if col.endswith("_" + stat):
                m = _map_of_column(col[: -len(stat) - 1])
                if m is not None and m.roi_statistics:
                    out.append((col, m, stat))
                break
    return out


def long_roi_table(wide: pd.DataFrame) -> pd.DataFrame:
    """The map statistics of a wide ROI table in long format (for R and pandas users).

    Parameters
    ----------
    wide : pandas.DataFrame
        An ROI table with ``subject``, ``session``, ``roi``, ``label`` and map-statistic
        columns (:func:`map_statistic_columns`), e.g. :func:`session_roi_table`'s.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LONG_COLUMNS`: one row per ROI row of ``wide``, map and statistic,
        in the order of ``wide``'s rows and columns. ``map`` is the map's short name of
        :mod:`dce.registry` (as in the file names: ``ktrans``, ``vp``, ``iauc60``),
        ``statistic`` one of :data:`MAP_STATISTICS`, ``value`` the wide cell (NaN where it
        is missing), ``unit`` the map's unit (``""`` when dimensionless; ``voxels`` for
        ``n_finite``). Pivoting ``value`` on (subject, session, roi, label) x (map,
        statistic) gives back the map-statistic columns of ``wide``; the other columns
        (volume, failed fits, TIC metrics, quality flags) stay in the wide table only.

    Raises
    ------
    ValueError
        ``wide`` lacks an identifying column or has no map-statistic column.
    """
    keys = list(LONG_COLUMNS[:4])
    missing = [c for c in keys if c not in wide.columns]
    if missing:
        raise ValueError(f"ROI table: lacks the column(s) {', '.join(missing)}")
    cols = map_statistic_columns(wide.columns)
    if not cols:
        raise ValueError("ROI table: no map statistic column (<map column>_<statistic>)")
    k = len(cols)
    ids = wide[keys].reset_index(drop=True)
    ids["label"] = ids["label"].astype("Int64")
    out = ids.loc[ids.index.repeat(k)].reset_index(drop=True)
    n = len(wide)
    out["map"] = np.tile(np.array([m.name for _, m, _ in cols], dtype=object), n)
    out["statistic"] = np.tile(np.array([s for _, _, s in cols], dtype=object), n)
    out["value"] = wide[[c for c, _, _ in cols]].to_numpy(dtype=np.float64).ravel()
    out["unit"] = np.tile(np.array([COUNT_UNIT if s == "n_finite" else m.unit
                                    for _, m, s in cols], dtype=object), n)
    return out


def cohort_long_table(cohort: pd.DataFrame, marrow: pd.DataFrame) -> pd.DataFrame:
    """:func:`long_roi_table` of the cohort's lesion table and normal-marrow table
    (:func:`dce.cohort.frames.cohort_frames`: ``cohort.tsv`` with a ``lesion`` column,
    ``marrow.tsv`` without): lesion rows (``roi`` ``lesion``, ``label`` the lesion),
    then marrow rows (``roi`` ``marrow``, no label)."""
    import pandas as pd  # lazy: the ROI readers (dce.io.rois) import this module

    def part(wide: pd.DataFrame, roi: str, label: Any) -> pd.DataFrame:
        cols = [c for c, _, _ in map_statistic_columns(wide.columns)]
        ids = pd.DataFrame({"subject": wide["subject"].to_numpy(),
                            "session": wide["session"].to_numpy(), "roi": roi,
                            "label": pd.array(label, dtype="Int64")})
        return long_roi_table(pd.concat([ids, wide[cols].reset_index(drop=True)], axis=1))

    return pd.concat([part(cohort, "lesion", cohort["lesion"].to_numpy()),
                      part(marrow, "marrow", [pd.NA] * len(marrow))], ignore_index=True)
