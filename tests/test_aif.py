"""Tests for dce.aif against the OSIPI population-AIF reference data.

Reference data: tests/data/osipi/ (copied unchanged from the OSIPI
DCE-DSC-MRI_CodeCollection test suite, Apache-2.0, see LICENSE and README.md there).
One row per time point: label, time (MINUTES), Cb (mM)[, delay (SECONDS)].
Note: the OSIPI README lists the delay column of ParkerAIF_ref_with_delay.csv as
minutes, but the case labels ("delay_1.5s") and the OSIPI generator script use
seconds; ``test_parker_delay_column_is_seconds`` pins this down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from dce.aif import (
    GEORGIOU_PARAMS,
    GEORGIOU_TABLE3_PARAMS,
    POPULATION_AIF_NAMES,
    blood_to_plasma,
    georgiou_aif,
    parker_aif,
    population_aif,
)

DATA = Path(__file__).parent / "data" / "osipi"

# Tolerances from the OSIPI README (same as the OSIPI test suite).
PARKER_ATOL, PARKER_RTOL = 1e-4, 0.01
PARKER_DELAY_ATOL, PARKER_DELAY_RTOL = 0.1, 0.1
GEORGIOU_ATOL, GEORGIOU_RTOL = 1e-4, 0.01


def _load_cases(filename: str) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(label, t_s, cb_mM, delay_s) per case label; CSV time is in minutes."""
    df = pd.read_csv(DATA / filename)
    cases = []
    for label, group in df.groupby("label", sort=True):
        t_s = group["time"].to_numpy(dtype=float) * 60.0
        cb = group["Cb"].to_numpy(dtype=float)
        delay_s = float(group["delay"].iloc[0]) if "delay" in group else 0.0
        cases.append((str(label), t_s, cb, delay_s))
    return cases


PARKER_CASES = _load_cases("ParkerAIF_ref.csv")
PARKER_DELAY_CASES = _load_cases("ParkerAIF_ref_with_delay.csv")
GEORGIOU_CASES = _load_cases("GeorgiouAIF_ref.csv")


def _ids(cases: list[tuple[str, np.ndarray, np.ndarray, float]]) -> list[str]:
    return [c[0] for c in cases]


def test_reference_files_have_expected_cases() -> None:
    assert len(PARKER_CASES) == 11
    assert len(PARKER_DELAY_CASES) == 9
    assert len(GEORGIOU_CASES) == 7
    assert all(np.all(c[3] == 0.0) for c in PARKER_CASES)


# --- OSIPI reference: 100 % of the samples of every case within tolerance -------------

@pytest.mark.parametrize(("label", "t_s", "cb_ref", "delay_s"), PARKER_CASES,
                         ids=_ids(PARKER_CASES))
def test_parker_osipi_reference(label: str, t_s: np.ndarray, cb_ref: np.ndarray,
                                delay_s: float) -> None:
    np.testing.assert_allclose(parker_aif(t_s, delay_s=delay_s), cb_ref, atol=PARKER_ATOL,
                               rtol=PARKER_RTOL, err_msg=label)


@pytest.mark.parametrize(("label", "t_s", "cb_ref", "delay_s"), PARKER_DELAY_CASES,
                         ids=_ids(PARKER_DELAY_CASES))
def test_parker_with_delay_osipi_reference(label: str, t_s: np.ndarray, cb_ref: np.ndarray,
                                           delay_s: float) -> None:
    np.testing.assert_allclose(parker_aif(t_s, delay_s=delay_s), cb_ref,
                               atol=PARKER_DELAY_ATOL, rtol=PARKER_DELAY_RTOL, err_msg=label)


@pytest.mark.parametrize(("label", "t_s", "cb_ref", "delay_s"), GEORGIOU_CASES,
                         ids=_ids(GEORGIOU_CASES))
def test_georgiou_osipi_reference(label: str, t_s: np.ndarray, cb_ref: np.ndarray,
                                  delay_s: float) -> None:
    np.testing.assert_allclose(georgiou_aif(t_s, delay_s=delay_s), cb_ref, atol=GEORGIOU_ATOL,
                               rtol=GEORGIOU_RTOL, err_msg=label)


