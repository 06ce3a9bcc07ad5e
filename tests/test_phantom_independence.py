"""The demo phantom (dce.phantom) is independent of the code under test and realistic.

Checked against analytic truth only, never against dce's fitter:

* import independence: dce/phantom.py imports nothing from ``dce`` (syntax tree), and the
  truth writers (dce/io/dicom_write.py, workflow/scripts/demo_cohort.py) import no
  fitting code;
* the forward model: the recursive exponential integrator against closed-form extended
  Tofts curves (constant and gamma-variate input), the SPGR equation;
* the AIF family: peak, FWHM, arrival (not phase-aligned), recirculation and washout in
  the documented ranges, over the cohort's sessions;
* noise: the blood SNR measured on the aorta's baseline vs the requested one;
* partial volume at the aortic wall; receive field and gain; VFA sharing M0/T10;
* the truth definition: a voxel's truth is the volume average of its contents (checked
  against a 3x finer rendering without supersampling, block-averaged);
* the outcome design: true AUC of dVp for recurrence in [0.80, 0.92] on the demo cohort
  (config/config.yaml), both outcomes in the test cohort (.test/config/config.yaml).
"""

from __future__ import annotations

import ast
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dce import phantom as ph

REPO = Path(__file__).resolve().parents[1]
SMALL = ph.Acquisition(matrix=(44, 48, 6), voxel_mm=(4.0, 3.6, 5.0), n_phases=24)
FITTING = ("dce.aif", "dce.aif_auto", "dce.models", "dce.signal", "dce.fit", "dce.t1",
           "dce._checks", "dce.concentration", "dce.tofts")


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import statement (level > 0: relative import)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
    return out


def _demo_acquisition(cfg: dict[str, Any]) -> ph.Acquisition:
    """The acquisition workflow/scripts/demo_cohort.py builds from a demo config block."""
    acq = ph.Acquisition()
    fov = [m * v for m, v in zip(acq.matrix, acq.voxel_mm, strict=True)]
    ni, nj, nk = (int(m) for m in cfg["matrix"])
    vi, vj, vk = (round(f / m, 6) for f, m in zip(fov, (ni, nj, nk), strict=True))
    return replace(acq, matrix=(ni, nj, nk), n_phases=int(cfg["n_phases"]),
                   voxel_mm=(vi, vj, vk))


def _demo_cohort(config: Path) -> ph.Cohort:
    cfg = yaml.safe_load(config.read_text())["demo"]
    return ph.make_cohort(int(cfg["n_patients"]), seed=int(cfg["seed"]),
                          acquisition=_demo_acquisition(cfg))


def _auc_mann_whitney(x_pos: np.ndarray, x_neg: np.ndarray) -> float:
    """P(positive > negative) + 0.5 P(tie)."""
    gt = (x_pos[:, None] > x_neg[None, :]).sum()
    eq = (x_pos[:, None] == x_neg[None, :]).sum()
    return float((gt + 0.5 * eq) / (x_pos.size * x_neg.size))


def _dvp_fu1(c: ph.Cohort) -> pd.DataFrame:
    t = c.truth
    base = t[t["session"] == "pre"][["subject", "lesion", "vp"]]
    fu1 = t[t["session"] == "fu1"].merge(base, on=["subject", "lesion"], suffixes=("", "_pre"))
    kt = t[t["session"] == "pre"][["subject", "lesion", "ktrans_per_min"]]
    fu1 = fu1.merge(kt, on=["subject", "lesion"], suffixes=("", "_pre"))
    fu1["dvp"] = fu1["vp"] / fu1["vp_pre"] - 1.0
    fu1["dkt"] = fu1["ktrans_per_min"] / fu1["ktrans_per_min_pre"] - 1.0
    fu1["recurrence"] = fu1["recurrence"].astype("float64")   # NaN: untreated lesion
    return fu1.merge(c.lesions[["subject", "lesion", "responder_like", "lesion_class"]],
                     on=["subject", "lesion"])


# --------------------------------------------------------------------------- independence


def test_phantom_imports_nothing_from_dce() -> None:
    imports = _imports(REPO / "dce" / "phantom.py")
    assert imports, "no imports parsed"
    bad = [m for m, level in imports if level > 0 or m == "dce" or m.startswith("dce.")]
    assert not bad, f"dce/phantom.py imports from the package under test: {bad}"
    allowed = {"numpy", "pandas", "scipy", "__future__", "collections", "dataclasses",
               "functools", "typing", "math"}
    assert {m.split(".")[0] for m, _ in imports} <= allowed


