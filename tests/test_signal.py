"""Tests for dce.signal: SPGR signal equation, its inverse, signal <-> concentration.

Truth is independent of the code under test: the SPGR equation written out again with
the ``math`` module, closed forms (FA = 90 deg, E1 = 1/2, Ernst angle and Ernst signal),
and exact round trips through the forward model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

from dce.signal import (
    STATUS_CONC,
    ConcentrationResult,
    baseline_indices,
    concentration_to_signal,
    r1_from_signal,
    signal_to_concentration,
    spgr_m0,
    spgr_signal,
)

TR, FA, T10, RELAX = 0.005, 20.0, 1.2, 4.5
HYP = settings(max_examples=60, deadline=None)


def spgr_ref(m0: float, t1_s: float, fa_deg: float, tr_s: float) -> float:
    """SPGR steady state written out independently: M0 sin(a)(1 - E1)/(1 - E1 cos(a))."""
    a = fa_deg * math.pi / 180.0
    e1 = math.exp(-tr_s / t1_s)
    return m0 * math.sin(a) * (1.0 - e1) / (1.0 - e1 * math.cos(a))


def to_conc(signal: ArrayLike, t10: Any = T10, *, baseline: Any = 3, fa: float = FA,
            tr: float = TR, relax: float = RELAX) -> ConcentrationResult:
    return signal_to_concentration(signal, t10_s=t10, tr_s=tr, flip_angle_deg=fa,
                                   r1_per_mM_per_s=relax, baseline=baseline)


def to_signal(conc: ArrayLike, t10: Any = T10, m0: Any = 1000.0, *, fa: float = FA,
              tr: float = TR, relax: float = RELAX) -> NDArray[np.float64]:
    return concentration_to_signal(conc, t10_s=t10, m0=m0, tr_s=tr, flip_angle_deg=fa,
                                   r1_per_mM_per_s=relax)



def gamma_curve(n_times: int, n_base: int, peak_mM: float = 2.0) -> NDArray[np.float64]:
    """A bolus-like concentration curve, exactly 0 over the first ``n_base`` phases."""
    t = np.arange(n_times, dtype=float) - n_base + 1
    c = np.where(t > 0, peak_mM * (np.clip(t, 0, None) / 3.0) * np.exp(1 - np.clip(t, 0, None)
                                                                        / 3.0), 0.0)
    return np.asarray(c, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# spgr_signal
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("m0", "t1", "fa", "tr"), [
    (1000.0, 1.0, 20.0, 0.005),
    (1.0, 0.3, 5.0, 0.002),
    (250.0, 3.0, 40.0, 0.01),
    (1e4, 0.8, 90.0, 0.004),
    (7.5, 1.5, 135.0, 0.0035),
])
def test_spgr_signal_matches_formula(m0: float, t1: float, fa: float, tr: float) -> None:
    got = spgr_signal(m0, t1, fa, tr)
    assert got.shape == ()
    assert float(got) == pytest.approx(spgr_ref(m0, t1, fa, tr), rel=1e-13)


def test_spgr_signal_closed_forms() -> None:
    # FA = 90 deg: S = M0 (1 - exp(-TR/T1)); 1000 (1 - e^-0.005) = 4.98752080731769...
    assert float(spgr_signal(1000.0, 1.0, 90.0, 0.005)) == pytest.approx(
        4.987520807317687, rel=1e-13)
    # E1 = 1/2 (T1 = TR/ln 2), FA = 60 deg: S = M0 (sqrt3/2)(1/2)/(3/4) = M0/sqrt(3)
    assert float(spgr_signal(300.0, 0.004 / math.log(2.0), 60.0, 0.004)) == pytest.approx(
        300.0 / math.sqrt(3.0), rel=1e-13)
    # Limits: T1 -> 0 gives the bound M0 sin(FA); T1 -> inf gives 0.
    assert float(spgr_signal(2.0, 1e-6, 30.0, 0.005)) == pytest.approx(1.0, rel=1e-12)
    assert float(spgr_signal(2.0, 1e12, 30.0, 0.005)) == pytest.approx(0.0, abs=1e-11)


def test_spgr_signal_broadcasts_over_maps() -> None:
    rng = np.random.default_rng(0)
    t1 = rng.uniform(0.3, 3.0, (4, 3))
    m0 = rng.uniform(100.0, 2000.0, (4, 1))
    fa = np.array([2.0, 5.0, 10.0, 15.0, 25.0])
    got = spgr_signal(m0[..., None], t1[..., None], fa, 0.0045)
    assert got.shape == (4, 3, 5)
    assert got.dtype == np.float64
    for i, j, k in np.ndindex(got.shape):
        ref = spgr_ref(float(m0[i, 0]), float(t1[i, j]), float(fa[k]), 0.0045)
        assert got[i, j, k] == pytest.approx(ref, rel=1e-13)


@pytest.mark.parametrize(("t1", "tr"), [(0.3, 0.002), (1.0, 0.005), (1.4, 0.0045), (3.0, 0.01),
                                        (0.05, 0.02)])
def test_ernst_angle_maximises_signal(t1: float, tr: float) -> None:
    e1 = math.exp(-tr / t1)
    ernst = math.degrees(math.acos(e1))
    res = minimize_scalar(lambda fa: -float(spgr_signal(1.0, t1, fa, tr)),
                          bounds=(0.01, 179.99), method="bounded",
                          options={"xatol": 1e-10})
    assert res.x == pytest.approx(ernst, abs=1e-3)
    # Dense grid: the argmax is the grid point nearest the Ernst angle.
    grid = np.linspace(0.01, 179.99, 36001)
    s = spgr_signal(1.0, t1, grid, tr)
    assert abs(grid[np.argmax(s)] - ernst) <= grid[1] - grid[0]
    # Signal at the Ernst angle: M0 sqrt((1 - E1) / (1 + E1)), and it is a strict maximum.
    s_ernst = float(spgr_signal(1.0, t1, ernst, tr))
    assert s_ernst == pytest.approx(math.sqrt((1 - e1) / (1 + e1)), rel=1e-12)
    assert s.max() <= s_ernst * (1 + 1e-14)
    assert s_ernst > float(spgr_signal(1.0, t1, ernst * 0.9, tr))
    assert s_ernst > float(spgr_signal(1.0, t1, min(ernst * 1.1, 179.0), tr))


@HYP
@given(t1_lo=st.floats(0.05, 5.0), dt1=st.floats(1e-3, 5.0), fa=st.floats(0.5, 179.5),
       tr=st.floats(1e-3, 0.05))
def test_spgr_signal_decreases_with_t1_and_is_bounded(t1_lo: float, dt1: float, fa: float,
                                                      tr: float) -> None:
    s_lo, s_hi = spgr_signal(1.0, [t1_lo, t1_lo + dt1], fa, tr)
    bound = math.sin(math.radians(fa))
    assert 0 < s_hi < s_lo < bound


# ---------------------------------------------------------------------------------------------
# spgr_m0, r1_from_signal
# ---------------------------------------------------------------------------------------------

def test_spgr_m0_inverts_spgr_signal() -> None:
    rng = np.random.default_rng(1)
    t1 = rng.uniform(0.3, 3.0, 50)
    m0 = rng.uniform(10.0, 1e4, 50)
    s = spgr_signal(m0, t1, 12.0, 0.0039)
    np.testing.assert_allclose(spgr_m0(s, t1, 12.0, 0.0039), m0, rtol=1e-12)
    # Scalar, by hand: S / [sin(a)(1 - E1)/(1 - E1 cos a)]
    e1 = math.exp(-0.005 / 1.1)
    a = math.radians(25.0)
    assert float(spgr_m0(80.0, 1.1, 25.0, 0.005)) == pytest.approx(
        80.0 * (1 - e1 * math.cos(a)) / (math.sin(a) * (1 - e1)), rel=1e-13)


@HYP
@given(t1=st.floats(0.01, 10.0), fa=st.floats(1.0, 179.0), tr=st.floats(1e-3, 0.05),
       m0=st.floats(1e-2, 1e6))
def test_r1_from_signal_inverts_spgr(t1: float, fa: float, tr: float, m0: float) -> None:
    s = spgr_signal(m0, t1, fa, tr)
    r1, bad = r1_from_signal(s, m0, fa, tr)
    assert not bool(bad)
    assert float(r1) == pytest.approx(1.0 / t1, rel=1e-8)


def test_r1_from_signal_flags_out_of_range() -> None:
    m0, fa, tr = 500.0, 30.0, 0.005
    smax = m0 * np.sin(np.deg2rad(fa))        # the same expression the inverse uses
    s = np.array([smax, smax * 1.5, 0.0, -1.0, np.nan, np.inf, -np.inf,
                  smax * (1 - 1e-9), 1e-9, float(spgr_signal(m0, 0.9, fa, tr))])
    r1, bad = r1_from_signal(s, m0, fa, tr)
    np.testing.assert_array_equal(bad, [True] * 7 + [False] * 3)
    assert np.all(np.isnan(r1[:7]))
    assert np.all(np.isfinite(r1[7:]))
    assert r1[-1] == pytest.approx(1 / 0.9, rel=1e-10)
    # Just below the bound / just above zero: finite R1 that reproduces the signal.
    for k in (7, 8):
        assert float(spgr_signal(m0, 1.0 / r1[k], fa, tr)) == pytest.approx(s[k], rel=1e-6)
    # m0 NaN or <= 0: every sample out of range.
    _, bad = r1_from_signal([1.0, 2.0], [[np.nan], [0.0], [-5.0]], fa, tr)
    assert bad.all()


# ---------------------------------------------------------------------------------------------
# baseline_indices
# ---------------------------------------------------------------------------------------------

def test_baseline_indices_resolves_count_and_indices() -> None:
    np.testing.assert_array_equal(baseline_indices(3, 10), [0, 1, 2])
    np.testing.assert_array_equal(baseline_indices(np.int64(9), 10), np.arange(9))
    got = baseline_indices([4, 0, 7], 10)
    np.testing.assert_array_equal(got, [4, 0, 7])
    assert got.dtype == np.intp
    np.testing.assert_array_equal(baseline_indices(np.array([9], dtype=np.int32), 10), [9])


# ---------------------------------------------------------------------------------------------
# Round trips signal <-> concentration (hypothesis)
# ---------------------------------------------------------------------------------------------

@st.composite
def baselines(draw: st.DrawFn, n_times: int) -> int | list[int] | NDArray[np.int64]:
    """A baseline as a count of leading phases, a list of indices or an index array."""
    kind = draw(st.sampled_from(["count", "list", "array"]))
    if kind == "count":
        return draw(st.integers(1, n_times - 1))
    idx = draw(st.lists(st.integers(0, n_times - 1), min_size=1, max_size=n_times - 1,
                        unique=True))
    return idx if kind == "list" else np.array(idx, dtype=np.int64)


def _base_idx(baseline: Any) -> NDArray[np.intp]:
    if isinstance(baseline, int):
        return np.arange(baseline)
    return np.asarray(baseline, dtype=np.intp)


PARAMS = dict(fa=st.floats(5.0, 40.0), tr=st.floats(0.002, 0.010), relax=st.floats(3.0, 6.0))


@HYP
@given(data=st.data(), n_vox=st.integers(1, 6), n_times=st.integers(2, 25),
       t10_map=st.booleans(), **PARAMS)
def test_roundtrip_concentration_signal_concentration(
        data: st.DataObject, n_vox: int, n_times: int, t10_map: bool, fa: float, tr: float,
        relax: float) -> None:
    conc = data.draw(hnp.arrays(np.float64, (n_vox, n_times), elements=st.floats(0.0, 5.0)))
    baseline = data.draw(baselines(n_times))
    conc[:, _base_idx(baseline)] = 0.0          # pre-contrast phases carry no agent
    t10: float | NDArray[np.float64]
    if t10_map:
        t10 = data.draw(hnp.arrays(np.float64, (n_vox,), elements=st.floats(0.3, 3.0)))
    else:
        t10 = data.draw(st.floats(0.3, 3.0))
    m0 = data.draw(hnp.arrays(np.float64, (n_vox,), elements=st.floats(1.0, 1e5)))

    s = to_signal(conc, t10, m0, fa=fa, tr=tr, relax=relax)
    assert s.shape == (n_vox, n_times)
    res = to_conc(s, t10, baseline=baseline, fa=fa, tr=tr, relax=relax)

    np.testing.assert_array_equal(res.status, 0)
    assert not res.out_of_range.any()
    np.testing.assert_allclose(res.m0, m0, rtol=1e-10)
    np.testing.assert_allclose(res.conc_mM, conc, rtol=1e-8, atol=1e-8)
    r1_true = 1.0 / np.broadcast_to(t10, (n_vox,))[:, None] + relax * conc
    np.testing.assert_allclose(res.r1_per_s, r1_true, rtol=1e-9)


@HYP
@given(data=st.data(), n_vox=st.integers(1, 6), n_times=st.integers(2, 25),
       t10_map=st.booleans(), **PARAMS)
def test_roundtrip_signal_concentration_signal(
        data: st.DataObject, n_vox: int, n_times: int, t10_map: bool, fa: float, tr: float,
        relax: float) -> None:
    # Any agent in the baseline window (0-5 mM) raises the baseline mean and so the M0
    # estimate: every sample stays below the SPGR bound and the round trip must be exact.
    conc = data.draw(hnp.arrays(np.float64, (n_vox, n_times), elements=st.floats(0.0, 5.0)))
    baseline = data.draw(baselines(n_times))
    t10: float | NDArray[np.float64]
    if t10_map:
        t10 = data.draw(hnp.arrays(np.float64, (n_vox,), elements=st.floats(0.3, 3.0)))
    else:
        t10 = data.draw(st.floats(0.3, 3.0))
    s = to_signal(conc, t10, data.draw(st.floats(1.0, 1e5)), fa=fa, tr=tr, relax=relax)

    res = to_conc(s, t10, baseline=baseline, fa=fa, tr=tr, relax=relax)
    np.testing.assert_array_equal(res.status, 0)
    back = to_signal(res.conc_mM, t10, res.m0, fa=fa, tr=tr, relax=relax)
    np.testing.assert_allclose(back, s, rtol=1e-9)
    # The baseline mean of the recovered concentration maps back to the baseline mean signal.
    s0 = s[:, _base_idx(baseline)].mean(axis=-1)
    np.testing.assert_allclose(spgr_signal(res.m0, np.broadcast_to(t10, (n_vox,)), fa, tr), s0,
                               rtol=1e-10)


def test_concentration_known_value() -> None:
    # One voxel by hand: S = spgr(M0, 1/(1/T10 + r1 C)); C recovered from the signal alone.
    c_true = 1.7
    r1 = 1 / T10 + RELAX * c_true
    s0 = spgr_ref(800.0, T10, FA, TR)
    s1 = spgr_ref(800.0, 1 / r1, FA, TR)
    res = to_conc(np.array([s0, s0, s0, s1]), baseline=3)
    assert res.status.shape == ()
    assert int(res.status) == 0
    assert float(res.m0) == pytest.approx(800.0, rel=1e-12)
    np.testing.assert_allclose(res.conc_mM, [0, 0, 0, c_true], atol=1e-10)
    np.testing.assert_allclose(res.r1_per_s, [1 / T10] * 3 + [r1], rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Range flags and voxel status
# ---------------------------------------------------------------------------------------------

def _three_voxels(n_times: int = 14, n_base: int = 4) -> NDArray[np.float64]:
    conc = np.stack([gamma_curve(n_times, n_base, p) for p in (1.0, 2.0, 3.0)])
    return to_signal(conc, np.array([0.8, 1.2, 2.0]), np.array([900.0, 1000.0, 1100.0]))


def test_status_codes_documented() -> None:
    assert set(STATUS_CONC) == {0, 1, 2, 3, 4}


def test_samples_above_bound_or_nonpositive_flagged() -> None:
    t10 = np.array([0.8, 1.2, 2.0])
    s = _three_voxels()
    clean = to_conc(s, t10, baseline=4)
    np.testing.assert_array_equal(clean.status, 0)
    smax = clean.m0[1] * np.sin(np.deg2rad(FA))   # bound of voxel 1 (baseline untouched)
    bad_at = {5: smax, 7: 1.3 * smax, 8: 0.0, 10: -2.0, 11: np.nan, 12: np.inf}
    s2 = s.copy()
    for k, v in bad_at.items():
        s2[1, k] = v
    res = to_conc(s2, t10, baseline=4)

    np.testing.assert_array_equal(res.status, [0, 2, 0])
    expect = np.zeros_like(s, dtype=bool)
    expect[1, list(bad_at)] = True
    np.testing.assert_array_equal(res.out_of_range, expect)
    np.testing.assert_array_equal(np.isnan(res.conc_mM), expect)
    np.testing.assert_array_equal(np.isnan(res.r1_per_s), expect)
    # Everything else is exactly what the clean signal gave.
    np.testing.assert_array_equal(res.m0, clean.m0)
    np.testing.assert_array_equal(res.conc_mM[~expect], clean.conc_mM[~expect])
    np.testing.assert_array_equal(res.r1_per_s[~expect], clean.r1_per_s[~expect])


def test_baseline_not_positive_gives_status_1() -> None:
    t10 = np.array([0.8, 1.2, 2.0])
    s = _three_voxels()
    clean = to_conc(s, t10, baseline=4)
    for bad_base in ([0.0, 0.0, 0.0, 0.0], [5.0, -5.0, 0.0, -1.0], [1.0, np.nan, 1.0, 1.0],
                     [1.0, np.inf, 1.0, 1.0]):
        s2 = s.copy()
        s2[0, :4] = bad_base
        res = to_conc(s2, t10, baseline=4)
        np.testing.assert_array_equal(res.status, [1, 0, 0])
        assert np.isnan(res.m0[0])
        assert np.all(np.isnan(res.conc_mM[0]))
        assert res.out_of_range[0].all()
        np.testing.assert_array_equal(res.conc_mM[1:], clean.conc_mM[1:])
        np.testing.assert_array_equal(res.m0[1:], clean.m0[1:])
        assert not res.out_of_range[1:].any()


def test_explicit_baseline_indices_skip_a_bad_phase() -> None:
    # Phase 0 is corrupt (0): a count baseline gives status 1 for a zero baseline mean,
    # explicit indices [1, 2, 3] skip it; the corrupt sample itself is flagged (status 2).
    s = _three_voxels()
    s[:, 0] = 0.0
    res = to_conc(s, np.array([0.8, 1.2, 2.0]), baseline=[1, 2, 3])
    np.testing.assert_array_equal(res.status, 2)
    np.testing.assert_allclose(res.m0, [900.0, 1000.0, 1100.0], rtol=1e-10)
    assert res.out_of_range[:, 0].all()
    assert not res.out_of_range[:, 1:].any()
    conc = np.stack([gamma_curve(14, 4, p) for p in (1.0, 2.0, 3.0)])
    np.testing.assert_allclose(res.conc_mM[:, 1:], conc[:, 1:], atol=1e-9)


@pytest.mark.parametrize("bad_t10", [np.nan, 0.0, -1.0, np.inf])
def test_t10_map_bad_voxel_gives_status_3(bad_t10: float) -> None:
    t10 = np.array([0.8, 1.2, 2.0])
    s = _three_voxels()
    clean = to_conc(s, t10, baseline=4)
    t10_bad = t10.copy()
    t10_bad[2] = bad_t10
    res = to_conc(s, t10_bad, baseline=4)
    np.testing.assert_array_equal(res.status, [0, 0, 3])
    assert np.isnan(res.m0[2])
    assert np.all(np.isnan(res.conc_mM[2]))
    assert np.all(np.isnan(res.r1_per_s[2]))
    for f in ("conc_mM", "r1_per_s", "m0", "out_of_range"):
        np.testing.assert_array_equal(getattr(res, f)[:2], getattr(clean, f)[:2])
    # Each good voxel equals a separate single-voxel computation with a scalar T10.
    for v in range(2):
        one = to_conc(s[v], float(t10[v]), baseline=4)
        np.testing.assert_allclose(res.conc_mM[v], one.conc_mM, rtol=1e-13, atol=1e-13)


def test_status_precedence() -> None:
    # 3 (bad T10) over 1 (bad baseline) over 2 (out-of-range samples).
    s = _three_voxels()
    s[:, :4] = [[0.0] * 4, [0.0] * 4, [1.0] * 4]
    s[:, 8] = 1e9                                  # far above every bound
    res = to_conc(s, np.array([np.nan, 1.2, 2.0]), baseline=4)
    np.testing.assert_array_equal(res.status, [3, 1, 2])


# ---------------------------------------------------------------------------------------------
# float32 4-D input
# ---------------------------------------------------------------------------------------------

def test_float32_4d_matches_per_voxel() -> None:
    rng = np.random.default_rng(42)
    shape, n_t, n_base = (4, 5, 3), 20, 5
    t10 = rng.uniform(0.3, 3.0, shape)
    m0 = rng.uniform(200.0, 5000.0, shape)
    conc = rng.uniform(0.5, 4.0, (*shape, 1)) * gamma_curve(n_t, n_base)
    s64 = to_signal(conc, t10, m0)
    s = s64.astype(np.float32)
    s[0, 0, 0, :n_base] = 0.0                      # status 1
    s[1, 2, 1, 12] = 10.0 * s[1, 2, 1].max()       # status 2
    t10[3, 4, 2] = np.nan                          # status 3
    assert s.shape == (4, 5, 3, 20) and s.dtype == np.float32

    res = to_conc(s, t10, baseline=n_base)
    assert res.conc_mM.shape == res.r1_per_s.shape == res.out_of_range.shape == s.shape
    assert res.m0.shape == res.status.shape == shape
    assert res.conc_mM.dtype == np.float64 and res.status.dtype == np.int8
    expect_status = np.zeros(shape, dtype=np.int8)
    expect_status[0, 0, 0], expect_status[1, 2, 1], expect_status[3, 4, 2] = 1, 2, 3
    np.testing.assert_array_equal(res.status, expect_status)

    for ijk in np.ndindex(shape):
        one = to_conc(s[ijk][None, :], np.array([t10[ijk]]), baseline=n_base)
        assert res.status[ijk] == one.status[0]
        np.testing.assert_array_equal(res.out_of_range[ijk], one.out_of_range[0])
        np.testing.assert_allclose(res.m0[ijk], one.m0[0], rtol=1e-13)
        np.testing.assert_allclose(res.conc_mM[ijk], one.conc_mM[0], rtol=1e-12, atol=1e-12)
        if res.status[ijk] == 0:
            scalar = to_conc(s[ijk], float(t10[ijk]), baseline=n_base)
            np.testing.assert_allclose(res.conc_mM[ijk], scalar.conc_mM, rtol=1e-12,
                                       atol=1e-12)
    # float32 quantisation only: close to the true concentration.
    ok = res.status == 0
    np.testing.assert_allclose(res.conc_mM[ok], conc[ok], atol=2e-3)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

SIG = _three_voxels()
C20 = np.zeros((4, 20))


def _stc(**kw: Any) -> Callable[[], object]:
    args: dict[str, Any] = dict(signal=SIG, t10_s=T10, tr_s=TR, flip_angle_deg=FA,
                                r1_per_mM_per_s=RELAX, baseline=4)
    args.update(kw)
    return lambda: signal_to_concentration(**args)


def _cts(**kw: Any) -> Callable[[], object]:
    args: dict[str, Any] = dict(conc_mM=C20, t10_s=T10, m0=1000.0, tr_s=TR, flip_angle_deg=FA,
                                r1_per_mM_per_s=RELAX)
    args.update(kw)
    return lambda: concentration_to_signal(**args)


FA_MSG = r"flip_angle_deg: flip angle must be in \(0, 180\) degrees"
TR_MSG = r"tr_s: repetition time 5 looks like ms; TR is in s"

ERRORS: list[tuple[str, Callable[[], object], str]] = [
    # NaN / empty / too short signals
    ("stc empty", _stc(signal=np.empty((3, 0))), r"signal: empty array"),
    ("stc scalar", _stc(signal=5.0), r"signal: need time on the last axis with >= 2 phases"),
    ("stc 1 phase", _stc(signal=np.ones((3, 1)), baseline=[0]),
     r"signal: need time on the last axis with >= 2 phases, got shape \(3, 1\)"),
    ("stc text", _stc(signal="abc"), r"signal: expected numbers"),
    ("m0 NaN signal", lambda: spgr_m0([1.0, np.nan], 1.0, FA, TR),
     r"signal: 1 NaN or infinite value\(s\)"),
    ("r1 empty signal", lambda: r1_from_signal([], 1.0, FA, TR), r"signal: empty array"),
    ("spgr NaN m0", lambda: spgr_signal([np.nan, 1.0, np.inf], 1.0, FA, TR),
     r"m0: 2 NaN or infinite value\(s\)"),
    ("cts NaN conc", _cts(conc_mM=np.array([0.0, np.nan])),
     r"conc_mM: 1 NaN or infinite value\(s\)"),
    ("cts NaN m0", _cts(m0=np.nan), r"m0: 1 NaN or infinite value\(s\)"),
    # flip angle
    *[(f"{name} fa={fa}", fn, FA_MSG) for fa in (0.0, 180.0, -10.0, 200.0) for name, fn in (
        ("spgr", lambda fa=fa: spgr_signal(1.0, 1.0, fa, TR)),
        ("spgr_m0", lambda fa=fa: spgr_m0(1.0, 1.0, fa, TR)),
        ("r1", lambda fa=fa: r1_from_signal(1.0, 1.0, fa, TR)),
        ("stc", _stc(flip_angle_deg=fa)),
        ("cts", _cts(flip_angle_deg=fa)))],
    ("spgr fa array with 0", lambda: spgr_signal(1.0, 1.0, [10.0, 0.0], TR), FA_MSG),
    ("stc fa NaN", _stc(flip_angle_deg=np.nan), r"flip_angle_deg: 1 NaN"),
    ("stc fa array", _stc(flip_angle_deg=[10.0, 20.0]),
     r"flip_angle_deg: expected a single value, got shape \(2,\)"),
    # TR in ms, or otherwise not a TR in seconds
    *[(f"{name} tr ms", fn, TR_MSG) for name, fn in (
        ("spgr", lambda: spgr_signal(1.0, 1.0, FA, 5)),
        ("spgr_m0", lambda: spgr_m0(1.0, 1.0, FA, 5.0)),
        ("r1", lambda: r1_from_signal(1.0, 1.0, FA, 5)),
        ("stc", _stc(tr_s=5)),
        ("cts", _cts(tr_s=5.0)))],
    ("tr 0", lambda: spgr_signal(1.0, 1.0, FA, 0.0),
     r"tr_s: repetition time must be > 0 s, got 0$"),
    ("tr negative", _stc(tr_s=-0.005), r"tr_s: repetition time must be > 0 s, got -0.005$"),
    ("tr array", _stc(tr_s=[0.005, 0.006]),
     r"tr_s: expected a single repetition time, got shape \(2,\)"),
    # non-positive T1
    ("spgr t1 0", lambda: spgr_signal(1.0, [1.0, 0.0], FA, TR),
     r"t1_s: T1 must be > 0 s, got minimum 0"),
    ("spgr t1 neg", lambda: spgr_signal(1.0, -2.0, FA, TR),
     r"t1_s: T1 must be > 0 s, got minimum -2"),
    ("spgr t1 NaN", lambda: spgr_signal(1.0, np.nan, FA, TR), r"t1_s: 1 NaN"),
    ("spgr_m0 t1 0", lambda: spgr_m0(1.0, 0.0, FA, TR), r"t1_s: T1 must be > 0 s"),
    ("stc t10 0", _stc(t10_s=0.0),
     r"t10_s: pre-contrast T1 must be a finite value > 0 s, got 0"),
    ("stc t10 neg", _stc(t10_s=-1.0),
     r"t10_s: pre-contrast T1 must be a finite value > 0 s, got -1"),
    ("stc t10 NaN", _stc(t10_s=np.nan),
     r"t10_s: pre-contrast T1 must be a finite value > 0 s, got nan"),
    ("stc t10 inf", _stc(t10_s=np.inf),
     r"t10_s: pre-contrast T1 must be a finite value > 0 s, got inf"),
    ("cts t10 0", _cts(t10_s=np.array([1.0, 0.0, 1.0, 1.0])),
     r"t10_s: pre-contrast T1 must be > 0 s, got minimum 0"),
    ("cts conc too negative", _cts(conc_mM=np.array([0.0, -1.0])),
     r"conc_mM: concentration gives R1 <= 0"),
    # relaxivity
    *[(f"{name} relax={r}", fn, rf"r1_per_mM_per_s: relaxivity must be > 0, got {r:g}")
      for r in (0.0, -4.5) for name, fn in (("stc", _stc(r1_per_mM_per_s=r)),
                                            ("cts", _cts(r1_per_mM_per_s=r)))],
    ("stc relax NaN", _stc(r1_per_mM_per_s=np.nan), r"r1_per_mM_per_s: 1 NaN"),
    ("stc relax array", _stc(r1_per_mM_per_s=[4.5, 3.0]),
     r"r1_per_mM_per_s: expected a single value, got shape \(2,\)"),
    ("cts relax array", _cts(r1_per_mM_per_s=[4.5]),
     r"r1_per_mM_per_s: expected a single value, got shape \(1,\)"),
    # unit hints: T10 in ms, relaxivity per M, flip angle in radians, B1 in percent
    ("stc t10 ms", _stc(t10_s=1000.0), r"t10_s: T1 of 1000 \(median\) looks like ms; T10 is in s"),
    ("stc t10 map ms", _stc(t10_s=np.array([1200.0, np.nan, 1400.0])),
     r"t10_s: T1 of 1300 \(median\) looks like ms"),
    ("cts t10 ms", _cts(t10_s=1000.0), r"t10_s: .* looks like ms; T10 is in s"),
    ("stc relax per M", _stc(r1_per_mM_per_s=4500.0),
     r"r1_per_mM_per_s: relaxivity 4500 looks like per M per s; r1 is per mM per s"),
    ("cts relax per M", _cts(r1_per_mM_per_s=4500.0), r"looks like per M per s"),
    ("stc fa radians", _stc(flip_angle_deg=np.deg2rad(15.0)),
     r"flip_angle_deg: flip angle\(s\) 0.261799 look like radians; flip angles are in degrees"),
    ("cts fa radians", _cts(flip_angle_deg=0.26), r"look like radians"),
    ("stc b1 percent", _stc(b1=np.array([95.0, 100.0, 105.0])),
     r"b1: B1 factor median 100 looks like percent"),
    ("stc b1 negative", _stc(b1=np.array([1.0, -1.0, 1.0])), r"b1: B1 factor must be > 0"),
    ("stc b1 shape", _stc(b1=np.ones(4)), r"b1: shape \(4,\) does not match the image shape"),
    ("stc b1 NaN scalar", _stc(b1=np.nan), r"b1: a single B1 factor must be finite"),
    ("stc b1 too large", _stc(b1=1.95, flip_angle_deg=95.0),
     r"b1: .*actual flip angle of 185.25 deg \(must be < 180\)"),
    # baseline count
    *[(f"baseline count {b}", _stc(baseline=b),
       rf"baseline: number of baseline phases must be in \[1, 13\] for 14 phases, got {b}")
      for b in (0, -1, 14, 15)],
    ("baseline count np", _stc(baseline=np.int64(14)), r"must be in \[1, 13\]"),
    # baseline indices
    ("baseline idx neg", _stc(baseline=[-1, 0]),
     r"baseline: indices must be in \[0, 13\], got -1\.\.0"),
    ("baseline idx high", _stc(baseline=[0, 14]),
     r"baseline: indices must be in \[0, 13\], got 0\.\.14"),
    ("baseline idx dup", _stc(baseline=[0, 1, 1]), r"baseline: duplicate phase indices"),
    ("baseline idx empty", _stc(baseline=[]),
     r"baseline: give a number of leading phases or a 1-D list of integer phase indices"),
    ("baseline idx float", _stc(baseline=[0.0, 1.5]), r"baseline: give a number of leading"),
    ("baseline float count", _stc(baseline=2.0), r"baseline: give a number of leading"),
    ("baseline idx 2-D", _stc(baseline=[[0, 1]]), r"baseline: give a number of leading"),
    # t10 map of the wrong shape
    ("stc t10 map shape", _stc(t10_s=np.ones(4)),
     r"t10_s: shape \(4,\) does not match the image shape \(3,\)"),
    ("stc t10 map 2-D", _stc(t10_s=np.ones((3, 14))),
     r"t10_s: shape \(3, 14\) does not match the image shape \(3,\)"),
    ("stc t10 on 1 voxel", _stc(signal=SIG[0], t10_s=np.ones(14)),
     r"t10_s: shape \(14,\) does not match the image shape \(\)"),
    # mismatched shapes
    ("spgr m0/t1", lambda: spgr_signal(np.ones(3), np.ones(4), FA, TR),
     r"mismatched shapes: m0 \(3,\), t1_s \(4,\), flip_angle_deg \(\) do not broadcast"),
    ("spgr t1/fa", lambda: spgr_signal(1.0, np.ones(3), [10.0, 20.0], TR),
     r"mismatched shapes: .*t1_s \(3,\), flip_angle_deg \(2,\)"),
    ("spgr_m0 signal/t1", lambda: spgr_m0(np.ones((2, 5)), np.ones(2), FA, TR),
     r"mismatched shapes: signal \(2, 5\), t1_s \(2,\)"),
    ("r1 signal/m0", lambda: r1_from_signal(np.ones((2, 5)), np.ones(2), FA, TR),
     r"mismatched shapes: signal \(2, 5\), m0 \(2,\)"),
    ("cts t10", _cts(t10_s=np.ones(3)),
     r"mismatched shapes: conc_mM_image \(4,\), t10_s \(3,\), m0 \(\)"),
    ("cts m0", _cts(m0=np.ones(5)),
     r"mismatched shapes: conc_mM_image \(4,\), t10_s \(\), m0 \(5,\)"),
]


@pytest.mark.parametrize(("call", "match"), [(c, m) for _, c, m in ERRORS],
                         ids=[n for n, _, _ in ERRORS])
def test_value_errors(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_nan_signal_allowed_where_documented() -> None:
    # signal_to_concentration and r1_from_signal accept NaN samples (flagged, not raised).
    s = _three_voxels()
    s[2, 9] = np.nan
    res = to_conc(s, np.array([0.8, 1.2, 2.0]), baseline=4)
    np.testing.assert_array_equal(res.status, [0, 0, 2])
    assert np.argwhere(res.out_of_range).tolist() == [[2, 9]]


# ---------------------------------------------------------------------------------------------
# B1 correction
# ---------------------------------------------------------------------------------------------


def test_b1_map_recovers_concentration_and_flags_unknown_voxels() -> None:
    """Signals made with actual flip angle b1 x nominal (spgr_ref, math module) convert back
    to the true concentration with the b1 map; without it the result is biased; a NaN B1
    voxel gets status 4 and NaN."""
    b1 = np.array([0.8, 1.0, 1.2, np.nan])
    t10, m0, n_base = 1.4, 800.0, 3
    conc = gamma_curve(16, n_base, peak_mM=1.5)
    r1 = 1.0 / t10 + RELAX * conc
    sig = np.array([[spgr_ref(m0, 1.0 / r, FA * (1.0 if np.isnan(b) else b), TR) for r in r1]
                    for b in b1])
    res = signal_to_concentration(sig, t10_s=t10, tr_s=TR, flip_angle_deg=FA,
                                  r1_per_mM_per_s=RELAX, baseline=n_base, b1=b1)
    assert res.status.tolist() == [0, 0, 0, 4]
    np.testing.assert_allclose(res.conc_mM[:3], np.broadcast_to(conc, (3, conc.size)),
                               atol=1e-9)
    assert np.all(np.isnan(res.m0[3])) and STATUS_CONC[4].startswith("B1 factor")
    plain = signal_to_concentration(sig[:3], t10_s=t10, tr_s=TR, flip_angle_deg=FA,
                                    r1_per_mM_per_s=RELAX, baseline=n_base)
    peak = int(np.argmax(conc))
    rel = plain.conc_mM[:, peak] / conc[peak] - 1.0
    assert abs(rel[1]) < 1e-9                          # b1 = 1: identical
    print("relative peak concentration error without B1, b1 = 0.8, 1.0, 1.2:", rel)
    assert rel[0] < -0.15 and rel[2] > 0.15            # 0.8: under-, 1.2: overestimated
    # a given M0 with b1 also works (M0 from the same equation)
    given_m0 = signal_to_concentration(sig[:3], t10_s=t10, tr_s=TR, flip_angle_deg=FA,
                                       r1_per_mM_per_s=RELAX, m0=m0, b1=b1[:3])
    np.testing.assert_allclose(given_m0.conc_mM, np.broadcast_to(conc, (3, conc.size)),
                               atol=1e-9)


def test_concentration_memory_order_block_size_and_float32_output(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A float32 Fortran-ordered image (as nibabel reads it) converted block by block
    gives the values of the float64 C-ordered conversion in one block, bit for bit (the
    conversion is element-wise); ``dtype=np.float32`` rounds that result once; the known
    concentrations come back (forward model; within 5e-3 mM, the float32 input rounding)."""
    import dce.signal as sig_mod
    rng = np.random.default_rng(7)
    shape, nt = (9, 7, 5), 12
    t10 = rng.uniform(0.5, 2.0, shape)
    m0 = rng.uniform(800.0, 1200.0, shape)
    conc = np.concatenate([np.zeros((*shape, 3)), rng.uniform(0.0, 2.0, (*shape, nt - 3))],
                          axis=-1)
    s = concentration_to_signal(conc, t10_s=t10, m0=m0, tr_s=0.005, flip_angle_deg=15.0,
                                r1_per_mM_per_s=4.5)
    s[1, 2, 3, 4] = 2e6                                   # above the SPGR maximum
    s32_f = np.asfortranarray(s.astype(np.float32))
    kw: dict[str, Any] = dict(t10_s=t10, tr_s=0.005, flip_angle_deg=15.0,
                              r1_per_mM_per_s=4.5, m0=m0)
    monkeypatch.setattr(sig_mod, "_BLOCK_VALUES", 10**9)   # one block
    ref = signal_to_concentration(np.ascontiguousarray(s32_f, dtype=np.float64), **kw)
    monkeypatch.setattr(sig_mod, "_BLOCK_VALUES", 37)      # many blocks, ragged
    for data in (s32_f, np.ascontiguousarray(s32_f)):
        got = signal_to_concentration(data, **kw)
        assert got.conc_mM.dtype == np.float64
        np.testing.assert_array_equal(got.conc_mM, ref.conc_mM)
        np.testing.assert_array_equal(got.r1_per_s, ref.r1_per_s)
        np.testing.assert_array_equal(got.status, ref.status)
        np.testing.assert_array_equal(got.out_of_range, ref.out_of_range)
        f32 = signal_to_concentration(data, dtype=np.float32, **kw)
        assert f32.conc_mM.dtype == np.float32 and f32.r1_per_s.dtype == np.float32
        np.testing.assert_array_equal(f32.conc_mM, ref.conc_mM.astype(np.float32))
    assert ref.status[1, 2, 3] == 2 and np.count_nonzero(ref.status) == 1
    ok = ref.status == 0
    np.testing.assert_allclose(ref.conc_mM[ok], conc[ok], atol=5e-3)
    with pytest.raises(ValueError, match="dtype"):
        signal_to_concentration(s, dtype=np.int16, **kw)