def test_parker_delay_column_is_seconds() -> None:
    for label, _, _, delay_s in PARKER_DELAY_CASES:
        assert label == f"delay_{delay_s}s"


def test_parker_matches_osipi_generator_exactly() -> None:
    """Same formula and delay convention as OSIPI: agreement to rounding error."""
    for label, t_s, cb_ref, delay_s in PARKER_CASES + PARKER_DELAY_CASES:
        np.testing.assert_allclose(parker_aif(t_s, delay_s=delay_s), cb_ref,
                                   atol=1e-12, rtol=0, err_msg=label)


def test_georgiou_reproduces_supplementary_curve_tightly() -> None:
    """Default (unrounded) parameters reproduce the paper's supplementary AIF to < 5e-5 mM."""
    for label, t_s, cb_ref, _ in GEORGIOU_CASES:
        np.testing.assert_allclose(georgiou_aif(t_s), cb_ref, atol=5e-5, rtol=0,
                                   err_msg=label)


def test_georgiou_table3_parameters_close_to_default() -> None:
    t_s = np.arange(0.0, 300.0, 0.1)
    diff = georgiou_aif(t_s, params=GEORGIOU_TABLE3_PARAMS) - georgiou_aif(t_s)
    assert 0.01 < np.max(np.abs(diff)) < 0.1


# --- behaviour ---------------------------------------------------------------------

@pytest.mark.parametrize("aif", [parker_aif, georgiou_aif])
def test_delay_shifts_peak_by_delay(aif) -> None:
    dt_s = 0.1
    t_s = np.arange(0.0, 300.0, dt_s)
    delay_s = 12.3
    t_peak = t_s[np.argmax(aif(t_s))]
    t_peak_delayed = t_s[np.argmax(aif(t_s, delay_s=delay_s))]
    assert abs((t_peak_delayed - t_peak) - delay_s) <= dt_s / 2 + 1e-9


