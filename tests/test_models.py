"""Forward models against independent numerical integration and analytic results."""

from __future__ import annotations

import numpy as np
import pytest

from dce import models


def _numeric_conv(t: np.ndarray, cp: np.ndarray, kep_per_min: float, delay_s: float = 0.0,
                  n_fine: int = 400_001) -> np.ndarray:
    """Brute-force trapezoid integral of the piecewise-linear, shifted input on a fine grid."""
    grid = np.linspace(t[0], t[-1], n_fine)
    k = kep_per_min / 60.0
    out = np.empty(t.size)
    for i, ti in enumerate(t):
        tf = np.r_[grid[grid < ti], ti]
        cpf = np.interp(tf - delay_s, t, cp, left=cp[0], right=cp[-1])
        out[i] = np.trapezoid(cpf * np.exp(-k * (ti - tf)), tf) / 60.0
    return out


@pytest.fixture
def uneven() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.cumsum(np.r_[0.0, rng.uniform(1.0, 9.0, 40)])
    cp = np.where(t > 20, 6.0 * np.exp(-(t - 20) / 80) * (1 - np.exp(-(t - 20) / 4)), 0.0)
    return t, cp


@pytest.mark.parametrize("kep", [0.0, 1e-4, 0.05, 0.7, 12.0, 150.0])
@pytest.mark.parametrize("delay", [0.0, 7.3])
def test_exp_convolution_matches_fine_quadrature(uneven: tuple[np.ndarray, np.ndarray],
                                                  kep: float, delay: float) -> None:
    t, cp = uneven
    got = models.exp_convolution(t, cp, kep, delay_s=delay, interpolation="linear")
    ref = _numeric_conv(t, cp, kep, delay)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-9 * np.max(np.abs(ref)))


def _numeric_conv_spline(t: np.ndarray, cp: np.ndarray, kep_per_min: float, delay_s: float,
                         n_fine: int = 200_001) -> np.ndarray:
    """The same for SciPy's not-a-knot cubic spline of the input (held outside its times)."""
    from scipy.interpolate import CubicSpline

    spline = CubicSpline(t, cp)
    grid = np.linspace(t[0], t[-1], n_fine)
    k = kep_per_min / 60.0
    out = np.empty(t.size)
    for i, ti in enumerate(t):
        tf = np.r_[grid[grid < ti], ti]
        x = tf - delay_s
        cpf = np.where(x <= t[0], cp[0], np.where(x >= t[-1], cp[-1],
                                                  spline(np.clip(x, t[0], t[-1]))))
        out[i] = np.trapezoid(cpf * np.exp(-k * (ti - tf)), tf) / 60.0
    return out


@pytest.mark.parametrize("kep", [0.0, 0.7, 150.0])
@pytest.mark.parametrize("delay", [0.0, 2.9])
def test_cubic_input_convolution_matches_fine_quadrature(
        uneven: tuple[np.ndarray, np.ndarray], kep: float, delay: float) -> None:
    """The cubic input: its convolution (exact for straight lines between sub-knots at most
    0.25 s apart) is within 5e-4 of its peak of the quadrature of the spline itself
    (measured: 2e-5 at kep <= 0.7 /min, 2e-4 at 150 /min, where it follows the input)."""
    t, cp = uneven
    got = models.exp_convolution(t, cp, kep, delay_s=delay, interpolation="cubic")
    ref = _numeric_conv_spline(t, cp, kep, delay)
    np.testing.assert_allclose(got, ref, rtol=0, atol=5e-4 * np.max(np.abs(ref)))


def test_constant_input_analytic() -> None:
    """cp = c0 (a step at t=0): Tofts gives ve c0 (1 - exp(-kep t))."""
    t = np.linspace(0, 600, 37)
    cp = np.full(t.size, 2.0)
    c = models.tofts(t, cp, ktrans_per_min=0.3, ve=0.4)
    np.testing.assert_allclose(c, 0.4 * 2.0 * (1 - np.exp(-0.75 * t / 60)), rtol=1e-12, atol=1e-14)


