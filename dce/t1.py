"""Variable-flip-angle (VFA) T1 mapping for spoiled gradient echo (SPGR).

The steady-state SPGR signal at flip angle ``a`` with repetition time ``TR`` is::

    S(a) = M0 * sin(a) * (1 - E1) / (1 - E1 * cos(a)),    E1 = exp(-TR / T1)

Two estimators of ``(T1, M0)`` from signals acquired at several flip angles are
provided, both vectorised over voxels (signal arrays shaped ``(..., n_flip_angles)``
with any leading voxel shape; no per-voxel Python loop):

``method="linear"`` (DESPOT1)
    ``S/sin(a) = E1 * S/tan(a) + M0 (1 - E1)``: ordinary least-squares regression of
    ``S/sin(a)`` on ``S/tan(a)`` per voxel, in closed form. Slope ``E1``, intercept
    ``M0 (1 - E1)``.

``method="nonlinear"``
    Least squares on the SPGR equation itself, by variable projection: for fixed
    ``E1`` the signal is linear in ``M0``, so ``M0`` is eliminated and the 1-D profile
    over ``E1`` in (0, 1) is maximised. A log-spaced grid over T1 locates the global
    optimum's basin; a safeguarded Newton-bisection iteration (analytic derivatives,
    started from the linear solution when it falls in the bracket) refines it to a
    relative T1 precision of about 1e-8. Both run per voxel in a compiled (numba) kernel,
    on the threads of :func:`dce._threads.run_chunks`.

A relative flip-angle map ``b1`` (actual flip angle = ``b1`` x nominal) may be given
for B1 correction.

Status codes of :class:`VFAFit` (also in :data:`STATUS_MEANINGS`):

====  =======================  ======================================================
code  name                     meaning
====  =======================  ======================================================
0     ``STATUS_OK``            fit succeeded; T1 within the physical range
1     ``STATUS_BAD_SIGNAL``    at least one signal sample is zero or negative; the
                               voxel is not fitted
2     ``STATUS_OUT_OF_RANGE``  T1 outside the physical range (default 0.01-20 s), or
                               E1 outside (0, 1) (linear fit), or the nonlinear
                               optimum lies beyond the search grid (T1 -> 0 or
                               infinity)
3     ``STATUS_OTHER``         other failure: singular regression, non-positive or
                               non-finite M0, refinement not converged, B1 factor
                               not finite (outside the B1 map)
====  =======================  ======================================================

Voxels with a non-zero status have ``valid=False`` and ``NaN`` in ``t1_s``,
``r1_per_s`` and ``m0``; valid voxels are always finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from dce._checks import (
    as_float_array,
    check_b1_factor,
    check_flip_angle,
    check_last_axis,
    check_tr,
)
from dce._threads import run_chunks

__all__ = [
    "STATUS_BAD_SIGNAL",
    "STATUS_MEANINGS",
    "STATUS_OK",
    "STATUS_OTHER",
    "STATUS_OUT_OF_RANGE",
    "Method",
    "VFAFit",
    "VFAModel",
]

#: Fitting methods of :class:`VFAModel`.
Method = Literal["nonlinear", "linear"]

STATUS_OK = 0
STATUS_BAD_SIGNAL = 1
STATUS_OUT_OF_RANGE = 2
STATUS_OTHER = 3

#: Meaning of each :attr:`VFAFit.status` code.
STATUS_MEANINGS: dict[int, str] = {
    STATUS_OK: "ok",
    STATUS_BAD_SIGNAL: "non-positive (zero or negative) signal at one or more flip angles",
    STATUS_OUT_OF_RANGE: "T1 outside the physical range, or E1 outside (0, 1)",
    STATUS_OTHER: "other failure (singular regression, non-positive M0, no convergence, "
                  "B1 factor unknown)",
}

_CHUNK_VOXELS = 1 << 16        # voxels per chunk: bounds temporary memory
_N_GRID = 40                   # log-spaced T1 grid points of the nonlinear search
_GRID_MARGIN = 4.0             # grid spans [t1_min / margin, t1_max * margin]
_MAX_NEWTON = 60
_NEWTON_TOL = 1e-8             # on ln(TR/T1): relative T1 precision
_OUT_OF_RANGE = STATUS_OUT_OF_RANGE   # the status codes as the kernel's globals
_OTHER = STATUS_OTHER


@dataclass(frozen=True)
class VFAFit:
    """Result of :meth:`VFAModel.fit`; every array has the voxel shape of the signal.

    Attributes
    ----------
    t1_s : ndarray of float64
        T1 in seconds; NaN where ``valid`` is False.
    r1_per_s : ndarray of float64
        R1 = 1/T1 in 1/s; NaN where ``valid`` is False.
    m0 : ndarray of float64
        Equilibrium signal M0 (signal units, includes receive gain); NaN where
        ``valid`` is False.
    valid : ndarray of bool
        True where the fit succeeded (``status == 0``).
    status : ndarray of int8
        Per-voxel status code: 0 ok, 1 non-positive signal, 2 T1 out of physical range
        or E1 outside (0, 1), 3 other failure. See :data:`STATUS_MEANINGS`.
    method : str
        ``"linear"`` or ``"nonlinear"``.
    """

    t1_s: NDArray[np.float64]
    r1_per_s: NDArray[np.float64]
    m0: NDArray[np.float64]
    valid: NDArray[np.bool_]
    status: NDArray[np.int8]
    method: str


class VFAModel:
    """Variable-flip-angle SPGR T1 model (fit with :meth:`fit`).

    Parameters
    ----------
    flip_angle_deg : array_like
        Nominal flip angles in degrees, 1-D, each in (0, 180), at least two distinct
        (all <= 1.6 is reported as radians).
    tr_s : float
        Repetition time in seconds, 0 < TR < 1 (TR >= 1 is reported as milliseconds).
    method : {"nonlinear", "linear"}, optional
        ``"nonlinear"`` (default): least squares on the SPGR equation.
        ``"linear"``: DESPOT1 linear regression.
    b1 : array_like, optional
        Relative flip-angle scale (dimensionless; 1.0 = nominal; actual flip angle =
        ``b1`` x nominal). A scalar or a map broadcastable to the voxel shape of the
        signal passed to :meth:`fit`. Must be > 0 with a median in 0.3-2 (a median
        near 100 is reported as percent) and keep every actual flip angle below 180
        degrees. NaN in a map (no B1 there) gives status 3 in that voxel. Convert vendor
        maps with :func:`dce.b1.b1_factor`.
    t1_range_s : tuple of float, optional
        Physical T1 range ``(min, max)`` in seconds; fits outside get status 2.
        Default ``(0.01, 20.0)``.

    Raises
    ------
    ValueError
        On empty, NaN or out-of-range inputs, naming the quantity.

    Examples
    --------
    >>> import numpy as np
    >>> from dce.signal import spgr_signal
    >>> fa = np.array([2.0, 5.0, 12.0])
    >>> s = spgr_signal(1000.0, 1.2, fa, 0.0054)
    >>> fit = VFAModel(fa, 0.0054).fit(s)
    >>> round(float(fit.t1_s), 6), bool(fit.valid)
    (1.2, True)
    """

    def __init__(self, flip_angle_deg: ArrayLike, tr_s: float, *,
                 method: Method = "nonlinear",
                 b1: ArrayLike | None = None,
                 t1_range_s: tuple[float, float] = (0.01, 20.0)) -> None:
        fa = check_flip_angle(flip_angle_deg)
        if fa.ndim != 1:
            raise ValueError(f"flip_angle_deg: expected a 1-D array, got shape {fa.shape}")
        if np.unique(fa).size < 2:
            raise ValueError(f"flip_angle_deg: need at least 2 distinct flip angles, got "
                             f"{fa.size} value(s) with {np.unique(fa).size} distinct")
        self.flip_angle_deg: NDArray[np.float64] = fa
        self.tr_s: float = check_tr(tr_s)
        if method not in ("nonlinear", "linear"):
            raise ValueError(f"method: must be 'nonlinear' or 'linear', got {method!r}")
        self.method: str = method
        if b1 is None:
            self.b1: NDArray[np.float64] | None = None
        else:
            b1_arr = check_b1_factor(b1, "b1", allow_nan=True)
            if b1_arr.size == 1 and not np.isfinite(b1_arr):
                raise ValueError("b1: a single B1 factor must be finite")
            max_fa = float(np.nanmax(b1_arr)) * float(fa.max())
            if max_fa >= 180.0:
                raise ValueError(
                    f"b1: relative flip-angle scale up to {np.nanmax(b1_arr):g} gives an actual "
                    f"flip angle of {max_fa:g} deg (must be < 180); b1 is a fraction "
                    "(1.0 = nominal), did you pass percent?")
            self.b1 = b1_arr
        rng = as_float_array(t1_range_s, "t1_range_s", ndim=1)
        if rng.size != 2:
            raise ValueError(f"t1_range_s: expected (min, max) in seconds, got {rng.size} "
                             "values")
        lo, hi = float(rng[0]), float(rng[1])
        if not 0 < lo < hi:
            raise ValueError(f"t1_range_s: need 0 < min < max seconds, got ({lo:g}, {hi:g})")
        if hi > 2000.0:
            raise ValueError(f"t1_range_s: ({lo:g}, {hi:g}) looks like ms; the T1 range is "
                             "in s (default (0.01, 20.0))")
        self.t1_range_s: tuple[float, float] = (lo, hi)

    def fit(self, signal: ArrayLike) -> VFAFit:
        """Fit T1 and M0 in every voxel.

        Parameters
        ----------
        signal : array_like
            Signal magnitudes (arbitrary units), shape ``(..., n_flip_angles)``; the
            last axis follows ``flip_angle_deg``. Must be finite; voxels with any zero or
            negative sample are not fitted (status 1).

        Returns
        -------
        VFAFit
            Arrays of shape ``signal.shape[:-1]``.

        Raises
        ------
        ValueError
            If ``signal`` is empty, contains NaN/inf, its last axis does not match
            ``flip_angle_deg``, or ``b1`` does not broadcast to its voxel shape.
        """
        sig = as_float_array(signal, "signal")
        n_fa = self.flip_angle_deg.size
        check_last_axis(sig, n_fa, "signal", "flip_angle_deg")
        vox_shape = sig.shape[:-1]
        n_vox = int(np.prod(vox_shape, dtype=np.int64))
        s2 = sig.reshape(n_vox, n_fa)
        if self.b1 is not None and self.b1.size > 1:
            try:
                b1_vox = np.broadcast_to(self.b1, vox_shape)
            except ValueError:
                raise ValueError(
                    f"b1: shape {self.b1.shape} does not broadcast to the voxel shape "
                    f"{vox_shape} of signal") from None
            b1_vals = b1_vox.reshape(n_vox)
            b1_unknown = ~np.isfinite(b1_vals)
            b1_flat: NDArray[np.float64] | None = (np.where(b1_unknown, 1.0, b1_vals)
                                                   if b1_unknown.any() else b1_vals)
        else:
            b1_flat = None
            b1_unknown = np.zeros(n_vox, dtype=bool)

        t1 = np.full(n_vox, np.nan)
        m0 = np.full(n_vox, np.nan)
        status = np.zeros(n_vox, dtype=np.int8)
        a_nom = np.deg2rad(self.flip_angle_deg)
        if self.b1 is not None and self.b1.size == 1:   # uniform B1: still shared angles
            a_nom = float(self.b1.reshape(())) * a_nom
        for start in range(0, n_vox, _CHUNK_VOXELS):
            sl = slice(start, min(start + _CHUNK_VOXELS, n_vox))
            a = a_nom if b1_flat is None else b1_flat[sl, None] * a_nom
            t1[sl], m0[sl], status[sl] = self._fit_chunk(s2[sl], a)
        status[b1_unknown & (status == STATUS_OK)] = STATUS_OTHER

        valid = status == STATUS_OK
        t1[~valid] = np.nan
        m0[~valid] = np.nan
        r1 = np.full(n_vox, np.nan)
        r1[valid] = 1.0 / t1[valid]
        return VFAFit(t1_s=t1.reshape(vox_shape), r1_per_s=r1.reshape(vox_shape),
                      m0=m0.reshape(vox_shape), valid=valid.reshape(vox_shape),
                      status=status.reshape(vox_shape), method=self.method)

    # ------------------------------------------------------------------ internals
    def _fit_chunk(self, s: NDArray[np.float64], a: NDArray[np.float64]
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int8]]:
        """Fit one chunk: ``s`` (n, n_fa); angles ``a`` (radians) (n_fa,) or (n, n_fa)."""
        bad_signal = np.any(s <= 0, axis=1)
        t1_lin, m0_lin, st_lin = _linear_fit(s, a, self.tr_s)
        if self.method == "linear":
            t1, m0, st = t1_lin, m0_lin, st_lin
        else:
            t1, m0, st = _nonlinear_fit(s, a, self.tr_s, self.t1_range_s,
                                        np.where(st_lin == STATUS_OK, t1_lin, np.nan))
        lo, hi = self.t1_range_s
        with np.errstate(invalid="ignore"):
            out_of_range = ~((t1 >= lo) & (t1 <= hi))
        st = np.where((st == STATUS_OK) & out_of_range, STATUS_OUT_OF_RANGE, st)
        status = np.where(bad_signal, STATUS_BAD_SIGNAL, st).astype(np.int8)
        return t1, m0, status


def _linear_fit(s: NDArray[np.float64], a: NDArray[np.float64], tr_s: float
                ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int8]]:
    """DESPOT1: closed-form OLS of S/sin(a) on S/tan(a) per row (status without range)."""
    y = s / np.sin(a)
    x = s / np.tan(a)
    xm = x.mean(axis=1, keepdims=True)
    ym = y.mean(axis=1, keepdims=True)
    sxx = np.sum((x - xm) ** 2, axis=1)
    sxy = np.sum((x - xm) * (y - ym), axis=1)
    status = np.zeros(s.shape[0], dtype=np.int8)
    scale = np.sum(x * x, axis=1)
    singular = ~(sxx > 1e-14 * scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(singular, np.nan, sxy / np.where(singular, 1.0, sxx))
        intercept = ym[:, 0] - slope * xm[:, 0]
        e1_ok = (slope > 0) & (slope < 1)
        e1 = np.where(e1_ok, slope, 0.5)
        t1 = np.where(e1_ok, -tr_s / np.log(e1), np.nan)
        m0 = np.where(e1_ok, intercept / (1.0 - e1), np.nan)
    status[~e1_ok] = STATUS_OUT_OF_RANGE
    status[e1_ok & ~((m0 > 0) & np.isfinite(m0) & np.isfinite(t1))] = STATUS_OTHER
    status[singular] = STATUS_OTHER
    return t1, m0, status


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _profile_row(q: float, s: NDArray[Any], sin_a: NDArray[Any], v: NDArray[Any], ia: int
                 ) -> tuple[float, float, float, float, float]:
    """Variable-projection profile of the SPGR least-squares problem of one voxel.

    With ``q = TR/T1`` (``E1 = exp(-q)``) and ``h_i = sin a_i / (1 - E1 cos a_i)``, the
    residual sum of squares minimised over M0 is ``|S|^2 - (h.S)^2 / (h.h)``, so the
    fit maximises ``L(q) = 2 ln(h.S) - ln(h.h)``. ``s`` is the voxel's signal, ``sin_a``
    and ``v = 1 - cos a`` the rows ``ia`` of the angle tables. Returns ``(L, A, B, dL/du,
    d2L/du2)`` with ``A = h.S``, ``B = h.h`` and ``u = ln q``.
    """
    e1 = math.exp(-q)
    em = -math.expm1(-q)
    a_ = 0.0
    b_ = 0.0
    a1 = 0.0
    a2 = 0.0
    b1 = 0.0
    b2 = 0.0
    for i in range(s.size):
        d = em + e1 * v[ia, i]                      # 1 - E1 cos a, without cancellation
        h = sin_a[ia, i] / d
        w = (1.0 - v[ia, i]) * e1 / d               # cos a * E1 / (1 - E1 cos a)
        h1 = -h * w                                 # dh/dq
        h2 = h * w * (1.0 + 2.0 * w)                # d2h/dq2
        a_ += h * s[i]
        b_ += h * h
        a1 += h1 * s[i]
        a2 += h2 * s[i]
        b1 += h * h1
        b2 += h1 * h1 + h * h2
    b1 *= 2.0
    b2 *= 2.0
    lval = 2.0 * np.log(a_) - np.log(b_)
    lq = 2.0 * a1 / a_ - b1 / b_
    lqq = 2.0 * (a2 / a_ - (a1 / a_) ** 2) - (b2 / b_ - (b1 / b_) ** 2)
    return lval, a_, b_, q * lq, q * lq + q * q * lqq


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _nonlinear_kernel(sig: NDArray[Any], sin_a: NDArray[Any], v: NDArray[Any],
                      u_grid: NDArray[Any], tr_s: float, u_start: NDArray[Any],
                      t1: NDArray[Any], m0: NDArray[Any], status: NDArray[Any],
                      lo: int, hi: int) -> None:
    """Variable-projection nonlinear least squares of the rows ``lo:hi`` of ``sig`` (n,
    n_fa); angle tables ``sin_a``, ``v = 1 - cos a`` with one row (shared angles) or one
    per voxel; ``u_start`` the linear solution's ln(TR/T1) (NaN: none). Rows with a
    sample <= 0 are fitted on a stand-in of ones (their status is the caller's)."""
    n_fa = sig.shape[1]
    n_grid = u_grid.size
    s = np.empty(n_fa)
    e1_grid = np.exp(-np.exp(u_grid))
    em_grid = -np.expm1(-np.exp(u_grid))
    shared = sin_a.shape[0] == 1
    h_tab = np.empty((n_grid, n_fa))     # shared angles: h and 1 / h.h of every grid point
    inv_hh = np.empty(n_grid)
    if shared:
        for k in range(n_grid):
            hh = 0.0
            for i in range(n_fa):
                h_tab[k, i] = sin_a[0, i] / (em_grid[k] + e1_grid[k] * v[0, i])
                hh += h_tab[k, i] * h_tab[k, i]
            inv_hh[k] = 1.0 / hh
    for r in range(lo, hi):
        ia = 0 if shared else r
        bad = False
        for i in range(n_fa):
            if sig[r, i] <= 0:
                bad = True
        scale = 1.0     # the fit is scale-equivariant in M0; normalising guards overflow
        if not bad:
            scale = sig[r, 0]
            for i in range(1, n_fa):
                scale = max(scale, sig[r, i])
        for i in range(n_fa):
            s[i] = 1.0 if bad else sig[r, i] / scale
        # 1. global search on the grid: exp(L) = (h.S)^2 / (h.h), maximised over the grid
        best_g = -1.0
        best_k = 0
        for k in range(n_grid):
            hs = 0.0
            if shared:
                for i in range(n_fa):
                    hs += h_tab[k, i] * s[i]
                g = hs * hs * inv_hh[k]
            else:
                hh = 0.0
                for i in range(n_fa):
                    h = sin_a[ia, i] / (em_grid[k] + e1_grid[k] * v[ia, i])
                    hs += h * s[i]
                    hh += h * h
                g = hs * hs * (1.0 / hh)
            if g > best_g:
                best_g = g
                best_k = k
        best_l = np.log(best_g)
        st = 0
        at_edge = best_k == 0 or best_k == n_grid - 1
        if at_edge:
            st = _OUT_OF_RANGE
        # 2. safeguarded Newton-bisection for L'(u) = 0 (u = ln q) inside
        #    [u_{k-1}, u_{k+1}], started at the linear solution when it lies in the bracket
        kc = min(max(best_k, 1), n_grid - 2)
        u_lo = u_grid[kc - 1]
        u_hi = u_grid[kc + 1]
        u = u_grid[kc]
        ul = u_start[r]
        if np.isfinite(ul) and u_lo < ul < u_hi:
            u = ul
        converged = at_edge
        if not at_edge:
            for _ in range(_MAX_NEWTON):
                _, _, _, lu, luu = _profile_row(math.exp(u), s, sin_a, v, ia)
                if lu > 0:                              # maximum lies above u
                    u_lo = u
                else:
                    u_hi = u
                step = -lu / luu
                newton_ok = luu < 0 and np.isfinite(step)
                u_new = u + step if newton_ok else u
                if not (newton_ok and u_lo <= u_new <= u_hi):
                    u_new = 0.5 * (u_lo + u_hi)
                done = ((newton_ok and abs(step) < _NEWTON_TOL)
                        or abs(u_new - u) < _NEWTON_TOL or u_hi - u_lo < _NEWTON_TOL)
                u = u_new
                if done:
                    converged = True
                    break
        # 3. accept unless the refinement ended below the grid optimum (multimodal profile)
        q = math.exp(u)
        lval, a_, b_, _, _ = _profile_row(q, s, sin_a, v, ia)
        if not at_edge and (not converged or not lval >= best_l - 1e-12 * abs(best_l)):
            st = _OTHER
        t1[r] = tr_s / q
        m0[r] = scale * a_ / (-math.expm1(-q) * b_)
        if st == 0 and not (np.isfinite(t1[r]) and np.isfinite(m0[r]) and m0[r] > 0):
            st = _OTHER
        status[r] = st


def _nonlinear_fit(s: NDArray[np.float64], a: NDArray[np.float64], tr_s: float,
                   t1_range_s: tuple[float, float], t1_start: NDArray[np.float64]
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int8]]:
    """Variable-projection nonlinear least squares (compiled kernel, rows on the threads of
    :func:`dce._threads.run_chunks`); rows with S <= 0 are ignored.

    ``a`` (radians) is ``(n_fa,)`` when shared by all rows, else ``(n, n_fa)``.
    """
    n = s.shape[0]
    a2 = np.atleast_2d(a)
    sin_a = np.ascontiguousarray(np.sin(a2))
    v = np.ascontiguousarray(2.0 * np.sin(a2 / 2.0) ** 2)      # 1 - cos a
    lo, hi = t1_range_s
    u_grid = np.log(tr_s / np.geomspace(hi * _GRID_MARGIN, lo / _GRID_MARGIN, _N_GRID))
    with np.errstate(divide="ignore", invalid="ignore"):
        u_start = np.log(tr_s / t1_start)
    t1 = np.empty(n)
    m0 = np.empty(n)
    status = np.empty(n, dtype=np.int8)
    run_chunks(_nonlinear_kernel, n, np.ascontiguousarray(s, dtype=np.float64), sin_a, v,
               u_grid, float(tr_s), u_start, t1, m0, status, block=1024)
    return t1, m0, status
