"""Tests of dce.semiquant: TIC metrics and the TIC type A-E classifier.

The synthetic curves are piecewise linear with every knot on a sample time of both the
even and the uneven grid, so that peak, time to peak, slopes and IAUC are known exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dce.semiquant import (
    MENG2016_RSLOPE_CUTOFFS,
    TIC_TYPES,
    CurveFlag,
    TICRule,
    baseline_signal,
    classify_tic,
    normalized_peak_enhancement,
    relative_enhancement,
    rslope_max,
    tic_metrics,
)

S0 = 200.0
T_ARR = 25.0
T_EVEN = np.arange(0.0, 305.0, 5.0)                    # 61 phases, baseline 0..25 s
N_BASE_EVEN = 6
T_UNEVEN = np.array([0, 8, 16, 25, 28, 33, 40, 47, 55, 63, 72, 85, 100, 115, 130, 145,
                     170, 200, 240, 270, 300], dtype=float)
N_BASE_UNEVEN = 4
GRIDS = {"even": (T_EVEN, N_BASE_EVEN), "uneven": (T_UNEVEN, N_BASE_UNEVEN)}

# enhancement knots (absolute time s, enhancement in signal units); baseline flat at S0
KNOTS = {
    "A": ([25, 85, 300], [0, 5, 5]),                    # 2.5% peak: almost flat
    "B": ([25, 300], [0, 80]),                          # linear rise over 275 s
    "C": ([25, 40, 55, 300], [0, 60, 100, 100]),        # 30 s wash-in, plateau
    "D": ([25, 40, 55, 300], [0, 60, 100, 60]),         # 30 s wash-in, washout
    "E": ([25, 40, 55, 300], [0, 60, 100, 160]),        # 30 s wash-in, gradual rise
}


def curve(kind: str, t: np.ndarray) -> np.ndarray:
    kt, ke = KNOTS[kind]
    return S0 + np.interp(t, kt, ke)


def enh_d(t: float) -> float:
    """Enhancement of the type-D curve after its peak."""
    return 100.0 - 40.0 * (t - 55.0) / 245.0


def enh_e(t: float) -> float:
    return 100.0 + 60.0 * (t - 55.0) / 245.0


# --------------------------------------------------------------------------------------
# metrics with exact values
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("grid", GRIDS)
def test_type_c_metrics_exact(grid: str) -> None:
    t, nb = GRIDS[grid]
    m = tic_metrics(curve("C", t), t, n_baseline=nb)
    assert m.s0 == pytest.approx(S0)
    assert m.t_arrival_s == pytest.approx(T_ARR)
    assert m.peak_signal == pytest.approx(300.0)
    assert m.peak_enhancement == pytest.approx(100.0)
    assert m.peak_enhancement_pct == pytest.approx(50.0)
    assert m.t_peak_s == pytest.approx(55.0)          # first phase of the plateau
    assert m.time_to_peak_s == pytest.approx(30.0)
    assert m.wash_in_slope_per_s == pytest.approx(100.0 / 30.0)
    assert m.wash_in_slope_pct_per_s == pytest.approx(50.0 / 30.0)
    assert m.max_slope_per_s == pytest.approx(4.0)     # 60 over 15 s
    assert m.max_slope_pct_per_s == pytest.approx(2.0)
    # largest single-interval increase: 5 s x 4/s = 20 on the even grid; on the uneven
    # grid the 33->40 s interval gains 7 s x 4/s = 28 (grid dependent by definition)
    assert m.steepest_wash_in_se_pct == pytest.approx({"even": 10.0, "uneven": 14.0}[grid])
    # IAUC: 0.5*15*60 + 15*(60+100)/2 + 30*100 = 4650 ; +30*100 = 7650
    assert m.iauc[60.0] == pytest.approx(4650.0)
    assert m.iauc[90.0] == pytest.approx(7650.0)
    assert m.washout_pct == pytest.approx(0.0)
    assert m.normalized_peak_enhancement is None
    assert m.flags == 0
    assert m.s0.shape == ()


@pytest.mark.parametrize("grid", GRIDS)
def test_all_types_metrics_exact(grid: str) -> None:
    t, nb = GRIDS[grid]
    x = np.stack([curve(k, t) for k in "ABCDE"])
    m = tic_metrics(x, t, n_baseline=nb, iauc_windows_s=[60, 100],
                    reference_signal=curve("C", t))
    np.testing.assert_allclose(m.peak_enhancement, [5, 80, 100, 100, 160])
    np.testing.assert_allclose(m.peak_enhancement_pct, [2.5, 40, 50, 50, 80])
    np.testing.assert_allclose(m.t_peak_s, [85, 300, 55, 55, 300])
    np.testing.assert_allclose(m.time_to_peak_s, [60, 275, 30, 30, 275])
    np.testing.assert_allclose(m.wash_in_slope_per_s,
                               [5 / 60, 80 / 275, 100 / 30, 100 / 30, 160 / 275])
    np.testing.assert_allclose(m.max_slope_per_s, [5 / 60, 80 / 275, 4, 4, 4])
    # IAUC over 100 s ends at 125 s, between the uneven samples 115 and 130 s
    iauc100_d = 1650.0 + 70 * 100 - 0.5 * (40 / 245) * 70**2
    iauc100_e = 1650.0 + 70 * 100 + 0.5 * (60 / 245) * 70**2
    np.testing.assert_allclose(m.iauc[100.0],
                               [0.5 * 60 * 5 + 40 * 5, 0.5 * 100 * 80 * 100 / 275,
                                8650, iauc100_d, iauc100_e])
    np.testing.assert_allclose(m.iauc[60.0][1], 0.5 * 60 * 80 * 60 / 275)
    np.testing.assert_allclose(m.washout_pct, [0, 0, 0, 100 * (260 - 300) / 300, 0])
    assert m.normalized_peak_enhancement is not None
    np.testing.assert_allclose(m.normalized_peak_enhancement, [0.05, 0.8, 1, 1, 1.6])
    assert np.all(m.flags == 0)
    d = m.as_dict()
    assert {"iauc_60s", "iauc_100s", "normalized_peak_enhancement", "flags"} <= set(d)
    assert all(v.shape == (5,) for v in d.values())


def test_even_and_uneven_grids_agree_where_grid_independent() -> None:
    x_even = np.stack([curve(k, T_EVEN) for k in "ABCDE"])
    x_uneven = np.stack([curve(k, T_UNEVEN) for k in "ABCDE"])
    a = tic_metrics(x_even, T_EVEN, n_baseline=N_BASE_EVEN, iauc_windows_s=(60, 77.5, 90))
    b = tic_metrics(x_uneven, T_UNEVEN, n_baseline=N_BASE_UNEVEN,
                    iauc_windows_s=(60, 77.5, 90))
    da, db = a.as_dict(), b.as_dict()
    for key in da:
        if key != "steepest_wash_in_se_pct":
            np.testing.assert_allclose(da[key], db[key], rtol=1e-12, atol=1e-9, err_msg=key)


def test_per_curve_arrival_between_samples() -> None:
    # arrival at 32.5 s, between the 30 and 35 s phases: E(32.5) = 30
    m = tic_metrics(curve("C", T_EVEN)[None, :], T_EVEN, n_baseline=N_BASE_EVEN,
                    t_arrival_s=np.array([32.5]))
    assert m.t_arrival_s[0] == 32.5
    assert m.time_to_peak_s[0] == pytest.approx(22.5)
    assert m.max_slope_per_s[0] == pytest.approx(4.0)
    # 7.5*(30+60)/2 + 15*(60+100)/2 + 37.5*100
    assert m.iauc[60.0][0] == pytest.approx(337.5 + 1200.0 + 3750.0)
    # the same as a scalar
    s = tic_metrics(curve("C", T_EVEN), T_EVEN, n_baseline=N_BASE_EVEN, t_arrival_s=32.5)
    assert float(s.iauc[60.0]) == pytest.approx(m.iauc[60.0][0])


def test_explicit_baseline_indices_skip_first_phase() -> None:
    y = curve("D", T_EVEN)
    y_bad = y.copy()
    y_bad[0] = 0.0                                   # not yet at steady state
    ref = tic_metrics(y, T_EVEN, n_baseline=N_BASE_EVEN)
    m = tic_metrics(y_bad, T_EVEN, baseline_idx=[5, 1, 2, 3, 4])
    for key, v in ref.as_dict().items():
        np.testing.assert_allclose(m.as_dict()[key], v, err_msg=key)
    assert baseline_signal(y_bad, baseline_idx=[1, 2, 3, 4, 5]) == pytest.approx(S0)
    assert baseline_signal(y_bad, n_baseline=N_BASE_EVEN) == pytest.approx(S0 * 5 / 6)


def test_relative_enhancement_curve() -> None:
    x = np.stack([curve("C", T_EVEN), np.zeros_like(T_EVEN)])
    re = relative_enhancement(x, n_baseline=N_BASE_EVEN)
    np.testing.assert_allclose(re[0], (curve("C", T_EVEN) - S0) / S0)
    assert np.all(np.isnan(re[1]))                   # S0 = 0: NaN, no exception


# --------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("grid", GRIDS)
def test_each_type_classified(grid: str) -> None:
    t, nb = GRIDS[grid]
    x = np.stack([curve(k, t) for k in "ABCDE"])
    types, feat = classify_tic(x, t, n_baseline=nb, return_details=True)
    assert types.tolist() == list("ABCDE")
    assert set(TIC_TYPES) == set("ABCDE")
    np.testing.assert_allclose(feat.peak_enhancement_pct, [2.5, 40, 50, 50, 80])
    np.testing.assert_allclose(feat.early_fraction[1:],
                               [60 / 275, 1, 1, enh_e(85) / 160])
    # late signal = mean over t >= 270 s = value at 285 s (linear there, both grids)
    np.testing.assert_allclose(
        feat.late_change_pct[1:],
        [100 * (80 * 260 / 275 - 80 * 60 / 275) / (S0 + 80 * 60 / 275), 0,
         100 * (enh_d(285) - 100) / 300, 100 * (enh_e(285) - enh_e(85)) / (S0 + enh_e(85))])
    assert feat.is_fast.tolist() == [True, False, True, True, True]
    assert np.all(feat.flags == 0)


def test_thresholds_are_configurable() -> None:
    t, nb = T_EVEN, N_BASE_EVEN
    d, b = curve("D", t), curve("B", t)
    # D: late change -12.5% -> C once the plateau band is widened to +-15%
    assert classify_tic(d, t, n_baseline=nb) == "D"
    assert classify_tic(d, t, n_baseline=nb, rule=TICRule(plateau_band_pct=15.0)) == "C"
    # last phase only: -40/300 = -13.3% -> still D for 10%, C for 13.5%
    assert classify_tic(d, t, n_baseline=nb, rule=TICRule(late_window_s=0.0)) == "D"
    assert classify_tic(d, t, n_baseline=nb,
                        rule=TICRule(late_window_s=0.0, plateau_band_pct=13.5)) == "C"
    # B: 40% peak -> A with a 50% flat threshold
    assert classify_tic(b, t, n_baseline=nb) == "B"
    assert classify_tic(b, t, n_baseline=nb, rule=TICRule(flat_max_pct=50.0)) == "A"
    # B reaches 21.8% of its peak in the first 60 s -> "fast" at 20%, then still rising: E
    assert classify_tic(b, t, n_baseline=nb, rule=TICRule(fast_min_fraction=0.2)) == "E"
    # ... or within a 140 s early window (fraction 140/275 = 0.51)
    assert classify_tic(b, t, n_baseline=nb, rule=TICRule(fast_window_s=140.0)) == "E"


def test_late_change_relative_to_enhancement() -> None:
    # washout from 100 to 76 of enhancement: -7.5% of the signal but -22.5% of the enhancement
    y = S0 + np.interp(T_EVEN, [25, 40, 55, 300], [0, 60, 100, 76])
    types, feat = classify_tic(y, T_EVEN, n_baseline=N_BASE_EVEN, return_details=True)
    assert types == "C"
    late_e = 100 - 24 * 230 / 245
    assert feat.late_change_pct == pytest.approx(100 * (late_e - 100) / 300)
    rule = TICRule(late_change_relative_to="enhancement")
    types, feat = classify_tic(y, T_EVEN, n_baseline=N_BASE_EVEN, rule=rule,
                               return_details=True)
    assert types == "D"
    assert feat.late_change_pct == pytest.approx(late_e - 100)


def test_rule_text_and_validation() -> None:
    text = TICRule(plateau_band_pct=12.5, flat_max_pct=20).describe()
    assert "12.5%" in text and "< 20%" in text and "Chen" in text
    doc = TICRule.__doc__ or ""
    for phrase in ("flat_max_pct", "fast_min_fraction", "plateau_band_pct", "Default 10 %"):
        assert phrase in doc
    with pytest.raises(ValueError, match="fast_window_s: must be > 0"):
        TICRule(fast_window_s=0.0)
    with pytest.raises(ValueError, match="plateau_band_pct: must be >= 0"):
        TICRule(plateau_band_pct=-1.0)
    with pytest.raises(ValueError, match="fast_min_fraction: must be in"):
        TICRule(fast_min_fraction=1.5)
    with pytest.raises(ValueError, match="late_change_relative_to"):
        TICRule(late_change_relative_to="peak")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rule: expected a TICRule"):
        classify_tic(curve("C", T_EVEN), T_EVEN, n_baseline=6, rule={"flat": 1})  # type: ignore[call-overload]


def test_noisy_curves_keep_their_type() -> None:
    rng = np.random.default_rng(20250125)
    for t, nb in GRIDS.values():
        clean = np.stack([curve(k, t) for k in "ABCDE"])           # (5, n)
        noisy = clean[:, None, :] + rng.normal(0.0, 2.0, (5, 200, t.size))  # 1% of S0
        types = classify_tic(noisy, t, n_baseline=nb)
        for i, k in enumerate("ABCDE"):
            assert np.all(types[i] == k), (k, np.unique(types[i], return_counts=True))


# --------------------------------------------------------------------------------------
# vectorisation
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("grid", GRIDS)
def test_vectorised_equals_per_curve(grid: str) -> None:
    t, nb = GRIDS[grid]
    rng = np.random.default_rng(7)
    curves = [curve(k, t) for k in "ABCDE"] + [1.7 * curve("D", t)]
    x = np.stack(curves).reshape(2, 3, t.size) + rng.normal(0, 1.0, (2, 3, t.size))
    arrival = np.array([[25.0, 27.5, 20.0], [31.0, 25.0, 26.0]])
    ref = curve("C", t)
    vec = tic_metrics(x, t, n_baseline=nb, t_arrival_s=arrival, reference_signal=ref)
    types = classify_tic(x, t, n_baseline=nb, t_arrival_s=arrival)
    assert types.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one = tic_metrics(x[i, j], t, n_baseline=nb, t_arrival_s=arrival[i, j],
                              reference_signal=ref)
            for key, v in one.as_dict().items():
                np.testing.assert_allclose(vec.as_dict()[key][i, j], v, rtol=1e-12,
                                           err_msg=key)
            assert types[i, j] == classify_tic(x[i, j], t, n_baseline=nb,
                                               t_arrival_s=arrival[i, j])


@pytest.mark.parametrize("grid", GRIDS)
def test_one_arrival_shortcuts_equal_per_curve_arrivals(grid: str) -> None:
    """One arrival for every curve (the shared post-arrival suffix, the early window as a
    run of phases, the maximum slope from the steepest step on an even grid) gives the
    values of the per-curve-arrival path bit for bit; the maximum slope equals a plain
    loop over each curve's wash-in steps."""
    t, nb = GRIDS[grid]
    rng = np.random.default_rng(11)
    x = np.stack([curve(k, t) for k in "ABCDE"] * 4) + rng.normal(0, 2.0, (20, t.size))
    x[3, 9] = np.nan
    one = tic_metrics(x, t, n_baseline=nb, allow_nan=True).as_dict()
    per = tic_metrics(x, t, n_baseline=nb, allow_nan=True,
                      t_arrival_s=np.full(20, t[nb - 1])).as_dict()
    for key in one:
        np.testing.assert_array_equal(one[key], per[key], err_msg=key)
    kinds, feats = classify_tic(x, t, n_baseline=nb, allow_nan=True, return_details=True)
    kinds_p, feats_p = classify_tic(x, t, n_baseline=nb, allow_nan=True,
                                    t_arrival_s=np.full(20, t[nb - 1]),
                                    return_details=True)
    np.testing.assert_array_equal(kinds, kinds_p)
    for f in ("peak_enhancement_pct", "early_fraction", "late_change_pct", "is_fast"):
        np.testing.assert_array_equal(getattr(feats, f), getattr(feats_p, f), err_msg=f)
    for i in range(20):
        if i == 3:
            assert np.isnan(one["max_slope_per_s"][i])
            continue
        k_peak = nb + int(np.argmax(x[i, nb:]))
        slopes = [(x[i, k] - x[i, k - 1]) / (t[k] - t[k - 1]) for k in range(nb, k_peak + 1)]
        assert one["max_slope_per_s"][i] == max(slopes)


