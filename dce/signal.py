"""SPGR signal equation and its inverse: signal <-> R1 <-> concentration.

The spoiled gradient-recalled echo (SPGR) steady state signal is

.. math:: S = M_0 \\sin\\alpha \\frac{1 - E_1}{1 - E_1 \\cos\\alpha}, \\qquad E_1 = e^{-TR\\,R_1}

and contrast agent shortens T1 linearly, :math:`R_1(t) = R_{10} + r_1 C(t)` (fast water
exchange), with :math:`r_1` the longitudinal relaxivity in /mM/s.

The SPGR signal is bounded by :math:`M_0 \\sin\\alpha` (reached as :math:`R_1 \\to \\infty`).
Samples at or above that bound, or at or below zero, have no finite R1: they are flagged in
:attr:`ConcentrationResult.out_of_range` and set to NaN, and the voxel's
:attr:`ConcentrationResult.status` says so, so that a fit can skip the voxel explicitly.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dce._checks import (
    as_float_array,
    check_b1_factor,
    check_flip_angle,
    check_relaxivity,
    check_t10,
    check_tr,
)

__all__ = [
    "MIN_CONVERTED_FRACTION",
    "STATUS_CONC",
    "ConcentrationResult",
    "baseline_indices",
    "concentration_to_signal",
    "r1_from_signal",
    "rician_corrected_mean",
    "rician_sigma",
    "signal_to_concentration",
    "spgr_m0",
    "spgr_signal",
]

#: A baseline window: a count of leading phases, or explicit phase indices.
Baseline = int | np.integer[Any] | Sequence[int] | NDArray[np.integer[Any]]

#: Voxel status codes of :func:`signal_to_concentration`.
STATUS_CONC = {
    0: "ok",
    1: "baseline signal <= 0 or not finite (no M0)",
    2: "some samples at/above the SPGR maximum M0*sin(FA) or <= 0: no finite R1, set NaN",
    3: "baseline T1 not finite or <= 0",
    4: "B1 factor not finite (outside the B1 map)",
}


#: Below this fraction of voxels with a valid concentration a session is refused by the
#: workflow (a blank baseline or broken export, not anatomy: background air is well below
#: 99 %).
MIN_CONVERTED_FRACTION = 0.01


def _broadcast_shape(**shapes: tuple[int, ...]) -> tuple[int, ...]:
    """Common broadcast shape, or a ValueError naming the mismatched inputs."""
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        desc = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"mismatched shapes: {desc} do not broadcast together") from None


def _image_map(x: NDArray[np.float64], shape: tuple[int, ...], name: str
               ) -> NDArray[np.float64]:
    """``x`` broadcast to the image shape, or a ValueError naming the input."""
    try:
        return np.broadcast_to(x, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {x.shape} does not match the image shape "
                         f"{shape}") from None


def _scalar(x: ArrayLike, name: str) -> float:
    arr = as_float_array(x, name)
    if arr.ndim != 0:
        raise ValueError(f"{name}: expected a single value, got shape {arr.shape}")
    return float(arr)


def _relaxivity(x: ArrayLike) -> float:
    return check_relaxivity(x, "r1_per_mM_per_s")


def spgr_signal(m0: ArrayLike, t1_s: ArrayLike, flip_angle_deg: ArrayLike,
                tr_s: float) -> NDArray[np.float64]:
    """SPGR steady-state signal.

    Parameters
    ----------
    m0 : array_like
        Equilibrium magnetisation (signal units).
    t1_s : array_like
        Longitudinal relaxation time T1 (s), > 0.
    flip_angle_deg : array_like
        Flip angle (degrees), in (0, 180).
    tr_s : float
        Repetition time (s).

    Returns
    -------
    ndarray
        Signal, broadcast shape of the inputs.
    """
    t1 = as_float_array(t1_s, "t1_s")
    if np.any(t1 <= 0):
        raise ValueError(f"t1_s: T1 must be > 0 s, got minimum {t1.min():g}")
    m = as_float_array(m0, "m0")
    fa = check_flip_angle(flip_angle_deg, radians_hint=False)
    _broadcast_shape(m0=m.shape, t1_s=t1.shape, flip_angle_deg=fa.shape)
    return _spgr(m, 1.0 / t1, fa, check_tr(tr_s))


def _spgr(m0: NDArray[Any], r1: NDArray[Any], fa_deg: NDArray[Any] | float,
          tr: float) -> NDArray[np.float64]:
    a = np.deg2rad(fa_deg)
    e1 = np.exp(-tr * r1)
    return np.asarray(m0 * np.sin(a) * (1.0 - e1) / (1.0 - e1 * np.cos(a)), dtype=np.float64)


def spgr_m0(signal: ArrayLike, t1_s: ArrayLike, flip_angle_deg: ArrayLike,
            tr_s: float) -> NDArray[np.float64]:
    """Equilibrium magnetisation M0 from a signal with known T1 (inverse of :func:`spgr_signal`).

    Parameters
    ----------
    signal : array_like
        Pre-contrast signal (signal units).
    t1_s : array_like
        Pre-contrast T1 (s), > 0, broadcastable to ``signal``.
    flip_angle_deg : array_like
        Flip angle (degrees): a value or a map broadcastable to ``signal`` (actual flip
        angles after B1 correction).
    tr_s : float
        Repetition time (s).
    """
    s = as_float_array(signal, "signal")
    t1 = as_float_array(t1_s, "t1_s")
    if np.any(t1 <= 0):
        raise ValueError(f"t1_s: T1 must be > 0 s, got minimum {t1.min():g}")
    _broadcast_shape(signal=s.shape, t1_s=t1.shape)
    a = np.deg2rad(check_flip_angle(flip_angle_deg, radians_hint=False))
    e1 = np.exp(-check_tr(tr_s) / t1)
    return np.asarray(s * (1.0 - e1 * np.cos(a)) / (np.sin(a) * (1.0 - e1)))


def r1_from_signal(signal: ArrayLike, m0: ArrayLike, flip_angle_deg: ArrayLike,
                   tr_s: float) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Invert the SPGR equation for R1 (/s).

    ``flip_angle_deg`` (degrees) is a value or an array broadcastable to ``signal``
    (per-voxel actual flip angles).

    Returns
    -------
    r1_per_s : ndarray
        R1 (/s); NaN where the signal has no finite inverse.
    out_of_range : ndarray of bool
        True where ``signal >= m0 * sin(FA)`` (above the SPGR maximum) or ``signal <= 0``.
    """
    s = as_float_array(signal, "signal", allow_nan=True)
    m = as_float_array(m0, "m0", allow_nan=True)
    _broadcast_shape(signal=s.shape, m0=m.shape)
    a = np.deg2rad(check_flip_angle(flip_angle_deg, radians_hint=False))
    tr = check_tr(tr_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = s / (m * np.sin(a))
        e1 = (1.0 - y) / (1.0 - y * np.cos(a))
        bad = ~((y > 0) & (e1 > 0) & (e1 < 1) & np.isfinite(e1))
        r1 = np.where(bad, np.nan, -np.log(np.where(bad, 0.5, e1)) / tr)
    return r1, bad


def baseline_indices(baseline: Baseline, n_times: int) -> NDArray[np.intp]:
    """Resolve a baseline window: a count of leading phases or explicit phase indices."""
    if isinstance(baseline, (int, np.integer)):
        if not 1 <= int(baseline) < n_times:
            raise ValueError(f"baseline: number of baseline phases must be in [1, {n_times - 1}] "
                             f"for {n_times} phases, got {baseline}")
        return np.arange(int(baseline))
    idx = np.asarray(baseline)
    if idx.size == 0 or idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError("baseline: give a number of leading phases or a 1-D list of integer "
                         f"phase indices, got {baseline!r}")
    if idx.min() < 0 or idx.max() >= n_times:
        raise ValueError(f"baseline: indices must be in [0, {n_times - 1}], got "
                         f"{idx.min()}..{idx.max()}")
    if np.unique(idx).size != idx.size:
        raise ValueError("baseline: duplicate phase indices")
    return idx.astype(np.intp)


@dataclass(frozen=True)
class ConcentrationResult:
    """Output of :func:`signal_to_concentration`.

    Attributes
    ----------
    conc_mM : ndarray, shape (..., n_times)
        Contrast agent concentration (mM); NaN at out-of-range samples. float64, or
        float32 when asked for (``dtype``).
    r1_per_s : ndarray, shape (..., n_times)
        R1 (/s).
    m0 : ndarray, shape (...)
        Equilibrium magnetisation estimated from the baseline window.
    out_of_range : ndarray of bool, shape (..., n_times)
        Samples at or above the SPGR maximum, or <= 0 (no finite R1).
    status : ndarray of int8, shape (...)
        Voxel status, codes in :data:`STATUS_CONC` (0 = ok).
    """

    conc_mM: NDArray[np.floating[Any]]
    r1_per_s: NDArray[np.floating[Any]]
    m0: NDArray[np.float64]
    out_of_range: NDArray[np.bool_]
    status: NDArray[np.int8]

    def status_counts(self) -> dict[str, int]:
        """Number of voxels per status, keyed by the meaning in :data:`STATUS_CONC`
        (statuses present only, in code order)."""
        codes, counts = np.unique(self.status, return_counts=True)
        return {STATUS_CONC[int(k)]: int(n) for k, n in zip(codes, counts, strict=True)}


#: Values per block of :func:`signal_to_concentration`'s element-wise inversion (about
#: 0.5 MB per float64 temporary).
_BLOCK_VALUES = 1 << 18


def _memory_blocks(a: NDArray[Any], max_values: int) -> list[tuple[Any, ...]]:
    """Index tuples of blocks that cover ``a``, each a range of its slowest-varying axis
    that is not whole (in memory order: C, or F for Fortran-ordered images as nibabel
    reads them), all faster axes whole, the slower axes one index at a time; at most
    ``max_values`` values per block (at least one fastest-axis run)."""
    order = list(range(a.ndim)) if not (a.flags.f_contiguous and not a.flags.c_contiguous) \
        else list(range(a.ndim - 1, -1, -1))   # slowest .. fastest
    inner = 1
    split = 0
    for pos in range(a.ndim - 1, -1, -1):      # from the fastest axis outward
        if inner * a.shape[order[pos]] > max_values:
            split = pos
            break
        inner *= a.shape[order[pos]]
    else:
        return [(...,)]
    ax = order[split]
    step = max(1, max_values // inner)
    outer = [range(a.shape[order[q]]) for q in range(split)]
    blocks: list[tuple[Any, ...]] = []
    for idx in itertools.product(*outer):
        for lo in range(0, a.shape[ax], step):
            key: list[slice | int] = [slice(None)] * a.ndim
            for q, i in zip(range(split), idx, strict=True):
                key[order[q]] = i
            key[ax] = slice(lo, lo + step)
            blocks.append(tuple(key))
    return blocks


def _bcast_index(b: Any, key: tuple[Any, ...]) -> Any:
    """``b`` (a scalar, or an array that broadcasts against the indexed array with the same
    number of axes) at the block ``key``: its length-1 axes are kept whole."""
    if not isinstance(b, np.ndarray) or key == (...,):
        return b
    return b[tuple((0 if isinstance(k, int) else slice(None)) if n == 1 else k
                   for n, k in zip(b.shape, key, strict=True))]


def signal_to_concentration(signal: ArrayLike, *, t10_s: ArrayLike, tr_s: float,
                            flip_angle_deg: float, r1_per_mM_per_s: float,
                            baseline: Baseline | None = None,
                            m0: ArrayLike | None = None,
                            b1: ArrayLike | None = None,
                            dtype: Any = np.float64) -> ConcentrationResult:
    """Convert an SPGR signal time course to contrast agent concentration.

    M0 is estimated per voxel from the mean baseline signal and the pre-contrast T1
    (``t10_s``), or given (``m0``, e.g. from a VFA T1 fit); each sample is then inverted for
    R1 and ``C = (R1 - 1/T10) / r1``. With a B1 map the actual flip angle
    ``b1 * flip_angle_deg`` is used in every voxel (vectorised, no voxel loop).

    Parameters
    ----------
    signal : array_like, shape (..., n_times)
        Dynamic signal (signal units), time on the last axis.
    t10_s : array_like
        Pre-contrast T1 (s): a scalar or a map broadcastable to ``signal.shape[:-1]``.
        Non-finite or non-positive voxels of a map get status 3 (a scalar must be > 0).
        A median above 20 is an error ("looks like ms").
    tr_s : float
        Repetition time (s), 0 < TR < 1 (TR >= 1 is reported as milliseconds).
    flip_angle_deg : float
        Nominal flip angle (degrees); <= 1.6 is reported as radians.
    r1_per_mM_per_s : float
        Longitudinal relaxivity (/mM/s), e.g. 4.5 for gadoterate at 1.5 T; above 100 is
        reported as per M per s.
    baseline : int or sequence of int, optional
        Number of leading pre-contrast phases, or explicit phase indices; required unless
        ``m0`` is given.
    m0 : array_like, optional
        Known equilibrium magnetisation (signal units): a scalar or a map broadcastable to
        ``signal.shape[:-1]``; non-finite or non-positive voxels get status 1.
    b1 : array_like, optional
        B1 factor (actual / nominal flip angle, 1.0 = nominal; dimensionless): a scalar or
        a map broadcastable to ``signal.shape[:-1]``; NaN voxels (no B1 there) get status
        4. Median must lie in 0.3-2 (a median near 100 is reported as percent). Convert
        vendor maps with :func:`dce.b1.b1_factor`.
    dtype : {numpy.float64, numpy.float32}
        Type of ``conc_mM`` and ``r1_per_s``. Computed in float64 either way; float32
        rounds each value once (the float64 result ``.astype(np.float32)``, relative
        error <= 6e-8) and halves the memory of the two 4-D results (0.4 GB less at
        256x256x12x60).

    Returns
    -------
    ConcentrationResult
    """
    s = np.asarray(signal)
    if not (np.issubdtype(s.dtype, np.floating) and s.dtype.itemsize <= 8) or s.size == 0:
        s = as_float_array(signal, "signal", allow_nan=True)
    # float32 (images as read) stays float32 here: converted to float64 block by block
    if s.ndim < 1 or s.shape[-1] < 2:
        raise ValueError("signal: need time on the last axis with >= 2 phases, "
                         f"got shape {s.shape}")
    if baseline is None and m0 is None:
        raise ValueError("baseline: give the pre-contrast phases (a count or indices) or a "
                         "known m0")
    fa = float(check_flip_angle(_scalar(flip_angle_deg, "flip_angle_deg")))
    tr = check_tr(tr_s)
    relax = _relaxivity(r1_per_mM_per_s)
    t10 = check_t10(t10_s, "t10_s", allow_nan=True)
    if t10.ndim == 0 and not (np.isfinite(t10) and t10 > 0):
        raise ValueError(f"t10_s: pre-contrast T1 must be a finite value > 0 s, got {float(t10):g}")
    t10 = _image_map(t10, s.shape[:-1], "t10_s")
    t10_ok = np.isfinite(t10) & (t10 > 0)
    t10_safe = np.where(t10_ok, t10, 1.0)
    if b1 is None:
        b1_ok = np.ones(s.shape[:-1], dtype=bool)
        fa_map: NDArray[np.float64] | float = fa
    else:
        b1_arr = check_b1_factor(b1, "b1", allow_nan=True)
        if b1_arr.ndim == 0 and not np.isfinite(b1_arr):
            raise ValueError("b1: a single B1 factor must be finite")
        b1_img = _image_map(b1_arr, s.shape[:-1], "b1")
        b1_ok = np.isfinite(b1_img)
        fa_map = np.where(b1_ok, b1_img, 1.0) * fa
        if np.any(fa_map >= 180.0):
            raise ValueError(f"b1: B1 factor up to {np.nanmax(b1_arr):g} gives an actual flip "
                             f"angle of {np.max(fa_map):g} deg (must be < 180)")

    if m0 is None:
        assert baseline is not None
        idx = baseline_indices(baseline, s.shape[-1])
        s0 = s[..., idx].astype(np.float64).mean(axis=-1)
        s0_ok = np.isfinite(s0) & (s0 > 0)
        m0_est = spgr_m0(np.where(s0_ok, s0, 1.0), t10_safe, fa_map, tr)
        m0_map = np.where(s0_ok & t10_ok & b1_ok, m0_est, np.nan)
    else:
        given = _image_map(as_float_array(m0, "m0", allow_nan=True), s.shape[:-1], "m0")
        s0_ok = np.isfinite(given) & (given > 0)
        m0_map = np.where(s0_ok & t10_ok & b1_ok, given, np.nan)
    # the per-voxel maps in the memory order of the signal (mixed orders make every
    # element-wise operation a strided one)
    order: Literal["C", "F"] = "F" if s.flags.f_contiguous and not s.flags.c_contiguous \
        else "C"
    fa_t = np.asarray(fa_map, order=order)[..., None] if isinstance(fa_map, np.ndarray) \
        else fa_map
    # element-wise, in blocks that follow the memory order of the signal: the float64
    # temporaries of the inversion stay in the cache (at 256x256x12x60 whole-volume
    # temporaries took about 2 GB and seconds of page faults); the values are those of the
    # whole-volume expressions
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype: float64 or float32, got {out_dtype}")
    r1 = np.empty_like(s, dtype=out_dtype)
    bad = np.empty_like(s, dtype=bool)
    conc = np.empty_like(s, dtype=out_dtype)
    m0_t = np.asarray(m0_map, order=order)[..., None]
    inv_t10 = 1.0 / np.asarray(t10_safe, order=order)[..., None]
    for blk in _memory_blocks(s, _BLOCK_VALUES):
        r1_b, bad[blk] = r1_from_signal(s[blk], _bcast_index(m0_t, blk),
                                        _bcast_index(fa_t, blk), tr)
        r1[blk] = r1_b
        conc[blk] = (r1_b - _bcast_index(inv_t10, blk)) / relax
    status = np.zeros(s.shape[:-1], dtype=np.int8)
    status[bad.any(axis=-1)] = 2
    status[~s0_ok] = 1
    status[~t10_ok] = 3
    status[~b1_ok] = 4
    return ConcentrationResult(conc_mM=conc, r1_per_s=r1, m0=m0_map, out_of_range=bad,
                               status=status)


def rician_corrected_mean(magnitude: ArrayLike, *, sigma: float, axis: int = 0
                          ) -> NDArray[np.float64]:
    r"""Noise-floor corrected mean of magnitude samples (e.g. the voxels of an ROI).

    Magnitude images carry Rician noise, whose mean is biased upwards at low SNR
    (:math:`E[M] \approx \sqrt{A^2+\sigma^2}`), which biases concentrations. The second
    moment is unbiased: :math:`E[M^2] = A^2 + 2\sigma^2`, so

    .. math:: \hat A = \sqrt{\max(\overline{M^2} - 2\sigma^2, 0)}

    Parameters
    ----------
    magnitude : array_like
        Magnitude samples; averaged over ``axis``.
    sigma : float
        Noise standard deviation of each of the real and imaginary channels (signal units),
        e.g. from :func:`rician_sigma` or a background region (``sigma = mean / 1.2533``).
    axis : int
        Axis of the samples.
    """
    m = as_float_array(magnitude, "magnitude")
    sd = float(as_float_array(sigma, "sigma"))
    if sd < 0:
        raise ValueError(f"sigma: must be >= 0, got {sd:g}")
    return np.asarray(np.sqrt(np.maximum(np.mean(m * m, axis=axis) - 2.0 * sd * sd, 0.0)))


def rician_sigma(magnitude: ArrayLike) -> float:
    r"""Noise sd of Rician samples of one constant underlying signal, by the method of moments.

    From :math:`m_2 = A^2 + 2\sigma^2` and :math:`m_4 = A^4 + 8\sigma^2A^2 + 8\sigma^4`:
    :math:`\sigma^2 = (m_2 - \sqrt{2m_2^2 - m_4})/2`. Use many samples (e.g. the baseline
    phases of a homogeneous region).
    """
    m = as_float_array(magnitude, "magnitude").ravel()
    m2 = float(np.mean(m**2))
    m4 = float(np.mean(m**4))
    return float(np.sqrt(max(m2 - np.sqrt(max(2 * m2 * m2 - m4, 0.0)), 0.0) / 2.0))


def concentration_to_signal(conc_mM: ArrayLike, *, t10_s: ArrayLike, m0: ArrayLike, tr_s: float,
                            flip_angle_deg: float, r1_per_mM_per_s: float) -> NDArray[np.float64]:
    """Forward model: concentration (mM) -> SPGR signal (fast water exchange).

    Parameters
    ----------
    conc_mM : array_like, shape (..., n_times)
        Concentration (mM).
    t10_s : array_like
        Pre-contrast T1 (s), broadcastable to ``conc_mM.shape[:-1]``.
    m0 : array_like
        Equilibrium magnetisation, broadcastable to ``conc_mM.shape[:-1]``.
    tr_s, flip_angle_deg, r1_per_mM_per_s
        As in :func:`signal_to_concentration`.
    """
    c = as_float_array(conc_mM, "conc_mM")
    t10 = check_t10(t10_s, "t10_s")
    if np.any(t10 <= 0):
        raise ValueError(f"t10_s: pre-contrast T1 must be > 0 s, got minimum {t10.min():g}")
    relax = _relaxivity(r1_per_mM_per_s)
    m = as_float_array(m0, "m0")
    # t10 and m0 are per voxel: they broadcast against the image axes, never the time axis
    _broadcast_shape(conc_mM_image=c.shape[:-1], t10_s=t10.shape, m0=m.shape)
    r1 = 1.0 / t10[..., None] + relax * c if t10.ndim else 1.0 / t10 + relax * c
    m_b = m[..., None] if m.ndim else m
    if np.any(r1 <= 0):
        raise ValueError("conc_mM: concentration gives R1 <= 0 (too negative for this T10)")
    return _spgr(m_b, r1, check_flip_angle(flip_angle_deg), check_tr(tr_s))


