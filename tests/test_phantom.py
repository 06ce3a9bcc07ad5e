"""Tests of dce.phantom (synthetic spine DCE cohort) and dce.io.dicom_write (vendor DICOM)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.dataset import Dataset

from dce import phantom as ph
from dce.io import dicom_write as dw

# small, fast geometry: 44 x 48 x 6 voxels of 4 x 3.6 x 5 mm, 24 phases
SMALL = ph.Acquisition(matrix=(44, 48, 6), voxel_mm=(4.0, 3.6, 5.0), n_phases=24)
LESION = ph.LesionSpec(1, "L1", offset_mm=(2.0, 1.0, -3.0), semi_axes_mm=(10.0, 8.0, 14.0),
                       ktrans_per_min=0.15, ve=0.3, vp=0.07, heterogeneity=0.3, delay_s=3.0)


@pytest.fixture(scope="module")
def noise_free() -> ph.SessionPhantom:
    """No noise and no partial volume (supersample 1): voxel = tissue at its centre."""
    acq = replace(SMALL, snr=None, supersample=1)
    return ph.make_session(seed=1, acquisition=acq, lesions=[LESION],
                           aif=ph.AIFSpec(scale=1.1, arrival_s=17.3))


@pytest.fixture(scope="module")
def small_session() -> ph.SessionPhantom:
    return ph.make_session(seed=5, acquisition=SMALL, lesions=[LESION])


@pytest.fixture(scope="module")
def short_session() -> ph.SessionPhantom:
    """``small_session`` with 6 phases: for DICOM round trips, whose cost is the file count."""
    return ph.make_session(seed=5, acquisition=replace(SMALL, n_phases=6), lesions=[LESION])


# --------------------------------------------------------------------------- phantom


def test_determinism_same_seed_identical_different_seed_differs() -> None:
    a = ph.make_session(seed=7, acquisition=SMALL)
    b = ph.make_session(seed=7, acquisition=SMALL)
    c = ph.make_session(seed=8, acquisition=SMALL)
    assert np.array_equal(a.signal, b.signal)
    assert a.vfa_signal is not None and b.vfa_signal is not None and c.vfa_signal is not None
    assert np.array_equal(a.vfa_signal, b.vfa_signal)
    assert not np.array_equal(a.signal, c.signal)
    assert not np.array_equal(a.vfa_signal, c.vfa_signal)
    assert a.signal.dtype == np.float32 and a.signal.shape == (44, 48, 6, 24)


def test_cohort_deterministic_and_order_independent() -> None:
    c1 = ph.make_cohort(3, seed=11, acquisition=SMALL)
    c2 = ph.make_cohort(3, seed=11, acquisition=SMALL)
    pd.testing.assert_frame_equal(c1.sessions, c2.sessions)
    pd.testing.assert_frame_equal(c1.lesions, c2.lesions)
    pd.testing.assert_frame_equal(c1.truth, c2.truth)
    keys = list(c1.specs)
    first = c1.session(*keys[-1])  # rendered first here ...
    for key in keys[:-1]:
        c2.session(*key)
    again = c2.session(*keys[-1])  # ... and last there
    assert np.array_equal(first.signal, again.signal)
    assert not np.array_equal(c1.session(*keys[0]).signal[..., 0],
                              c1.session(*keys[1]).signal[..., 0])
    c3 = ph.make_cohort(3, seed=12, acquisition=SMALL)
    assert not c3.truth["vp"].equals(c1.truth["vp"])


def test_lesion_truth_reproduces_signal_through_forward_model(
        noise_free: ph.SessionPhantom) -> None:
    """Without partial volume, a lesion voxel's signal is the module's SPGR of its
    extended Tofts curve driven by the analytically delayed plasma AIF."""
    s = noise_free
    acq = s.acquisition
    assert s.noise_sigma == 0.0
    idx = np.argwhere(s.lesion_labels == 1)
    assert len(idx) > 10
    t_fine = s.aif.t_fine_s
    hct = s.aif.hematocrit
    for i, j, k in idx[[0, len(idx) // 2, -1]]:
        tr = {name: float(arr[i, j, k]) for name, arr in s.truth.items()}
        assert tr["delay_s"] == 3.0 and tr["t10_s"] == 1.2
        cp_d = ph.aif_blood_mM(t_fine - tr["delay_s"], s.aif.spec) / (1 - hct)
        conc = ph.tofts_fine(t_fine, cp_d, s.t_s, tr["ktrans_per_min"],
                             tr["kep_per_min"], tr["vp"])[0]
        sig = ph.spgr(tr["m0"], 1 / tr["t10_s"] + acq.r1_per_mM_per_s * conc,
                      acq.flip_angle_deg, acq.tr_s)
        np.testing.assert_allclose(s.signal[i, j, k], sig, rtol=2e-6)
        # the delay matters: the undelayed curve differs
        conc0 = ph.tofts_fine(t_fine, s.aif.cp_fine_mM, s.t_s, tr["ktrans_per_min"],
                              tr["kep_per_min"], tr["vp"])[0]
        assert np.max(np.abs(conc0 - conc)) > 0.05 * conc.max()
    # lesion parameters vary smoothly around the nominal values
    vp = s.truth["vp"][s.lesion_labels == 1]
    assert vp.std() > 0 and abs(vp.mean() / LESION.vp - 1) < 0.1


def test_aorta_holds_blood_concentration_and_is_anterior(noise_free: ph.SessionPhantom
                                                         ) -> None:
    s = noise_free
    acq = s.acquisition
    aorta = s.tissue_labels == ph.TISSUE_CODES["aorta"]
    body = np.isin(s.tissue_labels, [ph.TISSUE_CODES["marrow"], ph.TISSUE_CODES["lesion"]])
    assert aorta.any() and body.any()
    # blood concentration in the aorta (no partial volume in this fixture)
    i, j, k = np.argwhere(aorta)[0]
    sig = ph.spgr(s.truth["m0"][i, j, k],
                  1 / s.truth["t10_s"][i, j, k] + acq.r1_per_mM_per_s * s.aif.cb_mM,
                  acq.flip_angle_deg, acq.tr_s)
    np.testing.assert_allclose(s.signal[i, j, k], sig, rtol=2e-6)
    np.testing.assert_allclose(s.aif.cp_mM * (1 - s.aif.hematocrit), s.aif.cb_mM)
    assert s.aif.cb_mM[s.t_s <= s.aif.arrival_s].max() == 0.0
    assert s.truth["t10_s"][i, j, k] == 1.65
    # a cranio-caudal tube through several slices, anterior (RAS +y) of the bodies
    assert np.unique(np.argwhere(aorta)[:, 2]).size >= 2
    assert np.all(aorta.any(axis=(0, 2)))

    def ras(mask: np.ndarray) -> np.ndarray:
        ijk = np.argwhere(mask)
        return (s.affine @ np.c_[ijk, np.ones(len(ijk))].T)[:3].T

    for jj in range(0, s.signal.shape[1], 4):
        a, b = aorta[:, jj, :], body[:, jj, :]
        if not (a.any() and b.any()):
            continue
        sel_a = np.zeros_like(aorta)
        sel_a[:, jj, :] = a
        sel_b = np.zeros_like(body)
        sel_b[:, jj, :] = b
        assert ras(sel_a)[:, 1].min() > ras(sel_b)[:, 1].max()
    # aorta on the patient's left (RAS -x) of the midline
    assert ras(aorta)[:, 0].mean() < 0


def test_labels_and_background(small_session: ph.SessionPhantom) -> None:
    s = small_session
    assert set(np.unique(s.lesion_labels)) == {0, 1}
    assert np.all(s.tissue_labels[s.lesion_labels == 1] == ph.TISSUE_CODES["lesion"])
    assert s.marrow_roi.sum() > 0
    assert np.all(s.tissue_labels[s.marrow_roi == 1] == ph.TISSUE_CODES["marrow"])
    lesion_vert = np.unique(s.vertebra_labels[s.lesion_labels == 1])
    marrow_vert = np.unique(s.vertebra_labels[s.marrow_roi == 1])
    assert s.levels[int(lesion_vert[0]) - 1] == "L1" and lesion_vert.size == 1
    assert marrow_vert.size == 1 and marrow_vert[0] != lesion_vert[0]
    air = s.tissue_labels == 0
    assert air.any()
    assert np.all(s.truth["m0"][air] == 0) and np.all(np.isnan(s.truth["t10_s"][air]))
    # Rician background (pure air, no partial volume): Rayleigh mean sigma * sqrt(pi / 2)
    pure_air = air & (s.truth["pv_fraction"] == 1.0)
    assert pure_air.sum() > 100
    np.testing.assert_allclose(s.signal[pure_air].mean(), s.noise_sigma * np.sqrt(np.pi / 2),
                               rtol=0.05)
    assert np.linalg.det(s.affine[:3, :3]) > 0


def test_cohort_tables_and_vp_response() -> None:
    c = ph.make_cohort(10, seed=0, acquisition=SMALL)
    ids = c.sessions["subject"].tolist() + c.lesions["subject"].tolist()
    assert all(re.fullmatch(r"[A-Za-z0-9]+", x) for x in ids + c.sessions["session"].tolist())
    assert c.sessions["subject"].nunique() == 10
    per_patient = c.sessions.groupby("subject").size()
    assert per_patient.between(2, 3).all()
    treated = c.lesions["treated"] == 1
    assert set(c.lesions[treated].groupby("subject").size()) <= {1, 2}
    assert set(c.lesions.groupby("subject").size()) <= {1, 2, 3}
    assert set(c.lesions["level"]) <= set(ph.SPINE_LEVELS)
    assert not c.lesions.duplicated(["subject", "level"]).any()
    assert c.lesions.loc[treated, "recurrence"].mean() == pytest.approx(0.3, abs=0.1)
    assert c.lesions.loc[~treated, "recurrence"].isna().all()
    rec = c.lesions["recurrence"] == 1
    assert c.lesions.loc[rec, "recurrence_day"].between(150, 300).all()
    assert c.lesions.loc[~rec.fillna(False), "recurrence_day"].isna().all()
    pre = c.sessions[c.sessions["session"] == "pre"]
    assert (pre["days_from_rt"] < 0).all()
    assert (c.sessions.loc[c.sessions["session"] != "pre", "days_from_rt"] > 30).all()

    t = c.truth
    base = t[t["session"] == "pre"].set_index(["subject", "lesion"])
    assert base["vp_nominal"].between(0.008, 0.11).all()
    assert base["ktrans_per_min_nominal"].between(0.02, 0.91).all()
    assert base["ve_nominal"].between(0.06, 0.70).all()
    assert base["vp"].between(0.005, 0.13).all()
    post = t[t["session"] != "pre"].copy()
    keys = pd.MultiIndex.from_arrays([post["subject"], post["lesion"]])
    ref = base["vp"].reindex(keys).to_numpy()
    post["vp_change"] = post["vp"].to_numpy() / ref - 1
    post = post.merge(c.lesions[["subject", "lesion", "responder_like", "lesion_class",
                                 "treated"]], on=["subject", "lesion"])
    # untreated lesions are stable apart from test-retest variation (8 %)
    assert post.loc[post["treated"] == 0, "vp_change"].between(-0.35, 0.35).all()
    # the chordomas' vp drop is scaled by 0.6 (their controlled drop about -37 %)
    post = post[(post["treated"] == 1) & (post["lesion_class"] != "chordoma")]
    fu1 = post[post["session"] == "fu1"]
    controlled = fu1[fu1["recurrence"] == 0]["vp_change"]
    recurrent = fu1[(fu1["recurrence"] == 1) & (fu1["responder_like"] == 0)]["vp_change"]
    responder = fu1[fu1["responder_like"] == 1]["vp_change"]
    assert len(controlled) and len(recurrent) and len(responder)
    assert controlled.mean() == pytest.approx(-0.62, abs=0.1)
    assert controlled.between(-0.80, -0.45).all()
    assert (recurrent >= -0.5).all()
    # responder-like recurrent lesions fall inside the controlled range at fu1
    assert responder.between(controlled.min() - 0.03, controlled.max() + 0.03).all()
    assert (post["n_voxels"] > 0).all()
    # the protocol varies per patient, the blood SNR and gain per session
    ses = c.sessions
    assert ses["flip_angle_deg"].between(10, 25).all() and ses["flip_angle_deg"].nunique() > 3
    assert ses["tr_s"].between(0.0035, 0.005).all()
    assert ses["blood_snr"].between(5, 15).all() and ses["gain"].between(0.5, 2).all()
    assert (ses.groupby("subject")["flip_angle_deg"].nunique() == 1).all()


def test_cohort_truth_is_volume_average_with_tissue_columns() -> None:
    """Cohort truth: default columns are label means of the voxels' volume averages,
    ``*_tissue`` of the voxel-centre values; with supersample=1 they coincide exactly."""
    params = ("ktrans_per_min", "ve", "vp", "kep_per_min")
    c3 = ph.make_cohort(3, seed=11, acquisition=SMALL)
    c1 = ph.make_cohort(3, seed=11, acquisition=replace(SMALL, supersample=1))
    t3, t1 = c3.truth, c1.truth
    for name in params:
        assert f"{name}_tissue" in t3.columns
        pd.testing.assert_series_equal(t1[name], t1[f"{name}_tissue"], check_names=False)
        # the voxel-centre truth does not depend on the supersampling
        pd.testing.assert_series_equal(t3[f"{name}_tissue"], t1[name], check_names=False,
                                       rtol=1e-12)
    # lesion rims hold marrow (lower Ktrans and vp) and the lesion's own lower rim values
    # (uniform lesions; a rim + core follow-up's voxels also straddle its rim / core plane,
    # whose contrast (about 10x) lets the volume average exceed the centre value)
    pattern = t3.merge(c3.lesions[["subject", "lesion", "response_pattern"]],
                       on=["subject", "lesion"], how="left")["response_pattern"]
    uniform = (pattern != "rim_core") | (t3["session"] == "pre")
    assert uniform.sum() >= len(t3) - 2
    for name in ("ktrans_per_min", "vp"):
        ratio = (t3[name] / t3[f"{name}_tissue"])[uniform]
        assert ((ratio > 0.6) & (ratio < 1.0)).all(), name
    # the cohort table equals the rendered session's own lesion truth
    key = list(c3.specs)[-1]
    s = c3.session(*key)
    own = s.lesion_truth().reset_index(drop=True)
    rows = t3[(t3["subject"] == key[0]) & (t3["session"] == key[1])].reset_index(drop=True)
    for name in params + tuple(f"{p}_tissue" for p in params):
        np.testing.assert_allclose(rows[name], own[name], rtol=1e-12, err_msg=name)
    sel = s.lesion_labels == 1
    assert own.loc[0, "vp"] == pytest.approx(s.truth["vp"][sel].mean(), rel=1e-12)
    assert own.loc[0, "vp_tissue"] == pytest.approx(s.truth["vp_tissue"][sel].mean(),
                                                   rel=1e-12)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="alphanumeric"):
        ph.make_session(subject="P-01", acquisition=SMALL)
    with pytest.raises(ValueError, match="not in the slab"):
        ph.make_session(acquisition=SMALL, lesions=[ph.LesionSpec(1, "C3")])
    with pytest.raises(ValueError, match="unknown vertebral level"):
        ph.make_session(acquisition=SMALL, centre_level="X9")
    with pytest.raises(ValueError, match="tr_s"):
        ph.make_session(acquisition=replace(SMALL, tr_s=4.5))


# --------------------------------------------------------------------------- DICOM


def _write(tmp: Path, s: ph.SessionPhantom, vendor: str, **kw: Any) -> list[Path]:
    acq = s.acquisition
    args: dict[str, Any] = {"patient_name": "CANARY^NAME", "patient_id": "CANARYID42",
                            "uid_seed": "test"}
    args.update(kw)
    return dw.write_series(tmp, s.signal, s.t_s, s.affine, vendor=vendor,
                           flip_angle_deg=acq.flip_angle_deg, tr_s=acq.tr_s, te_s=acq.te_s,
                           field_strength_t=acq.field_strength_t,
                           series_description=dw.DCE_DESCRIPTIONS[vendor], series_number=5,
                           **args)


def _half_step(x: np.ndarray, vendor: str) -> float:
    """Largest rounding error of the writer's storage (module notes of dce.io.dicom_write):
    half a scanner unit, or half the Philips step max / 4095, with float32 margin."""
    step = float(np.max(x)) / 4095 if vendor == "philips" else 1.0
    return 0.5 * step * (1 + 1e-5)


def _walk(ds: Dataset) -> Iterator[tuple[str, Any]]:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)
        else:
            yield elem.keyword, elem.value


@pytest.mark.parametrize("vendor", ["ge", "siemens", "philips"])
def test_classic_vendor_timing_tags(tmp_path: Path, small_session: ph.SessionPhantom,
                                    vendor: str) -> None:
    s = small_session
    nk, nt = s.signal.shape[2], s.signal.shape[3]
    paths = _write(tmp_path, s, vendor)
    assert len(paths) == nk * nt
    assert all(re.fullmatch(r"[0-9A-F]{20}", p.name) for p in paths)
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    acq_times = {str(d.AcquisitionTime) for d in dss}
    if vendor == "ge":
        assert len(acq_times) == 1
        trig = sorted({float(d.TriggerTime) for d in dss})
        np.testing.assert_allclose(trig, s.t_s * 1000.0)
        assert all("TemporalPositionIdentifier" not in d for d in dss)
        time_key = [float(d.TriggerTime) for d in dss]
    elif vendor == "siemens":
        assert len(acq_times) == nt
        assert len({str(d.ContentTime) for d in dss}) == nt
        assert all("TriggerTime" not in d for d in dss)
        time_key = [float(str(d.AcquisitionTime)) for d in dss]
    else:
        assert len(acq_times) == nt
        assert {int(d.TemporalPositionIdentifier) for d in dss} == set(range(1, nt + 1))
        assert {int(d.NumberOfTemporalPositions) for d in dss} == {nt}
        for d in dss:
            p = int(d.TemporalPositionIdentifier) - 1
            assert float(d.TriggerTime) == pytest.approx(s.t_s[p] * 1000.0)
        time_key = [float(d.TriggerTime) for d in dss]
    # InstanceNumber: a permutation of 1..N that is not the time order
    inst = np.array([int(d.InstanceNumber) for d in dss])
    assert sorted(inst) == list(range(1, nk * nt + 1))
    order = np.lexsort((np.array([float(d.SliceLocation) for d in dss]), np.array(time_key)))
    assert not np.all(np.diff(inst[order]) > 0)
    # geometry and scaling tags
    d0 = dss[0]
    assert [float(v) for v in d0.PixelSpacing] == [3.6, 4.0]
    assert float(d0.SliceThickness) == 5.0
    np.testing.assert_allclose([float(v) for v in d0.ImageOrientationPatient],
                               [0, 1, 0, 0, 0, -1], atol=1e-8)
    assert d0.Rows == 48 and d0.Columns == 44
    if vendor == "philips":                  # 12 bits filled, RescaleSlope + private scale
        assert float(d0.RescaleSlope) > 0 and float(d0.RescaleIntercept) == 0
        assert d0.BitsStored == 12 and d0.PixelRepresentation == 0
    else:                                    # scanner units, no rescale
        assert "RescaleSlope" not in d0 and "RescaleIntercept" not in d0
        assert (d0.BitsStored, d0.PixelRepresentation) == ((16, 1) if vendor == "ge"
                                                            else (12, 0))
    assert {float(d.FlipAngle) for d in dss} == {20.0}
    assert len({d.SeriesInstanceUID for d in dss}) == 1


def test_unshuffled_instance_numbers_follow_time(tmp_path: Path,
                                                 small_session: ph.SessionPhantom) -> None:
    paths = _write(tmp_path, small_session, "ge", shuffle_instance_numbers=False)
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    inst = [int(d.InstanceNumber) for d in sorted(dss, key=lambda d: float(d.TriggerTime))]
    assert inst[: small_session.signal.shape[2]] == sorted(inst[: small_session.signal.shape[2]])
    assert max(inst[: small_session.signal.shape[2]]) == small_session.signal.shape[2]


def test_enhanced_multiframe(tmp_path: Path, small_session: ph.SessionPhantom) -> None:
    s = small_session
    nk, nt = s.signal.shape[2], s.signal.shape[3]
    paths = _write(tmp_path, s, "enhanced")
    assert len(paths) == 1
    ds = pydicom.dcmread(paths[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.1"
    assert int(ds.NumberOfFrames) == nk * nt
    frames = ds.PerFrameFunctionalGroupsSequence
    assert len(frames) == nk * nt
    tpi = [int(f.FrameContentSequence[0].TemporalPositionIndex) for f in frames]
    assert sorted(set(tpi)) == list(range(1, nt + 1))
    fad = {str(f.FrameContentSequence[0].FrameAcquisitionDateTime) for f in frames}
    assert len(fad) == nt
    for f in frames[:3]:
        assert "PlanePositionSequence" in f and "PlaneOrientationSequence" in f
        assert float(f.PixelValueTransformationSequence[0].RescaleSlope) > 0
    assert ds.pixel_array.shape == (nk * nt, 48, 44)


def test_identifiers_only_in_patient_tags(tmp_path: Path,
                                          short_session: ph.SessionPhantom) -> None:
    s = short_session
    canaries = {"PatientName": "CANARY^NAME", "PatientID": "CANARYID42"}
    for vendor in dw.VENDORS:
        out = tmp_path / vendor
        _write(out, s, vendor)
        assert s.vfa_signal is not None
        dw.write_vfa(out, s.vfa_signal, s.vfa_flip_angles_deg, s.affine, vendor=vendor,
                     tr_s=0.0045, te_s=0.0015, patient_name=canaries["PatientName"],
                     patient_id=canaries["PatientID"], uid_seed="test")
        for path in out.iterdir():
            assert "CANARY" not in path.name
            raw = path.read_bytes()
            for value in canaries.values():
                assert raw.count(value.encode()) == 1
            ds = pydicom.dcmread(path)
            hits = {kw for kw, val in _walk(ds) if "CANARY" in str(val)}
            assert hits == set(canaries)
            assert all(str(ds[kw].value) == v for kw, v in canaries.items())


def test_deterministic_files(tmp_path: Path, short_session: ph.SessionPhantom) -> None:
    a = _write(tmp_path / "a", short_session, "philips")
    b = _write(tmp_path / "b", short_session, "philips")
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))


def test_bad_affine_rejected(tmp_path: Path, small_session: ph.SessionPhantom) -> None:
    aff = small_session.affine.copy()
    aff[1, 2] = 2.0  # shear the slice axis
    with pytest.raises(ValueError, match="perpendicular"):
        dw.write_series(tmp_path, small_session.signal, small_session.t_s, aff,
                        flip_angle_deg=20, tr_s=0.0045, te_s=0.0015, patient_name="A",
                        patient_id="B")
    with pytest.raises(ValueError, match="vendor"):
        dw.write_series(tmp_path, small_session.signal, small_session.t_s,
                        small_session.affine, vendor="toshiba", flip_angle_deg=20,
                        tr_s=0.0045, te_s=0.0015, patient_name="A", patient_id="B")


@pytest.mark.parametrize("vendor", dw.VENDORS)
@pytest.mark.parametrize("separate", [True, False])
def test_reader_round_trip(tmp_path: Path, short_session: ph.SessionPhantom, vendor: str,
                           separate: bool) -> None:
    dicom = pytest.importorskip("dce.io.dicom")
    s = short_session
    assert s.vfa_signal is not None
    _write(tmp_path, s, vendor, series_offset_s=300.0)  # VFA first: pre-contrast (issue 13)
    dw.write_vfa(tmp_path, s.vfa_signal, s.vfa_flip_angles_deg, s.affine, vendor=vendor,
                 separate_series=separate, tr_s=0.0045, te_s=0.0015, patient_name="A^B",
                 patient_id="C", uid_seed="test", series_description=dw.VFA_DESCRIPTIONS[vendor])
    series = dicom.discover_series(tmp_path)
    dce = dicom.load_dce(series)
    np.testing.assert_allclose(dce.t_s, s.t_s, atol=1e-5)
    np.testing.assert_allclose(dce.affine, s.affine, atol=1e-4)
    np.testing.assert_allclose(dce.data, s.signal, atol=_half_step(s.signal, vendor))
    assert dce.meta["FlipAngle"] == 20.0 and dce.meta["RepetitionTime"] == 0.0045
    vfa = dicom.load_vfa(series)
    np.testing.assert_allclose(vfa.flip_angles_deg, s.vfa_flip_angles_deg)
    np.testing.assert_allclose(vfa.affine, s.affine, atol=1e-4)
    np.testing.assert_allclose(vfa.data, s.vfa_signal, atol=_half_step(s.vfa_signal, vendor))


def test_write_cohort(tmp_path: Path) -> None:
    acq = replace(SMALL, n_phases=6)          # the file count, not the timing, costs time
    cohort = ph.make_cohort(4, seed=3, acquisition=acq)
    sessions = dw.write_cohort_dicom(tmp_path, cohort,
                                     vendors=("ge", "siemens", "philips", "enhanced"))
    assert len(sessions) == len(cohort.sessions)
    assert list(sessions["vendor"].drop_duplicates()) == ["ge", "siemens", "philips",
                                                         "enhanced"]
    table = pd.read_csv(tmp_path / "sessions.tsv", sep="\t")
    assert list(table.columns[:3]) == ["subject", "session", "days_from_rt"]
    # the session's true large-vessel hematocrit, as a lab value would give it
    hct = table.merge(cohort.sessions[["subject", "session", "hematocrit"]],
                      on=["subject", "session"], suffixes=("", "_true"))
    assert len(hct) == len(table)
    np.testing.assert_allclose(hct["hematocrit"], hct["hematocrit_true"], rtol=1e-5)
    assert hct["hematocrit"].between(0.36, 0.46).all()
    lesions = pd.read_csv(tmp_path / "lesions.tsv", sep="\t")
    assert lesions["subject"].tolist() == cohort.lesions["subject"].tolist()
    # the lesion sheet holds outcomes only; the design truth goes to truth/
    assert list(lesions.columns) == ["subject", "lesion", "level", "recurrence",
                                     "recurrence_day", "lesion_class", "primary",
                                     "vascularity", "treated", "adjacent_disc"]
    design = pd.read_csv(tmp_path / "truth" / "lesions_truth.tsv", sep="\t")
    assert {"responder_like", "delay_s"} <= set(design.columns)
    assert (tmp_path / "truth" / "lesion_truth.tsv").exists()
    row = table.iloc[-1]
    ph_s = cohort.session(row["subject"], row["session"])
    img = nib.load(tmp_path / row["lesion_roi"])
    assert isinstance(img, nib.Nifti1Image)
    assert np.array_equal(np.asarray(img.dataobj), ph_s.lesion_labels)
    np.testing.assert_allclose(img.affine, ph_s.affine)
    marrow = nib.load(tmp_path / row["marrow_roi"])
    assert isinstance(marrow, nib.Nifti1Image) and np.asarray(marrow.dataobj).sum() > 0
    aif = pd.read_csv(tmp_path / row["subject"] / row["session"] / "truth"
                      / f"{row['subject']}_{row['session']}_aif.tsv", sep="\t")
    np.testing.assert_allclose(aif["cb_mM"], ph_s.aif.cb_mM, rtol=1e-5, atol=1e-6)
    fine = pd.read_csv(tmp_path / row["subject"] / row["session"] / "truth"
                       / f"{row['subject']}_{row['session']}_aif_fine.tsv", sep="\t")
    assert np.diff(fine["t_s"]).max() <= 0.1 + 1e-9
    np.testing.assert_allclose(fine["cb_mM"].max(), ph_s.aif.peak_mM, rtol=1e-5)
    st = pd.read_csv(tmp_path / "truth" / "sessions_truth.tsv", sep="\t")
    for col in ("bolus_arrival_s", "aif_peak_blood_mM", "aif_fwhm_s", "hematocrit",
                "blood_t10_s", "blood_snr", "noise_sigma", "flip_angle_deg", "tr_s", "gain",
                "aif_scale", "r1_per_mM_per_s", "field_strength_t"):
        assert col in st.columns, col
    assert len(st) == len(table)
    last = st.iloc[-1]
    assert last["noise_sigma"] == pytest.approx(ph_s.noise_sigma, rel=1e-5)
    assert last["blood_snr"] == pytest.approx(ph_s.acquisition.snr, rel=1e-5)
    assert last["blood_signal"] / last["noise_sigma"] == pytest.approx(last["blood_snr"],
                                                                         rel=1e-4)
    lt = pd.read_csv(tmp_path / "truth" / "lesion_truth.tsv", sep="\t")
    for col in ("subject", "session", "lesion", "ktrans_per_min", "ve", "vp", "kep_per_min",
                "ktrans_per_min_tissue", "ve_tissue", "vp_tissue", "kep_per_min_tissue",
                "delay_s", "n_voxels", "recurrence"):
        assert col in lt.columns, col
    np.testing.assert_allclose(lt["vp"], cohort.truth["vp"], rtol=1e-5)
    np.testing.assert_allclose(lt["vp_tissue"], cohort.truth["vp_tissue"], rtol=1e-5)
    truth_dir = tmp_path / row["subject"] / row["session"] / "truth"
    stem = f"{row['subject']}_{row['session']}"
    for name in ("vp", "vp_tissue", "ktrans_per_min_tissue", "pv_fraction"):
        assert (truth_dir / f"{stem}_{name}.nii.gz").exists(), name
    dicom = pytest.importorskip("dce.io.dicom")
    for _, r in table.iterrows():
        series = dicom.discover_series(tmp_path / r["dicom_dir"])   # read the files once
        dce = dicom.load_dce(series)
        np.testing.assert_allclose(dce.t_s, acq.t_s, atol=1e-5)
        # each session's own protocol is written
        sacq = cohort.specs[(r["subject"], r["session"])].acquisition
        assert dce.meta["FlipAngle"] == pytest.approx(sacq.flip_angle_deg)
        assert dce.meta["RepetitionTime"] == pytest.approx(sacq.tr_s)
        assert dicom.load_vfa(series).data.shape[3] == 5
        names = [p.name for p in (tmp_path / r["dicom_dir"]).iterdir()]
        assert not any(r["subject"] in n for n in names)


def test_write_cohort_without_hematocrit(tmp_path: Path) -> None:
    acq = replace(SMALL, n_phases=4, vfa_flip_angles_deg=None)
    cohort = ph.make_cohort(1, seed=2, acquisition=acq, followup_days=(60.0,))
    dw.write_cohort_dicom(tmp_path, cohort, write_hematocrit=False, write_truth_maps=False)
    table = pd.read_csv(tmp_path / "sessions.tsv", sep="\t")
    assert "hematocrit" not in table.columns and len(table) == 2
    # the truth keeps it
    assert "hematocrit" in pd.read_csv(tmp_path / "truth" / "sessions_truth.tsv", sep="\t")


def test_demo_design_sheets_are_the_written_sheets(tmp_path: Path) -> None:
    """The workflow reads the demo's sheets from its design (parse time, no file); the
    rule demo_cohort writes them: the same bytes, the same parsed sheets, and every path
    they name is written."""
    from dce.io.tables import read_sheets, table_text

    vendors = ("ge", "siemens", "philips")
    design_cohort = ph.demo_cohort(2, seed=3, matrix=(32, 32, 8), n_phases=4)
    design = ph.cohort_sheets(design_cohort, vendors)
    assert "truth" not in design_cohort.__dict__       # the design renders no image
    # the field of view (96 x 1.8, 96 x 1.8, 10 x 5 mm) stays; the voxel size follows
    acq = design_cohort.specs[("P01", "pre")].acquisition
    assert acq.voxel_mm == (5.4, 5.4, 6.25) and acq.n_phases == 4
    written = dw.write_cohort_dicom(tmp_path, ph.demo_cohort(2, seed=3, matrix=(32, 32, 8),
                                                             n_phases=4),
                                    vendors=vendors, write_truth_maps=False)
    pd.testing.assert_frame_equal(written, design[0])
    assert (tmp_path / "sessions.tsv").read_text() == table_text(design[0])
    assert (tmp_path / "lesions.tsv").read_text() == table_text(design[1])
    paths = ("dicom_dir", "lesion_roi", "marrow_roi")
    sheets = [tmp_path / "sessions.tsv", tmp_path / "lesions.tsv"]
    from_files = read_sheets(*sheets, path_columns=paths)
    from_design = read_sheets(*sheets, path_columns=paths, design=design)
    for a, b in zip(from_files, from_design, strict=True):
        pd.testing.assert_frame_equal(a, b)
    ses = from_files[0]
    assert len(ses) == len(design_cohort.sessions) >= 4      # 2-3 sessions per patient
    assert all(Path(p).is_file() for c in ("lesion_roi", "marrow_roi") for p in ses[c])
    assert all(any(Path(p).iterdir()) for p in ses["dicom_dir"])
    truth = pd.read_csv(tmp_path / "truth" / "sessions_truth.tsv", sep="\t")
    np.testing.assert_allclose(ses["hematocrit"], truth["hematocrit"], rtol=1e-5)


def test_instance_uids_unique_for_many_slices() -> None:
    """UIDs of (phase 1, slice 10) and (phase 11, slice 0) must differ (regression)."""
    from dce.io.dicom_write import _uid

    uids = {_uid("seed", "instance", p, z) for p in range(30) for z in range(30)}
    assert len(uids) == 900