def test_arrival_broadcasts_over_curves() -> None:
    x = np.stack([curve(k, T_EVEN) for k in "CDE"] * 2).reshape(2, 3, -1)
    a = tic_metrics(x, T_EVEN, n_baseline=6, t_arrival_s=np.array([[25.0], [32.5]]))
    assert np.all(a.t_arrival_s[0] == 25.0) and np.all(a.t_arrival_s[1] == 32.5)
    np.testing.assert_allclose(a.time_to_peak_s, [[30.0, 30.0, 275.0], [22.5, 22.5, 267.5]])


# --------------------------------------------------------------------------------------
# bad voxels: NaN + flag, no exception
# --------------------------------------------------------------------------------------

def test_nonpositive_baseline_flagged_not_raised() -> None:
    x = np.stack([curve("C", T_EVEN), curve("C", T_EVEN) - S0, curve("C", T_EVEN) - 2 * S0])
    m = tic_metrics(x, T_EVEN, n_baseline=N_BASE_EVEN)
    np.testing.assert_allclose(m.s0, [200, 0, -200])
    assert m.flags.tolist() == [0, CurveFlag.NONPOSITIVE_BASELINE,
                                CurveFlag.NONPOSITIVE_BASELINE]
    for name in ("peak_enhancement_pct", "wash_in_slope_pct_per_s", "max_slope_pct_per_s",
                 "steepest_wash_in_se_pct"):
        v = getattr(m, name)
        assert np.isfinite(v[0]) and np.all(np.isnan(v[1:])), name
    # absolute metrics stay defined
    np.testing.assert_allclose(m.peak_enhancement, 100.0)
    np.testing.assert_allclose(m.iauc[60.0], 4650.0)
    types, feat = classify_tic(x, T_EVEN, n_baseline=N_BASE_EVEN, return_details=True)
    assert types.tolist() == ["C", "", ""]
    assert np.all(feat.flags[1:] & CurveFlag.NONPOSITIVE_BASELINE)