@pytest.mark.parametrize("aif", [parker_aif, georgiou_aif])
def test_delay_is_a_pure_shift_with_zeros_before_arrival(aif) -> None:
    t_s = np.linspace(0.0, 240.0, 997)  # uneven relative to the delay
    delay_s = 17.0
    delayed = aif(t_s, delay_s=delay_s)
    before = t_s < delay_s
    assert np.all(delayed[before] == 0.0)
    np.testing.assert_allclose(delayed[~before], aif(t_s[~before] - delay_s),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("aif", [parker_aif, georgiou_aif])
def test_uneven_negative_and_single_times(aif) -> None:
    t_s = np.array([-30.0, -0.5, 0.0, 3.7, 10.0, 10.1, 250.0])
    cb = aif(t_s)
    assert cb.shape == t_s.shape
    assert np.all(cb[:2] == 0.0)  # before bolus arrival
    np.testing.assert_allclose(cb, [aif([t])[0] for t in t_s], rtol=1e-12, atol=0)


def test_georgiou_long_acquisition_matches_direct_formula() -> None:
    """Beyond the 5-min reference: many recirculations (30 min ~ 230 gamma variates, shape
    parameters far above the float range of Gamma(x)) must not overflow, and must agree with
    a direct evaluation of Eq. 1 using scipy's gamma density."""
    p = GEORGIOU_PARAMS
    t_s = np.arange(0.0, 1800.0, 1.0)
    cb = georgiou_aif(t_s)
    assert np.all(np.isfinite(cb))
    assert np.all(cb >= 0)
    t_min = t_s / 60.0
    gamma_sum = sum(
        scipy.stats.gamma.pdf(t_min - j * p.tau_min, a=(j + 1) * p.alpha + j + 1,
                              scale=p.beta_min)
        for j in range(int(t_min[-1] / p.tau_min) + 1))
    exp_sum = sum(a * np.exp(-m * t_min) for a, m in zip(p.a_mM, p.m_per_min, strict=True))
    np.testing.assert_allclose(cb, exp_sum * gamma_sum, rtol=1e-9, atol=1e-15)


def test_blood_to_plasma_analytic() -> None:
    cb = np.array([[0.0, 1.1], [2.2, 5.5]])
    np.testing.assert_allclose(blood_to_plasma(cb, 0.45), cb / 0.55, rtol=1e-15)
    np.testing.assert_allclose(blood_to_plasma([1.1], 0.45), [2.0], rtol=1e-15)
    np.testing.assert_array_equal(blood_to_plasma(cb, 0.0), cb)


def test_population_aif_dispatch() -> None:
    t_s = np.arange(0.0, 120.0, 2.0)
    assert POPULATION_AIF_NAMES == ("parker", "georgiou")
    np.testing.assert_array_equal(population_aif("parker", t_s, delay_s=5.0),
                                  parker_aif(t_s, delay_s=5.0))
    np.testing.assert_array_equal(population_aif("Georgiou", t_s), georgiou_aif(t_s))
    np.testing.assert_allclose(population_aif("parker", t_s, hematocrit=0.42),
                               parker_aif(t_s) / 0.58, rtol=1e-15)


# --- input validation: every ValueError names the quantity --------------------------

T_OK = np.arange(0.0, 60.0, 1.0)


@pytest.mark.parametrize("aif", [parker_aif, georgiou_aif])
@pytest.mark.parametrize(("t_s", "match"), [
    ([], r"t_s: empty array"),
    ([0.0, np.nan, 2.0], r"t_s: 1 NaN or infinite value"),
    ([0.0, np.inf], r"t_s: 1 NaN or infinite value"),
    ([0.0, 2.0, 1.0], r"t_s: times must be strictly increasing"),
    ([0.0, 1.0, 1.0], r"t_s: times must be strictly increasing"),
    ([[0.0, 1.0], [2.0, 3.0]], r"t_s: expected a 1-D array"),
    (5.0, r"t_s: expected a 1-D array"),
    (["a", "b"], r"t_s: expected numbers"),
])
def test_bad_times_raise(aif, t_s, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        aif(t_s)


@pytest.mark.parametrize("aif", [parker_aif, georgiou_aif])
@pytest.mark.parametrize(("delay_s", "match"), [
    (-1.0, r"delay_s: bolus arrival delay must be >= 0 s, got -1"),
    (np.nan, r"delay_s: 1 NaN or infinite value"),
    (np.inf, r"delay_s: 1 NaN or infinite value"),
    ([1.0, 2.0], r"delay_s: expected a single delay in seconds"),
    ("soon", r"delay_s: expected numbers"),
])
def test_bad_delay_raises(aif, delay_s, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        aif(T_OK, delay_s=delay_s)


@pytest.mark.parametrize(("hematocrit", "match"), [
    (1.0, r"hematocrit: must be in \[0, 1\), got 1"),
    (-0.1, r"hematocrit: must be in \[0, 1\), got -0.1"),
    (45.0, r"hematocrit: must be in \[0, 1\), got 45"),
    (np.nan, r"hematocrit: 1 NaN or infinite value"),
    ([0.4, 0.5], r"hematocrit: expected a single number"),
])
def test_bad_hematocrit_raises(hematocrit, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        blood_to_plasma([1.0, 2.0], hematocrit)
    with pytest.raises(ValueError, match=match):
        population_aif("parker", T_OK, hematocrit=hematocrit)


@pytest.mark.parametrize(("cb", "match"), [
    ([], r"cb_mM: empty array"),
    ([1.0, np.nan], r"cb_mM: 1 NaN or infinite value"),
])
def test_bad_blood_concentration_raises(cb, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        blood_to_plasma(cb, 0.45)


@pytest.mark.parametrize("name", ["weinmann", "", None])
def test_unknown_aif_name_lists_valid_names(name) -> None:
    with pytest.raises(ValueError, match=r"name: unknown population AIF .*valid names are "
                                         r"'parker', 'georgiou'"):
        population_aif(name, T_OK)
