"""Vectorised fitting of Tofts, extended Tofts and Patlak models to every voxel at once.

Two estimators, following dipy's ``Model(...).fit(data)`` pattern
(:class:`TracerKineticModel` -> :class:`TracerKineticFit`):

``method="llsq"``
    Linear least squares of Murase (MRM 2004;51:858): the model is rewritten as a linear
    equation in the running integrals of the input and the tissue curve (trapezoid rule for
    the tissue integral, exact integral of the interpolated input) and solved per voxel
    from 3x3 (or 2x2) normal equations, in one compiled pass over the data.

``method="nlls"`` (default)
    Bounded nonlinear least squares on the *exact* model (:mod:`dce.models`). For a fixed
    :math:`k_{ep}` the model is linear in :math:`K^{trans}` (and :math:`v_p`), so the fit is
    a one-dimensional minimisation over :math:`\\ln k_{ep}` of the residual left by the
    box-bounded linear solve (variable projection, Golub & Pereyra 1973). Per voxel: the
    profile is evaluated at the LLSQ estimate (the start value) and on a coarse log grid
    (21 points over the ``kep`` range, for a block of curves at once), the best point is
    bracketed by its grid neighbours and narrowed by Brent's method (parabolic steps,
    golden-section steps when these do not halve the bracket) over the rows of a fine table
    (1601 rows, 0.9% steps in kep), and a parabola
    through the three best rows gives the final :math:`k_{ep}` (where a bound becomes active
    at the minimum and the profile has a kink, a golden-section search on the spline
    replaces the parabola); :math:`K^{trans}` and
    :math:`v_p` then follow from the bounded linear solve at that :math:`k_{ep}`. The grid
    guards against the LLSQ estimate's noise bias and against local minima.

Speed: the exponential convolutions for all :math:`k_{ep}` of a fine table are computed
once per input, then compressed into an orthonormal basis :math:`U` (SVD, relative
tolerance 1e-9) that spans the input, its integral and every convolution. Every voxel's
curve is projected once onto :math:`U`; from then on all residuals are exact inner products
in the small basis space and the curve's :math:`k_{ep}`-dependence is a cubic spline in
:math:`\\ln k_{ep}`. The residuals equal the full-length ones up to the basis tolerance.

Threads: the compiled kernels run over chunks of voxels on :func:`get_num_threads` threads
(default: the CPUs available to the process; :func:`set_num_threads` changes it; results do
not depend on it). They are compiled on first use in an environment (10-15 s, single-threaded;
logged on ``dce.fit`` when the wait exceeds 1.5 s) and cached by numba.

Bolus arrival delay: fixed (``delay_s``) or fitted per voxel over a grid of delays
(``fit_delay=True``; the estimate is the grid delay with the smallest NLLS residual). The
search starts at each curve's delay of the smallest *linear* (Murase) residual, all delays
at once by one matrix product of the curves with the input terms of every delay, and
descends from there on the NLLS residual: that delay and its two neighbours, then further
while the best is at an edge (about 3 NLLS passes instead of the 25 of an exhaustive
search; the exhaustive search's answer wherever the NLLS residual has a single minimum
near the linear one).

Units: times in s; :math:`K^{trans}`, :math:`k_{ep}` in /min; :math:`v_e`, :math:`v_p`
fractions; concentrations in mM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import uniform_filter1d

from dce._checks import as_float_array, check_last_axis, check_times
from dce._select import median as _median
from dce._spline import not_a_knot_spline as _not_a_knot_spline
from dce._threads import get_num_threads, run_chunks, set_num_threads
from dce.models import (
    DEFAULT_INTERPOLATION,
    INTERPOLATIONS,
    InputGrid,
    make_input_grid,
    tissue_concentration,
)
from dce.registry import (
    STATUS_FIT,
    STATUS_OUTSIDE_MASK,
    STATUS_SHOWN,
    STATUS_USABLE,
    KineticModel,
    fit_map_names,
    kinetic_model,
    output_map,
    resolve,
)

__all__ = ["DEFAULT_DELAY_GRID_S", "DEFAULT_ENHANCEMENT_Z", "STATUS_FIT",
           "STATUS_OUTSIDE_MASK", "STATUS_SHOWN", "STATUS_USABLE", "FitBounds",
           "TracerKineticFit", "TracerKineticModel", "fitter_from_config", "get_num_threads",
           "kinetic_fitter", "set_num_threads", "status_codes", "status_counts"]

# fast-math without the no-NaN/no-inf assumptions (the kernels test for NaN input) and
# without "contract" (a * b + c fused into one FMA): numba's in-process JIT and the object
# code it writes to its cache fuse differently, so with it a process that compiled the
# kernels and one that loaded them from the cache gave different last bits
# (tests/test_determinism.py). About 10 % of the LLSQ kernel's time, 4 % of NLLS.
_FASTMATH = {"nsz", "arcp", "afn", "reassoc"}
#: The same without "reassoc" for the sums behind R^2 and RMSE (:func:`_accumulate_ordered`):
#: with it the JIT and the cached object code summed them in different orders. Its voxel
#: loop is element-wise, so it vectorises without reassociation.
_FASTMATH_ORDERED = {"nsz", "arcp", "afn"}

#: Default candidate delays (s) of ``fit_delay=True``: -2 to 10 s in 0.5 s steps.
DEFAULT_DELAY_GRID_S = (-2.0, 10.0, 0.5)
#: Default threshold (standard errors) of the enhancement test.
DEFAULT_ENHANCEMENT_Z = 2.0


@dataclass(frozen=True)
class FitBounds:
    """Search ranges of the nonlinear fit.

    Attributes
    ----------
    kep_per_min : tuple of float
        Range of the efflux rate constant kep (/min), searched on a log scale.
    ktrans_max_per_min : float
        Upper bound of Ktrans (/min); the lower bound is 0.
    ve_max : float
        Upper bound of ve (fraction); enforced as Ktrans <= ve_max * kep.
    vp_max : float
        Upper bound of vp (fraction); the lower bound is 0.
    """

    kep_per_min: tuple[float, float] = (1e-4, 250.0)
    ktrans_max_per_min: float = 5.0
    ve_max: float = 1.0
    vp_max: float = 1.0

    def __post_init__(self) -> None:
        lo, hi = self.kep_per_min
        if not 0 < lo < hi:
            raise ValueError(f"bounds.kep_per_min: need 0 < low < high, got {self.kep_per_min}")
        for name in ("ktrans_max_per_min", "ve_max", "vp_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"bounds.{name}: must be > 0")


@dataclass(frozen=True)
class TracerKineticFit:
    """Per-voxel fit results; every array has the image shape (the input without time).

    Attributes
    ----------
    ktrans_per_min, kep_per_min, ve, vp : ndarray
        Model parameters (OSIPI: Ktrans /min, kep /min, ve, vp); vp is 0 for Tofts,
        kep and ve are NaN for Patlak.
    delay_s : ndarray
        Bolus arrival delay used or fitted (s).
    r2 : ndarray
        Coefficient of determination of the fitted curve.
    rmse_mM : ndarray
        Root-mean-square residual (mM).
    status : ndarray of int8
        Codes in :data:`STATUS_FIT`.
    model, method : str
    """

    ktrans_per_min: NDArray[np.float64]
    kep_per_min: NDArray[np.float64]
    ve: NDArray[np.float64]
    vp: NDArray[np.float64]
    delay_s: NDArray[np.float64]
    r2: NDArray[np.float64]
    rmse_mM: NDArray[np.float64]
    status: NDArray[np.int8]
    model: str = "extended_tofts"
    method: str = "nlls"

    def maps(self) -> dict[str, NDArray[Any]]:
        """Parameter maps keyed by their columns (:mod:`dce.registry`), in output order."""
        cols = (output_map(n).column for n in fit_map_names(self.model))
        return {c: getattr(self, c) for c in cols}


@dataclass(frozen=True)
class _Basis:
    grid: InputGrid
    u: NDArray[np.float64]            # (nt, r) orthonormal
    w_tab: NDArray[np.float64]        # (n_tab, r) projected convolutions, mM*min
    spl: NDArray[np.float64]          # (4, n_tab-1, r) cubic spline coefficients in ln kep
    g_tab: NDArray[np.float64]        # (n_tab, 4): |E|^2, E.cp, 1/det, 1/|E|^2 per row
    w_cp: NDArray[np.float64]         # (r,)
    w_int: NDArray[np.float64]        # (r,) projected integral of cp, mM*min
    u0: float
    du: float
    a1: NDArray[np.float64] = field(repr=False)  # integral of cp at tissue times, mM*min
    proj: NDArray[np.float64] = field(repr=False)  # (nt, r+4): [u | a1 | cp | T'a1 | T'cp]
    proj_lin: NDArray[np.float64] = field(repr=False)  # (nt, 4): the last 4 columns of proj


def _trapezoid_matrix(t_min: NDArray[np.float64]) -> NDArray[np.float64]:
    """T with (T @ y)[i] = trapezoid integral of y from t[0] to t[i]."""
    nt = t_min.size
    m = np.zeros((nt, nt))
    dt = np.diff(t_min)
    for i in range(1, nt):
        m[i] = m[i - 1]
        m[i, i - 1] += 0.5 * dt[i - 1]
        m[i, i] += 0.5 * dt[i - 1]
    return m


def _build_basis(t: NDArray[np.float64], cp: NDArray[np.float64], t_aif: NDArray[np.float64],
                 delay_s: float, bounds: FitBounds, n_tab: int,
                 interpolation: str = DEFAULT_INTERPOLATION) -> _Basis:
    grid = make_input_grid(t, cp, t_aif_s=t_aif, delay_s=delay_s, interpolation=interpolation)
    lo, hi = bounds.kep_per_min
    u_tab = np.linspace(np.log(lo), np.log(hi), n_tab)
    e_tab = grid.convolve(np.exp(u_tab)) / 60.0           # mM*min
    a1 = grid.convolve(np.zeros(1))[0] / 60.0
    cols = np.vstack([grid.cp_mM, a1, e_tab[:: max(1, n_tab // 50)], e_tab[-1]])
    norms = np.linalg.norm(cols, axis=1)
    if not np.any(norms > 0):
        raise ValueError("cp_mM: the input function is zero everywhere")
    cols = cols[norms > 0] / norms[norms > 0, None]
    # gesvd: LAPACK's default gesdd is ~100x slower on these (nearly rank-deficient) columns
    uu, s, _ = scipy.linalg.svd(cols.T, full_matrices=False, lapack_driver="gesvd")
    r = int(np.count_nonzero(s > 1e-8 * s[0]))
    u = np.ascontiguousarray(uu[:, :r])
    # (einsum: OpenBLAS would run this small product on its threads, whose spinning after
    # it costs more CPU than the product: 0.07 vs 0.7 ms, 4-8 ms of spinning per basis)
    w_tab = np.einsum("tk,kr->tr", e_tab, u)
    spl = np.ascontiguousarray(_not_a_knot_spline(u_tab, w_tab))
    w_cp = grid.cp_mM @ u
    tm = _trapezoid_matrix(t / 60.0)
    proj = np.ascontiguousarray(np.column_stack([u, a1, grid.cp_mM, tm.T @ a1,
                                                 tm.T @ grid.cp_mM]))
    g11 = np.sum(w_tab**2, axis=1)
    g12 = w_tab @ w_cp
    det = g11 * float(w_cp @ w_cp) - g12 * g12   # of the 2x2 Gram matrix [E, cp]
    with np.errstate(divide="ignore"):
        g_tab = np.ascontiguousarray(np.stack([g11, g12, np.where(det > 1e-300, 1.0 / det, 0.0),
                                               np.where(g11 > 0, 1.0 / g11, 0.0)], axis=1))
    return _Basis(grid=grid, u=u, w_tab=np.ascontiguousarray(w_tab), spl=spl, g_tab=g_tab,
                  w_cp=w_cp, w_int=a1 @ u, u0=float(u_tab[0]),
                  du=float(u_tab[1] - u_tab[0]), a1=a1, proj=proj,
                  proj_lin=np.ascontiguousarray(proj[:, -4:]))


# ----------------------------------------------------------------------------- kernels
# Serial ``nogil`` kernels over the rows [lo, hi) of their input, run on a few threads by
# :func:`dce._threads.run_chunks` (numba's ``parallel=True`` costs over a minute of
# compilation on two cores; these compile in seconds). Only the small per-table-row profile
# (_prof, _row) is IR-inlined: inlining multiplies the compile time, a call per table row
# costs 2x in the NLLS search.

@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _box2_edges(r1: float, r2: float, g11: float, g12: float, g22: float, a_hi: float,
                b_hi: float) -> tuple[float, float, float]:
    """:func:`_box2` when the unconstrained minimum is outside the box: the best edge."""
    best = 1e300
    ba = 0.0
    bb = 0.0
    for edge in range(4):
        if edge == 0:      # b = 0
            b = 0.0
            a = min(max(r1 / g11, 0.0), a_hi) if g11 > 0 else 0.0
        elif edge == 1:    # b = b_hi
            b = b_hi
            a = min(max((r1 - g12 * b) / g11, 0.0), a_hi) if g11 > 0 else 0.0
        elif edge == 2:    # a = 0
            a = 0.0
            b = min(max(r2 / g22, 0.0), b_hi) if g22 > 0 else 0.0
        else:              # a = a_hi
            a = a_hi
            b = min(max((r2 - g12 * a) / g22, 0.0), b_hi) if g22 > 0 else 0.0
        f = a * a * g11 + 2 * a * b * g12 + b * b * g22 - 2 * (a * r1 + b * r2)
        if f < best:
            best = f
            ba = a
            bb = b
    return best, ba, bb


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _box2(r1: float, r2: float, g11: float, g12: float, g22: float, a_hi: float,
          b_hi: float) -> tuple[float, float, float]:
    """min over 0<=a<=a_hi, 0<=b<=b_hi of -2(a r1 + b r2) + a^2 g11 + 2ab g12 + b^2 g22."""
    det = g11 * g22 - g12 * g12
    if det > 1e-300:
        a = (r1 * g22 - r2 * g12) / det
        b = (r2 * g11 - r1 * g12) / det
        if 0.0 <= a <= a_hi and 0.0 <= b <= b_hi:
            return a * a * g11 + 2 * a * b * g12 + b * b * g22 - 2 * (a * r1 + b * r2), a, b
    return _box2_edges(r1, r2, g11, g12, g22, a_hi, b_hi)


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _profile(w: NDArray[Any], ct: NDArray[Any], w_cp: NDArray[Any], gcc: float, rcp: float,
             kep: float, model: int, kt_max: float, ve_max: float,
             vp_max: float) -> tuple[float, float, float]:
    """Reduced residual (SSE - ||C||^2), Ktrans and vp at one kep, for the projected curve."""
    r1 = 0.0
    g11 = 0.0
    g12 = 0.0
    for i in range(w.shape[0]):
        r1 += w[i] * ct[i]
        g11 += w[i] * w[i]
        g12 += w[i] * w_cp[i]
    a_hi = min(kt_max, ve_max * kep)
    if model == 0:
        a = min(max(r1 / g11, 0.0), a_hi) if g11 > 0 else 0.0
        return a * a * g11 - 2 * a * r1, a, 0.0
    return _box2(r1, rcp, g11, g12, gcc, a_hi, vp_max)


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _spline_w(u: float, spl: NDArray[Any], u0: float, du: float, out: NDArray[Any]) -> None:
    n = spl.shape[1]
    i = int((u - u0) / du)
    i = min(max(i, 0), n - 1)
    s = u - (u0 + i * du)
    for k in range(out.shape[0]):
        out[k] = ((spl[0, i, k] * s + spl[1, i, k]) * s + spl[2, i, k]) * s + spl[3, i, k]


# output rows of the kernels (one row per quantity, one column per voxel), then the SSE
_OUT = ("ktrans_per_min", "kep_per_min", "ve", "vp", "r2", "rmse_mM", "status")
_SSE = 7


@numba.njit(cache=True, nogil=True)
def _finish(out: NDArray[Any], v: int, kt: float, kep: float, vp: float, sse: float,
            sst: float, st: float, nt: int, model: int) -> None:
    """Write one voxel's column of ``out``: _OUT rows, then the SSE."""
    if st == 1.0:
        for k in range(8):
            out[k, v] = np.nan
        out[6, v] = 1.0
        return
    if st == 3.0 or model == 2:
        kep = np.nan
    out[0, v] = kt
    out[1, v] = kep
    out[2, v] = kt / kep if (np.isfinite(kep) and kep > 0) else np.nan
    out[3, v] = vp
    out[4, v] = 1.0 - sse / sst if sst > 0 else np.nan
    out[5, v] = np.sqrt(sse / nt)
    out[6, v] = st
    out[7, v] = sse


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, inline="always")
def _prof(r1: float, j: int, g_tab: NDArray[Any], gcc: float, rcp: float, kep: float,
          model: int, kt_max: float, ve_max: float, vp_max: float) -> tuple[float, int]:
    """Reduced residual at table row ``j`` given r1 = E_j . C (Gram entries and their
    reciprocals precomputed in ``g_tab``) and a code of the active bounds (bit mask)."""
    g11 = g_tab[j, 0]
    a_hi = min(kt_max, ve_max * kep)
    if model == 0:
        a = min(max(r1 * g_tab[j, 3], 0.0), a_hi)
        return a * a * g11 - 2 * a * r1, (a <= 0.0) + 2 * (a >= a_hi)
    g12 = g_tab[j, 1]
    idet = g_tab[j, 2]
    if idet > 0.0:   # the unconstrained minimum, if inside the box
        a = (r1 * gcc - rcp * g12) * idet
        b = (rcp * g11 - r1 * g12) * idet
        if 0.0 <= a <= a_hi and 0.0 <= b <= vp_max:
            return (a * a * g11 + 2 * a * b * g12 + b * b * gcc - 2 * (a * r1 + b * rcp),
                    (a <= 0.0) + 2 * (a >= a_hi) + 4 * (b <= 0.0) + 8 * (b >= vp_max))
    f, a, b = _box2_edges(r1, rcp, g11, g12, gcc, a_hi, vp_max)
    return f, (a <= 0.0) + 2 * (a >= a_hi) + 4 * (b <= 0.0) + 8 * (b >= vp_max)


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, inline="always")
def _row(j: int, w_tab: NDArray[Any], g_tab: NDArray[Any], ct: NDArray[Any], gcc: float,
         rcp: float, kep: float, model: int, kt_max: float, ve_max: float,
         vp_max: float) -> tuple[float, int]:
    """:func:`_prof` at table row ``j`` for the projected curve ``ct``."""
    r1 = 0.0
    for i in range(ct.shape[0]):
        r1 += w_tab[j, i] * ct[i]
    return _prof(r1, j, g_tab, gcc, rcp, kep, model, kt_max, ve_max, vp_max)


