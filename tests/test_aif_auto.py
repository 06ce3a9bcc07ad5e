"""Tests for dce.aif_auto: automatic aortic AIF extraction, QC, fallback and delay.

Accuracy is checked on noisy phantom sessions (:func:`dce.phantom.make_session`, Rician
noise at the default SNR 30) for two protocols -- 3 T with even 5 s phases, and 1.5 T
with uneven phases (4 s, then 8 s), flip angle 15 deg -- at AIF scales 0.8 and 1.2 and
three noise seeds each (12 sessions). The truth is the phantom's blood AIF at the
acquisition times (``session.aif.cb_mM``) and its bolus arrival (``aif.arrival_s``).

Concentration is computed from the signal in two ways: with the phantom's true T10 and
M0 (as from a VFA T1/M0 map; isolates the voxel selection) and with M0 from the few
baseline phases (:func:`extract_aif_from_signal`; the realistic worst case: per-voxel M0
errors are strongly amplified near the arterial peak).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from typing import Any, Literal

import numpy as np
import pytest

import dce.phantom as ph
from dce.aif import georgiou_aif, parker_aif
from dce.aif_auto import (
    AIFCriteria,
    AIFQCThresholds,
    AIFResult,
    AortaAIF,
    anterior_region,
    delay_by_phases,
    extract_aif,
    extract_aif_from_signal,
)
from dce.signal import signal_to_concentration

AORTA = ph.TISSUE_CODES["aorta"]
HCT = 0.45

_UNEVEN = tuple(float(x) for x in np.concatenate([np.arange(0.0, 80.0, 4.0),
                                                   np.arange(88.0, 200.0, 8.0)]))
PROTOCOLS = {
    "3T_even5s": ph.Acquisition(matrix=(44, 48, 6), voxel_mm=(4.0, 3.6, 5.0), n_phases=24,
                                vfa_flip_angles_deg=None),
    "1.5T_uneven": ph.Acquisition(matrix=(40, 44, 6), voxel_mm=(4.4, 4.0, 5.0),
                                  phase_times_s=_UNEVEN, field_strength_t=1.5,
                                  flip_angle_deg=15.0, tr_s=0.005, vfa_flip_angles_deg=None),
}
SCALES = (0.8, 1.2)
SEEDS = (1, 2, 3)
CASES = [(p, sc, sd) for p in PROTOCOLS for sc in SCALES for sd in SEEDS]


def _arrival_s(seed: int) -> float:
    return 12.0 + 3.7 * seed


@cache
def _session(protocol: str, scale: float, seed: int) -> ph.SessionPhantom:
    return ph.make_session(seed=seed, acquisition=PROTOCOLS[protocol],
                           aif=ph.AIFSpec(scale=scale, arrival_s=_arrival_s(seed),
                                          hematocrit=HCT))


def _n_baseline(s: ph.SessionPhantom) -> int:
    """Phases acquired before the bolus arrives."""
    return int(np.searchsorted(s.t_s, s.aif.arrival_s))


def _conv_kw(s: ph.SessionPhantom) -> dict[str, Any]:
    acq = s.acquisition
    return {"t10_s": s.truth["t10_s"], "tr_s": acq.tr_s, "flip_angle_deg": acq.flip_angle_deg,
            "r1_per_mM_per_s": acq.r1_per_mM_per_s}


@cache
def _conc(protocol: str, scale: float, seed: int) -> np.ndarray:
    """Concentration with the true T10 and M0; NaN where the conversion flags a voxel."""
    s = _session(protocol, scale, seed)
    r = signal_to_concentration(s.signal, m0=s.truth["m0"], **_conv_kw(s))
    return np.where((r.status == 0)[..., None], r.conc_mM, np.nan)


def _phase_at_arrival(s: ph.SessionPhantom) -> float:
    """Phase interval around the true arrival (s)."""
    i = int(np.searchsorted(s.t_s, s.aif.arrival_s))
    return float(s.t_s[i] - s.t_s[i - 1])


def _check_accuracy(res: AIFResult, s: ph.SessionPhantom, tol: float) -> tuple[float, float]:
    q = res.qc
    assert q.passed, q.reason
    assert q.source == "aorta" and not q.fallback_used
    true_peak = float(s.aif.cb_mM.max())
    peak_err = q.peak_blood_mM / true_peak - 1.0
    arr_err = (q.arrival_s - s.aif.arrival_s) / _phase_at_arrival(s)
    assert abs(peak_err) <= tol, f"peak {q.peak_blood_mM:.3f} vs true {true_peak:.3f}"
    assert abs(arr_err) <= 1.0, f"arrival {q.arrival_s:.2f} vs true {s.aif.arrival_s:.2f} s"
    # the plasma curve and peak follow from the hematocrit
    np.testing.assert_allclose(res.cp_mM, res.cb_mM / (1 - HCT))
    assert q.peak_plasma_mM == pytest.approx(q.peak_blood_mM / (1 - HCT))
    # every chosen voxel lies in the aorta
    assert q.n_voxels == 16 == res.voxel_indices.shape[0]
    labels = s.tissue_labels[tuple(res.voxel_indices.T)]
    assert np.all(labels == AORTA)
    return peak_err, arr_err


# --------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize(("protocol", "scale", "seed"), CASES)
def test_phantom_accuracy_known_m0(protocol: str, scale: float, seed: int) -> None:
    """Measured over the 12 sessions: |peak error| <= 0.7 %, arrival +0.30..+0.48 phase."""
    s = _session(protocol, scale, seed)
    res = extract_aif(_conc(protocol, scale, seed), s.t_s, n_baseline=_n_baseline(s),
                      hematocrit=HCT)
    _check_accuracy(res, s, tol=0.10)
    # the whole curve, not only its peak, matches the truth at the acquisition times
    np.testing.assert_allclose(res.cb_mM, s.aif.cb_mM, atol=0.05 * s.aif.cb_mM.max())


@pytest.mark.parametrize("average", ["concentration", "signal"])
@pytest.mark.parametrize(("protocol", "scale", "seed"), CASES)
def test_phantom_accuracy_from_signal_baseline_m0(
        protocol: str, scale: float, seed: int,
        average: Literal["signal", "concentration"]) -> None:
    """M0 from the baseline phases. Measured: |peak error| <= 2.8 %, arrival < 0.5 phase."""
    s = _session(protocol, scale, seed)
    res = extract_aif_from_signal(s.signal, s.t_s, n_baseline=_n_baseline(s), hematocrit=HCT,
                                  average=average, **_conv_kw(s))
    _check_accuracy(res, s, tol=0.10)
    assert res.qc.averaging == average


def test_signal_input_with_known_m0_matches_concentration_input() -> None:
    s = _session("3T_even5s", 1.2, 1)
    nb = _n_baseline(s)
    a = extract_aif(_conc("3T_even5s", 1.2, 1), s.t_s, n_baseline=nb, hematocrit=HCT)
    b = extract_aif_from_signal(s.signal, s.t_s, n_baseline=nb, hematocrit=HCT,
                                m0=s.truth["m0"], **_conv_kw(s))
    np.testing.assert_array_equal(a.voxel_indices, b.voxel_indices)
    np.testing.assert_allclose(a.cb_mM, b.cb_mM, rtol=1e-10, atol=1e-12)


def test_deterministic_and_json_qc() -> None:
    s = _session("1.5T_uneven", 0.8, 2)
    conc = _conc("1.5T_uneven", 0.8, 2)
    a = extract_aif(conc, s.t_s, n_baseline=_n_baseline(s), hematocrit=HCT)
    b = extract_aif(conc.astype(np.float32), s.t_s, n_baseline=_n_baseline(s), hematocrit=HCT)
    np.testing.assert_array_equal(a.voxel_indices, b.voxel_indices)
    d = json.loads(a.qc.to_json())
    for key in ("peak_blood_mM", "peak_plasma_mM", "arrival_s", "time_to_peak_s", "n_voxels",
                "baseline_sd_mM", "voxel_indices", "passed", "reason", "criteria",
                "thresholds", "fallback_used"):
        assert key in d
    assert d["passed"] is True and d["reason"] == "ok"
    assert d["voxel_indices"] == a.voxel_indices.tolist()
    assert d["criteria"]["n_voxels"] == 16 and d["thresholds"]["min_voxels"] == 5
    assert d["time_to_peak_s"] == pytest.approx(d["peak_time_s"] - d["arrival_s"])
    assert len(a.voxel_scores) == 16 and np.all(np.diff(a.voxel_scores) <= 1e-12)
    frame = a.to_frame()
    assert list(frame.columns) == ["t_s", "cb_mM", "cp_mM", "measured_cb_mM"]


def test_n_voxels_configurable() -> None:
    s = _session("3T_even5s", 0.8, 1)
    res = extract_aif(_conc("3T_even5s", 0.8, 1), s.t_s, n_baseline=_n_baseline(s),
                      hematocrit=HCT, n_voxels=7)
    assert res.qc.n_voxels == 7 and res.voxel_indices.shape == (7, 3)
    assert np.all(s.tissue_labels[tuple(res.voxel_indices.T)] == AORTA)


# --------------------------------------------------------------------------- masks and priors


def test_aorta_mask_restricts_the_voxels() -> None:
    s = _session("3T_even5s", 1.2, 2)
    conc = _conc("3T_even5s", 1.2, 2)
    nb = _n_baseline(s)
    aorta = s.tissue_labels == AORTA
    res = extract_aif(conc, s.t_s, n_baseline=nb, hematocrit=HCT, mask=aorta)
    _check_accuracy(res, s, tol=0.10)
    # a mask covering only one slice of the aorta: every voxel comes from that slice
    k = int(np.argmax(aorta.sum(axis=(0, 1))))
    one_slice = aorta.copy()
    one_slice[..., np.arange(aorta.shape[2]) != k] = False
    res = extract_aif(conc, s.t_s, n_baseline=nb, hematocrit=HCT, mask=one_slice)
    assert res.qc.passed
    assert np.all(res.voxel_indices[:, 2] == k)


def test_anterior_prior_from_spine_mask() -> None:
    s = _session("1.5T_uneven", 1.2, 3)
    spine = np.isin(s.tissue_labels, [ph.TISSUE_CODES["marrow"], ph.TISSUE_CODES["disc"],
                                      ph.TISSUE_CODES["lesion"]])
    region = anterior_region(spine, axis=0, direction=-1)
    assert region[s.tissue_labels == AORTA].all()
    assert not region[spine].any()
    res = extract_aif(_conc("1.5T_uneven", 1.2, 3), s.t_s, n_baseline=_n_baseline(s),
                      hematocrit=HCT, spine_mask=spine, anterior_axis=0)
    assert res.qc.prior_used and res.qc.prior_note == ""
    _check_accuracy(res, s, tol=0.10)


def test_prior_ignored_when_it_holds_no_artery() -> None:
    s = _session("3T_even5s", 0.8, 3)
    conc = _conc("3T_even5s", 0.8, 3)
    nb = _n_baseline(s)
    # no candidate inside the spinal canal (CSF takes up no contrast)
    res = extract_aif(conc, s.t_s, n_baseline=nb, hematocrit=HCT,
                      prior_mask=s.tissue_labels == ph.TISSUE_CODES["csf"])
    assert not res.qc.prior_used and "no voxel inside prior_mask" in res.qc.prior_note
    _check_accuracy(res, s, tol=0.10)
    # soft tissue has early, washing-out enhancement, but its AIF fails QC (low peak)
    res = extract_aif(conc, s.t_s, n_baseline=nb, hematocrit=HCT,
                      prior_mask=s.tissue_labels == ph.TISSUE_CODES["soft"])
    assert not res.qc.prior_used and "failed QC" in res.qc.prior_note
    _check_accuracy(res, s, tol=0.10)


def test_anterior_region_small() -> None:
    spine = np.zeros((6, 3), dtype=bool)
    spine[3:5, 0] = True
    spine[4:6, 1] = True  # column 2 has no spine voxel: median boundary (3.5 -> index < 3.5)
    ant = anterior_region(spine, axis=0, direction=-1)
    np.testing.assert_array_equal(ant[:, 0], [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(ant[:, 1], [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(ant[:, 2], [1, 1, 1, 1, 0, 0])
    post = anterior_region(spine, axis=0, direction=1, max_distance_vox=1)
    np.testing.assert_array_equal(post[:, 0], [0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(post[:, 1], [0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="direction"):
        anterior_region(spine, 0, 0)
    with pytest.raises(ValueError, match="empty"):
        anterior_region(np.zeros((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="boolean"):
        anterior_region(spine.astype(int))


# --------------------------------------------------------------------------- QC and fallback


@pytest.mark.parametrize(("name", "func"), [("parker", parker_aif), ("georgiou", georgiou_aif)])
def test_fallback_when_the_aorta_is_removed(
        name: str, func: Callable[..., np.ndarray]) -> None:
    s = _session("3T_even5s", 1.2, 1)
    conc = _conc("3T_even5s", 1.2, 1)
    no_aorta = s.tissue_labels != AORTA
    res = extract_aif(conc, s.t_s, n_baseline=_n_baseline(s), hematocrit=HCT, mask=no_aorta,
                      fallback=name)
    q = res.qc
    assert not q.passed and q.fallback_used and q.source == name
    assert "min_peak_mM" in q.reason and q.fallback_reason == f"QC failed: {q.reason}"
    assert q.fallback_arrival_source in ("measured", "tissue_median")
    assert q.fallback_delay_s is not None
    np.testing.assert_allclose(res.cb_mM, func(s.t_s, delay_s=q.fallback_delay_s))
    np.testing.assert_allclose(res.cp_mM, res.cb_mM / (1 - HCT))
    # the population curve's arrival (10 % of its peak) is aligned to the data's arrival
    fine = np.arange(0.0, s.t_s[-1], 0.05)
    cb_fine = func(fine, delay_s=q.fallback_delay_s)
    t10 = fine[np.argmax(cb_fine > 0.1 * cb_fine.max())]
    assert abs(t10 - s.aif.arrival_s) <= _phase_at_arrival(s)
    # the failed measured curve and its voxels are kept for the QC figure
    assert np.all(np.isfinite(res.measured_cb_mM))
    assert not np.any(s.tissue_labels[tuple(res.voxel_indices.T)] == AORTA)
    d = json.loads(q.to_json())
    assert d["fallback_used"] is True and d["source"] == name


def test_failed_qc_without_fallback_returns_measured_curve() -> None:
    s = _session("3T_even5s", 1.2, 1)
    res = extract_aif(_conc("3T_even5s", 1.2, 1), s.t_s, n_baseline=_n_baseline(s),
                      hematocrit=HCT, mask=s.tissue_labels != AORTA)
    assert not res.passed and res.qc.source == "aorta" and not res.qc.fallback_used
    np.testing.assert_array_equal(res.cb_mM, res.measured_cb_mM)


def test_no_enhancement_at_all() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(20) * 5.0
    conc = rng.normal(0.0, 0.01, (30, 20))
    res = extract_aif(conc, t, n_baseline=4, hematocrit=HCT, fallback="parker")
    q = res.qc
    assert not q.passed and "no voxel passed" in q.reason
    assert q.n_voxels == 0 and res.voxel_indices.shape == (0, 1)
    assert q.fallback_arrival_source == "end_of_baseline" and q.fallback_used
    assert np.all(np.isnan(res.measured_cb_mM)) and np.all(np.isfinite(res.cb_mM))
    d = json.loads(q.to_json())  # NaN metrics serialise as null
    assert d["peak_blood_mM"] is None and d["voxel_indices"] == []


def _synthetic(n_art: int = 12, noise: float = 0.02, arrival_phase: int = 5,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n_voxels, n_times) concentrations: tissue rows then ``n_art`` arterial rows."""
    rng = np.random.default_rng(seed)
    t = np.arange(30) * 4.0
    art = parker_aif(t, delay_s=arrival_phase * 4.0 - 1.0)
    tissue = 0.2 * np.clip(t - arrival_phase * 4.0, 0, None) / t[-1]  # slow, no washout
    rows = np.vstack([np.tile(tissue, (40, 1)), np.tile(art, (n_art, 1))])
    return rows + rng.normal(0.0, noise, rows.shape), t