def test_nan_curves_raise_by_default_and_flag_on_request() -> None:
    x = np.stack([curve("D", T_EVEN), curve("D", T_EVEN)])
    x[1, 10] = np.nan
    with pytest.raises(ValueError, match="signal: 1 NaN or infinite"):
        tic_metrics(x, T_EVEN, n_baseline=N_BASE_EVEN)
    with pytest.raises(ValueError, match="signal: 1 NaN or infinite"):
        classify_tic(x, T_EVEN, n_baseline=N_BASE_EVEN)
    m = tic_metrics(x, T_EVEN, n_baseline=N_BASE_EVEN, allow_nan=True,
                    reference_signal=curve("C", T_EVEN))
    assert m.flags.tolist() == [0, CurveFlag.NONFINITE]
    for key, v in m.as_dict().items():
        if key != "flags":
            assert np.isfinite(v[0]) and np.isnan(v[1]), key
    types, feat = classify_tic(x, T_EVEN, n_baseline=N_BASE_EVEN, allow_nan=True,
                               return_details=True)
    assert types.tolist() == ["D", ""]
    assert feat.flags.tolist() == [0, CurveFlag.NONFINITE]
    assert feat.is_fast.tolist() == [True, False]


def test_per_curve_arrival_out_of_range_flagged() -> None:
    x = np.stack([curve("C", T_EVEN)] * 3)
    arr = np.array([25.0, 300.0, np.nan])
    with pytest.raises(ValueError, match="t_arrival_s: 1 NaN"):
        tic_metrics(x, T_EVEN, n_baseline=6, t_arrival_s=arr)
    m = tic_metrics(x, T_EVEN, n_baseline=6, t_arrival_s=arr, allow_nan=True)
    assert m.flags.tolist() == [0, CurveFlag.INVALID_ARRIVAL, CurveFlag.INVALID_ARRIVAL]
    assert np.all(np.isnan(m.time_to_peak_s[1:])) and np.all(m.s0 == S0)
    types = classify_tic(x, T_EVEN, n_baseline=6, t_arrival_s=arr, allow_nan=True)
    assert types.tolist() == ["C", "", ""]