@numba.njit(cache=True, nogil=True)
def _dot(a: NDArray[Any], b: NDArray[Any]) -> float:
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


#: Robust noise SD of white Gaussian noise: median |consecutive difference| / this.
_MAD_DIFF = 0.9538725524419648


@numba.njit(cache=True, nogil=True)
def _enhancing(delta: float, thr: float, sum_abs: float, c: NDArray[Any], v: int,
               scratch: NDArray[Any]) -> bool:
    """Enhancement test ``delta > thr * median(|d|) / 0.954`` for the consecutive
    differences ``d`` of the curve ``c[v]`` (``sum_abs``: the sum of ``|d|``); the median
    only when the bounds 0 <= median <= 2 mean(|d|) leave the answer open. (Products only:
    the same decision under the callers' fast-math flags.)"""
    if delta <= 0.0:
        return False
    n = c.shape[1] - 1
    if delta * (_MAD_DIFF * n) > thr * ((2.0 + 1e-9) * sum_abs):
        return True
    for t in range(n):
        scratch[t] = abs(np.float64(c[v, t + 1]) - np.float64(c[v, t]))
    return delta * _MAD_DIFF > thr * _median(scratch, n)


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _coarse_profiles(r1c: NDArray[Any], acc: NDArray[Any], nb: int, w_cp: NDArray[Any],
                     g_tab: NDArray[Any], kep_tab: NDArray[Any], stride: int, gcc: float,
                     model: int, kt_max: float, ve_max: float, vp_max: float,
                     fcb: NDArray[Any], acb: NDArray[Any]) -> None:
    """:func:`_prof` at the coarse table rows (every ``stride``-th) for a block of ``nb``
    curves at once, without branches (SIMD over the curves).

    ``r1c[q, j]``: E.C of coarse row q and curve j; ``acc[:r, j]``: the projected curve.
    Writes the reduced residuals to ``fcb[q, j]`` and the active-bound codes to ``acb``.
    """
    rcp = fcb[fcb.shape[0] - 1]   # scratch row: cp.C per curve
    for j in range(nb):
        rcp[j] = 0.0
    for k in range(w_cp.shape[0]):
        wk = w_cp[k]
        for j in range(nb):
            rcp[j] += wk * acc[k, j]
    igcc = 1.0 / gcc
    for q in range(fcb.shape[0] - 1):
        row = q * stride
        g11 = g_tab[row, 0]
        g12 = g_tab[row, 1]
        idet = g_tab[row, 2]
        ig11 = g_tab[row, 3]
        a_hi = min(kt_max, ve_max * kep_tab[row])
        if model == 0:
            for j in range(nb):
                r1 = r1c[q, j]
                a = min(max(r1 * ig11, 0.0), a_hi)
                fcb[q, j] = a * a * g11 - 2 * a * r1
                acb[q, j] = (1.0 if a <= 0.0 else 0.0) + (2.0 if a >= a_hi else 0.0)
            continue
        for j in range(nb):
            r1 = r1c[q, j]
            r2 = rcp[j]
            # the four edges of the box (as _box2_edges: the first of equal minima)
            a = min(max(r1 * ig11, 0.0), a_hi)
            b = 0.0
            f = a * a * g11 - 2 * a * r1
            a1 = min(max((r1 - g12 * vp_max) * ig11, 0.0), a_hi)
            f1 = a1 * a1 * g11 + 2 * a1 * vp_max * g12 + vp_max * vp_max * gcc - 2 * (
                a1 * r1 + vp_max * r2)
            if f1 < f:
                f = f1
                a = a1
                b = vp_max
            b2 = min(max(r2 * igcc, 0.0), vp_max)
            f2 = b2 * b2 * gcc - 2 * b2 * r2
            if f2 < f:
                f = f2
                a = 0.0
                b = b2
            b3 = min(max((r2 - g12 * a_hi) * igcc, 0.0), vp_max)
            f3 = a_hi * a_hi * g11 + 2 * a_hi * b3 * g12 + b3 * b3 * gcc - 2 * (
                a_hi * r1 + b3 * r2)
            if f3 < f:
                f = f3
                a = a_hi
                b = b3
            # the unconstrained minimum, if inside the box
            a0 = (r1 * gcc - r2 * g12) * idet
            b0 = (r2 * g11 - r1 * g12) * idet
            if idet > 0.0 and a0 >= 0.0 and a0 <= a_hi and b0 >= 0.0 and b0 <= vp_max:
                f = a0 * a0 * g11 + 2 * a0 * b0 * g12 + b0 * b0 * gcc - 2 * (a0 * r1 + b0 * r2)
                a = a0
                b = b0
            fcb[q, j] = f
            acb[q, j] = ((1.0 if a <= 0.0 else 0.0) + (2.0 if a >= a_hi else 0.0)
                         + (4.0 if b <= 0.0 else 0.0) + (8.0 if b >= vp_max else 0.0))


