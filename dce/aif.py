"""Population arterial input functions (AIFs).

All functions take sample times in **seconds** and return concentrations in **mM**.
The published functional forms are written in minutes; the conversion is done here,
once, so callers never handle minutes.

The AIFs are *whole-blood* concentrations ``Cb``. Pharmacokinetic models (Tofts,
extended Tofts) need the *plasma* concentration ``Cp``; convert with
:func:`blood_to_plasma` or pass ``hematocrit`` to :func:`population_aif`.

Bolus arrival delay
-------------------
``delay_s`` shifts the curve to the right: ``Cb_delayed(t) = Cb(t - delay_s)`` for
``t >= delay_s`` and ``0`` for ``t < delay_s``. This is the convention of the OSIPI
reference data (``ParkerAIF_ref_with_delay.csv``, DCE-DSC-MRI_CodeCollection), whose
delays are in seconds. Note that the Parker curve is not zero at its own origin
(``Cb(0) ≈ 0.080 mM``), so a delayed Parker AIF steps from 0 to that value at
``t = delay_s``. Times before the bolus arrival (``t < delay_s``, including negative
times when ``delay_s = 0``) always give 0.

References
----------
.. [1] Parker GJM, Roberts C, Macdonald A, et al. Experimentally-derived functional form
   for a population-averaged high-temporal-resolution arterial input function for
   dynamic contrast-enhanced MRI. Magn Reson Med 2006;56(5):993-1000.
   doi:10.1002/mrm.21066
.. [2] Georgiou L, Wilson DJ, Sharma N, Perren TJ, Buckley DL. A functional form for a
   representative individual arterial input function measured from a population
   using high temporal resolution DCE MRI. Magn Reson Med 2019;81(3):1955-1963.
   doi:10.1002/mrm.27524
.. [3] Horsfield MA, Thornton JS, Gill A, et al. A functional form for injected MRI
   Gd-chelate contrast agent concentration incorporating recirculation, extravasation
   and excretion. Phys Med Biol 2009;54(9):2933-2949. doi:10.1088/0031-9155/54/9/023
.. [4] OSIPI DCE-DSC-MRI_CodeCollection, population AIF test data
   (ParkerAIF_ref*.csv, GeorgiouAIF_ref.csv). https://github.com/OSIPI/DCE-DSC-MRI_CodeCollection
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

from dce._checks import as_float_array, check_fraction, check_times

__all__ = [
    "GEORGIOU_PARAMS",
    "GEORGIOU_TABLE3_PARAMS",
    "POPULATION_AIF_NAMES",
    "GeorgiouParameters",
    "blood_to_plasma",
    "georgiou_aif",
    "parker_aif",
    "population_aif",
]

_S_PER_MIN = 60.0

# Parker et al. 2006, Table 1 (time unit: minutes).
_PARKER_A1_MMOL_MIN = 0.809
_PARKER_A2_MMOL_MIN = 0.330
_PARKER_T1_MIN = 0.17046
_PARKER_T2_MIN = 0.365
_PARKER_SIGMA1_MIN = 0.0563
_PARKER_SIGMA2_MIN = 0.132
_PARKER_ALPHA_MM = 1.050
_PARKER_BETA_PER_MIN = 0.1685
_PARKER_S_PER_MIN = 38.078
_PARKER_TAU_MIN = 0.483


@dataclass(frozen=True)
class GeorgiouParameters:
    """Parameters of the Georgiou / Horsfield functional form (time unit: minutes).

    Attributes
    ----------
    a_mM : tuple of float
        Amplitudes ``A1, A2, A3`` of the three exponentials, mM.
    m_per_min : tuple of float
        Decay rates ``m1, m2, m3`` of the three exponentials, 1/min.
    alpha : float
        Gamma-variate shape parameter of the first pass (dimensionless).
    beta_min : float
        Gamma-variate scale parameter, min.
    tau_min : float
        Recirculation time, min.
    """

    a_mM: tuple[float, float, float]
    m_per_min: tuple[float, float, float]
    alpha: float
    beta_min: float
    tau_min: float


#: Rounded values printed in Table 3 of Georgiou et al. 2019. With these the curve
#: deviates from the paper's own supplementary AIF data by up to 0.08 mM on the
#: first-pass upslope and around the first trough (outside the OSIPI tolerance of
#: 1e-4 mM + 1 % at about 4 % of the samples).
GEORGIOU_TABLE3_PARAMS = GeorgiouParameters(
    a_mM=(0.37, 0.33, 10.06),
    m_per_min=(0.11, 1.17, 16.02),
    alpha=5.26,
    beta_min=0.032,
    tau_min=0.129,
)

#: Default: the same functional form with unrounded parameters, recovered by
#: least-squares fit of Eq. 1 of Georgiou et al. to the paper's supplementary AIF
#: (mrm27524-sup-0002-figs2.xlsx, 0.1 s sampling over 5 min, as vendored by OSIPI in
#: GeorgiouAIF_ref.csv, label "original_AIF"). Residual: max 2.6e-5 mM, i.e. the
#: supplementary curve *is* this functional form; every value rounds to Table 3 at
#: its printed precision except ``alpha`` (5.267 vs 5.26).
GEORGIOU_PARAMS = GeorgiouParameters(
    a_mM=(0.3743217, 0.3311844, 10.06123),
    m_per_min=(0.1127007, 1.174646, 16.01996),
    alpha=5.266989,
    beta_min=0.03207883,
    tau_min=0.1285560,
)


def _check_delay(delay_s: float) -> float:
    """Bolus arrival delay: a single finite number of seconds, >= 0."""
    arr = as_float_array(delay_s, "delay_s")
    if arr.ndim != 0:
        raise ValueError(f"delay_s: expected a single delay in seconds, got shape {arr.shape}")
    val = float(arr)
    if val < 0:
        raise ValueError(f"delay_s: bolus arrival delay must be >= 0 s, got {val:g}")
    return val


def _relative_time_min(t_s: ArrayLike, delay_s: float) -> tuple[NDArray[np.float64],
                                                                  NDArray[np.bool_]]:
    """Validate inputs; return time since bolus arrival in minutes and the 'arrived' mask."""
    t = check_times(t_s, "t_s", min_len=1)
    delay = _check_delay(delay_s)
    t_rel_s = t - delay
    arrived = t_rel_s >= 0
    return t_rel_s / _S_PER_MIN, arrived


def parker_aif(t_s: ArrayLike, *, delay_s: float = 0.0) -> NDArray[np.float64]:
    """Parker population-averaged AIF (whole-blood concentration).

    .. math::

        C_b(t) = \\sum_{n=1}^{2} \\frac{A_n}{\\sigma_n\\sqrt{2\\pi}}
                 e^{-(t-T_n)^2 / (2\\sigma_n^2)}
                 + \\frac{\\alpha e^{-\\beta t}}{1 + e^{-s(t-\\tau)}}

    with ``t`` in minutes and the Table 1 parameters of Parker et al. (2006): A1 = 0.809 mmol·min,
    A2 = 0.330 mmol·min, T1 = 0.17046 min, T2 = 0.365 min, σ1 = 0.0563 min,
    σ2 = 0.132 min, α = 1.050 mM, β = 0.1685 /min, s = 38.078 /min, τ = 0.483 min.

    Parameters
    ----------
    t_s : array_like, shape (n,)
        Sample times in seconds: 1-D, finite, strictly increasing; spacing may be
        uneven. Time 0 is the bolus arrival when ``delay_s = 0``.
    delay_s : float, optional
        Bolus arrival delay in seconds (>= 0). The curve is ``Cb(t - delay_s)`` for
        ``t >= delay_s`` and 0 before (OSIPI convention, see module notes).

    Returns
    -------
    cb_mM : ndarray, shape (n,)
        Whole-blood contrast agent concentration in mM.

    Raises
    ------
    ValueError
        If ``t_s`` is empty, not 1-D, contains NaN/inf or is not strictly increasing,
        or if ``delay_s`` is negative, NaN/inf or not a scalar.

    References
    ----------
    Parker GJM et al. Magn Reson Med 2006;56(5):993-1000. doi:10.1002/mrm.21066

    Examples
    --------
    >>> import numpy as np
    >>> cb = parker_aif(np.arange(0.0, 300.0, 0.1))
    >>> round(float(cb.max()), 2)
    6.07
    """
    t_min, arrived = _relative_time_min(t_s, delay_s)
    sqrt_2pi = np.sqrt(2.0 * np.pi)
    gauss1 = (_PARKER_A1_MMOL_MIN / (_PARKER_SIGMA1_MIN * sqrt_2pi)
              * np.exp(-((t_min - _PARKER_T1_MIN) ** 2) / (2.0 * _PARKER_SIGMA1_MIN**2)))
    gauss2 = (_PARKER_A2_MMOL_MIN / (_PARKER_SIGMA2_MIN * sqrt_2pi)
              * np.exp(-((t_min - _PARKER_T2_MIN) ** 2) / (2.0 * _PARKER_SIGMA2_MIN**2)))
    # exp(-beta t) / (1 + exp(-s (t - tau))): evaluate only where the bolus has arrived,
    # so that long negative pre-arrival times cannot overflow.
    t_arr = np.where(arrived, t_min, 0.0)
    sigmoid = (_PARKER_ALPHA_MM * np.exp(-_PARKER_BETA_PER_MIN * t_arr)
               / (1.0 + np.exp(-_PARKER_S_PER_MIN * (t_arr - _PARKER_TAU_MIN))))
    cb = gauss1 + gauss2 + sigmoid
    return np.where(arrived, cb, 0.0)


def georgiou_aif(t_s: ArrayLike, *, delay_s: float = 0.0,
                 params: GeorgiouParameters = GEORGIOU_PARAMS) -> NDArray[np.float64]:
    """Georgiou representative-individual AIF (whole-blood concentration).

    Eq. 1 of Georgiou et al. (2019), the functional form of Horsfield et al. (2009):
    a sum of exponentials modulating a train of gamma variates, one per circulation,
    each delayed by the recirculation time τ:

    .. math::

        C_b(t) = \\sum_{i=1}^{3} A_i e^{-m_i t}
                 \\sum_{j=0}^{N(t)} \\gamma_j(t - j\\tau), \\qquad
        \\gamma_j(x) = \\frac{x^{\\alpha_j} e^{-x/\\beta}}
                            {\\beta^{\\alpha_j + 1} \\Gamma(\\alpha_j + 1)}, \\quad
        \\alpha_j = (j + 1)\\alpha + j,

    with ``t`` in minutes and ``N(t) = floor(t / τ)`` (only circulations that have
    started contribute). ``γ_j`` is the gamma probability density with shape
    ``α_j + 1`` and scale ``β``; it is evaluated in log space, so arbitrarily long
    acquisitions (many circulations) do not overflow.

    Parameters
    ----------
    t_s : array_like, shape (n,)
        Sample times in seconds: 1-D, finite, strictly increasing; spacing may be
        uneven. Time 0 is the bolus arrival when ``delay_s = 0``.
    delay_s : float, optional
        Bolus arrival delay in seconds (>= 0); ``Cb(t - delay_s)``, 0 before arrival.
    params : GeorgiouParameters, optional
        Defaults to :data:`GEORGIOU_PARAMS`, the unrounded parameters that reproduce
        the paper's supplementary AIF data (and the OSIPI reference) to 3e-5 mM. Pass
        :data:`GEORGIOU_TABLE3_PARAMS` for the rounded values printed in Table 3
        (differences up to 0.08 mM near the first pass).

    Returns
    -------
    cb_mM : ndarray, shape (n,)
        Whole-blood contrast agent concentration in mM.

    Raises
    ------
    ValueError
        If ``t_s`` is empty, not 1-D, contains NaN/inf or is not strictly increasing,
        or if ``delay_s`` is negative, NaN/inf or not a scalar.

    References
    ----------
    Georgiou L et al. Magn Reson Med 2019;81(3):1955-1963. doi:10.1002/mrm.27524

    Horsfield MA et al. Phys Med Biol 2009;54(9):2933-2949.
    doi:10.1088/0031-9155/54/9/023

    Examples
    --------
    >>> import numpy as np
    >>> cb = georgiou_aif(np.arange(0.0, 300.0, 0.5))
    >>> round(float(cb.max()), 2)
    8.65
    """
    t_min, arrived = _relative_time_min(t_s, delay_s)
    p = params
    x_max = float(t_min.max())
    gamma_sum = np.zeros_like(t_min)
    if x_max > 0:
        n_circ = int(np.floor(x_max / p.tau_min))
        log_beta = np.log(p.beta_min)
        for j in range(n_circ + 1):
            x = t_min - j * p.tau_min
            started = x > 0  # gamma_j(0) = 0 since alpha_j > 0
            if not np.any(started):
                break
            xs = x[started]
            alpha_j = (j + 1) * p.alpha + j
            log_pdf = (alpha_j * np.log(xs) - xs / p.beta_min
                       - (alpha_j + 1.0) * log_beta - gammaln(alpha_j + 1.0))
            gamma_sum[started] += np.exp(log_pdf)
    t_arr = np.where(arrived, t_min, 0.0)
    exp_sum = sum(a * np.exp(-m * t_arr) for a, m in zip(p.a_mM, p.m_per_min, strict=True))
    cb = exp_sum * gamma_sum
    return np.where(arrived, cb, 0.0)


def blood_to_plasma(cb_mM: ArrayLike, hematocrit: float) -> NDArray[np.float64]:
    """Convert whole-blood to plasma concentration: ``cp = cb / (1 - hematocrit)``.

    The contrast agent does not enter red blood cells, so the same amount of agent is
    contained in the plasma fraction ``1 - Hct`` of the blood volume.

    Parameters
    ----------
    cb_mM : array_like
        Whole-blood concentration in mM, any shape; must be finite.
    hematocrit : float
        Hematocrit (volume fraction of red cells), dimensionless, in ``[0, 1)``
        (e.g. 0.45 for large-vessel blood; not a percentage).

    Returns
    -------
    cp_mM : ndarray
        Plasma concentration in mM, same shape as ``cb_mM``.

    Raises
    ------
    ValueError
        If ``cb_mM`` is empty or contains NaN/inf, or ``hematocrit`` is not a single
        number in ``[0, 1)``.

    Examples
    --------
    >>> float(blood_to_plasma([1.1], 0.45)[0])
    2.0
    """
    cb = as_float_array(cb_mM, "cb_mM")
    hct = _check_hematocrit(hematocrit)
    return cb / (1.0 - hct)


def _check_hematocrit(hematocrit: float) -> float:
    if np.ndim(hematocrit) != 0:
        raise ValueError(f"hematocrit: expected a single number, got shape "
                         f"{np.shape(hematocrit)}")
    return check_fraction(hematocrit, "hematocrit")


_AIFS = {"parker": parker_aif, "georgiou": georgiou_aif}

#: Names accepted by :func:`population_aif`.
POPULATION_AIF_NAMES: tuple[str, ...] = tuple(_AIFS)


def population_aif(name: str, t_s: ArrayLike, *, delay_s: float = 0.0,
                   hematocrit: float | None = None) -> NDArray[np.float64]:
    """Evaluate a population AIF by name.

    Parameters
    ----------
    name : {"parker", "georgiou"}
        Which population AIF (case-insensitive): ``"parker"`` — Parker et al. 2006,
        see :func:`parker_aif`; ``"georgiou"`` — Georgiou et al. 2019, see
        :func:`georgiou_aif`.
    t_s : array_like, shape (n,)
        Sample times in seconds (1-D, finite, strictly increasing).
    delay_s : float, optional
        Bolus arrival delay in seconds (>= 0).
    hematocrit : float or None, optional
        If None (default) return the whole-blood concentration ``Cb``; otherwise the
        plasma concentration ``Cb / (1 - hematocrit)``, hematocrit in ``[0, 1)``.

    Returns
    -------
    c_mM : ndarray, shape (n,)
        Blood (or, with ``hematocrit``, plasma) concentration in mM.

    Raises
    ------
    ValueError
        For an unknown ``name`` (the message lists the valid names) and for the
        invalid inputs described in :func:`parker_aif` and :func:`blood_to_plasma`.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _AIFS:
        raise ValueError(f"name: unknown population AIF {name!r}; valid names are "
                         f"{', '.join(repr(n) for n in POPULATION_AIF_NAMES)}")
    # Validate hematocrit before the (cheap) evaluation so that errors are reported early.
    hct = None if hematocrit is None else _check_hematocrit(hematocrit)
    cb = _AIFS[key](t_s, delay_s=delay_s)
    return cb if hct is None else blood_to_plasma(cb, hct)