def test_iauc_window_beyond_data_flagged() -> None:
    m = tic_metrics(curve("C", T_EVEN), T_EVEN, n_baseline=6, iauc_windows_s=(60, 275, 276))
    assert m.iauc[275.0] == pytest.approx(450 + 1200 + 245 * 100)   # ends exactly at 300 s
    assert np.isnan(m.iauc[276.0]) and m.iauc[60.0] == pytest.approx(4650.0)
    assert m.flags == CurveFlag.IAUC_BEYOND_DATA
    assert not tic_metrics(curve("C", T_EVEN), T_EVEN, n_baseline=6, iauc_windows_s=()).iauc


def test_invalid_reference_flagged() -> None:
    x = np.stack([curve("C", T_EVEN), curve("D", T_EVEN)])
    ref = np.stack([np.full(T_EVEN.size, S0), curve("B", T_EVEN)])   # flat, then 40%
    m = tic_metrics(x, T_EVEN, n_baseline=6, reference_signal=ref)
    assert m.normalized_peak_enhancement is not None
    assert np.isnan(m.normalized_peak_enhancement[0])
    assert m.normalized_peak_enhancement[1] == pytest.approx(50 / 40)
    assert m.flags.tolist() == [CurveFlag.INVALID_REFERENCE, 0]


