"""Tests for dce.aif_auto.AIFPolicy: the workflow's AIF decision tree without Snakemake.

Truth comes from this file's own forward model (:func:`_session`, numpy only): a small
image with a block of aortic blood (a gamma-variate first pass plus recirculation, 3 T
blood T10) in slowly enhancing tissue, turned into signal by the SPGR equation written
here, with a little Gaussian noise. The Parker curve used to check the population branch
is written here too, from the published parameters.
"""

from __future__ import annotations

import ast
import copy
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dce.aif_auto import AIFChoice, AIFPolicy, anterior_axis_of
from dce.viz.session import aif_qc_phase

TR, FA, R1, HCT, NB = 0.0045, 20.0, 4.5, 0.45, 4
T10_BLOOD, T10_TISSUE = 1.65, 1.2
ARRIVAL_S, PEAK_MM = 20.0, 6.0
SHAPE = (12, 8, 6)
BLOOD = (slice(3, 8), slice(2, 6), slice(1, 5))  # 5 x 4 x 4 voxels, inside the image


@dataclass(frozen=True)
class Session:
    signal: np.ndarray
    t_s: np.ndarray
    cb_true: np.ndarray


def _spgr(m0: float, r1: np.ndarray, fa_deg: float) -> np.ndarray:
    e1 = np.exp(-TR * r1)
    a = np.deg2rad(fa_deg)
    return m0 * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1)


def _blood(t: np.ndarray) -> np.ndarray:
    """Gamma variate (peak 8 s after arrival) plus a slow recirculation plateau (mM)."""
    u = np.clip(t - ARRIVAL_S, 0.0, None)
    first = (u / 8.0) ** 2 * np.exp(2.0 - u / 4.0)
    late = 1.0 * (1 - np.exp(-u / 10.0)) * np.exp(-u / 200.0)
    return PEAK_MM * first + late


def _parker(t_s: np.ndarray, delay_s: float) -> np.ndarray:
    """Parker et al. MRM 2006 population blood AIF (Table 1), t in minutes, 0 before the
    delay."""
    t = (t_s - delay_s) / 60.0
    g1 = 0.809 / (0.0563 * np.sqrt(2 * np.pi)) * np.exp(-((t - 0.17046) ** 2)
                                                         / (2 * 0.0563 ** 2))
    g2 = 0.330 / (0.132 * np.sqrt(2 * np.pi)) * np.exp(-((t - 0.365) ** 2) / (2 * 0.132 ** 2))
    sig = 1.050 * np.exp(-0.1685 * t) / (1 + np.exp(-38.078 * (t - 0.483)))
    return np.where(t_s >= delay_s, g1 + g2 + sig, 0.0)


@cache
def _session(n_t: int = 30, dt: float = 5.0, seed: int = 7) -> Session:
    t = np.arange(n_t) * dt
    cb = _blood(t)
    tissue = 0.3 * (1 - np.exp(-np.clip(t - ARRIVAL_S - 5.0, 0.0, None) / 60.0))
    blood = np.zeros(SHAPE, dtype=bool)
    blood[BLOOD] = True
    s_blood = _spgr(1000.0, 1 / T10_BLOOD + R1 * cb, FA)
    s_tissue = _spgr(800.0, 1 / T10_TISSUE + R1 * tissue, FA)
    sig = np.where(blood[..., None], s_blood, s_tissue)
    rng = np.random.default_rng(seed)
    sig = sig + 0.002 * s_blood[0] * rng.standard_normal(sig.shape)
    return Session(signal=sig, t_s=t, cb_true=cb)


def _config(**changes: Any) -> dict[str, Any]:
    """The ``aif`` configuration section (values written out here, not read from the
    repository's defaults)."""
    cfg: dict[str, Any] = {
        "mode": "auto", "population": "parker", "fallback": "parker",
        "on_qc_failure": "fallback", "blood_t10_s": "literature",
        "mask_column": "aorta_roi", "anterior_prior": False, "delay": "fit",
        "delay_phases": 0,
        "selection": {"min_cnr": 10.0, "max_ttp_s": 30.0, "min_washout": 0.2,
                      "n_reference": 10, "peak_fraction": 0.4, "erode": 1,
                      "re_fraction": 0.6, "shape_tolerance": 0.15, "max_voxels": 2000},
        "qc": {"min_voxels": 5, "peak_blood_range_mM": [1.0, 15.0],
               "max_noise_ratio": 0.05, "max_baseline_drift": 0.10, "max_ttp_s": 30.0,
               "max_fwhm_s": 30.0, "area_60s_range_mM_s": [15.0, 600.0],
               "min_washout": 0.3},
    }
    cfg = copy.deepcopy(cfg)
    for key, val in changes.items():
        if key == "qc":
            cfg["qc"].update(val)
        else:
            cfg[key] = val
    return cfg


