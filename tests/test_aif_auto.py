"""Tests for dce.aif_auto: signal-domain aortic AIF, physiological QC, fallback, delay.

The truth comes from this file's own forward model, which shares no code with dce
(:func:`_volume`): a sagittal block with an aortic cylinder (partial volume by 3x3x3
sub-voxel supersampling), enhancing muscle, marrow, a strongly enhancing lesion with a
high plasma volume, non-enhancing fat, a smooth receive bias and Rician noise whose SD is
set by the requested *baseline blood SNR*. The blood curve is a gamma-variate first pass
with recirculation and a slow washout (not a population AIF known to dce); tissue
follows the extended Tofts model by a fine-grid recursive convolution; the signal is the
SPGR equation written here. Truth: the blood curve at the acquisition times.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dce.aif import georgiou_aif, parker_aif
from dce.aif_auto import (
    BLOOD_T10_S,
    AIFCriteria,
    AIFQCThresholds,
    AortaAIF,
    anterior_region,
    blood_t10_literature,
    delay_by_phases,
    extract_aif,
)

HCT = 0.45
TR = 0.0045
R1 = 4.5
T10 = {"blood": 1.65, "muscle": 1.41, "marrow": 0.65, "lesion": 1.2, "fat": 0.37}
M0 = {"blood": 0.95, "muscle": 0.75, "marrow": 0.90, "lesion": 0.85, "fat": 1.0}
# Ktrans /min, ve, vp
KIN = {"blood": (0.0, 0.2, 1.0), "muscle": (0.05, 0.10, 0.015),
       "marrow": (0.01, 0.08, 0.005), "lesion": (0.25, 0.30, 0.10), "fat": (0.0, 0.2, 0.0)}
CLASSES = tuple(T10)


# --------------------------------------------------------------------------- own forward model


def _gamma(t: np.ndarray, t0: float, tmax: float, alpha: float) -> np.ndarray:
    """Gamma variate with peak 1 at ``t0 + tmax``."""
    x = np.clip((t - t0) / tmax, 0.0, None)
    return np.where(t > t0, x ** alpha * np.exp(alpha * (1.0 - x)), 0.0)


def _blood(t: np.ndarray, peak: float, t0: float) -> np.ndarray:
    """Whole-blood curve (mM): first pass, recirculation, slow washout."""
    first = _gamma(t, t0, 5.0, 3.0)
    recirc = 0.3 * _gamma(t, t0 + 17.0, 8.0, 2.5)
    tau = np.clip(t - t0, 0.0, None)
    late = 0.2 * (1.0 - np.exp(-tau / 6.0)) * np.exp(-tau / 400.0)
    shape = first + recirc + late
    return peak * shape / shape.max()


def _tofts(t: np.ndarray, cp: np.ndarray, ktrans: float, ve: float, vp: float) -> np.ndarray:
    """Extended Tofts on a fine uniform grid: exact recursion for a piecewise-linear input."""
    if ktrans == 0:
        return vp * cp
    kep = ktrans / ve / 60.0
    dt = t[1] - t[0]
    e = math.exp(-kep * dt)
    # integral over one step h of the linear cp times exp(-kep (t_{n+1} - tau))
    w2 = 1.0 / kep - (1.0 - e) / (kep * kep * dt)  # weight of cp[n+1]
    w1 = (1.0 - e) / kep - w2  # weight of cp[n]
    conv = np.zeros_like(cp)
    for n in range(cp.size - 1):
        conv[n + 1] = conv[n] * e + w1 * cp[n] + w2 * cp[n + 1]
    return vp * cp + ktrans / 60.0 * conv


def _spgr(m0: np.ndarray | float, r1: np.ndarray, fa_deg: float) -> np.ndarray:
    a = math.radians(fa_deg)
    e1 = np.exp(-TR * r1)
    return m0 * math.sin(a) * (1.0 - e1) / (1.0 - math.cos(a) * e1)


@dataclass(frozen=True)
class Volume:
    signal: np.ndarray  # (ni, nj, nk, nt)
    t_s: np.ndarray
    cb_true: np.ndarray  # blood at the acquisition times (mM)
    blood_fraction: np.ndarray  # (ni, nj, nk)
    lesion_fraction: np.ndarray
    body: np.ndarray  # bool: vertebral body (marrow or lesion) by voxel centre
    arrival_s: float
    sigma: float


@cache
def _volume(snr: float, fa: float, seed: int, peak_mM: float = 5.0,
            arrival_s: float = 23.3, n_t: int = 40, dt: float = 5.0) -> Volume:
    """The test's own synthetic sagittal block (module notes)."""
    ni, nj, nk, sub = 40, 16, 9, 3
    vox = np.array([1.8, 3.6, 5.0])
    # sub-voxel centres (mm): i anterior -> posterior, j superior -> inferior, k left -> right
    axes = [(np.arange(n * sub) + 0.5) * v / sub for n, v in zip((ni, nj, nk), vox,
                                                                    strict=True)]
    u, v, w = np.meshgrid(*axes, indexing="ij")
    cls = np.full(u.shape, CLASSES.index("muscle"), dtype=np.int8)
    cls[u < 5.0] = CLASSES.index("fat")
    body = u >= 40.0
    cls[body] = CLASSES.index("marrow")
    les = body & ((u - 56.0) ** 2 / 64.0 + (v - 28.0) ** 2 / 100.0 + (w - 22.5) ** 2 / 81.0 <= 1)
    cls[les] = CLASSES.index("lesion")
    aorta = (u - 24.0) ** 2 + (w - 22.5) ** 2 <= 11.0 ** 2
    cls[aorta] = CLASSES.index("blood")
    frac = np.stack([(cls == c).reshape(ni, sub, nj, sub, nk, sub).mean(axis=(1, 3, 5))
                     for c in range(len(CLASSES))], axis=-1)  # (ni, nj, nk, n_classes)

    t_fine = np.arange(0.0, n_t * dt + 1e-9, 0.05)
    cb_fine = _blood(t_fine, peak_mM, arrival_s - 1.5)
    cp_fine = cb_fine / (1 - HCT)
    t = np.arange(n_t) * dt
    curves = []
    for name in CLASSES:
        kt, ve, vp = KIN[name]
        c = cb_fine if name == "blood" else _tofts(t_fine, cp_fine, kt, ve, vp)
        r1 = 1.0 / T10[name] + R1 * np.interp(t, t_fine, c)
        curves.append(_spgr(M0[name], r1, fa))
    clean = frac @ np.stack(curves)  # (ni, nj, nk, nt)
    ii = (np.arange(ni) + 0.5) / ni
    kk = (np.arange(nk) + 0.5) / nk
    bias = (0.75 + 0.5 * ii)[:, None, None] * (1 + 0.1 * np.sin(3 * kk))[None, None, :]
    scale = 1.0e4
    clean = clean * bias[..., None] * scale
    s0_blood = float(_spgr(M0["blood"], np.array(1.0 / T10["blood"]), fa)) * scale
    sigma = s0_blood / snr  # baseline blood SNR at unit coil gain
    rng = np.random.default_rng(seed)
    noisy = np.hypot(clean + sigma * rng.standard_normal(clean.shape),
                     sigma * rng.standard_normal(clean.shape))
    centre_body = (np.arange(ni) + 0.5) * vox[0] >= 40.0
    return Volume(signal=noisy, t_s=t, cb_true=np.interp(t, t_fine, cb_fine),
                  blood_fraction=frac[..., CLASSES.index("blood")],
                  lesion_fraction=frac[..., CLASSES.index("lesion")],
                  body=np.broadcast_to(centre_body[:, None, None], (ni, nj, nk)).copy(),
                  arrival_s=arrival_s, sigma=sigma)