def test_short_acquisition() -> None:
    t = np.arange(0.0, 80.0, 5.0)
    y = S0 + np.interp(t, [25, 40], [0, 60])
    with pytest.raises(ValueError, match="no late phase left"):
        classify_tic(y, t, n_baseline=6)
    types, feat = classify_tic(np.stack([y, y]), t, n_baseline=6,
                               t_arrival_s=np.array([10.0, 25.0]), return_details=True)
    assert types.tolist() == ["C", ""]
    assert feat.flags.tolist() == [0, CurveFlag.SHORT_ACQUISITION]


# --------------------------------------------------------------------------------------
# invalid arguments: ValueError with a message
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"signal": [], "t_s": T_EVEN}, "signal: empty array"),
    ({"signal": np.ones(60)}, r"signal: last axis has length 60 but t_s has 61 points "
                              r"\(mismatched lengths\)"),
    ({"t_s": T_EVEN[::-1]}, "t_s: times must be strictly increasing"),
    ({"t_s": np.r_[T_EVEN[:10], T_EVEN[9], T_EVEN[11:]]}, "strictly increasing"),
    ({"t_s": np.r_[np.nan, T_EVEN[1:]]}, "t_s: 1 NaN"),
    ({"signal": 5.0, "t_s": [0.0]}, "t_s: need at least 2 time points"),
    ({"signal": "abc"}, "signal: expected numbers"),
    ({"n_baseline": 0}, "n_baseline: need at least 1 baseline phase, got 0"),
    ({"n_baseline": 61}, "n_baseline: 61 baseline phases leave no post-baseline phase"),
    ({"n_baseline": 2.0}, "n_baseline: expected an integer"),
    ({"n_baseline": True}, "n_baseline: expected an integer"),
    ({"n_baseline": None}, "give exactly one of n_baseline"),
    ({"baseline_idx": [0, 1]}, "give exactly one of n_baseline"),
    ({"n_baseline": None, "baseline_idx": []}, "baseline_idx: empty array"),
    ({"n_baseline": None, "baseline_idx": [0, 61]}, r"baseline_idx: indices must be in \[0, 60\]"),
    ({"n_baseline": None, "baseline_idx": [-1, 2]}, r"indices must be in \[0, 60\]"),
    ({"n_baseline": None, "baseline_idx": [1, 1]}, "baseline_idx: duplicate phase indices"),
    ({"n_baseline": None, "baseline_idx": [0.5]}, "expected a 1-D list of integer"),
    ({"n_baseline": None, "baseline_idx": [0, 60]}, "the last phase .60. is a baseline phase"),
    ({"t_arrival_s": 300.0}, r"t_arrival_s: 300 s is outside the acquisition \[0, 300\) s"),
    ({"t_arrival_s": -1.0}, "t_arrival_s: -1 s is outside"),
    ({"t_arrival_s": np.ones(3)}, r"t_arrival_s: shape \(3,\) does not broadcast"),
])
def test_invalid_arguments_raise(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"signal": np.stack([curve("C", T_EVEN)] * 2), "t_s": T_EVEN,
                            "n_baseline": 6}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        tic_metrics(**args)
    with pytest.raises(ValueError, match=message):
        classify_tic(**args)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"iauc_windows_s": (60, 0)}, "iauc_windows_s: windows must be > 0 s"),
    ({"iauc_windows_s": (60, np.nan)}, "iauc_windows_s: 1 NaN"),
    ({"reference_signal": np.ones(5)}, "reference_signal: last axis has length 5"),
    ({"reference_signal": np.ones((3, 61))}, r"reference_signal: shape \(3, 61\) does not"),
    ({"reference_signal": np.full(61, np.nan)}, "reference_signal: 61 NaN"),
])
def test_invalid_metric_arguments_raise(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tic_metrics(np.stack([curve("C", T_EVEN)] * 2), T_EVEN, n_baseline=6, **kwargs)


def test_baseline_helpers_validate() -> None:
    with pytest.raises(ValueError, match="n_baseline: 3 baseline phases leave no"):
        relative_enhancement(np.ones(3), n_baseline=3)
    with pytest.raises(ValueError, match="signal: expected an array shaped"):
        baseline_signal(1.0, n_baseline=1)


# --------------------------------------------------------------------------------------
# ratios
# --------------------------------------------------------------------------------------

def test_rslope_max() -> None:
    assert MENG2016_RSLOPE_CUTOFFS == (1.325, 1.85)
    np.testing.assert_allclose(rslope_max([2.0, 3.0, 1.0], 2.0), [1.0, 1.5, 0.5])
    r = rslope_max([2.0, 2.0, np.nan, 2.0], [0.0, -1.0, 1.0, np.nan])
    assert np.all(np.isnan(r))
    # from metrics: lesion C (4 /s) against a marrow-like B curve (80/275 /s)
    x = np.stack([curve("C", T_EVEN), curve("B", T_EVEN)])
    m = tic_metrics(x, T_EVEN, n_baseline=6)
    assert rslope_max(m.max_slope_pct_per_s[0], m.max_slope_pct_per_s[1]) == pytest.approx(
        4.0 / (80 / 275))
    with pytest.raises(ValueError, match="do not broadcast"):
        rslope_max([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="marrow_max_slope: empty"):
        rslope_max([1.0], [])


def test_normalized_peak_enhancement_function() -> None:
    np.testing.assert_allclose(normalized_peak_enhancement([50.0, 80.0], 40.0), [1.25, 2.0])
    assert np.isnan(normalized_peak_enhancement(50.0, 0.0))


def test_semiquant_maps_in_blocks_and_memory_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """semiquant_maps in many ragged blocks, on C- and Fortran-ordered float32 images,
    equals one call on the whole image, map for map and bit for bit (every metric is per
    curve); the type-C phantom's exact peak enhancement comes back in every voxel."""
    import dce.semiquant as sq
    rng = np.random.default_rng(3)
    shape = (5, 4, 3)
    base = np.broadcast_to(curve("C", T_EVEN), (*shape, T_EVEN.size))
    img = (base * rng.uniform(0.5, 2.0, (*shape, 1))).astype(np.float32)
    img[0, 0, 0, 7] = np.nan
    kw: dict[str, Any] = dict(n_baseline=N_BASE_EVEN, iauc_windows_s=[60.0, 90.0],
                              rule=TICRule())
    ref = sq._semiquant_block(img.reshape(-1, T_EVEN.size), T_EVEN, **kw)
    monkeypatch.setattr(sq, "_CHUNK_VALUES", 7 * T_EVEN.size)   # 7 curves per block
    for data in (np.ascontiguousarray(img), np.asfortranarray(img)):
        got = sq.semiquant_maps(data, T_EVEN, **kw)
        assert got.keys() == ref.keys()
        for k in ref:
            assert got[k].shape == shape
            np.testing.assert_array_equal(got[k].ravel(), ref[k], err_msg=k)
    pe = got["peak_enhancement_pct"]
    assert np.isnan(pe[0, 0, 0]) and got["tic_type_code"][0, 0, 0] == 0
    np.testing.assert_allclose(np.delete(pe.ravel(), 0), 50.0, rtol=1e-6)