@pytest.mark.parametrize("rel", ["dce/io/dicom_write.py", "workflow/scripts/demo_cohort.py"])
def test_truth_writers_import_no_fitting_code(rel: str) -> None:
    mods = [m for m, _ in _imports(REPO / rel)]
    bad = [m for m in mods if any(m == f or m.startswith(f + ".") for f in FITTING)]
    assert not bad, f"{rel} imports fitting code: {bad}"


# --------------------------------------------------------------------------- forward model


def test_tofts_integrator_constant_input_closed_form() -> None:
    t_fine = np.arange(0.0, 300.05, 0.1)
    c0 = 2.5
    cp = np.full(t_fine.size, c0)
    t_out = np.array([0.0, 0.05, 3.33, 17.0, 60.0, 123.456, 299.99])
    kt = np.array([0.05, 0.15, 0.4])
    ve = np.array([0.1, 0.3, 0.5])
    vp = np.array([0.02, 0.08, 0.0])
    kep = kt / ve
    got = ph.tofts_fine(t_fine, cp, t_out, kt, kep, vp)
    tt = t_out[None, :] / 60.0
    want = vp[:, None] * c0 + (kt / kep)[:, None] * c0 * (1 - np.exp(-kep[:, None] * tt))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_tofts_integrator_gamma_variate_closed_form() -> None:
    """Cp = A t exp(-t / b): Ct = vp Cp + Ktrans A e^(-k t) (1 - e^(-a t)(1 + a t)) / a^2,
    a = 1/b - k (per second)."""
    amp, b = 1.2, 6.0
    t_fine = np.arange(0.0, 240.05, 0.1)
    cp = amp * t_fine * np.exp(-t_fine / b)
    t_out = np.linspace(0.0, 240.0, 97) + 0.037
    t_out[-1] = 240.0
    kt_min, ve, vp = 0.2, 0.25, 0.05
    k = kt_min / ve / 60.0
    a = 1.0 / b - k
    got = ph.tofts_fine(t_fine, cp, t_out, kt_min, kt_min / ve, vp)[0]
    want = (vp * amp * t_out * np.exp(-t_out / b)
            + kt_min / 60.0 * amp * np.exp(-k * t_out)
            * (1 - np.exp(-a * t_out) * (1 + a * t_out)) / a ** 2)
    assert np.max(np.abs(got - want)) < 0.005 * want.max()
    assert np.max(np.abs(got - want)) < 1e-3


def test_spgr_equation() -> None:
    m0, t1, fa, tr = 1000.0, 1.2, 15.0, 0.004
    e1 = np.exp(-tr / t1)
    a = np.deg2rad(fa)
    want = m0 * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1)
    assert float(ph.spgr(m0, 1 / t1, fa, tr)) == pytest.approx(want, rel=1e-12)
    # contrast raises R1 and the signal
    assert float(ph.spgr(m0, 1 / t1 + 4.5 * 2.0, fa, tr)) > want


# --------------------------------------------------------------------------- AIF family


def test_aif_components_match_their_parameters() -> None:
    spec = ph.AIFSpec(arrival_s=13.7, amplitude_mM=5.0, fwhm_s=9.0, shape=4.0,
                      recirc_fraction=0.0, plateau_mM=0.0)
    t = np.arange(0.0, 200.0, 0.01)
    cb = ph.aif_blood_mM(t, spec)
    assert cb[t <= 13.7].max() == 0.0
    assert cb.max() == pytest.approx(5.0, rel=1e-6)
    above = t[cb >= 2.5]
    assert above[-1] - above[0] == pytest.approx(9.0, abs=0.03)
    # first-pass peak at arrival + shape x b1, b1 = FWHM / W(shape)
    assert t[np.argmax(cb)] - 13.7 > 0.3 * 9.0
    # recirculation: peaks recirc_delay_s after the first pass at recirc_fraction x A
    full = replace(spec, recirc_fraction=0.3, recirc_delay_s=20.0)
    rec = ph.aif_blood_mM(t, full) - cb
    t_peak = t[np.argmax(cb)]
    assert t[np.argmax(rec)] - t_peak == pytest.approx(20.0, abs=0.05)
    assert rec.max() == pytest.approx(1.5, rel=1e-3)
    # washout: level P at the first-pass peak (switch fully on later), decaying with tau
    wash = replace(spec, plateau_mM=1.0, washout_tau_s=300.0)
    w = ph.aif_blood_mM(t, wash) - cb
    late = t > t_peak + 60
    np.testing.assert_allclose(w[late], np.exp(-(t[late] - t_peak) / 300.0), rtol=1e-3)