def test_synthetic_selects_arterial_rows() -> None:
    conc, t = _synthetic()
    res = AortaAIF(AIFCriteria(n_voxels=10)).fit(conc, t, n_baseline=4, hematocrit=HCT)
    assert res.qc.passed
    assert np.all(res.voxel_indices[:, 0] >= 40)


def test_qc_thresholds_configurable_and_reasons() -> None:
    conc, t = _synthetic(n_art=3)
    res = extract_aif(conc, t, n_baseline=4, hematocrit=HCT)
    assert not res.passed and "only 3 voxel(s)" in res.qc.reason
    res = extract_aif(conc, t, n_baseline=4, hematocrit=HCT,
                      thresholds=AIFQCThresholds(min_voxels=3))
    assert res.passed
    res = extract_aif(conc, t, n_baseline=4, hematocrit=HCT,
                      thresholds=AIFQCThresholds(min_voxels=3, min_peak_mM=50.0))
    assert "min_peak_mM" in res.qc.reason
    res = extract_aif(conc, t, n_baseline=4, hematocrit=HCT,
                      thresholds=AIFQCThresholds(min_voxels=3, max_noise_ratio=1e-6))
    assert "max_noise_ratio" in res.qc.reason
    # a baseline window that contains the bolus arrival fails
    conc, t = _synthetic(arrival_phase=3)
    res = extract_aif(conc, t, n_baseline=5, hematocrit=HCT)
    assert not res.passed and "within the 5 baseline phases" in res.qc.reason