def _select(cfg: dict[str, Any], session: Session | None = None,
            **kw: Any) -> AIFChoice:
    s = session or _session()
    args: dict[str, Any] = {"tr_s": TR, "flip_angle_deg": FA, "r1_per_mM_per_s": R1,
                            "n_baseline": NB, "hematocrit": HCT, "field_strength_t": 3.0}
    args.update(kw)
    return AIFPolicy.from_config(cfg).select(s.signal, s.t_s, **args)


#: QC ranges the synthetic blood curve (peak 6 mM) cannot meet.
FAILING_QC = {"peak_blood_range_mM": [1.0, 3.0]}


def test_generator_shares_no_code_with_dce() -> None:
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in {"_spgr", "_blood", "_parker",
                                                                "_session"}:
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert not names & {"AIFPolicy", "extract_aif", "dce"}, node.name


def test_automatic_aif_passes_qc_and_recovers_the_blood_curve() -> None:
    s = _session()
    choice = _select(_config())
    res, qc = choice.result, choice.qc
    assert res.qc.passed and qc["passed"] is True and qc["source"] == "aorta", qc["reason"]
    assert qc["fallback_used"] is False and qc["mode"] == "auto" and qc["delay_mode"] == "fit"
    assert res.cb_mM.max() == pytest.approx(s.cb_true.max(), rel=0.05)
    post = s.t_s >= ARRIVAL_S
    assert np.sqrt(np.mean((res.cb_mM[post] - s.cb_true[post]) ** 2)) < 0.05 * PEAK_MM
    np.testing.assert_allclose(res.cp_mM, res.cb_mM / (1 - HCT))
    # every voxel used is blood, and the voxel mask says which
    vox = res.voxel_mask(SHAPE)
    assert vox.dtype == np.uint8 and vox.sum() == qc["n_voxels"] >= 5
    blood = np.zeros(SHAPE, dtype=bool)
    blood[BLOOD] = True
    assert blood[vox == 1].all()
    assert res.peak_phase() == int(np.argmax(s.cb_true))
    # the QC figure's phase from the written table (rule roi) is the same
    assert aif_qc_phase(res.measured_cb_mM, qc["n_baseline"]) == res.peak_phase()
    assert qc["blood_t10_s"] == T10_BLOOD  # literature value at 3 T
    assert choice.blood_t10_source == "literature at 3 T, Zhang et al. MRM 2013"
    assert qc["n_baseline"] == NB and qc["hematocrit"] == HCT
    assert qc["used_peak_blood_mM"] == pytest.approx(
        float(res.cb_mM.max() - res.cb_mM[:NB].mean()))


def test_failed_qc_falls_back_with_a_warning_naming_the_checks(
        caplog: pytest.LogCaptureFixture) -> None:
    s = _session()
    with caplog.at_level(logging.WARNING, logger="dce.aif_auto"):
        choice = _select(_config(qc=FAILING_QC))
    res, qc = choice.result, choice.qc
    assert not res.qc.passed and qc["passed"] is False
    assert "peak" in res.qc.reason
    assert qc["fallback_used"] is True and qc["source"] == "parker"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert warned[0].startswith(f"AIF QC failed ({res.qc.reason})")
    assert "population AIF parker" in warned[0]
    # the returned curve is Parker's (this file's formula) at the recorded delay, which puts
    # its 10 % crossing at the detected arrival; the measured curve is kept
    np.testing.assert_allclose(res.cb_mM, _parker(s.t_s, qc["fallback_delay_s"]),
                               rtol=1e-6, atol=1e-9)
    t_fine = np.arange(0.0, 60.0, 0.01)
    parker = _parker(t_fine, 0.0)
    offset = t_fine[np.argmax(parker >= 0.1 * parker.max())]
    assert qc["fallback_delay_s"] + offset == pytest.approx(qc["arrival_s"], abs=0.02)
    assert abs(qc["arrival_s"] - ARRIVAL_S) <= 5.0
    assert np.nanmax(res.measured_cb_mM) == pytest.approx(PEAK_MM, rel=0.05)


