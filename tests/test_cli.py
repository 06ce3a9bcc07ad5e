"""Tests of the ``dce`` command line (dce.cli) and dce.io.convert.convert_visit.

Phantom sessions (dce.phantom) are written as DICOM in each vendor style
(dce.io.dicom_write), converted with ``dce convert`` in-process and compared with the
generator's truth.  The validation messages themselves are tested at library level in
tests/test_dicom.py; here each case is run once through the CLI to check the contract:
exit code 2, one ``error: ...`` line naming the series, no traceback, no output files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
from wfutil import text_blobs

from dce import __version__
from dce import phantom as ph
from dce.cli import main
from dce.io import convert as conv
from dce.io import dicom_write as dw
from dce.io.nifti import read_nifti

# small geometry with the default field of view: 24 x 24 x 4 voxels, 12 phases at 5 s
ACQ = ph.Acquisition(matrix=(24, 24, 4), voxel_mm=(7.2, 7.2, 12.5), n_phases=12)
UNEVEN_T = (0.0, 4.0, 8.0, 12.0, 16.0, 20.0, 30.0, 40.0, 55.0, 70.0, 90.0, 120.0)
DCE_DESC = dw.DCE_DESCRIPTIONS


@pytest.fixture(scope="module")
def session() -> ph.SessionPhantom:
    return ph.make_session(seed=11, acquisition=ACQ)


def write_visit(folder: Path, s: ph.SessionPhantom, vendor: str, *, vfa: bool = True,
                shuffle: bool = True, patient_name: str = "PHANTOM^A",
                patient_id: str = "PH1", patient_birth_date: str = "",
                study_datetime: datetime = datetime(2000, 1, 1, 8, 0, 0),
                extra_tags: dict[str, Any] | None = None) -> list[Path]:
    """A visit like dce.io.dicom_write.write_cohort_dicom writes it (VFA then DCE)."""
    acq = s.acquisition
    common: dict[str, Any] = {
        "vendor": vendor, "tr_s": acq.tr_s, "te_s": acq.te_s,
        "field_strength_t": acq.field_strength_t, "patient_name": patient_name,
        "patient_id": patient_id, "patient_birth_date": patient_birth_date,
        "study_datetime": study_datetime, "uid_seed": f"cli-test|{vendor}",
        "shuffle_instance_numbers": shuffle, "extra_tags": extra_tags}
    paths: list[Path] = []
    if vfa:
        assert s.vfa_signal is not None
        paths += dw.write_vfa(folder, s.vfa_signal, s.vfa_flip_angles_deg, s.affine,
                              separate_series=vendor in ("ge", "siemens"),
                              series_description=dw.VFA_DESCRIPTIONS[vendor], series_number=3,
                              series_offset_s=60.0, **common)
    paths += dw.write_series(folder, s.signal, s.t_s, s.affine,
                             flip_angle_deg=acq.flip_angle_deg,
                             series_description=DCE_DESC[vendor], series_number=20,
                             series_offset_s=300.0, **common)
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def quant_tol(x: np.ndarray, vendor: str) -> float:
    """Half a stored step of dce.io.dicom_write (module notes: scanner units, or the
    Philips step max / 4095), with float32 margin."""
    step = float(np.max(x)) / 4095.0 if vendor == "philips" else 1.0
    return 0.5 * step * (1 + 1e-5)


def assert_error(code: int, err: str, out_dir: Path, *fragments: str) -> None:
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    assert not out_dir.exists() or not any(out_dir.iterdir())


# --------------------------------------------------------------------------- help, version


def test_help_via_console_script() -> None:
    exe = Path(sys.executable).with_name("dce")
    if not exe.exists():
        pytest.skip("console script not installed (pip install -e .)")
    res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 0, res.stderr
    for word in ("convert", "demo", "--version", "usage: dce"):
        assert word in res.stdout
    res = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 0 and res.stdout.strip() == f"dce {__version__}"


def test_subcommand_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--subject", "--session", "--dce-pattern", "--vfa-pattern", "--no-vfa-ok",
                 "sub-<S>_ses-<T>_dce.nii.gz", "VolumeTiming", "FlipAngles_deg"):
        assert word in text
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--patients", "--seed", "--matrix", "--phases"):
        assert word in text
    for argv in ([], ["convert", "only_one_arg"], ["demo", "x", "--patients", "0"],
                 ["demo", "x", "--vendors", "toshiba"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("vendor", dw.VENDORS)
def test_convert_vendor_styles_back_to_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             session: ph.SessionPhantom, vendor: str) -> None:
    s = session
    write_visit(tmp_path / "dicom", s, vendor)
    out_dir = tmp_path / "results" / "sub-P01" / "ses-pre"
    code, out, err = run(capsys, "convert", tmp_path / "dicom", out_dir)  # IDs from out_dir
    assert code == 0, err
    assert err == ""
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["sub-P01_ses-pre_dce.json", "sub-P01_ses-pre_dce.nii.gz",
                     "sub-P01_ses-pre_vfa.json", "sub-P01_ses-pre_vfa.nii.gz"]

    data, affine, meta = read_nifti(out_dir / "sub-P01_ses-pre_dce.nii.gz",
                                    require_sidecar=True)
    assert data.shape == s.signal.shape == (24, 24, 4, 12) and data.dtype == np.float32
    np.testing.assert_allclose(data, s.signal, atol=quant_tol(s.signal, vendor))
    np.testing.assert_allclose(affine, s.affine, atol=1e-4)
    np.testing.assert_allclose(meta["VolumeTiming"], s.t_s, atol=1e-5)
    assert meta["FlipAngle"] == 20.0 and meta["RepetitionTime"] == 0.0045
    assert meta["MagneticFieldStrength"] == 3.0
    assert meta["PhaseSpacing_s"] == 5.0 and meta["PhaseSpacingUneven"] is False
    img = nib.load(out_dir / "sub-P01_ses-pre_dce.nii.gz")
    assert isinstance(img, nib.Nifti1Image)
    assert img.header.get_zooms() == pytest.approx((7.2, 7.2, 12.5, 5.0))

    vdata, vaff, vmeta = read_nifti(out_dir / "sub-P01_ses-pre_vfa.nii.gz",
                                    require_sidecar=True)
    assert s.vfa_signal is not None
    np.testing.assert_allclose(vdata, s.vfa_signal, atol=quant_tol(s.vfa_signal, vendor))
    np.testing.assert_allclose(vaff, s.affine, atol=1e-4)
    assert vmeta["FlipAngles_deg"] == list(s.vfa_flip_angles_deg)
    assert vmeta["RepetitionTime"] == 0.0045

    # the printed summary
    assert f"DCE: '{DCE_DESC[vendor]}' (series 20" in out
    assert "24 x 24 x 4 voxels of 7.2 x 7.2 x 12.5 mm, 12 phases" in out
    assert "phase times 0 .. 55 s, spacing 5 s" in out
    assert f"timing from {meta['TimingSource']}" in out
    assert "5 flip angles (2, 5, 10, 15, 20 deg)" in out
    assert str(out_dir / "sub-P01_ses-pre_dce.nii.gz") in out
    expected_timing = {"ge": "TriggerTime", "siemens": "AcquisitionTime",
                       "philips": "AcquisitionTime", "enhanced": "FrameAcquisitionDateTime"}
    assert meta["TimingSource"].startswith(expected_timing[vendor])


def _time_order_instance_numbers(paths: list[Path]) -> list[int]:
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    key = sorted(dss, key=lambda d: (str(d.AcquisitionTime), float(d.SliceLocation)))
    return [int(d.InstanceNumber) for d in key]


def test_instance_numbers_not_in_time_order(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            session: ph.SessionPhantom) -> None:
    s = session
    # writer-shuffled InstanceNumbers (Siemens style: one AcquisitionTime per phase)
    paths = write_visit(tmp_path / "a", s, "siemens", vfa=False)
    inst = _time_order_instance_numbers(paths)
    assert inst != sorted(inst)
    # reversed: the last phase's last slice is instance 1
    paths_b = write_visit(tmp_path / "b", s, "siemens", vfa=False, shuffle=False)
    dss = sorted(((pydicom.dcmread(p), p) for p in paths_b),
                 key=lambda x: (str(x[0].AcquisitionTime), float(x[0].SliceLocation)))
    for n, (ds, p) in enumerate(dss):
        ds.InstanceNumber = len(dss) - n
        ds.save_as(p)
    inst_b = _time_order_instance_numbers(paths_b)
    assert inst_b == sorted(inst_b, reverse=True)
    for name in ("a", "b"):
        out_dir = tmp_path / "out" / name
        code, _, err = run(capsys, "convert", tmp_path / name, out_dir, "--subject", "X",
                           "--session", name, "--no-vfa-ok")
        assert code == 0, err
        data, _, meta = read_nifti(out_dir / f"sub-X_ses-{name}_dce.nii.gz")
        np.testing.assert_allclose(data, s.signal, atol=quant_tol(s.signal, "siemens"))
        np.testing.assert_allclose(meta["VolumeTiming"], s.t_s, atol=1e-5)
        assert not (out_dir / f"sub-X_ses-{name}_vfa.nii.gz").exists()


@pytest.mark.parametrize("vendor", ["siemens", "ge"])
def test_uneven_phase_spacing_allowed_and_recorded(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   vendor: str) -> None:
    acq = replace(ACQ, phase_times_s=UNEVEN_T, vfa_flip_angles_deg=None)
    s = ph.make_session(seed=2, acquisition=acq)
    write_visit(tmp_path / "dicom", s, vendor, vfa=False)
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "convert", tmp_path / "dicom", out_dir, "--subject", "P1",
                         "--session", "fu1", "--no-vfa-ok")
    assert code == 0, err
    data, _, meta = read_nifti(out_dir / "sub-P1_ses-fu1_dce.nii.gz")
    np.testing.assert_allclose(meta["VolumeTiming"], UNEVEN_T, atol=1e-5)
    assert meta["PhaseSpacingUneven"] is True
    assert meta["PhaseSpacingRange_s"] == [4.0, 30.0]
    np.testing.assert_allclose(data, s.signal, atol=quant_tol(s.signal, vendor))
    assert "UNEVEN spacing 4 .. 30 s" in out and "recorded in the sidecar" in out
    assert "VFA: none found" in out


# --------------------------------------------------------------------------- de-identification

CANARY_TAGS = {
    "InstitutionName": "CANARYHOSPITAL",
    "InstitutionAddress": "1 CANARYSTREET",
    "InstitutionalDepartmentName": "CANARYDEPT",
    "ReferringPhysicianName": "CANARYREF^DOC",
    "PerformingPhysicianName": "CANARYPERF^DOC",
    "OperatorsName": "CANARYOP^X",
    "AccessionNumber": "CANARYACC77",
    "StudyID": "CANARYSTU",
    "StationName": "CANARYSTATION",
    "DeviceSerialNumber": "CANARYSN55",
    "OtherPatientIDs": "CANARYOTHERID",
    "PatientAddress": "9 CANARYWHARF",
    "StudyDescription": "CANARYSTUDYDESC",
}
CANARY_PATIENT: dict[str, Any] = {
    "patient_name": "CANARYFAMILY^GIVEN", "patient_id": "CANARYPID123",
    "patient_birth_date": "19230405"}
CANARY_STUDY = datetime(1987, 6, 5, 7, 13, 17)  # StudyDate 19870605, StudyTime 071317


@pytest.mark.parametrize("vendor", dw.VENDORS)
def test_no_identifier_in_any_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     session: ph.SessionPhantom, vendor: str) -> None:
    dicom = tmp_path / "dicom"
    paths = write_visit(dicom, session, vendor, study_datetime=CANARY_STUDY,
                        extra_tags=CANARY_TAGS, **CANARY_PATIENT)
    uids: set[str] = set()
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        uids |= {str(ds[kw].value) for kw in ("StudyInstanceUID", "SeriesInstanceUID",
                                              "SOPInstanceUID", "FrameOfReferenceUID")}
    needles = [*CANARY_TAGS.values(), *CANARY_PATIENT.values(), "CANARY", "19870605",
               "071317", dw.UID_PREFIX, *uids]
    needles += [n.replace("^", " ") for n in needles if "^" in n]
    raw_in = b"".join(p.read_bytes() for p in paths)
    for needle in [*CANARY_TAGS.values(), *CANARY_PATIENT.values(), "19870605", "071317"]:
        assert needle.encode() in raw_in, needle  # the canaries are really in the input

    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "convert", dicom, out_dir, "--subject", "S1", "--session",
                         "base")
    assert code == 0, err
    blobs = text_blobs(out_dir)
    assert len(blobs) == 8  # four files and their names
    blobs["stdout"], blobs["stderr"] = out.encode(), err.encode()
    for where, blob in blobs.items():
        low = blob.lower()
        for needle in needles:
            assert needle.encode() not in blob, (needle, where)
            assert needle.lower().encode() not in low, (needle, where)


def test_error_messages_carry_no_identifier(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            session: ph.SessionPhantom) -> None:
    write_visit(tmp_path / "dicom", session, "ge", vfa=False, study_datetime=CANARY_STUDY,
                extra_tags=CANARY_TAGS, **CANARY_PATIENT)
    code, out, err = run(capsys, "convert", tmp_path / "dicom", tmp_path / "out",
                         "--subject", "S1", "--session", "base", "--require-vfa")
    assert_error(code, err, tmp_path / "out", "no VFA series")
    for needle in ["CANARY", "19870605", "071317", dw.UID_PREFIX]:
        assert needle.lower() not in (out + err).lower()


# --------------------------------------------------------------------------- errors


def test_no_dce_series(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       session: ph.SessionPhantom) -> None:
    assert session.vfa_signal is not None
    dw.write_vfa(tmp_path / "dicom", session.vfa_signal, session.vfa_flip_angles_deg,
                 session.affine, tr_s=0.0045, te_s=0.0015, patient_name="A", patient_id="B",
                 series_description="Sag VFA T1")
    (tmp_path / "dicom" / "notes.txt").write_text("not DICOM")
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "convert", tmp_path / "dicom", out_dir, "--subject", "A",
                         "--session", "B")
    assert_error(code, err, out_dir, f"error: {tmp_path / 'dicom'}: no DCE series",
                 "5 series found: 'Sag VFA T1 FA2' (series 10, 4 files, 4 frames)")
    assert "5 series found:" in out
    # an empty folder and a missing folder
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "convert", tmp_path / "empty", out_dir, "--subject", "A",
                       "--session", "B")
    assert_error(code, err, out_dir, "no DCE series", "no DICOM image series found")
    code, _, err = run(capsys, "convert", tmp_path / "nope", out_dir, "--subject", "A",
                       "--session", "B")
    assert_error(code, err, out_dir, f"{tmp_path / 'nope'}: no such file or folder")


def test_two_dce_series_and_patterns(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     session: ph.SessionPhantom) -> None:
    write_visit(tmp_path / "dicom" / "v1", session, "ge", vfa=False)
    write_visit(tmp_path / "dicom" / "v2", session, "siemens", vfa=False)
    out_dir = tmp_path / "out"
    args = ["convert", tmp_path / "dicom", out_dir, "--subject", "A", "--session", "B",
            "--no-vfa-ok"]
    code, _, err = run(capsys, *args)
    assert_error(code, err, out_dir, "2 series match the DCE", "in v1/", "in v2/",
                 "pass a more specific DCE pattern")
    code, _, err = run(capsys, *args, "--dce-pattern", "(")
    assert_error(code, err, out_dir, "DCE series pattern '(': invalid regular expression")
    code, out, err = run(capsys, *args, "--dce-pattern", "vibe")
    assert code == 0, err
    assert "DCE: 't1_vibe_sag_dyn'" in out
    # a single-volume series selected as DCE
    dw.write_series(tmp_path / "dicom" / "v3", session.signal[..., :1], [0.0], session.affine,
                    flip_angle_deg=20.0, tr_s=0.0045, te_s=0.0015, patient_name="A",
                    patient_id="B", series_description="pre dyn single", series_number=30)
    code, _, err = run(capsys, *args[:2], tmp_path / "out2", *args[3:], "--dce-pattern",
                       "single")
    assert_error(code, err, tmp_path / "out2", "DCE series 'pre dyn single'",
                 "only one phase")


def test_ids_required_and_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    session: ph.SessionPhantom) -> None:
    write_visit(tmp_path / "dicom", session, "ge", vfa=False)
    code, _, err = run(capsys, "convert", tmp_path / "dicom", tmp_path / "out")
    assert_error(code, err, tmp_path / "out", "cannot tell the subject and session",
                 "--subject")
    code, _, err = run(capsys, "convert", tmp_path / "dicom", tmp_path / "out", "--subject",
                       "P_01", "--session", "pre")
    assert_error(code, err, tmp_path / "out", "subject: IDs must be letters and digits")


def _edit(paths: list[Path], pick: Any, **tags: Any) -> None:
    for p in paths:
        ds = pydicom.dcmread(p)
        if pick(ds):
            for kw, val in tags.items():
                setattr(ds, kw, val)
            ds.save_as(p)


def _tpi(n: int) -> Any:
    return lambda ds: int(ds.get("TemporalPositionIdentifier", 0)) == n


def _break_missing_slice(paths: list[Path]) -> list[Path]:
    paths[7].unlink()
    return [p for p in paths if p.exists()]


def _break_missing_phase(paths: list[Path]) -> list[Path]:
    for p in paths:
        if _tpi(5)(pydicom.dcmread(p, stop_before_pixels=True)):
            p.unlink()
    return [p for p in paths if p.exists()]


def _break_duplicate(paths: list[Path]) -> list[Path]:
    shutil.copy(paths[3], paths[3].with_name("copy_of_an_image"))
    return paths


def _break_time_order(paths: list[Path]) -> list[Path]:
    dss = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in paths}
    t2 = next(str(d.AcquisitionTime) for d in dss.values() if _tpi(2)(d))
    t3 = next(str(d.AcquisitionTime) for d in dss.values() if _tpi(3)(d))
    _edit(paths, _tpi(2), AcquisitionTime=t3)
    _edit(paths, _tpi(3), AcquisitionTime=t2)
    return paths


def _break_flip_angle(paths: list[Path]) -> list[Path]:
    _edit(paths[5:6], lambda ds: True, FlipAngle="25")
    return paths


def _break_tr(paths: list[Path]) -> list[Path]:
    _edit(paths[9:10], lambda ds: True, RepetitionTime="5.5")
    return paths


@pytest.mark.parametrize(("vendor", "breaker", "fragments"), [
    ("ge", _break_missing_slice, ["incomplete grid, missing phase or slice",
                                  "has 11 of 12 phases"]),
    ("philips", _break_missing_phase, ["missing phase(s)", "[5] absent"]),
    ("ge", _break_duplicate, ["duplicated position within a phase", "copy_of_an_image"]),
    ("philips", _break_time_order, ["non-increasing phase times", "AcquisitionTime"]),
    ("ge", _break_flip_angle, ["mixed flip angle", "25 deg in 1 frame(s)"]),
    ("siemens", _break_tr, ["mixed repetition time (TR)", "5.5 ms in 1 frame(s)"]),
], ids=["missing-slice", "missing-phase", "duplicate", "time-order", "mixed-fa", "mixed-tr"])
def test_validation_errors_through_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       session: ph.SessionPhantom, vendor: str, breaker: Any,
                                       fragments: list[str]) -> None:
    paths = write_visit(tmp_path / "dicom", session, vendor)
    dce_paths = [p for p in paths
                 if pydicom.dcmread(p, stop_before_pixels=True).SeriesNumber == 20]
    breaker(sorted(dce_paths))
    out_dir = tmp_path / "results" / "sub-P9" / "ses-pre"
    code, _, err = run(capsys, "convert", tmp_path / "dicom", out_dir)
    assert_error(code, err, out_dir, f"error: DCE series '{DCE_DESC[vendor]}'", *fragments)


def test_invalid_vfa_leaves_no_dce_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          session: ph.SessionPhantom) -> None:
    paths = write_visit(tmp_path / "dicom", session, "ge")
    vfa = [p for p in paths if pydicom.dcmread(p, stop_before_pixels=True).SeriesNumber < 20]
    _edit(vfa[:1], lambda ds: True, RepetitionTime="7")
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "convert", tmp_path / "dicom", out_dir, "--subject", "A",
                       "--session", "B", "--no-vfa-ok")
    assert_error(code, err, out_dir, "VFA series", "mixed repetition time (TR)")


def test_failed_write_removes_partial_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             session: ph.SessionPhantom,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    write_visit(tmp_path / "dicom", session, "ge")
    real = conv.write_nifti

    def failing(path: Path, *args: Any, **kwargs: Any) -> Path:
        if "_vfa" in Path(path).name:
            raise OSError(28, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(conv, "write_nifti", failing)
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "convert", tmp_path / "dicom", out_dir, "--subject", "A",
                       "--session", "B")
    assert_error(code, err, out_dir, "sub-A_ses-B_vfa.nii.gz: No space left on device")


# --------------------------------------------------------------------------- library + demo


def test_convert_visit_returns_paths(tmp_path: Path, session: ph.SessionPhantom) -> None:
    write_visit(tmp_path / "dicom", session, "philips")
    lines: list[str] = []
    paths = conv.convert_visit(tmp_path / "dicom", tmp_path / "o", subject="P1", session="pre",
                               require_vfa=True, report=lines.append)
    assert set(paths) == {"dce", "dce_json", "vfa", "vfa_json"}
    assert all(p.exists() for p in paths.values())
    expected = conv.output_paths(tmp_path / "o", "P1", "pre")
    assert paths == {k: expected[k] for k in ("dce", "dce_json", "vfa", "vfa_json")}
    assert any(line.startswith("DCE: 'DCE_THRIVE_SAG'") for line in lines)
    assert "phase order from TemporalPositionIdentifier" in "\n".join(lines)
    quiet = conv.convert_visit(tmp_path / "dicom", tmp_path / "q", subject="P1", session="pre",
                               vfa_pattern="no such series")
    assert set(quiet) == {"dce", "dce_json"}
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == [
        "sub-P1_ses-pre_dce.json", "sub-P1_ses-pre_dce.nii.gz"]


def test_demo_then_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo = tmp_path / "demo"
    code, out, err = run(capsys, "demo", demo, "--patients", "2", "--seed", "4", "--matrix",
                         24, 24, 4, "--phases", 10, "--vendors", "philips", "enhanced")
    assert code == 0, err
    assert "2 patients" in out and "matrix 24 x 24 x 4" in out and "10 phases" in out
    table = pd.read_csv(demo / "sessions.tsv", sep="\t")
    assert set(table["vendor"]) == {"philips", "enhanced"}
    assert (demo / "lesions.tsv").exists()
    assert len(list(demo.rglob("*_ktrans_per_min.nii.gz"))) == len(table)
    # the demo's design (with its follow-up motion, dce.phantom.DEMO_MOTION)
    cohort = ph.demo_cohort(2, 4, matrix=(24, 24, 4), n_phases=10)
    assert cohort.specs[(table.iloc[0]["subject"], "pre")].acquisition.voxel_mm == \
        (7.2, 7.2, 12.5)
    row = table.iloc[-1]
    out_dir = tmp_path / "results" / f"sub-{row['subject']}" / f"ses-{row['session']}"
    code, out, err = run(capsys, "convert", demo / row["dicom_dir"], out_dir)
    assert code == 0, err
    data, affine, meta = read_nifti(out_dir / f"sub-{row['subject']}_ses-{row['session']}"
                                    "_dce.nii.gz")
    truth = cohort.session(row["subject"], row["session"])
    np.testing.assert_allclose(data, truth.signal, atol=quant_tol(truth.signal, row["vendor"]))
    np.testing.assert_allclose(affine, truth.affine, atol=1e-4)
    np.testing.assert_allclose(meta["VolumeTiming"], np.arange(10) * 5.0, atol=1e-5)
    sidecar = json.loads((out_dir / f"sub-{row['subject']}_ses-{row['session']}_vfa.json")
                         .read_text())
    assert sidecar["FlipAngles_deg"] == [2.0, 5.0, 10.0, 15.0, 20.0]