# --------------------------------------------------------------------------- delay


def test_delay_by_phases_exact() -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(1.0, 6.0, 25))  # uneven
    cp = rng.uniform(0.0, 5.0, 25)
    for n in range(4):
        out = delay_by_phases(t, cp, n)
        np.testing.assert_array_equal(out[n:], cp[:cp.size - n])
        np.testing.assert_array_equal(out[:n], np.full(n, cp[0]))
    np.testing.assert_array_equal(delay_by_phases(t, cp, 2, fill=0.0)[:2], [0.0, 0.0])
    np.testing.assert_array_equal(delay_by_phases(t, cp, 0), cp)
    assert delay_by_phases([0, 5, 10, 15], [0.0, 4.0, 2.0, 1.0], 1).tolist() == \
        [0.0, 0.0, 4.0, 2.0]


def test_delay_by_phases_errors() -> None:
    t = np.arange(5) * 5.0
    cp = np.arange(5.0)
    with pytest.raises(ValueError, match="mismatched lengths"):
        delay_by_phases(t, cp[:4], 1)
    with pytest.raises(ValueError, match=r"n: delay must be in \[0, 4\]"):
        delay_by_phases(t, cp, 5)
    with pytest.raises(ValueError, match="n: delay must be"):
        delay_by_phases(t, cp, -1)
    with pytest.raises(ValueError, match="whole number"):
        delay_by_phases(t, cp, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        delay_by_phases([0.0, np.nan, 10, 15, 20], cp, 1)
    with pytest.raises(ValueError, match="fill"):
        delay_by_phases(t, cp, 1, fill="zero")  # type: ignore[arg-type]


def test_result_delayed() -> None:
    s = _session("3T_even5s", 0.8, 2)
    res = extract_aif(_conc("3T_even5s", 0.8, 2), s.t_s, n_baseline=_n_baseline(s),
                      hematocrit=HCT)
    d2 = res.delayed(2)
    np.testing.assert_array_equal(d2.cp_mM, delay_by_phases(s.t_s, res.cp_mM, 2))
    np.testing.assert_array_equal(d2.cb_mM[2:], res.cb_mM[:-2])
    np.testing.assert_array_equal(d2.measured_cb_mM, res.measured_cb_mM)
    assert d2.qc.delay_phases == 2 and d2.delayed(1).qc.delay_phases == 3
    assert res.qc.delay_phases == 0


# --------------------------------------------------------------------------- bad input


def test_bad_input_errors() -> None:
    conc, t = _synthetic()
    kw: dict[str, Any] = {"n_baseline": 4, "hematocrit": HCT}
    with pytest.raises(ValueError, match="mismatched lengths"):
        extract_aif(conc, t[:-1], **kw)
    with pytest.raises(ValueError, match="mismatched lengths"):
        extract_aif_from_signal(conc + 100, t[:-1], t10_s=1.0, tr_s=0.004, flip_angle_deg=20,
                                r1_per_mM_per_s=4.5, **kw)
    t_nan = t.copy()
    t_nan[3] = np.nan
    with pytest.raises(ValueError, match="t_s: 1 NaN"):
        extract_aif(conc, t_nan, **kw)
    with pytest.raises(ValueError, match="strictly increasing"):
        extract_aif(conc, t[::-1], **kw)
    with pytest.raises(ValueError, match="mask: empty"):
        extract_aif(conc, t, mask=np.zeros(conc.shape[0], dtype=bool), **kw)
    with pytest.raises(ValueError, match="prior_mask: empty"):
        extract_aif(conc, t, prior_mask=np.zeros(conc.shape[0], dtype=bool), **kw)
    with pytest.raises(ValueError, match="does not match the image shape"):
        extract_aif(conc, t, mask=np.ones(3, dtype=bool), **kw)
    with pytest.raises(ValueError, match="boolean"):
        extract_aif(conc, t, mask=np.ones(conc.shape[0]), **kw)
    for nb in (0, 1, t.size - 2, t.size):
        with pytest.raises(ValueError, match=r"n_baseline: must be in \[2, 27\]"):
            extract_aif(conc, t, n_baseline=nb, hematocrit=HCT)
    with pytest.raises(ValueError, match="n_baseline: need an integer"):
        extract_aif(conc, t, n_baseline=4.0, hematocrit=HCT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hematocrit"):
        extract_aif(conc, t, n_baseline=4, hematocrit=45.0)
    with pytest.raises(ValueError, match="fallback: unknown population AIF"):
        extract_aif(conc, t, fallback="tofts", **kw)
    with pytest.raises(ValueError, match="anterior_axis and spine_mask"):
        extract_aif(conc, t, anterior_axis=0, **kw)
    with pytest.raises(ValueError, match="n_voxels"):
        extract_aif(conc, t, n_voxels=0, **kw)
    with pytest.raises(ValueError, match="weights"):
        AortaAIF(AIFCriteria(weights=(0, 0, 0, 0, 0)))
    with pytest.raises(ValueError, match="min_washout"):
        AortaAIF(AIFCriteria(min_washout=1.5))
    with pytest.raises(ValueError, match="min_voxels"):
        AortaAIF(thresholds=AIFQCThresholds(min_voxels=0))
    with pytest.raises(ValueError, match="average"):
        extract_aif_from_signal(conc + 100, t, t10_s=1.0, tr_s=0.004, flip_angle_deg=20,
                                r1_per_mM_per_s=4.5, average="median", **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="conc_mM: expected numbers"):
        extract_aif([["a"] * t.size], t, **kw)


def test_nan_voxels_are_never_selected() -> None:
    conc, t = _synthetic()
    conc[45, 10] = np.nan
    conc[46, :] = np.inf
    res = extract_aif(conc, t, n_baseline=4, hematocrit=HCT)
    assert res.passed
    assert 45 not in res.voxel_indices[:, 0] and 46 not in res.voxel_indices[:, 0]
    assert math.isfinite(res.qc.peak_blood_mM)


def test_criteria_replace_keeps_validation() -> None:
    crit = replace(AIFCriteria(), saturation=1.0)
    conc, t = _synthetic()
    assert extract_aif(conc, t, n_baseline=4, hematocrit=HCT, criteria=crit).passed
    with pytest.raises(ValueError, match="saturation"):
        AortaAIF(replace(AIFCriteria(), saturation=0.0))