def test_failed_qc_without_fallback_keeps_the_measured_curve(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dce.aif_auto"):
        choice = _select(_config(qc=FAILING_QC, fallback="none"))
    assert choice.qc["source"] == "aorta" and choice.qc["fallback_used"] is False
    np.testing.assert_array_equal(choice.result.cb_mM, choice.result.measured_cb_mM)
    assert any("aif.fallback is none: using the measured curve" in r.getMessage()
               for r in caplog.records)


def test_failed_qc_with_on_qc_failure_error_raises() -> None:
    with pytest.raises(ValueError, match=r"automatic AIF failed QC \(.*peak.*\) and "
                                         r"aif.on_qc_failure is error"):
        _select(_config(qc=FAILING_QC, on_qc_failure="error"))


def test_population_mode_aligns_the_population_curve_to_the_arrival() -> None:
    s = _session()
    choice = _select(_config(mode="population", population="parker",
                             on_qc_failure="error"))
    qc, res = choice.qc, choice.result
    assert qc["source"] == "parker" and qc["mode"] == "population"
    assert qc["population_arrival_source"] == "measured"
    assert abs(qc["population_arrival_s"] - ARRIVAL_S) <= 5.0
    np.testing.assert_allclose(res.cb_mM, _parker(s.t_s, qc["population_delay_s"]),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.cp_mM, res.cb_mM / (1 - HCT))
    # population mode never falls back nor raises on the measured curve's QC
    failing = _select(_config(mode="population", qc=FAILING_QC, on_qc_failure="error"))
    assert failing.qc["source"] == "parker" and failing.qc["passed"] is False


def test_delay_by_phases_shifts_the_returned_aif() -> None:
    base = _select(_config()).result
    choice = _select(_config(delay="phases", delay_phases=2))
    np.testing.assert_array_equal(choice.result.cb_mM[2:], base.cb_mM[:-2])
    assert choice.qc["delay_phases"] == 2 and choice.qc["delay_mode"] == "phases"
    np.testing.assert_array_equal(choice.result.measured_cb_mM, base.measured_cb_mM)


def test_fixed_blood_t10_number_is_used_and_recorded() -> None:
    s = _session()
    choice = _select(_config(blood_t10_s=1.2), field_strength_t=None)
    assert choice.qc["blood_t10_s"] == 1.2
    assert choice.blood_t10_source == "configured (aif.blood_t10_s)"
    # a shorter T10 than the truth gives a different (lower) blood curve
    assert choice.result.cb_mM.max() < 0.95 * s.cb_true.max()


def test_vfa_blood_t10_uses_the_map_mean_over_the_aif_voxels() -> None:
    s = _session()
    t10 = np.full(SHAPE, T10_TISSUE)
    t10[BLOOD] = T10_BLOOD
    choice = _select(_config(blood_t10_s="vfa"), vfa_t10_s=t10, field_strength_t=None)
    assert choice.qc["blood_t10_s"] == pytest.approx(T10_BLOOD)
    assert choice.blood_t10_source == "VFA T10 map, mean over the AIF voxels"
    assert choice.result.cb_mM.max() == pytest.approx(s.cb_true.max(), rel=0.05)
    with pytest.raises(ValueError, match="no VFA T10 map"):
        _select(_config(blood_t10_s="vfa"), vfa_t10_s=None)


def test_literature_blood_t10_needs_a_field_strength() -> None:
    with pytest.raises(ValueError, match="no field strength"):
        _select(_config(), field_strength_t=None)
    assert _select(_config(), field_strength_t=1.5).qc["blood_t10_s"] == 1.48


def test_blank_baseline_is_refused() -> None:
    s = _session()
    blank = Session(signal=np.zeros_like(s.signal), t_s=s.t_s, cb_true=s.cb_true)
    with pytest.raises(ValueError, match=r"only 0 of 576 voxels have a positive baseline"):
        _select(_config(), session=blank)


def test_anterior_prior_from_the_affine() -> None:
    assert anterior_axis_of(np.diag([1.0, 1.0, 1.0, 1.0])) == (1, 1)
    sag = np.array([[0, 0, -1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], float)
    assert anterior_axis_of(sag) == (0, -1)
    # a spine mask posterior (high index along axis 0) leaves the blood block anterior
    spine = np.zeros(SHAPE, dtype=bool)
    spine[9:, :, :] = True
    with_prior = _select(_config(anterior_prior=True), spine_mask=spine, affine=sag)
    without = _select(_config())
    np.testing.assert_array_equal(with_prior.result.voxel_indices,
                                  without.result.voxel_indices)
    assert with_prior.qc["prior_used"] is True and without.qc["prior_used"] is False


@pytest.mark.parametrize(("key", "value"), [("mode", "fixed"), ("fallback", "tofts"),
                                            ("on_qc_failure", "ignore"),
                                            ("blood_t10_s", "blood"), ("delay", "later"),
                                            ("delay_phases", -1)])
def test_invalid_settings_are_refused(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"aif.{key}"):
        AIFPolicy.from_config(_config(**{key: value}))


def test_aif_qc_phase_peak_or_after_the_baseline() -> None:
    """The AIF QC figure's phase: the measured curve's peak (NaN ignored), or the fourth
    phase after the baseline, at most the last phase, when no curve was measured."""
    assert aif_qc_phase([0.0, np.nan, 1.0, 3.0, 2.0], 1) == 3
    assert aif_qc_phase(np.full(10, np.nan), 4) == 7
    assert aif_qc_phase(np.full(6, np.nan), 4) == 5
