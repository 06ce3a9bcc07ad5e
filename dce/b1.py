"""B1 (transmit field) maps: unit conventions and resampling onto another image grid.

A B1 map gives the *B1 factor* in every voxel: the actual flip angle divided by the
nominal one (dimensionless, 1.0 = nominal). :class:`dce.t1.VFAModel` and
:func:`dce.signal.signal_to_concentration` take it as ``b1`` and use
``actual flip angle = b1 x nominal``.

Vendor maps store it in other units; :func:`b1_factor` converts them:

=====================  ===========================================================
convention             stored value -> factor
=====================  ===========================================================
``factor``             value (1 = nominal)
``percent``            value / 100 (100 = nominal)
``siemens_tfl_b1map``  value / 800 (flip angle in 0.1 deg of a nominal 80 deg)
``auto``               ``factor`` if the median is 0.3-2, ``percent`` if 30-200,
                       else an error with a unit hint
=====================  ===========================================================

Zero, negative and non-finite values (background of vendor maps) mean "no B1 here" and
become NaN. :func:`resample_to_grid` samples a map on another grid (e.g. the DCE grid) by
matching world (scanner) coordinates through both affines, with linear interpolation
(:func:`scipy.ndimage.map_coordinates`). Arrays in, arrays out: file I/O is in
:mod:`dce.io.b1`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dce._checks import B1_FACTOR_RANGE, as_float_array, b1_factor_hint, check_b1_factor

__all__ = ["CONVENTIONS", "Convention", "b1_factor", "resample_to_grid"]

#: Unit conventions of stored B1 maps.
Convention = Literal["auto", "factor", "percent", "siemens_tfl_b1map"]
CONVENTIONS: tuple[str, ...] = ("auto", "factor", "percent", "siemens_tfl_b1map")
_SCALE = {"factor": 1.0, "percent": 100.0, "siemens_tfl_b1map": 800.0}
_PERCENT_AUTO = (30.0, 200.0)


def b1_factor(values: ArrayLike, convention: str = "auto", *, name: str = "b1"
              ) -> tuple[NDArray[np.float64], str]:
    """Convert a stored B1 map to the B1 factor (actual / nominal flip angle).

    Parameters
    ----------
    values : array_like
        Stored B1 values, any shape. Zero, negative or non-finite values mean "no B1
        here" and become NaN.
    convention : {"auto", "factor", "percent", "siemens_tfl_b1map"}
        Unit of ``values`` (see the module docstring). ``auto`` decides from the median
        of the positive values.
    name : str
        Name used in messages (e.g. the file).

    Returns
    -------
    factor : ndarray of float64
        B1 factor, NaN where there is no B1; median within 0.3-2.
    convention : str
        The convention applied (``auto`` resolved).

    Raises
    ------
    ValueError
        Unknown convention, no positive value, or a median outside the plausible factor
        range 0.3-2 after conversion (with a unit hint such as "looks like percent").
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"{name}: unknown B1 convention {convention!r}; use one of "
                         f"{', '.join(CONVENTIONS)}")
    raw = as_float_array(values, name, allow_nan=True)
    with np.errstate(invalid="ignore"):
        good = np.isfinite(raw) & (raw > 0)
    if not good.any():
        raise ValueError(f"{name}: the B1 map has no positive finite value")
    med = float(np.median(raw[good]))
    if convention == "auto":
        lo, hi = B1_FACTOR_RANGE
        if lo <= med <= hi:
            convention = "factor"
        elif _PERCENT_AUTO[0] <= med <= _PERCENT_AUTO[1]:
            convention = "percent"
        else:
            raise ValueError(
                f"{name}: cannot tell the unit of the B1 map (median {med:g}): "
                f"{b1_factor_hint(med)}; set the convention explicitly (factor, percent, "
                "siemens_tfl_b1map)")
    factor = np.where(good, raw, np.nan) / _SCALE[convention]
    fmed = med / _SCALE[convention]
    if not B1_FACTOR_RANGE[0] <= fmed <= B1_FACTOR_RANGE[1]:
        raise ValueError(
            f"{name}: with the {convention!r} convention the B1 factor median is {fmed:g} "
            f"(stored median {med:g}, which {b1_factor_hint(med)})")
    return check_b1_factor(factor, name, allow_nan=True), convention


def resample_to_grid(data: ArrayLike, affine: ArrayLike, shape: tuple[int, ...],
                     target_affine: ArrayLike, *, order: int = 1,
                     name: str = "b1") -> NDArray[np.float64]:
    """Sample a 3-D map on another grid, matched in world coordinates.

    Parameters
    ----------
    data : array_like, shape (i, j, k)
        Source map (NaN allowed: it spreads to the interpolated neighbours).
    affine : array_like, shape (4, 4)
        Source voxel index -> world (mm).
    shape : tuple of int
        Target grid shape (3 spatial axes).
    target_affine : array_like, shape (4, 4)
        Target voxel index -> world (mm).
    order : int
        Spline order of :func:`scipy.ndimage.map_coordinates` (1 = trilinear, 0 =
        nearest).
    name : str
        Name used in messages.

    Returns
    -------
    ndarray of float64, shape ``shape``
        The map at the target voxel centres; NaN where a centre lies more than half a
        source voxel outside the source grid (between the outermost source centres and
        the edge of the grid the edge value is used).
    """
    from scipy.ndimage import map_coordinates  # only sessions with a B1 map need scipy

    src = as_float_array(data, name, allow_nan=True)
    if src.ndim == 4 and src.shape[3] == 1:
        src = src[..., 0]
    if src.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D map, got shape {src.shape}")
    a_src = as_float_array(affine, f"{name} affine")
    a_dst = as_float_array(target_affine, "target affine")
    if a_src.shape != (4, 4) or a_dst.shape != (4, 4):
        raise ValueError(f"{name}: affines must be 4x4, got {a_src.shape} and {a_dst.shape}")
    if len(shape) != 3:
        raise ValueError(f"{name}: target shape must have 3 axes, got {shape}")
    try:
        vox = np.linalg.inv(a_src) @ a_dst          # target index -> source index
    except np.linalg.LinAlgError:
        raise ValueError(f"{name}: the source affine is singular") from None
    idx = np.indices(shape, dtype=np.float64).reshape(3, -1)
    coords = vox[:3, :3] @ idx + vox[:3, 3:4]
    n = np.asarray(src.shape, dtype=np.float64)[:, None]
    inside = np.all((coords >= -0.5) & (coords <= n - 0.5), axis=0)
    coords = np.clip(coords, 0.0, n - 1.0)
    out: NDArray[Any] = map_coordinates(src, coords, order=order, mode="nearest",
                                        prefilter=False)
    out = np.where(inside, out, np.nan)
    return np.asarray(out.reshape(shape), dtype=np.float64)