_BLK = 64   # voxels per block of the kernels
_PAD = 4    # padding voxels per row of a block's copy (rows off the same cache sets)


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _accumulate(c: NDArray[Any], c16: NDArray[Any], v0: int, nb: int, t_min: NDArray[Any],
                vmat: NDArray[Any], wpre: NDArray[Any], x: NDArray[Any], xd: NDArray[Any],
                acc: NDArray[Any], stats: NDArray[Any]) -> None:
    """One pass over a block of curves c[v0:v0+nb]: the block is copied into ``x``
    (n_times // 4 + 1, 4 (_BLK + _PAD)) in groups of four time points, ``x[q, 4 j + k]`` =
    ``c[v0 + j, 4 q + k]`` (row n_times // 4: the last n_times % 4 time points; columns of
    voxels nb.._BLK are zero), then every sum runs over the groups (time-outer) and the
    voxels (inner, over all _BLK: a constant trip count, SIMD without run-time alias checks),
    four time points per update of each accumulator (few loads and stores per sample).
    ``c16`` is ``c`` viewed as 16-byte units when its rows are a whole number of them (the
    copy then moves 16 bytes at a time: a quarter of the stores of a sample-wise
    transpose), else empty.

    acc[k, j] = sum_t vmat[t, k] c[v0+j, t]; stats rows: 0 sum of I^2, 1 -sum I*C (I the
    running trapezoid integral of the curve), 2 sum C^2 (not finite if a sample is not),
    3 sum C, 4 sum of wpre * C (wpre: 1 at the baseline phases, else 0), 5 sum
    |consecutive difference|, 6 and 7 scratch (running integral, previous sample). The
    last four columns of ``vmat`` (the linear terms) are summed with the stats; stats rows
    2 and 3 and the other columns (the basis of the NLLS, from ``xd`` (n_times, _BLK), the
    block converted to float64 time-major once) by :func:`_accumulate_ordered`.
    """
    nt = c.shape[1]
    nk = vmat.shape[1]
    nq = nt // 4
    t_end = 4 * nq
    x16 = x.view(np.complex128)
    if c16.shape[0] > 0 and c16.shape[1] == nq:   # float32: one unit per group
        for j in range(nb):
            for q in range(nq):
                x16[q, j] = c16[v0 + j, q]
    elif c16.shape[0] > 0:   # float64: two units per group
        for j in range(nb):
            for q in range(nq):
                x16[q, 2 * j] = c16[v0 + j, 2 * q]
                x16[q, 2 * j + 1] = c16[v0 + j, 2 * q + 1]
    else:
        for j in range(nb):
            for q in range(nq):
                for k in range(4):
                    x[q, 4 * j + k] = c[v0 + j, 4 * q + k]
    for j in range(nb):
        for t in range(t_end, nt):
            x[nq, 4 * j + t - t_end] = c[v0 + j, t]
    for j in range(4 * nb, 4 * _BLK):
        for q in range(nq + 1):
            x[q, j] = 0.0
    for k in range(nk):
        for j in range(_BLK):
            acc[k, j] = 0.0
    kl = nk - 4   # the last four columns (the linear terms) go with the sums below
    for j in range(_BLK):
        stats[0, j] = 0.0
        stats[1, j] = 0.0
        stats[2, j] = 0.0
        stats[3, j] = 0.0
        stats[4, j] = 0.0
        stats[5, j] = 0.0
        stats[6, j] = 0.0
        stats[7, j] = x[0, 4 * j]   # "previous" sample of the first: no difference, no area
    for q in range(nq):   # the baseline phases' groups (few)
        t = 4 * q
        w0 = wpre[t]
        w1 = wpre[t + 1]
        w2 = wpre[t + 2]
        w3 = wpre[t + 3]
        if w0 == 0.0 and w1 == 0.0 and w2 == 0.0 and w3 == 0.0:
            continue
        for j in range(_BLK):
            stats[4, j] += (w0 * np.float64(x[q, 4 * j]) + w1 * np.float64(x[q, 4 * j + 1])
                            + w2 * np.float64(x[q, 4 * j + 2])
                            + w3 * np.float64(x[q, 4 * j + 3]))
    for q in range(nq):
        t = 4 * q
        h0 = 0.5 * (t_min[t] - t_min[t - 1]) if t > 0 else 0.0
        h1 = 0.5 * (t_min[t + 1] - t_min[t])
        h2 = 0.5 * (t_min[t + 2] - t_min[t + 1])
        h3 = 0.5 * (t_min[t + 3] - t_min[t + 2])
        b00 = vmat[t, kl]
        b01 = vmat[t + 1, kl]
        b02 = vmat[t + 2, kl]
        b03 = vmat[t + 3, kl]
        b10 = vmat[t, kl + 1]
        b11 = vmat[t + 1, kl + 1]
        b12 = vmat[t + 2, kl + 1]
        b13 = vmat[t + 3, kl + 1]
        b20 = vmat[t, kl + 2]
        b21 = vmat[t + 1, kl + 2]
        b22 = vmat[t + 2, kl + 2]
        b23 = vmat[t + 3, kl + 2]
        b30 = vmat[t, kl + 3]
        b31 = vmat[t + 1, kl + 3]
        b32 = vmat[t + 2, kl + 3]
        b33 = vmat[t + 3, kl + 3]
        for j in range(_BLK):
            p = stats[7, j]
            y0 = np.float64(x[q, 4 * j])
            y1 = np.float64(x[q, 4 * j + 1])
            y2 = np.float64(x[q, 4 * j + 2])
            y3 = np.float64(x[q, 4 * j + 3])
            stats[5, j] += abs(y0 - p) + abs(y1 - y0) + abs(y2 - y1) + abs(y3 - y2)
            i0 = stats[6, j] + h0 * (y0 + p)
            i1 = i0 + h1 * (y1 + y0)
            i2 = i1 + h2 * (y2 + y1)
            i3 = i2 + h3 * (y3 + y2)
            stats[0, j] += i0 * i0 + i1 * i1 + i2 * i2 + i3 * i3
            stats[1, j] -= i0 * y0 + i1 * y1 + i2 * y2 + i3 * y3
            stats[6, j] = i3
            stats[7, j] = y3
            acc[kl, j] += b00 * y0 + b01 * y1 + b02 * y2 + b03 * y3
            acc[kl + 1, j] += b10 * y0 + b11 * y1 + b12 * y2 + b13 * y3
            acc[kl + 2, j] += b20 * y0 + b21 * y1 + b22 * y2 + b23 * y3
            acc[kl + 3, j] += b30 * y0 + b31 * y1 + b32 * y2 + b33 * y3
    for t in range(t_end, nt):
        w0 = wpre[t]
        h0 = 0.5 * (t_min[t] - t_min[t - 1]) if t > 0 else 0.0
        for j in range(_BLK):
            p = stats[7, j]
            y = np.float64(x[nq, 4 * j + t - t_end])
            stats[4, j] += w0 * y
            stats[5, j] += abs(y - p)
            ig = stats[6, j] + h0 * (y + p)
            stats[0, j] += ig * ig
            stats[1, j] -= ig * y
            stats[6, j] = ig
            stats[7, j] = y
    for r in range(kl, nk):   # the remaining time points of the last four columns
        for t in range(t_end, nt):
            a = vmat[t, r]
            for j in range(_BLK):
                acc[r, j] += a * np.float64(x[nq, 4 * j + t - t_end])
    _accumulate_ordered(x, xd, nq, t_end, nt, kl, vmat, acc, stats)


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH_ORDERED)
def _accumulate_ordered(x: NDArray[Any], xd: NDArray[Any], nq: int, t_end: int, nt: int,
                        kl: int, vmat: NDArray[Any], acc: NDArray[Any],
                        stats: NDArray[Any]) -> None:
    """The sums of :func:`_accumulate` behind R^2 and RMSE (stats rows 2 and 3, the basis
    columns acc[:kl]), without reassociation: with it the JIT and the cached object code
    summed them in different orders, so R^2 and RMSE differed in the last bits (16,030 of
    24,576 voxels of tests/test_determinism.py, up to 7e-13 relative). Over the block
    already in ``x`` (in cache)."""
    for q in range(nq):
        for j in range(_BLK):
            y0 = np.float64(x[q, 4 * j])
            y1 = np.float64(x[q, 4 * j + 1])
            y2 = np.float64(x[q, 4 * j + 2])
            y3 = np.float64(x[q, 4 * j + 3])
            stats[2, j] += y0 * y0 + y1 * y1 + y2 * y2 + y3 * y3
            stats[3, j] += y0 + y1 + y2 + y3
    for t in range(t_end, nt):
        for j in range(_BLK):
            y = np.float64(x[nq, 4 * j + t - t_end])
            stats[2, j] += y * y
            stats[3, j] += y
    if kl == 0:
        return
    # the basis columns (NLLS, goodness of fit): from a time-major float64 copy of the block
    for q in range(nq):
        for j in range(_BLK):
            xd[4 * q, j] = x[q, 4 * j]
            xd[4 * q + 1, j] = x[q, 4 * j + 1]
            xd[4 * q + 2, j] = x[q, 4 * j + 2]
            xd[4 * q + 3, j] = x[q, 4 * j + 3]
    for t in range(t_end, nt):
        for j in range(_BLK):
            xd[t, j] = x[nq, 4 * j + t - t_end]
    k = 0
    while k + 4 <= kl:   # four columns at a time: each sample loaded once per four
        for t in range(0, t_end, 4):
            a00 = vmat[t, k]
            a01 = vmat[t + 1, k]
            a02 = vmat[t + 2, k]
            a03 = vmat[t + 3, k]
            a10 = vmat[t, k + 1]
            a11 = vmat[t + 1, k + 1]
            a12 = vmat[t + 2, k + 1]
            a13 = vmat[t + 3, k + 1]
            a20 = vmat[t, k + 2]
            a21 = vmat[t + 1, k + 2]
            a22 = vmat[t + 2, k + 2]
            a23 = vmat[t + 3, k + 2]
            a30 = vmat[t, k + 3]
            a31 = vmat[t + 1, k + 3]
            a32 = vmat[t + 2, k + 3]
            a33 = vmat[t + 3, k + 3]
            for j in range(_BLK):
                x0 = xd[t, j]
                x1 = xd[t + 1, j]
                x2 = xd[t + 2, j]
                x3 = xd[t + 3, j]
                acc[k, j] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
                acc[k + 1, j] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
                acc[k + 2, j] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
                acc[k + 3, j] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        k += 4
    for r in range(k, kl):   # the remaining columns
        for t in range(0, t_end, 4):
            a0 = vmat[t, r]
            a1 = vmat[t + 1, r]
            a2 = vmat[t + 2, r]
            a3 = vmat[t + 3, r]
            for j in range(_BLK):
                acc[r, j] += (a0 * xd[t, j] + a1 * xd[t + 1, j] + a2 * xd[t + 2, j]
                              + a3 * xd[t + 3, j])
    for r in range(kl):   # the remaining time points
        for t in range(t_end, nt):
            a = vmat[t, r]
            for j in range(_BLK):
                acc[r, j] += a * xd[t, j]


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _nlls_voxel(ct: NDArray[Any], w: NDArray[Any], cc: float, sst: float, ks: float,
                w_tab: NDArray[Any], g_tab: NDArray[Any], kep_tab: NDArray[Any],
                spl: NDArray[Any], w_cp: NDArray[Any], gcc: float, u0: float, du: float,
                stride: int, model: int, kt_max: float, ve_max: float, vp_max: float,
                nt: int, fcb: NDArray[Any], acb: NDArray[Any], jc: int,
                out: NDArray[Any], v: int) -> None:
    """Bounded NLLS of one projected curve ``ct`` (extended Tofts or Tofts), started from
    the LLSQ kep ``ks``; writes column ``v`` of ``out``.

    Coarse table grid (every ``stride`` rows; ``fcb[:, jc]``, ``acb[:, jc]`` from
    :func:`_coarse_profiles`) and the start value -> Brent's minimisation over the table
    rows between the best point's neighbours -> parabolic interpolation between the three
    neighbouring rows -> parameters from the cubic spline at the interpolated ln(kep).
    """
    n_tab = w_tab.shape[0]
    u_hi = u0 + (n_tab - 1) * du
    rcp = _dot(w_cp, ct)
    # 1. coarse grid over ln(kep), plus the LLSQ start value
    best_f = 1e300
    qb = 0
    nq = fcb.shape[0] - 1
    for q in range(nq):   # fcb[q, jc], acb[q, jc]: coarse row q of this curve
        f = fcb[q, jc]
        if f < best_f:
            best_f = f
            qb = q
    # the bracket [lo, hi] around the best row x: f(x) <= f(lo), f(hi) (lo == x or hi == x only
    # at the ends of the table)
    x = qb * stride
    fx = best_f
    ax = int(acb[qb, jc])
    lo = x
    fa = fx
    aa = ax
    if qb > 0:
        lo = x - stride
        fa = fcb[qb - 1, jc]
        aa = int(acb[qb - 1, jc])
    hi = x
    fb = fx
    ab = ax
    if qb + 1 < nq:
        hi = x + stride
        fb = fcb[qb + 1, jc]
        ab = int(acb[qb + 1, jc])
    elif x < n_tab - 1:
        hi = n_tab - 1
        fb, ab = _row(hi, w_tab, g_tab, ct, gcc, rcp, kep_tab[hi], model, kt_max, ve_max,
                      vp_max)
    if np.isfinite(ks) and ks > 0:
        js = int(np.floor((np.log(ks) - u0) / du + 0.5))
        if 0 <= js < n_tab and js != x:
            f, act = _row(js, w_tab, g_tab, ct, gcc, rcp, kep_tab[js], model, kt_max,
                          ve_max, vp_max)
            if f < fx:   # the start row is the best point: bracket it by its coarse rows
                qs = js // stride
                lo = qs * stride
                fa = fcb[qs, jc]
                aa = int(acb[qs, jc])
                if qs + 1 < nq:
                    hi = lo + stride
                    fb = fcb[qs + 1, jc]
                    ab = int(acb[qs + 1, jc])
                else:
                    hi = n_tab - 1
                    fb, ab = _row(hi, w_tab, g_tab, ct, gcc, rcp, kep_tab[hi], model, kt_max,
                                  ve_max, vp_max)
                x = js
                fx = f
                ax = act
            elif js < x and js > lo:   # narrow the bracket
                lo = js
                fa = f
                aa = act
            elif x < js < hi:
                hi = js
                fb = f
                ab = act
    # 2. Brent's minimisation over the table rows in [lo, hi]: parabolic steps through the
    # bracketing triple, golden-section steps when they do not halve the bracket in two
    w1 = 3 * (hi - lo)
    w2 = w1
    while hi - lo > 2:
        la = x - lo
        lb = hi - x
        u = -1
        if hi - lo <= 0.5 * w2 and la > 0 and lb > 0:
            da = fa - fx
            db = fb - fx
            den = da * lb + db * la
            if den > 0.0:
                s = 0.5 * (da * lb * lb - db * la * la) / den
                u = int(np.floor(x + s + 0.5))
                if u == x:
                    u = x + 1 if s >= 0.0 else x - 1
                if u <= lo or u >= hi:
                    u = x + 1 if u <= lo else x - 1
                if u <= lo or u >= hi:
                    u = -1
        if u < 0:   # golden-section step into the larger part
            if lb >= la:
                u = x + max(1, int(0.381966 * lb + 0.5))
            else:
                u = x - max(1, int(0.381966 * la + 0.5))
        w2 = w1
        w1 = hi - lo
        f, act = _row(u, w_tab, g_tab, ct, gcc, rcp, kep_tab[u], model, kt_max, ve_max,
                      vp_max)
        if f < fx:
            if u < x:
                hi = x
                fb = fx
                ab = ax
            else:
                lo = x
                fa = fx
                aa = ax
            x = u
            fx = f
            ax = act
        elif u < x:
            lo = u
            fa = f
            aa = act
        else:
            hi = u
            fb = f
            ab = act
    jm = x
    fm = fx
    # 3. parabola through the neighbouring rows
    um = u0 + jm * du
    kink = False
    if 0 < jm < n_tab - 1:
        fl = fa
        al = aa
        if lo != jm - 1:
            fl, al = _row(jm - 1, w_tab, g_tab, ct, gcc, rcp, kep_tab[jm - 1], model, kt_max,
                          ve_max, vp_max)
        fr = fb
        ar = ab
        if hi != jm + 1:
            fr, ar = _row(jm + 1, w_tab, g_tab, ct, gcc, rcp, kep_tab[jm + 1], model, kt_max,
                          ve_max, vp_max)
        am = ax
        kink = al != am or ar != am
        den = fl - 2.0 * fm + fr
        if den > 0:
            um = um + 0.5 * du * (fl - fr) / den
    kep = np.exp(um)
    _spline_w(um, spl, u0, du, w)
    f, a, b = _profile(w, ct, w_cp, gcc, rcp, kep, model, kt_max, ve_max, vp_max)
    if f > fm or kink:
        # a bound becomes active next to the minimum (the profile has a kink there) or
        # the parabola failed: golden-section search on the spline between the rows
        ga = u0 + max(jm - 1, 0) * du
        gb = u0 + min(jm + 1, n_tab - 1) * du
        y1 = gb - 0.6180339887498949 * (gb - ga)
        y2 = ga + 0.6180339887498949 * (gb - ga)
        h1 = h2 = 0.0
        for it in range(26):    # the two start points, then 24 steps of one evaluation
            left = it == 0
            if it == 0:
                yn = y1
            elif it == 1:
                yn = y2
            elif h1 <= h2:
                gb = y2
                y2 = y1
                h2 = h1
                y1 = gb - 0.6180339887498949 * (gb - ga)
                yn = y1
                left = True
            else:
                ga = y1
                y1 = y2
                h1 = h2
                y2 = ga + 0.6180339887498949 * (gb - ga)
                yn = y2
            _spline_w(yn, spl, u0, du, w)
            h, _, _ = _profile(w, ct, w_cp, gcc, rcp, np.exp(yn), model, kt_max, ve_max,
                               vp_max)
            if left:
                h1 = h
            else:
                h2 = h
        um = y1 if h1 <= h2 else y2
        kep = np.exp(um)
        _spline_w(um, spl, u0, du, w)
        f, a, b = _profile(w, ct, w_cp, gcc, rcp, kep, model, kt_max, ve_max, vp_max)
        if f > fm:  # keep the table row
            um = u0 + jm * du
            kep = kep_tab[jm]
            f, a, b = _profile(w_tab[jm], ct, w_cp, gcc, rcp, kep, model, kt_max, ve_max,
                               vp_max)
    st = 0.0
    if a <= 0.0:
        st = 3.0
    elif um >= u_hi - 0.5 * du or a >= kt_max * (1 - 1e-9):
        st = 6.0   # fast-exchange limit (Ktrans at its bound needs kep >= Ktrans/ve_max)
    elif um <= u0 + 0.5 * du:
        st = 7.0
    elif a >= ve_max * kep * (1 - 1e-9) or b >= vp_max * (1 - 1e-9):
        st = 2.0
    _finish(out, v, a, kep, b, max(cc + f, 0.0), sst, st, nt, model)


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, inline="always")
def _llsq_solve(model: int, g11: float, g12: float, g13: float, g22: float, g23: float,
                g33: float, y1: float, y2: float, y3: float) -> tuple[float, float, float]:
    """(Ktrans, kep, vp) of the linear (Murase) normal equations G p = y of ``model``
    (0 Tofts: 2x2 in (Ktrans, kep), vp 0; 2 Patlak: 2x2 in (Ktrans, vp), kep NaN; else
    extended Tofts: 3x3 by Cramer's rule, Ktrans = p1 - kep vp); NaN when G is singular."""
    # (selects instead of branches: the block loop of _llsq_block runs in SIMD)
    if model == 0:
        det = g11 * g22 - g12 * g12
        ok = abs(det) > 1e-12 * g11 * g22
        kt = (y1 * g22 - y2 * g12) / det
        kep = (y2 * g11 - y1 * g12) / det
        vp = 0.0
    elif model == 2:
        det = g11 * g33 - g13 * g13
        ok = abs(det) > 1e-12 * g11 * g33
        kt = (y1 * g33 - y3 * g13) / det
        kep = np.nan
        vp = (y3 * g11 - y1 * g13) / det
    else:
        c11 = g22 * g33 - g23 * g23
        c12 = g13 * g23 - g12 * g33
        c13 = g12 * g23 - g13 * g22
        det = g11 * c11 + g12 * c12 + g13 * c13
        ok = abs(det) > 1e-14 * g11 * g22 * g33
        c22 = g11 * g33 - g13 * g13
        c23 = g12 * g13 - g11 * g23
        c33 = g11 * g22 - g12 * g12
        p1 = (c11 * y1 + c12 * y2 + c13 * y3) / det
        kep = (c12 * y1 + c22 * y2 + c23 * y3) / det
        vp = (c13 * y1 + c23 * y2 + c33 * y3) / det
        kt = p1 - kep * vp
    if not ok:
        kt = np.nan
        kep = np.nan
        vp = np.nan
    return kt, kep, vp