def _kw(fa: float) -> dict[str, Any]:
    return {"tr_s": TR, "flip_angle_deg": fa, "r1_per_mM_per_s": R1, "n_baseline": 4,
            "hematocrit": HCT, "blood_t10_s": T10["blood"]}


def test_own_forward_model_convolution_is_exact() -> None:
    """The test's own Tofts recursion against the closed form for a step input."""
    t = np.arange(0.0, 300.0, 0.05)
    cp = np.ones_like(t)
    ct = _tofts(t, cp, 0.2, 0.25, 0.05)
    kep = 0.2 / 0.25 / 60
    exact = 0.05 + 0.2 / 60 / kep * (1 - np.exp(-kep * t))
    np.testing.assert_allclose(ct[1:], exact[1:], rtol=1e-6)
    # a ramp input: int_0^t tau exp(-kep (t - tau)) dtau = t / kep - (1 - exp(-kep t)) / kep^2
    ct = _tofts(t, t.copy(), 0.2, 0.25, 0.0)
    exact = 0.2 / 60 * (t / kep - (1 - np.exp(-kep * t)) / kep ** 2)
    np.testing.assert_allclose(ct[1:], exact[1:], rtol=1e-6)


def test_test_generator_shares_no_code_with_dce() -> None:
    """The forward model above uses only numpy/math (dce is imported for the code under
    test, never inside the generator functions)."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    gen = {"_gamma", "_blood", "_tofts", "_spgr", "_volume"}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in gen:
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert not names & {"extract_aif", "AortaAIF", "parker_aif", "georgiou_aif"}


# --------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("snr", [5.0, 10.0, 20.0])
@pytest.mark.parametrize("fa", [10.0, 15.0, 20.0, 25.0])
def test_peak_within_10_percent(snr: float, fa: float) -> None:
    vol = _volume(snr, fa, seed=int(snr * 10 + fa))
    res = extract_aif(vol.signal, vol.t_s, **_kw(fa))
    q = res.qc
    assert q.passed, q.reason
    true_peak = float(vol.cb_true.max())
    assert q.peak_blood_mM == pytest.approx(true_peak, rel=0.10)
    # the whole curve, not only the peak: RMS error after arrival within 10 % of the peak
    post = vol.t_s >= vol.arrival_s
    rms = float(np.sqrt(np.mean((res.cb_mM[post] - vol.cb_true[post]) ** 2)))
    assert rms <= 0.10 * true_peak
    assert abs(q.arrival_s - vol.arrival_s) <= 5.0
    # the voxels used are (mostly) blood: mean blood fraction >= 0.9, none below 0.5
    bf = vol.blood_fraction[tuple(res.voxel_indices.T)]
    assert bf.mean() >= 0.9 and bf.min() >= 0.5
    assert q.n_voxels >= 20
    assert q.blood_t10_s == T10["blood"] and q.averaging == "signal"
    # the estimated blood SNR is the requested one (bias 0.75..1.25 across the block)
    assert 0.6 * snr <= q.voxel_baseline_snr_median <= 1.4 * snr


def test_strong_lesion_with_high_vp_is_not_taken_for_blood() -> None:
    vol = _volume(10.0, 20.0, seed=3)
    res = extract_aif(vol.signal, vol.t_s, **_kw(20.0))
    assert np.all(vol.lesion_fraction[tuple(res.voxel_indices.T)] == 0)


def test_anterior_prior_from_spine_mask() -> None:
    vol = _volume(10.0, 20.0, seed=4)
    res = extract_aif(vol.signal, vol.t_s, spine_mask=vol.body, anterior_axis=0,
                      anterior_direction=-1, **_kw(20.0))
    assert res.qc.passed and res.qc.prior_used and res.qc.prior_note == ""
    assert np.all(~vol.body[tuple(res.voxel_indices.T)])


def test_prior_ignored_when_it_holds_no_artery() -> None:
    vol = _volume(10.0, 20.0, seed=4)
    res = extract_aif(vol.signal, vol.t_s, prior_mask=vol.body, **_kw(20.0))
    assert res.qc.passed and not res.qc.prior_used
    assert "prior ignored" in res.qc.prior_note


def test_aorta_mask_restricts_the_voxels() -> None:
    vol = _volume(10.0, 20.0, seed=5)
    half = vol.blood_fraction > 0
    half[:, 8:, :] = False
    res = extract_aif(vol.signal, vol.t_s, mask=half, **_kw(20.0))
    assert res.qc.passed
    assert np.all(res.voxel_indices[:, 1] < 8)


def test_wrong_blood_t10_changes_the_peak_and_is_recorded() -> None:
    vol = _volume(10.0, 20.0, seed=6)
    ok = extract_aif(vol.signal, vol.t_s, **_kw(20.0))
    kw = {**_kw(20.0), "blood_t10_s": 1.2}
    short = extract_aif(vol.signal, vol.t_s, blood_t10_source="test value", **kw)
    # the peak is sensitive to the assumed blood T10 (near the SPGR limit)
    assert abs(short.qc.peak_blood_mM / ok.qc.peak_blood_mM - 1) > 0.2
    assert short.qc.blood_t10_s == 1.2 and short.qc.blood_t10_source == "test value"
    # a T10 map: its mean over the chosen voxels is used
    t10_map = np.full(vol.signal.shape[:3], T10["blood"])
    by_map = extract_aif(vol.signal, vol.t_s, **{**_kw(20.0), "blood_t10_s": t10_map})
    assert by_map.qc.peak_blood_mM == pytest.approx(ok.qc.peak_blood_mM, rel=1e-9)
    assert "map" in by_map.qc.blood_t10_source
    with pytest.raises(ValueError, match="looks like ms"):
        extract_aif(vol.signal, vol.t_s, **{**_kw(20.0), "blood_t10_s": 1650.0})


def test_literature_blood_t10() -> None:
    assert blood_t10_literature(3.0) == BLOOD_T10_S[3.0] == 1.65
    assert blood_t10_literature(1.494) == BLOOD_T10_S[1.5] == 1.48
    with pytest.raises(ValueError, match="set the blood T10"):
        blood_t10_literature(7.0)


def test_deterministic_and_json_qc() -> None:
    vol = _volume(10.0, 15.0, seed=7)
    a = extract_aif(vol.signal, vol.t_s, **_kw(15.0))
    b = extract_aif(vol.signal.astype(np.float32), vol.t_s, **_kw(15.0))
    c = extract_aif(vol.signal, vol.t_s, **_kw(15.0))
    np.testing.assert_array_equal(a.cb_mM, c.cb_mM)
    np.testing.assert_allclose(a.cb_mM, b.cb_mM, rtol=1e-4, atol=1e-4)
    d = json.loads(a.qc.to_json())
    for key in ("peak_blood_mM", "fwhm_s", "area_60s_mM_s", "baseline_drift", "blood_t10_s",
                "n_after_peak", "n_after_re", "n_after_shape", "saturation_ratio"):
        assert key in d
    assert d["peak_enhancement_ratio"] < d["saturation_ratio"]
    assert d["criteria"]["peak_fraction"] == AIFCriteria().peak_fraction


# --------------------------------------------------------------------------- QC


def test_implausible_30_mM_peak_fails_qc() -> None:
    vol = _volume(20.0, 20.0, seed=8, peak_mM=30.0)
    res = extract_aif(vol.signal, vol.t_s, fallback="parker", **_kw(20.0))
    q = res.qc
    assert q.peak_blood_mM == pytest.approx(float(vol.cb_true.max()), rel=0.15)
    assert not q.passed and "outside the plausible blood range" in q.reason
    assert q.fallback_used and q.source == "parker"
    # a wider range (e.g. a double dose) lets the same curve pass
    res2 = extract_aif(vol.signal, vol.t_s, thresholds=AIFQCThresholds(
        peak_blood_range_mM=(1.0, 40.0), area_60s_range_mM_s=(15.0, 2000.0)), **_kw(20.0))
    assert res2.passed, res2.qc.reason


def test_wrong_flip_angle_saturates_and_fails() -> None:
    vol = _volume(10.0, 25.0, seed=9, peak_mM=8.0)
    # told 10 deg for a 25 deg scan: the ratio S/S0 exceeds the 10 deg SPGR limit
    res = extract_aif(vol.signal, vol.t_s, **_kw(10.0))
    assert not res.passed
    assert "SPGR limit" in res.qc.reason or "plausible blood range" in res.qc.reason


def _rows(n_art: int, t: np.ndarray, *, peak: float = 5.0, arrival: float = 23.0,
          noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """(n, nt) signal rows: 40 tissue rows then ``n_art`` blood rows (own model)."""
    rng = np.random.default_rng(seed)
    cb = np.interp(t, np.arange(0, t[-1] + 1, 0.05),
                   _blood(np.arange(0, t[-1] + 1, 0.05), peak, arrival - 1.5))
    tissue = 0.4 * np.clip(t - arrival, 0, None) / t[-1]
    art = _spgr(1000.0, 1 / 1.65 + R1 * cb, 20.0)
    tis = _spgr(1000.0, 1 / 1.2 + R1 * tissue, 20.0)
    rows = np.vstack([np.tile(tis, (40, 1)), np.tile(art, (n_art, 1))])
    return rows + rng.normal(0.0, noise, rows.shape)


def test_qc_thresholds_configurable_and_reasons() -> None:
    t = np.arange(30) * 5.0
    kw = _kw(20.0)
    res = extract_aif(_rows(3, t), t, **kw)
    assert not res.passed and "only 3 voxel(s)" in res.qc.reason
    assert extract_aif(_rows(3, t), t, thresholds=AIFQCThresholds(min_voxels=3), **kw).passed
    res = extract_aif(_rows(12, t, noise=1.0), t,
                      thresholds=AIFQCThresholds(max_noise_ratio=1e-6), **kw)
    assert "max_noise_ratio" in res.qc.reason
    res = extract_aif(_rows(12, t), t, thresholds=AIFQCThresholds(max_fwhm_s=2.0), **kw)
    assert "FWHM" in res.qc.reason
    res = extract_aif(_rows(12, t), t, thresholds=AIFQCThresholds(
        area_60s_range_mM_s=(500.0, 600.0)), **kw)
    assert "area over 60 s" in res.qc.reason
    # a baseline window that contains the bolus arrival fails
    res = extract_aif(_rows(12, t, arrival=19.0), t, **{**kw, "n_baseline": 5})
    assert not res.passed
    assert "within the 5 baseline phases" in res.qc.reason or "no voxel" in res.qc.reason


def test_baseline_drift_fails() -> None:
    t = np.arange(30) * 5.0
    rows = _rows(12, t, arrival=33.0)
    rows[:, :3] *= 0.8  # the first baseline phases much darker (a steady-state ramp)
    res = extract_aif(rows, t, **{**_kw(20.0), "n_baseline": 6})
    assert not res.passed and "baseline signal drift 0.2" in res.qc.reason
    assert res.qc.baseline_drift == pytest.approx(0.2 / 0.9, rel=0.05)


@pytest.mark.parametrize(("name", "func"), [("parker", parker_aif), ("georgiou", georgiou_aif)])
def test_fallback_when_the_aorta_is_removed(name: str, func: Any) -> None:
    vol = _volume(10.0, 20.0, seed=10)
    no_aorta = vol.blood_fraction == 0
    res = extract_aif(vol.signal, vol.t_s, mask=no_aorta, fallback=name, **_kw(20.0))
    q = res.qc
    assert not q.passed and q.fallback_used and q.source == name
    assert q.fallback_reason == f"QC failed: {q.reason}"
    assert q.fallback_delay_s is not None
    assert res.detected_arrival()[1] == q.fallback_arrival_source
    np.testing.assert_allclose(res.cb_mM, func(vol.t_s, delay_s=q.fallback_delay_s))
    np.testing.assert_allclose(res.cp_mM, res.cb_mM / (1 - HCT))
    # the population curve's arrival (10 % of its peak) is near the data's arrival
    fine = np.arange(0.0, vol.t_s[-1], 0.05)
    cb_fine = func(fine, delay_s=q.fallback_delay_s)
    t10 = fine[np.argmax(cb_fine > 0.1 * cb_fine.max())]
    assert abs(t10 - vol.arrival_s) <= 10.0


def test_failed_qc_without_fallback_returns_measured_curve() -> None:
    vol = _volume(10.0, 20.0, seed=10)
    res = extract_aif(vol.signal, vol.t_s, mask=vol.blood_fraction == 0, **_kw(20.0))
    assert not res.passed and res.qc.source == "aorta" and not res.qc.fallback_used
    np.testing.assert_array_equal(res.cb_mM, res.measured_cb_mM)


def test_no_enhancement_at_all() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(20) * 5.0
    sig = 100.0 + rng.normal(0.0, 1.0, (30, 20))
    res = extract_aif(sig, t, fallback="parker", **_kw(20.0))
    q = res.qc
    assert not q.passed and "no voxel passed" in q.reason
    assert q.n_voxels == 0 and res.voxel_indices.shape == (0, 1)
    assert q.fallback_arrival_source == "end_of_baseline" and q.fallback_used
    assert res.detected_arrival() == (float(t[4]), "end_of_baseline")
    assert np.all(np.isnan(res.measured_cb_mM)) and np.all(np.isfinite(res.cb_mM))
    d = json.loads(q.to_json())  # NaN metrics serialise as null
    assert d["peak_blood_mM"] is None and d["voxel_indices"] == []


def test_synthetic_rows_select_arterial_rows() -> None:
    t = np.arange(30) * 5.0
    res = AortaAIF().fit(_rows(12, t, noise=2.0), t, **_kw(20.0))
    assert res.qc.passed, res.qc.reason
    assert np.all(res.voxel_indices[:, 0] >= 40)


# --------------------------------------------------------------------------- prior helper


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


def test_delay_by_phases_errors() -> None:
    t = np.arange(5) * 5.0
    cp = np.arange(5.0)
    with pytest.raises(ValueError, match="mismatched lengths"):
        delay_by_phases(t, cp[:4], 1)
    with pytest.raises(ValueError, match=r"n: delay must be in \[0, 4\]"):
        delay_by_phases(t, cp, 5)
    with pytest.raises(ValueError, match="whole number"):
        delay_by_phases(t, cp, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fill"):
        delay_by_phases(t, cp, 1, fill="zero")  # type: ignore[arg-type]


def test_result_delayed() -> None:
    t = np.arange(30) * 5.0
    res = extract_aif(_rows(12, t), t, **_kw(20.0))
    d2 = res.delayed(2)
    np.testing.assert_array_equal(d2.cp_mM, delay_by_phases(t, res.cp_mM, 2))
    np.testing.assert_array_equal(d2.measured_cb_mM, res.measured_cb_mM)
    assert d2.qc.delay_phases == 2 and d2.delayed(1).qc.delay_phases == 3


# --------------------------------------------------------------------------- bad input


def test_bad_input_errors() -> None:
    t = np.arange(30) * 5.0
    rows = _rows(12, t)
    kw = _kw(20.0)
    with pytest.raises(ValueError, match="mismatched lengths"):
        extract_aif(rows, t[:-1], **kw)
    t_nan = t.copy()
    t_nan[3] = np.nan
    with pytest.raises(ValueError, match="t_s: 1 NaN"):
        extract_aif(rows, t_nan, **kw)
    with pytest.raises(ValueError, match="strictly increasing"):
        extract_aif(rows, t[::-1], **kw)
    with pytest.raises(ValueError, match="mask: empty"):
        extract_aif(rows, t, mask=np.zeros(rows.shape[0], dtype=bool), **kw)
    with pytest.raises(ValueError, match="prior_mask: empty"):
        extract_aif(rows, t, prior_mask=np.zeros(rows.shape[0], dtype=bool), **kw)
    with pytest.raises(ValueError, match="n_baseline"):
        extract_aif(rows, t, **{**kw, "n_baseline": 1})
    with pytest.raises(ValueError, match="tr_s"):
        extract_aif(rows, t, **{**kw, "tr_s": 4.5})
    with pytest.raises(ValueError, match="fallback"):
        AortaAIF(fallback="nope")
    with pytest.raises(ValueError, match="peak_fraction"):
        AortaAIF(AIFCriteria(peak_fraction=1.5))
    with pytest.raises(ValueError, match="peak_blood_range_mM"):
        AortaAIF(thresholds=AIFQCThresholds(peak_blood_range_mM=(5.0, 1.0)))


@pytest.mark.parametrize("n_t", [4, 5, 40, 61])
def test_robust_noise_kernel_equals_numpy(n_t: int) -> None:
    """The AIF features' noise term max(SD, c median|diff|) from the compiled kernel is
    numpy's number exactly, for the rows asked for (others left alone); ties and integer
    steps as from quantised signals, and SDs on either side of the robust term."""
    from dce.aif_auto import _robust_noise

    rng = np.random.default_rng(n_t)
    n = 500
    e = rng.normal(size=(n, n_t)) * rng.uniform(0.1, 10.0, (n, 1))
    e[::3] = np.round(e[::3])                 # ties
    sd = rng.uniform(0.0, 3.0, n)
    need = rng.random(n) < 0.8
    c = 1.4826 / np.sqrt(2.0)
    noise = np.full(n, -1.0)
    _robust_noise(e, sd, need, c, noise, 0, n)
    expected = np.maximum(sd, c * np.median(np.abs(np.diff(e, axis=1)), axis=1))
    assert np.array_equal(noise[need], expected[need])
    assert np.all(noise[~need] == -1.0)