def test_linear_ramp_patlak_analytic() -> None:
    """cp = a t: Patlak gives Ktrans a t^2/2 + vp a t (exact for a linear input)."""
    t = np.array([0.0, 3.0, 10.0, 11.0, 40.0, 41.5, 120.0])
    a = 0.01
    c = models.patlak(t, a * t, ktrans_per_min=0.2, vp=0.05)
    ref = 0.2 * a * (t / 60) * t / 2 + 0.05 * a * t
    np.testing.assert_allclose(c, ref, rtol=1e-12, atol=1e-15)


def test_extended_tofts_is_tofts_plus_vp_cp(uneven: tuple[np.ndarray, np.ndarray]) -> None:
    t, cp = uneven
    c1 = models.extended_tofts(t, cp, ktrans_per_min=[0.1, 0.5], ve=[0.2, 0.3], vp=[0.05, 0.1])
    c0 = models.tofts(t, cp, ktrans_per_min=[0.1, 0.5], ve=[0.2, 0.3])
    np.testing.assert_allclose(c1 - c0, np.outer([0.05, 0.1], cp), atol=1e-12)
    assert c1.shape == (2, t.size)


def test_delay_equals_shifted_input() -> None:
    """A delay of whole samples on an even grid equals shifting the input by those samples
    (straight lines between the samples; the cubic spline's end conditions differ)."""
    t = np.arange(0, 300, 5.0)
    cp = np.where(t > 30, 5 * np.exp(-(t - 30) / 100), 0.0)
    shifted = np.r_[np.zeros(3), cp[:-3]]
    a = models.tofts(t, cp, ktrans_per_min=0.2, ve=0.3, delay_s=15.0, interpolation="linear")
    b = models.tofts(t, shifted, ktrans_per_min=0.2, ve=0.3, interpolation="linear")
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_separate_aif_times() -> None:
    """An input on a finer grid than the tissue: same as convolving on the fine grid."""
    ta = np.arange(0, 300.5, 0.5)
    cpa = np.where(ta > 30, 5 * np.exp(-(ta - 30) / 100) * (1 - np.exp(-(ta - 30) / 3)), 0.0)
    t = np.arange(0, 300, 5.0)
    coarse = models.tofts(t, cpa, ktrans_per_min=0.25, ve=0.3, t_aif_s=ta)
    fine = models.tofts(ta, cpa, ktrans_per_min=0.25, ve=0.3)
    np.testing.assert_allclose(coarse, fine[::10][: t.size], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"ktrans_per_min": 0.1, "ve": 0.0, "vp": 0.0}, "ve: must be in"),
    ({"ktrans_per_min": 0.1, "ve": 1.5, "vp": 0.0}, "ve: must be in"),
    ({"ktrans_per_min": -0.1, "ve": 0.3, "vp": 0.0}, "ktrans_per_min: must be >= 0"),
    ({"ktrans_per_min": 0.1, "ve": 0.3, "vp": -0.1}, "vp: must be in"),
    ({"ktrans_per_min": [0.1, 0.2], "ve": [0.3, 0.2, 0.1], "vp": 0.0}, "incompatible shapes"),
    ({"ktrans_per_min": np.nan, "ve": 0.3, "vp": 0.0}, "ktrans_per_min: 1 NaN"),
])
def test_bad_parameters(kwargs: dict, match: str) -> None:
    t = np.arange(10.0)
    with pytest.raises(ValueError, match=match):
        models.extended_tofts(t, np.ones(10), **kwargs)


@pytest.mark.parametrize(("t", "cp", "match"), [
    (np.arange(10.0), np.ones(9), "mismatched lengths"),
    (np.r_[0.0, 2.0, 1.0, 3.0], np.ones(4), "strictly increasing"),
    (np.r_[0.0, 1.0, np.nan, 3.0], np.ones(4), "t_s: 1 NaN"),
    (np.arange(4.0), np.r_[0.0, np.nan, 1.0, 1.0], "cp_mM: 1 NaN"),
    (np.array([]), np.array([]), "t_s: empty"),
])
def test_bad_times_and_input(t: np.ndarray, cp: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        models.tofts(t, cp, ktrans_per_min=0.1, ve=0.2)