# (numpy's error model: a division by zero gives inf or NaN, no exception and no branch)
@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _llsq_block(acc: NDArray[Any], stats: NDArray[Any], rp: int, nb: int, g11: float,
                g13: float, g33: float, model: int, thr: float, n_pre: float, n_post: float,
                n_diff: float, out: NDArray[Any], v0: int, sol: NDArray[Any]) -> None:
    """Murase LLSQ without goodness of fit for a block of curves (SIMD over the curves):
    columns v0..v0+nb of ``out`` as :func:`_finish` writes them (status 0 or 4; not the
    SSE row, which no caller of this mode reads), and
    ``stats[7, j]`` = 1 where the curve is finite and passes the enhancement test on its
    cheap bound (:func:`_enhancing`, with margins), else 0: the caller handles those columns
    one by one.
    ``acc`` rows rp..: the products with a1, cp, T'a1, T'cp; ``stats`` as
    :func:`_accumulate` leaves them; ``sol``: scratch of 5 _BLK values. (Without branches,
    and every loop stores to one array at constant offsets or to one row of ``out``: the
    loops run in SIMD without run-time alias checks.)"""
    for j in range(nb):
        cc = stats[2, j]
        ok = np.isfinite(cc)
        if thr > 0.0:
            delta = (stats[3, j] - stats[4, j]) / n_post
            if n_pre > 0:
                delta -= stats[4, j] / n_pre
            # with margins over the rounding of delta: where this says yes, the exact test
            # (the caller's, same sums, other operation order) says yes
            ok = ok & (delta > 1e-12 * (abs(stats[3, j]) + abs(stats[4, j]))) & (delta * (
                _MAD_DIFF * n_diff) > thr * ((2.0 + 1e-6) * stats[5, j]))
        stats[7, j] = 1.0 if ok else 0.0
    for j in range(_BLK):
        g22 = stats[0, j]
        y2 = stats[1, j]
        y1 = acc[rp, j]
        y3 = acc[rp + 1, j]
        g12 = -acc[rp + 2, j]
        g23 = -acc[rp + 3, j]
        kt, kep, vp = _llsq_solve(model, g11, g12, g13, g22, g23, g33, y1, y2, y3)
        bad = (not np.isfinite(kt)) | (kt < 0) | ((model != 2) & (not kep > 0)) | (vp < 0)
        sol[j] = kt
        sol[_BLK + j] = kep
        sol[2 * _BLK + j] = kt / kep if (np.isfinite(kep) & (kep > 0)) else np.nan
        sol[3 * _BLK + j] = vp
        sol[4 * _BLK + j] = 4.0 if bad else 0.0
    for k in range(4):
        o = out[k]
        for j in range(nb):
            o[v0 + j] = sol[k * _BLK + j]
    for k in range(4, 6):
        o = out[k]
        for j in range(nb):
            o[v0 + j] = np.nan
    o = out[6]
    for j in range(nb):
        o[v0 + j] = sol[4 * _BLK + j]


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _fit_kernel(c: NDArray[Any], c16: NDArray[Any], vmat: NDArray[Any], t_min: NDArray[Any],
                a1: NDArray[Any], cp: NDArray[Any], pre: NDArray[Any], thr: float, model: int,
                mode: int, r: int, w_tab: NDArray[Any], g_tab: NDArray[Any], spl: NDArray[Any],
                w_cp: NDArray[Any], w_int: NDArray[Any], u0: float, du: float, stride: int,
                kt_max: float, ve_max: float, vp_max: float, out: NDArray[Any], lo: int,
                hi: int) -> None:
    """Enhancement test, Murase linear least squares and the bounded NLLS of curves
    ``c[lo:hi]`` in one pass over the data; writes columns ``lo:hi`` of ``out`` (rows
    _OUT + SSE).

    ``thr`` > 0: curves whose post-minus-pre mean is at most ``thr`` robust noise SDs get
    status 5 (Ktrans = vp = 0, RMSE of the zero curve). ``mode`` 0: NLLS started from the
    LLSQ kep; 1: LLSQ without goodness of fit (NaN); 2: LLSQ with the residual of its
    parameters on the exact model; 3: only the finiteness and enhancement test (the other
    curves get status 0 and NaN values).

    ``vmat`` holds the basis ``u`` (its first ``r`` columns; none in modes 1 and 3), then the
    vectors a1, cp, T'a1 and T'cp (T: trapezoid running-integral matrix): the linear terms
    of the normal equations and the basis projection are inner products with them; the
    terms quadratic in the running integral of the curve are accumulated directly.
    """
    nt = c.shape[1]
    rp = vmat.shape[1] - 4     # leading basis columns
    n_tab = w_tab.shape[0]
    u_hi = u0 + spl.shape[1] * du
    kep_tab = np.exp(u0 + du * np.arange(n_tab))
    gcc = _dot(w_cp, w_cp)
    # input-only Gram entries
    g11 = 0.0
    g13 = 0.0
    g33 = 0.0
    for t in range(nt):
        g11 += a1[t] * a1[t]
        g13 += a1[t] * cp[t]
        g33 += cp[t] * cp[t]
    n_pre = 0
    for t in range(nt):
        n_pre += pre[t]
    n_post = max(nt - n_pre, 1)
    test = thr > 0.0
    # per-call scratch: no per-voxel allocation
    ct = np.zeros(r)
    w = np.empty(r)
    xt = np.empty((nt // 4 + 1, 4 * (_BLK + _PAD)), dtype=c.dtype)
    xd = np.empty((nt if vmat.shape[1] > 4 else 0, _BLK))
    wpre = np.zeros(nt)
    for t in range(nt):
        wpre[t] = 1.0 if pre[t] else 0.0
    acc = np.empty((vmat.shape[1], _BLK))
    stats = np.empty((8, _BLK))
    sol = np.empty(5 * _BLK)
    scratch = np.empty(nt - 1)
    n_coarse = (n_tab + stride - 1) // stride if mode == 0 and model != 2 else 0
    r1c = np.empty((n_coarse, _BLK))
    fcb = np.empty((n_coarse + 1, _BLK))   # + a scratch row
    acb = np.empty((n_coarse, _BLK))
    for v0 in range(lo, hi, _BLK):
        nb = min(hi, v0 + _BLK) - v0
        _accumulate(c, c16, v0, nb, t_min, vmat, wpre, xt, xd, acc, stats)
        # E.C of the coarse table rows for the whole block (SIMD over the curves)
        # (all _BLK columns: a constant trip count; the padding columns are zero curves)
        for q in range(n_coarse):
            for j in range(_BLK):
                r1c[q, j] = 0.0
            for k in range(rp):
                a = w_tab[q * stride, k]
                for j in range(_BLK):
                    r1c[q, j] += a * acc[k, j]
        if n_coarse:
            _coarse_profiles(r1c, acc, _BLK, w_cp, g_tab, kep_tab, stride, gcc, model, kt_max,
                             ve_max, vp_max, fcb, acb)
        if mode == 1:
            # (counts as floats: the same numbers, one compiled signature)
            _llsq_block(acc, stats, rp, nb, g11, g13, g33, model, thr, float(n_pre),
                        float(n_post), float(nt - 1), out, v0, sol)
        for j in range(nb):
            if mode == 1 and stats[7, j] == 1.0:
                continue
            v = v0 + j
            cc = stats[2, j]
            if not np.isfinite(cc):
                _finish(out, v, np.nan, np.nan, np.nan, np.nan, np.nan, 1.0, nt, model)
                continue
            if test:
                delta = (stats[3, j] - stats[4, j]) / n_post
                if n_pre > 0:
                    delta -= stats[4, j] / n_pre
                if not _enhancing(delta, thr, stats[5, j], c, v, scratch):
                    for k in range(8):
                        out[k, v] = np.nan
                    out[0, v] = 0.0
                    out[3, v] = 0.0
                    out[5, v] = np.sqrt(cc / nt)
                    out[6, v] = 5.0
                    continue
            if mode == 1:   # written by _llsq_block
                continue
            if mode == 3:
                for k in range(8):
                    out[k, v] = np.nan
                out[6, v] = 0.0
                continue
            g22 = stats[0, j]
            y2 = stats[1, j]
            sc = stats[3, j]
            sst = cc - sc * sc / nt
            y1 = acc[rp, j]
            y3 = acc[rp + 1, j]
            g12 = -acc[rp + 2, j]
            g23 = -acc[rp + 3, j]
            for k in range(rp):
                ct[k] = acc[k, j]
            if mode == 0 and model == 2:   # Patlak: linear in Ktrans and vp, no kep
                f, a, b = _box2(_dot(w_int, ct), _dot(w_cp, ct), _dot(w_int, w_int),
                                _dot(w_int, w_cp), gcc, kt_max, vp_max)
                st = 0.0
                if a >= kt_max or b >= vp_max:
                    st = 2.0
                elif a <= 0.0:
                    st = 3.0
                _finish(out, v, a, np.nan, b, max(cc + f, 0.0), sst, st, nt, model)
                continue
            kt, kep, vp = _llsq_solve(model, g11, g12, g13, g22, g23, g33, y1, y2, y3)
            if mode == 0:
                _nlls_voxel(ct, w, cc, sst, kep, w_tab, g_tab, kep_tab, spl, w_cp, gcc, u0, du,
                            stride, model, kt_max, ve_max, vp_max, nt, fcb, acb, j, out, v)
                continue
            st = 0.0
            if not np.isfinite(kt) or kt < 0 or (model != 2 and not kep > 0) or vp < 0:
                st = 4.0
            sse = np.nan
            if st == 0.0 and mode == 2:
                # (element loops, not slice assignments: those compile numba's shape-error
                # message formatting, seconds of every first compile)
                if model == 2:
                    for k in range(r):
                        w[k] = w_int[k]
                else:
                    uk = np.log(kep)
                    if u0 <= uk <= u_hi:
                        _spline_w(uk, spl, u0, du, w)
                    else:
                        for k in range(r):
                            w[k] = np.nan
                # ||C - kt E - vp cp||^2 from inner products in the basis
                sse = cc
                for k in range(r):
                    m = kt * w[k] + vp * w_cp[k]
                    sse += m * m - 2.0 * m * ct[k]
                sse = max(sse, 0.0)
            _finish(out, v, kt, kep, vp, sse, sst, st, nt, model)


@numba.njit(cache=True, nogil=True)
def _nested_kernel(c: NDArray[Any], x1: NDArray[Any], x2: NDArray[Any], a_hi: float,
                   b_hi: float, out: NDArray[Any], lo: int, hi: int) -> None:
    """Box-bounded linear fit c ~ a x1 + b x2 (0 <= a <= a_hi, 0 <= b <= b_hi) per curve
    of ``c[lo:hi]``.

    out columns: a, b, SSE, total sum of squares about the mean. x2 = 0 gives a one-parameter
    fit (b = 0).
    """
    nt = c.shape[1]
    g11 = 0.0
    g12 = 0.0
    g22 = 0.0
    for t in range(nt):
        g11 += x1[t] * x1[t]
        g12 += x1[t] * x2[t]
        g22 += x2[t] * x2[t]
    for v in range(lo, hi):
        r1 = 0.0
        r2 = 0.0
        cc = 0.0
        sc = 0.0
        for t in range(nt):
            x = np.float64(c[v, t])
            r1 += x1[t] * x
            r2 += x2[t] * x
            cc += x * x
            sc += x
        f, a, b = _box2(r1, r2, g11, g12, g22, a_hi, b_hi)
        out[v, 0] = a
        out[v, 1] = b
        out[v, 2] = max(cc + f, 0.0)
        out[v, 3] = cc - sc * sc / nt


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _delay_start_kernel(zw: NDArray[Any], g22: NDArray[Any], icx: NDArray[Any], n_d: int,
                        nq: int, efflux: bool, start: NDArray[Any], lo: int, hi: int) -> None:
    """Per row of ``zw`` (the curves times the matrix of
    :meth:`TracerKineticModel._linear_delay_terms`; ``g22``, ``icx``: the squared norm of
    the curve's running integral and its product with the curve) in ``lo:hi``, the index
    of the delay whose input terms explain most of the curve (first on ties; non-finite
    counts as nothing). See :meth:`TracerKineticModel._linear_delay_start`."""
    for r in range(lo, hi):
        best = -np.inf
        best_j = 0
        for j in range(n_d):
            z = zw[r, j]
            expl = z * z                            # explained by the input terms
            for k in range(1, nq):
                z = zw[r, k * n_d + j]
                expl += z * z
            if efflux:                              # + the part of int C outside them
                w = zw[r, nq * n_d + j]
                cov = icx[r] - w * zw[r, j]
                var = g22[r] - w * w
                for k in range(1, nq):
                    w = zw[r, (nq + k) * n_d + j]
                    cov -= w * zw[r, k * n_d + j]
                    var -= w * w
                if var > 1e-12 * g22[r]:
                    expl += cov * cov / var
            if not np.isfinite(expl):
                expl = -np.inf
            if expl > best:                         # largest explained = smallest residual
                best = expl
                best_j = j
        start[r] = best_j


def _neighbourhood_curves(c_img: NDArray[Any], weight: NDArray[np.bool_],
                          size: tuple[int, ...],
                          axis_order: Sequence[int] | None = None) -> NDArray[Any]:
    """Mean curve over the ``size`` box of the voxels with ``weight``, at those voxels.

    ``c_img`` has shape (*image, n_times); returns (n_weighted, n_times) in the input dtype,
    rows in C order of the weighted voxels. One time frame at a time (small temporaries),
    or a few (:data:`_FRAMES`) when the image is voxel-major.
    The box sums are one-dimensional running sums along the image axes in ``axis_order``
    (default: 0, 1, ...; scipy's ``uniform_filter``), each rounded to the input dtype.
    """
    nt = c_img.shape[-1]
    order = range(weight.ndim) if axis_order is None else axis_order
    dt = np.float32 if c_img.dtype == np.float32 else np.float64

    def box(a: NDArray[Any]) -> NDArray[Any]:
        for ax in order:
            if size[ax] > 1:
                a = uniform_filter1d(a, size[ax], axis=ax, mode="constant", cval=0.0)
        return a

    w = weight.astype(dt)
    den = box(w)[weight]
    frame0 = c_img[..., 0]
    if frame0.flags.c_contiguous or frame0.flags.f_contiguous:   # time-major image
        out_t = np.empty((nt, int(weight.sum())), dtype=dt)   # contiguous writes
        for k in range(nt):
            frame = np.where(weight, c_img[..., k], 0.0).astype(dt, copy=False)
            np.divide(box(frame)[weight], den, out=out_t[k])
        return _rows_copy(out_t.T, None)
    # voxel-major: _FRAMES frames at a time (one pass over the image per group instead of
    # one per frame; each line of the box sums is the same one-dimensional sum)
    out = np.empty((int(weight.sum()), nt), dtype=dt)
    wb = weight[..., None]
    for k in range(0, nt, _FRAMES):
        frames = np.where(wb, c_img[..., k:k + _FRAMES], 0.0).astype(dt, copy=False)
        out[:, k:k + _FRAMES] = box(frames)[weight] / den[:, None]
    return out


#: Time frames per pass of :func:`_neighbourhood_curves` over a voxel-major image.
_FRAMES = 8


#: Voxels per block of :func:`_rows_copy`.
_COPY_BLOCK = 2048


def _rows_copy(rows: NDArray[Any], sel: NDArray[np.intp] | None) -> NDArray[Any]:
    """C-contiguous copy of ``rows[sel]`` (all rows when ``sel`` is None; ``sel``
    increasing), block by block of rows: the time-major (Fortran-ordered) images that
    nibabel reads are then copied through the cache instead of one strided pass per sample
    (about 6x faster at 256x256x12x60)."""
    n_all, nt = rows.shape
    if rows.flags.c_contiguous:
        return rows if sel is None else np.ascontiguousarray(rows[sel])
    out = np.empty((n_all if sel is None else sel.size, nt), dtype=rows.dtype)
    b = _COPY_BLOCK
    if sel is None:
        for lo in range(0, n_all, b):
            out[lo:lo + b] = rows[lo:lo + b]
        return out
    edges = np.searchsorted(sel, np.arange(0, n_all + b, b))
    for k, lo in enumerate(range(0, n_all, b)):
        i, j = int(edges[k]), int(edges[k + 1])
        if j > i:
            out[i:j] = rows[lo:lo + b][sel[i:j] - lo]
    return out


def _units16(c: NDArray[Any]) -> NDArray[np.complex128]:
    """The rows of ``c`` (C-contiguous, float32 or float64) as 16-byte units for the block
    copy of :func:`_accumulate` when a row is a whole number of them, else empty."""
    if c.flags.c_contiguous and (c.shape[1] * c.itemsize) % 16 == 0 and (
            c.ctypes.data % 16 == 0):
        return c.view(np.complex128)
    return np.empty((0, 0), dtype=np.complex128)


# ----------------------------------------------------------------------------- model API

def _kernel_model(spec: KineticModel) -> int:
    """Model flag of the compiled kernels (0 Tofts, 1 extended Tofts, 2 Patlak) from the
    structure of a registry entry: efflux (kep) and plasma term (vp)."""
    if spec.fitter != _FITTER or not (spec.efflux or spec.plasma_term):
        raise ValueError(f"model: {spec.name!r} is fitted by {spec.fitter}, not {_FITTER}")
    return (1 if spec.plasma_term else 0) if spec.efflux else 2


class TracerKineticModel:
    """Tofts, extended Tofts or Patlak model for one plasma input.

    Parameters
    ----------
    t_s : array_like, shape (n_times,)
        Tissue sample times (s); uneven spacing allowed.
    cp_mM : array_like
        Plasma input function (mM) at ``t_aif_s`` (default: at ``t_s``). Convert a blood
        curve first (:func:`dce.aif.blood_to_plasma`).
    model : {"extended_tofts", "tofts", "patlak"}
        A kinetic model of :data:`dce.registry.KINETIC_MODELS` implemented by this class.
    t_aif_s : array_like, optional
        Sample times of the input (s) when they differ from the tissue times.
    method : {"nlls", "llsq"}
        Bounded nonlinear least squares (started from LLSQ) or linear least squares only.
    delay_s : float
        Fixed bolus arrival delay (s) of the tissue relative to the input.
    fit_delay : bool
        Fit the delay over ``delay_grid_s`` (``delay_s`` is then ignored): per voxel, the
        candidate delay with the smallest residual of the curve that selects it (the voxel's
        own curve, or its neighbourhood mean, see ``delay_neighbourhood``).
    delay_grid_s : array_like, optional
        Candidate delays (s); default :data:`DEFAULT_DELAY_GRID_S` (-2 to 10 s, 0.5 s steps).
        Grids of more than 3 delays are searched by descent on the NLLS residual from each
        curve's delay of the smallest linear (Murase) residual (see the module notes).
    delay_neighbourhood : sequence of int, optional
        Box size (voxels per image axis, e.g. ``(3, 3, 1)``) of the neighbourhood whose mean
        curve (over the fitted, enhancing voxels in the box) selects each voxel's delay; the
        voxel's own curve is then fitted at that delay. None (default) or all ones: each
        voxel's own curve selects its delay. Needs an image (not a list of unrelated curves)
        with as many axes as entries.
    enhancement_z : float or None
        Enhancement test (default :data:`DEFAULT_ENHANCEMENT_Z` = 2): a curve whose mean
        after the arrival of the input minus its mean before it is at most ``z`` standard
        errors, ``z * sigma * sqrt(1/n_post + 1/n_pre)``, is not fitted and gets status 5
        (Ktrans = vp = 0). ``sigma`` is the curve's own robust noise SD (median absolute
        difference of consecutive samples / 0.954). Baseline (pre) phases: the tissue times
        before the first input sample that reaches 10% of the input's peak, moved by the
        smallest candidate delay when that is negative. None or 0: no test.
    bounds : FitBounds
        Search ranges.
    goodness_of_fit : bool
        For ``method="llsq"``: compute R^2 and RMSE of the LLSQ parameters on the exact
        model (a projection of every curve on the convolution basis, about 3x the cost of the
        linear solve). When False they are NaN. (``nlls`` always reports them.)
    aif_interpolation : {"cubic", "linear"}
        The input between its samples (:func:`dce.models.make_input_grid`): the not-a-knot
        cubic spline through the samples, or straight lines (default; they flatten the
        bolus between samples: with a delay that is not a multiple of the sampling interval,
        vp too high and Ktrans too low; ``benchmarks/delay_interp.py``; why linear is still
        the default: :mod:`dce.models`).
    """

    def __init__(self, t_s: ArrayLike, cp_mM: ArrayLike, *, model: str = "extended_tofts",
                 t_aif_s: ArrayLike | None = None, method: str = "nlls", delay_s: float = 0.0,
                 fit_delay: bool = False, delay_grid_s: ArrayLike | None = None,
                 delay_neighbourhood: Sequence[int] | None = None,
                 enhancement_z: float | None = DEFAULT_ENHANCEMENT_Z,
                 bounds: FitBounds | None = None, goodness_of_fit: bool = True,
                 aif_interpolation: str = DEFAULT_INTERPOLATION) -> None:
        self.spec = kinetic_model(model)
        self._kernel = _kernel_model(self.spec)
        if method not in ("nlls", "llsq"):
            raise ValueError(f"method: unknown method {method!r}; choose 'nlls' or 'llsq'")
        self.t_s = check_times(t_s, "t_s", min_len=4)
        self.t_aif_s = self.t_s if t_aif_s is None else check_times(t_aif_s, "t_aif_s")
        self.cp_mM = as_float_array(cp_mM, "cp_mM", ndim=1)
        if self.cp_mM.size != self.t_aif_s.size:
            raise ValueError(f"cp_mM: {self.cp_mM.size} samples but "
                             f"{'t_s' if t_aif_s is None else 't_aif_s'} has "
                             f"{self.t_aif_s.size} (mismatched lengths)")
        if not np.any(self.cp_mM != 0):
            raise ValueError("cp_mM: the input function is zero everywhere")
        self.model = model
        self.method = method
        if aif_interpolation not in INTERPOLATIONS:
            raise ValueError(f"aif_interpolation: unknown {aif_interpolation!r}; choose one "
                             f"of {', '.join(INTERPOLATIONS)}")
        self.aif_interpolation = aif_interpolation
        self.fit_delay = bool(fit_delay)
        if fit_delay and method == "llsq":
            raise ValueError("fit_delay: delay fitting needs method='nlls'")
        if self.fit_delay:
            if delay_grid_s is None:
                start, stop, step = DEFAULT_DELAY_GRID_S
                grid = np.arange(start, stop + 1e-9, step)
            else:
                grid = as_float_array(delay_grid_s, "delay_grid_s", ndim=1)
            if grid.size == 0 or not np.all(np.isfinite(grid)):
                raise ValueError("delay_grid_s: need at least one finite delay")
            self.delays_s = np.unique(grid)
        else:
            self.delays_s = np.array([float(as_float_array(delay_s, "delay_s"))])
        self.delay_neighbourhood: tuple[int, ...] | None = None
        if delay_neighbourhood is not None:
            size = tuple(int(k) for k in delay_neighbourhood)
            if not size or any(k < 1 or k % 2 == 0 for k in size) or \
                    any(k != float(x) for k, x in zip(size, delay_neighbourhood, strict=True)):
                raise ValueError(f"delay_neighbourhood: need odd positive integers, got "
                                 f"{delay_neighbourhood!r}")
            if any(k > 1 for k in size):
                self.delay_neighbourhood = size
        z = 0.0 if enhancement_z is None else float(enhancement_z)
        if not (np.isfinite(z) and z >= 0):
            raise ValueError(f"enhancement_z: must be >= 0 or None, got {enhancement_z!r}")
        self.enhancement_z = z
        if bounds is not None and not isinstance(bounds, FitBounds):
            raise ValueError(f"bounds: expected a FitBounds, got {type(bounds).__name__}")
        self.bounds = bounds or FitBounds()
        self.goodness_of_fit = bool(goodness_of_fit)
        self._n_tab = 1601
        self._stride = 80
        self._refine_delay = True      # delay search by descent (False: every delay)
        self._lin: NDArray[np.float64] | None = None   # see _linear_delay_terms
        self._bases: dict[float, _Basis] = {}
        # baseline phases of the enhancement test
        peak = np.max(np.abs(self.cp_mM))
        first = self.t_aif_s[int(np.argmax(np.abs(self.cp_mM) >= 0.1 * peak))]
        self._pre = self.t_s < first + min(0.0, float(self.delays_s[0]))
        self._t_min = self.t_s / 60.0

    def policy(self) -> dict[str, Any]:
        """The delay and status policy in force, for provenance (JSON-serialisable)."""
        n_pre = int(self._pre.sum())
        d = self.delays_s
        out: dict[str, Any] = {
            "AIFInterpolation": self.aif_interpolation,
            "DelayFitted": self.fit_delay,
            "DelayGrid_s": [float(x) for x in d] if self.fit_delay else None,
            "Delay_s": None if self.fit_delay else float(d[0]),
            "DelaySelection": (None if not self.fit_delay else
                               "per voxel, smallest residual of the voxel's own curve"
                               if self.delay_neighbourhood is None else
                               "per voxel, smallest residual of the mean curve of the "
                               "enhancing voxels in a "
                               f"{'x'.join(map(str, self.delay_neighbourhood))} box; the "
                               "voxel's own curve is fitted at that delay"),
            "DelaySearch": ("descent on the NLLS residual from the delay of the smallest "
                            "linear (Murase) residual" if self.fit_delay and self._refine_delay
                            and d.size > 3 else "exhaustive" if self.fit_delay else None),
            "EnhancementTest": (None if self.enhancement_z == 0 else {
                "z_min": self.enhancement_z,
                "statistic": "(mean post - mean pre) / (sigma * sqrt(1/n_post + 1/n_pre)), "
                             "sigma = median |consecutive difference| / 0.954",
                "n_pre_phases": n_pre, "n_post_phases": int(self._pre.size - n_pre)}),
            "StatusCodes": {str(k): v for k, v in STATUS_FIT.items()},
        }
        return out

    def _basis(self, delay: float) -> _Basis:
        if delay not in self._bases:
            self._bases[delay] = _build_basis(self.t_s, self.cp_mM, self.t_aif_s, delay,
                                              self.bounds, self._n_tab,
                                              self.aif_interpolation)
        return self._bases[delay]

    def predict(self, *, ktrans_per_min: ArrayLike, ve: ArrayLike | None = None,
                vp: ArrayLike = 0.0, delay_s: float = 0.0) -> NDArray[np.float64]:
        """Model curves (mM) at the tissue times for given parameters (those the model
        lacks are ignored): :func:`dce.models.tissue_concentration`."""
        return tissue_concentration(self.model, self.t_s, self.cp_mM, t_aif_s=self.t_aif_s,
                                    delay_s=delay_s, interpolation=self.aif_interpolation,
                                    ktrans_per_min=ktrans_per_min, ve=ve, vp=vp)

    def fit(self, conc_mM: ArrayLike, *, mask: ArrayLike | None = None) -> TracerKineticFit:
        """Fit every voxel.

        Parameters
        ----------
        conc_mM : array_like, shape (..., n_times)
            Tissue concentration (mM), time on the last axis; float32 or float64 (not
            copied when C-contiguous and unmasked; a Fortran-ordered image, as nibabel
            reads it, is copied in blocks in its own voxel order and its maps are
            Fortran-ordered, with the same values). Voxels with NaN samples get status 1.
        mask : array_like of bool, shape (...), optional
            Fit only these voxels; voxels outside the mask are NaN with status -1 (and do
            not enter the neighbourhood means of ``delay_neighbourhood``).

        Returns
        -------
        TracerKineticFit
        """
        c = np.asarray(conc_mM)
        if c.size == 0:
            raise ValueError("conc_mM: empty array")
        if c.dtype == object or not np.issubdtype(c.dtype, np.number):
            raise ValueError(f"conc_mM: expected numbers, got dtype {c.dtype}")
        if not np.issubdtype(c.dtype, np.floating):
            c = c.astype(np.float64)
        if c.dtype not in (np.float32, np.float64):
            c = c.astype(np.float64)
        check_last_axis(c, self.t_s.size, "conc_mM", "t_s")
        shape = c.shape[:-1]
        nb = self.delay_neighbourhood if self.fit_delay else None
        if nb is not None and len(nb) != len(shape):
            raise ValueError(f"delay_neighbourhood: {len(nb)} axes but the image has "
                             f"{len(shape)} {shape}")
        m = None
        if mask is not None:
            m = np.asarray(mask, dtype=bool)
            if m.shape != shape:
                raise ValueError(f"mask: shape {m.shape} does not match the image shape {shape}")
        # a time-major (Fortran-ordered) image, as nibabel reads it, is fitted in its own
        # voxel order: the image with the spatial axes reversed, whose C order that is
        # (every result is per voxel; the neighbourhood sums keep the axis order); the maps
        # come back as Fortran-ordered views
        rev = len(shape) > 1 and c.flags.f_contiguous and not c.flags.c_contiguous
        axes: tuple[int, ...] | None = None
        if rev:
            axes = tuple(range(len(shape) - 1, -1, -1))
            c = c.transpose(*axes, len(shape))
            m = None if m is None else m.transpose(axes)
            nb = None if nb is None else tuple(nb[a] for a in axes)
        nt = self.t_s.size
        all_rows = c.reshape(-1, nt)
        n_all = all_rows.shape[0]
        sel = None if m is None else np.flatnonzero(m.ravel())
        flat = _rows_copy(all_rows, sel)
        res = self._fit_selected(flat, c, sel, nb, axes)
        outd: dict[str, NDArray[Any]] = {}
        for k, val in res.items():
            if sel is None:
                full = val
            else:
                fill = -1 if k == "status" else np.nan
                full = np.full(n_all, fill, dtype=val.dtype)
                full[sel] = val
            full = full.reshape(c.shape[:-1])
            outd[k] = full.transpose(axes) if axes is not None else full
        return TracerKineticFit(model=self.model, method=self.method, **outd)

    def _fit_selected(self, flat: NDArray[Any], c_img: NDArray[Any], sel: NDArray[np.intp] | None,
                      nb: tuple[int, ...] | None, axis_order: tuple[int, ...] | None = None
                      ) -> dict[str, NDArray[Any]]:
        """Enhancement test, then the fit of the enhancing curves of ``flat`` (the rows of
        ``c_img`` in C order, or ``sel`` of them); ``axis_order``: that of the neighbourhood
        sums (see :func:`_neighbourhood_curves`)."""
        nv, nt = flat.shape
        thr = 0.0
        if self.enhancement_z > 0:
            n_pre = int(self._pre.sum())
            se_factor = np.sqrt(1.0 / max(nt - n_pre, 1) + (1.0 / n_pre if n_pre else 0.0))
            thr = self.enhancement_z * se_factor
        d = self.delays_s
        delay = np.full(nv, np.nan)
        if d.size == 1:   # one pass: test, fit, and the not fitted curves' values
            out = self._run(flat, float(d[0]), thr)
            if self.method == "nlls" and self.spec.efflux:
                self._nested(flat, out, np.zeros(nv, dtype=np.intp))
            delay[(out[6] != 1.0) & (out[6] != 5.0)] = d[0]
        else:
            out = self._run(flat, float(d[0]), thr, test_only=True)
            idx = np.flatnonzero(out[6] == 0.0)
            if idx.size:
                c_fit = flat if idx.size == nv else np.ascontiguousarray(flat[idx])
                c_sel = None
                if nb is not None:
                    weight = np.zeros(c_img.shape[:-1], dtype=bool)
                    w_flat = weight.reshape(-1)
                    w_flat[idx if sel is None else sel[idx]] = True
                    c_sel = _neighbourhood_curves(c_img, weight, nb, axis_order)
                    # rows of c_sel follow C order of the image = increasing sel[idx]: matches
                    # idx
                sub, best_j = self._fit_flat(c_fit, c_sel)
                if idx.size == nv:
                    out = sub
                else:
                    out[:, idx] = sub
                delay[idx] = d[best_j]
        res = {k: out[i] for i, k in enumerate(_OUT[:-1])}
        res["status"] = out[6].astype(np.int8)
        res["delay_s"] = delay
        return res

    def _run(self, c: NDArray[Any], delay: float, thr: float = 0.0,
             test_only: bool = False) -> NDArray[np.float64]:
        """Columns (rows _OUT + SSE) of the fit of curves ``c`` at one delay; ``thr`` > 0
        applies the enhancement test (see :func:`_fit_kernel`)."""
        bd = self.bounds
        if test_only:
            mode = 3
        else:
            mode = (2 if self.goodness_of_fit else 1) if self.method == "llsq" else 0
        b = self._basis(float(delay))
        out = np.empty((8, c.shape[0]))
        run_chunks(_fit_kernel, c.shape[0], c, _units16(c),
                   b.proj if mode in (0, 2) else b.proj_lin, self._t_min, b.a1, b.grid.cp_mM,
                   self._pre, float(thr), self._kernel, mode,
                   b.u.shape[1], b.w_tab, b.g_tab, b.spl, b.w_cp, b.w_int, b.u0, b.du,
                   self._stride, float(bd.ktrans_max_per_min), float(bd.ve_max),
                   float(bd.vp_max), out, block=_BLK)
        return out

    def _linear_delay_terms(self) -> NDArray[np.float64]:
        """The matrix of the linear delay choice (:meth:`_linear_delay_start`), (n_times,
        2 n_q n_delays + n_times): per candidate delay an orthonormal basis ``Q`` (``n_q``
        columns) of the input terms of the model's linear (Murase) equation (a1, the
        running integral of cp, and cp when the model has vp); the first columns of all
        delays' ``Q``, then their second columns, then the same for ``T'Q``, then ``T'``
        (T: the trapezoid running-integral matrix, min)."""
        if self._lin is None:
            tm = _trapezoid_matrix(self._t_min)
            qs = []
            for dj in self.delays_s:
                grid = make_input_grid(self.t_s, self.cp_mM, t_aif_s=self.t_aif_s,
                                       delay_s=float(dj), interpolation=self.aif_interpolation)
                a1 = grid.convolve(np.zeros(1))[0] / 60.0
                x = np.column_stack([a1, grid.cp_mM]) if self.spec.plasma_term else a1[:, None]
                q, rr = np.linalg.qr(x)
                # a degenerate direction (all-zero input at this delay) is dropped
                qs.append(q * (np.abs(np.diag(rr)) > 1e-12 * np.abs(rr).max()))
            q_all = np.column_stack([q[:, k] for k in range(qs[0].shape[1]) for q in qs])
            self._lin = np.ascontiguousarray(np.column_stack([q_all, tm.T @ q_all, tm.T]))
        return self._lin

    def _linear_delay_start(self, c: NDArray[Any]) -> NDArray[np.intp]:
        """Each curve's candidate delay (index) with the smallest residual of the linear
        (Murase, unbounded) fit of the model: C ~ a1 Ktrans' + cp vp - kep int C (the
        efflux term only with kep, the cp term only with vp). One matrix product of the
        curves with the orthonormalised input terms of all delays; the residual is the
        curve's part outside the input terms minus its projection on the part of int C
        outside them (blocks of curves, float64)."""
        mat = self._linear_delay_terms()
        nt = self.t_s.size
        n_d = self.delays_s.size
        nq = (mat.shape[1] - nt) // (2 * n_d)
        start = np.empty(c.shape[0], dtype=np.intp)
        blk = 16384    # rows per matrix product (OpenBLAS is slow on short ones)
        sub = 1024     # rows per pass of the steps after it (in cache)
        efflux = bool(self.spec.efflux)
        none = np.zeros(0)
        for lo in range(0, c.shape[0], blk):
            x_blk = np.asarray(c[lo:lo + blk], dtype=np.float64)
            zw_blk = x_blk @ mat                         # Q'C, Q' int C, int C
            for i in range(0, x_blk.shape[0], sub):
                zw = zw_blk[i:i + sub]
                g22 = icx = none
                if efflux:
                    ic = zw[:, 2 * nq * n_d:]            # running integral of the curve
                    g22 = np.einsum("ij,ij->i", ic, ic)
                    icx = np.einsum("ij,ij->i", ic, x_blk[i:i + sub])
                _delay_start_kernel(zw, g22, icx, n_d, nq, efflux,
                                    start[lo + i:lo + i + zw.shape[0]], 0, zw.shape[0])
        return start

    def _search_delay(self, c: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
        """Best columns over the delay grid and the index of each curve's best delay.

        Descent (default): from the delay of the smallest linear residual
        (:meth:`_linear_delay_start`), the NLLS residual at that delay and its two
        neighbours, then one delay further wherever the best is at the edge of the
        delays evaluated, until every curve's best has an evaluated neighbour with a larger
        residual on both sides (or a grid end): the exhaustive search's answer wherever the
        residual has one minimum over the delays near it. Exhaustive
        (``_refine_delay = False``): every delay for every curve. Ties: the smaller delay.
        """
        d = self.delays_s
        n_d = d.size
        n = c.shape[0]
        best = np.empty((8, n))
        best[_SSE] = np.inf
        best_j = np.full(n, n_d, dtype=np.intp)

        def update(r: NDArray[np.intp] | slice, out: NDArray[np.float64], j: int) -> None:
            """Keep the columns of delay ``j`` of rows ``r`` where they are better."""
            cur = best[_SSE, r]
            better = (out[_SSE] < cur) | ((out[_SSE] == cur) & (j < best_j[r])) | ~(
                cur < np.inf)
            if isinstance(r, slice):
                best[:, r][:, better] = out[:, better]
                best_j[r][better] = j
            else:
                best[:, r[better]] = out[:, better]
                best_j[r[better]] = j

        def evaluate(*pairs: tuple[NDArray[np.intp], NDArray[np.intp]]) -> None:
            """The NLLS at delay js[i] of curve rows[i] for each (rows, js) pair (each
            (row, delay) once over all pairs), one pass per delay."""
            present = np.zeros(n_d, dtype=bool)
            for _, js in pairs:
                present[np.bincount(js, minlength=n_d) > 0] = True
            for j in np.flatnonzero(present):
                parts = [rows[js == j] for rows, js in pairs]
                r = parts[0] if len(parts) == 1 else np.concatenate(parts)
                sub = c if r.size == n and len(parts) == 1 else np.ascontiguousarray(c[r])
                update(r, self._run(sub, d[j]), int(j))

        if not self._refine_delay or n_d <= 3:
            everyone = np.arange(n)
            for j in range(n_d):
                evaluate((everyone, np.full(n, j)))
            return best, best_j
        # the curves in the order of their start delays (stable): the curves of the first
        # round at delay j (start delay j - 1, j or j + 1) are then one contiguous range,
        # fitted in place (no copy per delay); every curve sees the same delays in the same
        # order as in a per-curve search, so the results are the same
        j0 = self._linear_delay_start(c)
        perm = np.argsort(j0, kind="stable")
        j0 = j0[perm]
        c = np.ascontiguousarray(c[perm])
        edges = np.searchsorted(j0, np.arange(n_d + 1))
        for j in range(n_d):
            a, b = int(edges[max(j - 1, 0)]), int(edges[min(j + 2, n_d)])
            if b > a:
                update(slice(a, b), self._run(c[a:b], d[j]), j)
        lo = np.maximum(j0 - 1, 0)
        hi = np.minimum(j0 + 1, n_d - 1)
        while True:
            left = np.flatnonzero((best_j == lo) & (lo > 0))
            right = np.flatnonzero((best_j == hi) & (hi < n_d - 1))
            if left.size == 0 and right.size == 0:
                break
            lo[left] -= 1
            hi[right] += 1
            evaluate((left, lo[left]), (right, hi[right]))
        best_out = np.empty_like(best)
        best_out[:, perm] = best
        best_j_out = np.empty_like(best_j)
        best_j_out[perm] = best_j
        return best_out, best_j_out

    def _fit_flat(self, c: NDArray[Any], c_sel: NDArray[Any] | None = None
                  ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
        """Fit curves ``c`` (all finite) over the delay grid; ``c_sel`` (same shape) selects
        the delays. Returns the result columns and each curve's delay index."""
        d = self.delays_s
        if c_sel is None:
            out, best_j = self._search_delay(c)
        else:
            _, best_j = self._search_delay(c_sel)
            out = np.empty((8, c.shape[0]))
            order = np.argsort(best_j, kind="stable")      # the curves of each delay
            edges = np.searchsorted(best_j[order], np.arange(d.size + 1))
            for j in range(d.size):
                a, b = int(edges[j]), int(edges[j + 1])
                if b > a:
                    rows = order[a:b]
                    sub = c if rows.size == c.shape[0] else np.ascontiguousarray(c[rows])
                    out[:, rows] = self._run(sub, d[j])
        if self.method == "nlls" and self.spec.efflux:
            self._nested(c, out, best_j)
        return out, best_j

    def _nested(self, c: NDArray[Any], out: NDArray[np.float64],
                best_j: NDArray[np.intp]) -> None:
        """Replace the columns of curves with kep at a search limit (status 6, 7) by the
        nested model's values (see :data:`STATUS_FIT`)."""
        bd = self.bounds
        etm = self.spec.plasma_term
        nt = c.shape[1]
        for code in (6, 7):
            rows_all = np.flatnonzero(out[6] == code)
            for j in np.unique(best_j[rows_all]):
                rows = rows_all[best_j[rows_all] == j]
                b = self._basis(float(self.delays_s[j]))
                cp = np.ascontiguousarray(b.grid.cp_mM)
                zero = np.zeros_like(cp)
                nest = np.empty((rows.size, 4))
                kt: Any
                ve: Any
                vp: Any
                c_rows = np.ascontiguousarray(c[rows])
                if code == 6:     # kep -> inf: C = (vp + ve) cp
                    run_chunks(_nested_kernel, rows.size, c_rows, cp, zero,
                               float(bd.vp_max if etm else bd.ve_max), 0.0, nest)
                    if etm:
                        kt, ve, vp = 0.0, np.nan, nest[:, 0]
                    else:
                        kt, ve, vp = np.nan, nest[:, 0], 0.0
                else:             # kep -> 0: Patlak, C = Ktrans int cp + vp cp
                    run_chunks(_nested_kernel, rows.size, c_rows, np.ascontiguousarray(b.a1),
                               cp if etm else zero, float(bd.ktrans_max_per_min),
                               float(bd.vp_max) if etm else 0.0, nest)
                    kt, ve, vp = nest[:, 0], np.nan, nest[:, 1] if etm else 0.0
                out[0, rows] = kt
                out[1, rows] = np.nan
                out[2, rows] = ve
                out[3, rows] = vp
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[4, rows] = np.where(nest[:, 3] > 0, 1.0 - nest[:, 2] / nest[:, 3],
                                            np.nan)
                out[5, rows] = np.sqrt(nest[:, 2] / nt)
                out[_SSE, rows] = nest[:, 2]


_FITTER = f"{__name__}:{TracerKineticModel.__name__}"


def kinetic_fitter(t_s: ArrayLike, cp_mM: ArrayLike, *, model: str = "extended_tofts",
                   **kwargs: Any) -> Any:
    """The fitter of a kinetic model, by its registry entry (:mod:`dce.registry`).

    Parameters
    ----------
    t_s, cp_mM
        Tissue times (s) and plasma input (mM), as in :class:`TracerKineticModel`.
    model : str
        Name in :data:`dce.registry.KINETIC_MODELS`.
    **kwargs
        Options of the fitter (those of :class:`TracerKineticModel`).

    Returns
    -------
    object
        An instance of the entry's ``fitter`` (``.fit(conc_mM, mask=...)``, ``.policy()``).
    """
    cls: Any = resolve(kinetic_model(model).fitter)
    return cls(t_s, cp_mM, model=model, **kwargs)


def fitter_from_config(t_s: ArrayLike, cp_mM: ArrayLike, model: Mapping[str, Any], *,
                       fit_delay: bool, image_ndim: int) -> Any:
    """The fitter of the configuration's ``model`` section (:func:`kinetic_fitter`).

    Parameters
    ----------
    t_s, cp_mM
        Tissue times (s) and plasma input (mM).
    model : mapping
        ``name``, ``method``, ``bounds`` (``kep_per_min`` [low, high] /min,
        ``ktrans_max_per_min``, ``ve_max``, ``vp_max``), ``delay_grid_s`` [start, stop,
        step] (s), optional ``delay_neighbourhood`` (default [3, 3, 1]; null: none),
        ``enhancement_z`` (default :data:`DEFAULT_ENHANCEMENT_Z`) and ``aif_interpolation``
        (default ``"linear"``).
    fit_delay : bool
        Fit the delay per voxel over the grid.
    image_ndim : int
        Spatial axes of the image to fit (checked against ``delay_neighbourhood``).
    """
    b = model["bounds"]
    bounds = FitBounds(kep_per_min=tuple(b["kep_per_min"]),
                       ktrans_max_per_min=b["ktrans_max_per_min"], ve_max=b["ve_max"],
                       vp_max=b["vp_max"])
    start, stop, step = model["delay_grid_s"]
    nbhd = model.get("delay_neighbourhood", [3, 3, 1])
    if nbhd is not None and len(nbhd) != image_ndim:
        raise ValueError(f"model.delay_neighbourhood: {len(nbhd)} sizes for a "
                         f"{image_ndim}-D image")
    return kinetic_fitter(t_s, cp_mM, model=model["name"], method=model["method"],
                          fit_delay=bool(fit_delay),
                          delay_grid_s=np.arange(start, stop + 1e-9, step),
                          delay_neighbourhood=nbhd,
                          enhancement_z=model.get("enhancement_z", DEFAULT_ENHANCEMENT_Z),
                          bounds=bounds,
                          aif_interpolation=model.get("aif_interpolation",
                                                      DEFAULT_INTERPOLATION))


def status_codes() -> dict[str, str]:
    """Meaning of every status code, -1 (outside the mask) included, for sidecars."""
    return {"-1": STATUS_OUTSIDE_MASK, **{str(k): v for k, v in STATUS_FIT.items()}}


def status_counts(status: ArrayLike) -> dict[str, int]:
    """Number of voxels per status, keyed by the status' meaning (codes present only)."""
    return {(STATUS_OUTSIDE_MASK if k == -1 else STATUS_FIT[int(k)]): int(n)
            for k, n in zip(*np.unique(np.asarray(status), return_counts=True), strict=True)}