def test_cohort_aif_family_in_documented_ranges() -> None:
    c = ph.make_cohort(10, seed=0)
    dt = 5.0
    fracs = []
    for spec in c.specs.values():
        aif = ph._true_aif(spec)
        assert np.diff(aif.t_fine_s).max() <= 0.1 + 1e-12
        a = spec.aif
        assert 3.0 <= aif.peak_mM <= 9.0, aif.peak_mM
        assert 6.0 <= a.fwhm_s <= 15.0 and aif.fwhm_s >= 0.95 * a.fwhm_s
        assert 15.0 <= a.recirc_delay_s <= 25.0 and 0.2 <= a.recirc_fraction <= 0.4
        assert 0.5 <= a.plateau_mM <= 1.5 and 180 <= a.washout_tau_s <= 600
        assert 3 * dt <= aif.arrival_s <= 6 * dt
        fracs.append(aif.arrival_s / dt % 1.0)
        assert aif.cb_fine_mM[aif.t_fine_s <= aif.arrival_s].max() == 0.0
        # late plateau / washout: a few tenths to about 1.5 mM two minutes after arrival
        late = float(np.interp(aif.arrival_s + 120.0, aif.t_fine_s, aif.cb_fine_mM))
        assert 0.25 <= late <= 1.5
        assert 0.36 <= a.hematocrit <= 0.46
    # arrival is not aligned with the phases
    assert np.ptp(fracs) > 0.5 and min(min(fracs), 1 - max(fracs)) >= 0.0
    peaks = [ph.aif_blood_mM(np.arange(0, 120, 0.1), s.aif).max() for s in c.specs.values()]
    assert np.ptp(peaks) > 2.0  # varies between patients and sessions


# --------------------------------------------------------------------------- noise, PV, field


@pytest.mark.parametrize("snr", [5.0, 9.0, 15.0])
def test_blood_snr_measured_on_aortic_baseline(snr: float) -> None:
    acq = replace(SMALL, snr=snr, n_phases=40, vfa_flip_angles_deg=None, flip_angle_deg=15.0)
    aif = ph.AIFSpec(arrival_s=140.0)  # long baseline
    s = ph.make_session(seed=21, acquisition=acq, aif=aif, gain=1.7)
    pure = (s.tissue_labels == ph.TISSUE_CODES["aorta"]) & (s.truth["pv_fraction"] == 1)
    assert pure.sum() >= 30
    base = s.signal[pure][:, s.t_s < 135.0].astype(np.float64)
    sd = np.sqrt(np.mean(base.var(axis=1, ddof=1)))
    measured = base.mean() / sd
    assert measured == pytest.approx(snr, rel=0.15)
    assert sd == pytest.approx(s.noise_sigma, rel=0.1)
    assert s.blood_signal / s.noise_sigma == pytest.approx(snr)


def test_partial_volume_at_the_aortic_wall() -> None:
    acq = replace(SMALL, snr=None, vfa_flip_angles_deg=None)
    s = ph.make_session(seed=4, acquisition=acq, bias_coeffs=(),
                        anatomy=ph.Anatomy(coil_falloff=0.0))
    aorta = s.tissue_labels == ph.TISSUE_CODES["aorta"]
    pv = s.truth["pv_fraction"]
    p = int(np.argmax(s.aif.cb_mM))
    blood = s.signal[aorta & (pv == 1)][:, p]
    np.testing.assert_allclose(blood, blood[0], rtol=1e-5)  # flat field, pure blood
    soft = s.signal[(s.tissue_labels == ph.TISSUE_CODES["soft"]) & (pv == 1)][:, p]
    s_b, s_s = float(blood[0]), float(np.median(soft))
    assert s_b > 2 * s_s
    edge = aorta & (pv < 1)
    assert edge.sum() >= 10
    e = s.signal[edge][:, p]
    assert np.all(e < s_b * (1 - 1e-3))
    # voxels next to the aorta (soft-tissue centres) hold some blood: mixtures
    near = (s.tissue_labels == ph.TISSUE_CODES["soft"]) & (pv < 1)
    mix = (s.signal[near][:, p] - s_s) / (s_b - s_s)
    assert np.sum((mix > 0.05) & (mix < 0.95)) >= 5
    # without supersampling there is no partial volume
    s1 = ph.make_session(seed=4, acquisition=replace(acq, supersample=1), bias_coeffs=(),
                         anatomy=ph.Anatomy(coil_falloff=0.0))
    assert np.all(s1.truth["pv_fraction"] == 1)
    np.testing.assert_allclose(s1.signal[aorta][:, p], s_b, rtol=1e-5)


