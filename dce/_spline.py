"""The not-a-knot cubic spline of SciPy without importing ``scipy.interpolate``: shared by
the fit's kep table (:mod:`dce.fit`) and the cubic plasma input (:mod:`dce.models`)."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

__all__ = ["not_a_knot_spline"]


def not_a_knot_spline(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Coefficients ``c`` (4, n - 1, ...) of the not-a-knot cubic spline through ``(x, y)``
    along axis 0 (n >= 4 strictly increasing, finite): ``scipy.interpolate.CubicSpline(x,
    y, axis=0).c``, the same operations (SciPy 1.17) without importing
    ``scipy.interpolate`` (and with it ``scipy.optimize``), about 0.25 s of every fit
    job's start. ``tests/test_fit.py`` checks the equality, bit for bit."""
    n = x.shape[0]
    dx = np.diff(x)
    dxr = dx.reshape([dx.shape[0]] + [1] * (y.ndim - 1))
    slope = np.diff(y, axis=0) / dxr
    a = np.zeros((3, n))                        # banded: upper, diagonal, lower
    b = np.empty((n, *y.shape[1:]), dtype=y.dtype)
    a[1, 1:-1] = 2 * (dx[:-1] + dx[1:])
    a[0, 2:] = dx[:-1]
    a[-1, :-2] = dx[1:]
    b[1:-1] = 3 * (dxr[1:] * slope[:-1] + dxr[:-1] * slope[1:])
    a[1, 0] = dx[1]
    a[0, 1] = x[2] - x[0]
    d = x[2] - x[0]
    b[0] = ((dxr[0] + 2 * d) * dxr[1] * slope[0] + dxr[0] ** 2 * slope[1]) / d
    a[1, -1] = dx[-2]
    a[-1, -2] = x[-1] - x[-3]
    d = x[-1] - x[-3]
    b[-1] = (dxr[-1] ** 2 * slope[-2] + (2 * d + dxr[-1]) * dxr[-2] * slope[-1]) / d
    s = scipy.linalg.solve_banded((1, 1), a, b.reshape(n, -1), overwrite_ab=True,
                                  overwrite_b=True, check_finite=False).reshape(b.shape)
    t = (s[:-1] + s[1:] - 2 * slope) / dxr
    return np.stack((t / dxr, (slope - s[:-1]) / dxr - t, s[:-1], y[:-1]))