def test_truth_is_volume_average_of_contents() -> None:
    """Default truth = mean of Ktrans, ve, vp over all 27 sub-voxels (tissues mixed; ve of
    non-exchanging tissue counts as 0); ``*_tissue`` = the tissue at the voxel centre.

    Computed independently: the sub-voxel points of a ``supersample=3`` voxel are the voxel
    centres of the same anatomy rendered with a 3x finer matrix and ``supersample=1``, so
    block-averaging that rendering's voxel-centre truth gives the volume averages.
    """
    les = ph.LesionSpec(1, "L1", offset_mm=(2.0, 1.0, -3.0), semi_axes_mm=(10.0, 8.0, 14.0),
                        ktrans_per_min=0.15, ve=0.3, vp=0.07, heterogeneity=0.3)
    acq = replace(SMALL, snr=None, vfa_flip_angles_deg=None, n_phases=4)
    kw: dict[str, Any] = {"seed": 2, "lesions": [les], "bias_coeffs": ()}
    pv = ph.make_session(acquisition=acq, **kw)
    ctr = ph.make_session(acquisition=replace(acq, supersample=1), **kw)
    ni, nj, nk = acq.matrix
    di, dj, dk = acq.voxel_mm
    fine = ph.make_session(acquisition=replace(
        acq, matrix=(3 * ni, 3 * nj, 3 * nk), voxel_mm=(di / 3, dj / 3, dk / 3),
        supersample=1), **kw)
    params = ("ktrans_per_min", "ve", "vp", "kep_per_min")
    # without supersampling the two truths coincide exactly
    for name in params:
        np.testing.assert_array_equal(ctr.truth[name], ctr.truth[f"{name}_tissue"])
        np.testing.assert_array_equal(pv.truth[f"{name}_tissue"], ctr.truth[name])
    np.testing.assert_array_equal(pv.lesion_labels, ctr.lesion_labels)
    # the fine grid's centre sub-voxels are the coarse voxel centres
    np.testing.assert_allclose(fine.truth["vp_tissue"][1::3, 1::3, 1::3], ctr.truth["vp"],
                               rtol=1e-12, atol=0)

    def block_mean(a: np.ndarray) -> np.ndarray:
        return np.asarray(a.reshape(ni, 3, nj, 3, nk, 3).mean(axis=(1, 3, 5)))

    kt = block_mean(fine.truth["ktrans_per_min_tissue"])
    ve = block_mean(np.nan_to_num(fine.truth["ve_tissue"], nan=0.0))  # no exchange: ve 0
    vp = block_mean(fine.truth["vp_tissue"])
    np.testing.assert_allclose(pv.truth["ktrans_per_min"], kt, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(np.nan_to_num(pv.truth["ve"], nan=0.0), ve, rtol=1e-10,
                               atol=1e-15)
    np.testing.assert_allclose(pv.truth["vp"], vp, rtol=1e-10, atol=1e-15)
    assert np.array_equal(np.isnan(pv.truth["ve"]), ve == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        kep = np.where(ve > 0, kt / ve, np.nan)
    np.testing.assert_allclose(pv.truth["kep_per_min"], kep, rtol=1e-10)
    # mixed voxels exist in the lesion label and around the aorta
    sel = pv.lesion_labels == 1
    assert np.sum(sel & (pv.truth["pv_fraction"] < 1)) >= 10
    aorta_edge = (pv.tissue_labels == ph.TISSUE_CODES["aorta"]) & (pv.truth["pv_fraction"] < 1)
    assert np.all(pv.truth["vp"][aorta_edge] < 1 - pv.aif.hematocrit)
    # lesion table: label means of the volume averages; *_tissue: of the centre values
    row = pv.lesion_truth().iloc[0]
    assert row["ktrans_per_min"] == pytest.approx(kt[sel].mean(), rel=1e-10)
    assert row["vp"] == pytest.approx(vp[sel].mean(), rel=1e-10)
    assert row["ve"] == pytest.approx(ve[sel].mean(), rel=1e-10)
    assert row["kep_per_min"] == pytest.approx((kt[sel] / ve[sel]).mean(), rel=1e-10)
    row1 = ctr.lesion_truth().iloc[0]
    for name in params:
        assert row[f"{name}_tissue"] == pytest.approx(row1[name], rel=1e-12)
        assert row1[f"{name}_tissue"] == row1[name]
    # boundary voxels hold marrow (lower Ktrans and vp): the mixture is below the centre
    # truth (measured on this geometry: Ktrans and vp about 12 % below)
    for name in ("ktrans_per_min", "vp"):
        assert 0.75 < row[name] / row[f"{name}_tissue"] < 0.97, name


def test_receive_field_gain_and_vfa_share_m0_t10() -> None:
    acq = replace(SMALL, snr=None)
    bias = (0.1, -0.1, 0.05, 0.05, -0.05, 0.0, 0.03, 0.0, 0.0)
    a = ph.make_session(seed=3, acquisition=acq, bias_coeffs=bias, gain=1.0)
    b = ph.make_session(seed=3, acquisition=acq, bias_coeffs=bias, gain=2.5)
    np.testing.assert_allclose(b.signal, 2.5 * a.signal, rtol=1e-5)
    field = a.truth["bias"]
    body = a.tissue_labels > 0
    assert 1.3 < field[body].max() / field[body].min() < 2.5
    # the field follows the coil: posterior (high i) brighter on average
    assert field[-5:].mean() > field[:5].mean()
    # VFA of pure marrow: same M0 (field and gain included) and T10 as the dynamic series
    assert a.vfa_signal is not None
    mar = (a.tissue_labels == ph.TISSUE_CODES["marrow"]) & (a.truth["pv_fraction"] == 1)
    i, j, k = np.argwhere(mar)[0]
    want = ph.spgr(a.truth["m0"][i, j, k], 1 / a.truth["t10_s"][i, j, k],
                   np.asarray(a.vfa_flip_angles_deg), acq.tr_s)
    np.testing.assert_allclose(a.vfa_signal[i, j, k], want, rtol=1e-5)
    # a random field is drawn by default, deterministically from the seed
    c = ph.make_session(seed=3, acquisition=acq)
    d = ph.make_session(seed=3, acquisition=acq)
    assert c.spec.bias_coeffs == d.spec.bias_coeffs and any(c.spec.bias_coeffs)


def test_determinism_and_render_speed() -> None:
    t0 = time.perf_counter()
    s = ph.make_session(seed=9)
    elapsed = time.perf_counter() - t0
    assert s.signal.shape == (96, 96, 10, 60)
    assert elapsed < 10.0, f"rendering a default session took {elapsed:.1f} s"
    again = ph.make_session(seed=9)
    assert np.array_equal(s.signal, again.signal)
    assert s.vfa_signal is not None and again.vfa_signal is not None
    assert np.array_equal(s.vfa_signal, again.vfa_signal)


# --------------------------------------------------------------------------- outcome design


def test_demo_cohort_true_auc_of_dvp_in_range() -> None:
    c = _demo_cohort(REPO / "config" / "config.yaml")
    d = _dvp_fu1(c)
    pos = d[d["recurrence"] == 1]["dvp"].to_numpy()
    neg = d[d["recurrence"] == 0]["dvp"].to_numpy()
    auc = _auc_mann_whitney(pos, neg)
    # issue 15 acceptance: realistic overlap, AUC 0.75-0.95 (not a single corner)
    assert 0.75 <= auc <= 0.95, auc
    dkt = d[d["recurrence"].notna()]
    auc_kt = _auc_mann_whitney(dkt[dkt["recurrence"] == 1]["dkt"].to_numpy(),
                               dkt[dkt["recurrence"] == 0]["dkt"].to_numpy())
    assert 0.75 <= auc_kt <= 0.95, auc_kt
    # some recurrent lesions respond like controlled ones
    resp = d[d["responder_like"] == 1]
    assert len(resp) >= 1 and (resp["recurrence"] == 1).all()
    assert (resp["dvp"] <= neg.max()).all()
    # controlled lesions lose about 50-75 % of vp (lesion-mean truth), chordomas less
    # (max vp / 1.6, Santos et al.)
    ctrl = d[d["recurrence"] == 0]
    chord = (ctrl["lesion_class"] == "chordoma").to_numpy()
    assert ((neg[~chord] >= -0.80) & (neg[~chord] <= -0.45)).all()
    assert ((neg[chord] >= -0.50) & (neg[chord] <= -0.25)).all()


def test_test_cohort_has_both_outcomes() -> None:
    c = _demo_cohort(REPO / ".test" / "config" / "config.yaml")
    assert set(c.lesions["recurrence"].dropna()) == {0, 1}
    d = _dvp_fu1(c)
    assert set(d["recurrence"].dropna()) == {0, 1}
