"""NIfTI + JSON (dcm2niix / BIDS) image input: dce.io.nifti_input.

Every input is written here with nibabel and json (no project code), with known voxel
values, affines, times and acquisition parameters, so the expected outputs are known
independently of the code under test.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from dce.io.nifti_input import (
    NiftiInputError,
    convert_nifti_session,
    image_source,
    load_dce_nifti,
    load_vfa_nifti,
)

SHAPE = (5, 4, 3)
N_T = 10
#: an oblique affine (rotation about z by 20 deg, 1.5 x 1.5 x 4 mm voxels)
_C, _S = np.cos(np.radians(20)), np.sin(np.radians(20))
AFFINE = np.array([[1.5 * _C, -1.5 * _S, 0, -30.0],
                   [1.5 * _S, 1.5 * _C, 0, 12.5],
                   [0, 0, 4.0, -7.0],
                   [0, 0, 0, 1]])
#: dcm2niix-like identifiers that must never reach an output
CANARIES = {"PatientName": "CANARYNAME^X", "PatientID": "CANARYID77",
            "PatientBirthDate": "19230405", "AcquisitionDateTime": "1987-06-05T07:13:17.5",
            "InstitutionName": "CANARYHOSPITAL", "InstitutionAddress": "1 CANARYSTREET",
            "DeviceSerialNumber": "CANARYSERIAL9", "StationName": "CANARYSTATION",
            "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.77777",
            "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.88888",
            "ReferringPhysicianName": "CANARYDOC", "ProtocolName": "CANARYPROTO"}


def write(path: Path, data: np.ndarray, side: dict[str, Any] | None,
          affine: np.ndarray = AFFINE, *, sform_code: int = 1, qform_code: int = 1) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=sform_code)
    img.set_qform(affine, code=qform_code)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    if side is not None:
        name = path.name.replace(".nii.gz", ".json").replace(".nii", ".json")
        (path.parent / name).write_text(json.dumps(side), encoding="utf-8")
    return path


def dce_data(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3000, (*SHAPE, N_T)).astype(np.int16)


def dce_side(**kw: Any) -> dict[str, Any]:
    side: dict[str, Any] = {"Modality": "MR", "Manufacturer": "Siemens",
                            "MagneticFieldStrength": 3, "FlipAngle": 15,
                            "RepetitionTime": 0.0045, "EchoTime": 0.0018,
                            "SeriesDescription": "t1_vibe_dyn", "SeriesNumber": 7,
                            "SliceThickness": 4, "AcquisitionTime": "07:13:17.500000",
                            "VolumeTiming": [12.0 + 4.8 * i for i in range(N_T)]}
    side.update(kw)
    return {k: v for k, v in side.items() if v is not None}


# --------------------------------------------------------------------------- DCE


def test_dce_volume_timing_units_and_voxels(tmp_path: Path) -> None:
    data = dce_data()
    p = write(tmp_path / "sub-1_ses-1_dce.nii.gz", data, dce_side())
    d = load_dce_nifti(p)
    assert d.data.dtype == np.float32 and np.array_equal(d.data, data.astype(np.float32))
    assert np.allclose(d.affine, AFFINE, atol=1e-6)
    assert np.allclose(d.t_s, 4.8 * np.arange(N_T))          # relative to the first volume
    m = d.meta
    assert (m["FlipAngle"], m["RepetitionTime"], m["EchoTime"],
            m["MagneticFieldStrength"]) == (15.0, 0.0045, 0.0018, 3.0)
    assert m["VolumeTiming"] == pytest.approx(list(4.8 * np.arange(N_T)))
    assert m["TimingSource"] == "sidecar VolumeTiming"
    assert m["VoxelSize_mm"] == pytest.approx([1.5, 1.5, 4.0])
    assert m["PhaseSpacing_s"] == pytest.approx(4.8) and not m["PhaseSpacingUneven"]
    assert "sform (code 1)" in m["AxisConvention"]


def test_dce_frame_times_and_acquisition_time_list(tmp_path: Path) -> None:
    t = [0.0, 3.0, 6.5, 10.0, 14.0, 18.0, 22.0, 30.0, 40.0, 50.0]
    p = write(tmp_path / "a.nii.gz", dce_data(), dce_side(VolumeTiming=None,
                                                         FrameTimesStart=[v + 5 for v in t]))
    d = load_dce_nifti(p)
    assert np.allclose(d.t_s, t) and d.meta["TimingSource"] == "sidecar FrameTimesStart"
    assert d.meta["PhaseSpacingUneven"]
    # a per-volume AcquisitionTime list running past midnight
    clock = [f"23:59:{50 + v:09.6f}" if 50 + v < 60 else f"00:00:{50 + v - 60:09.6f}"
             for v in t[:5]]
    clock += [f"00:00:{50 + v - 60:09.6f}" for v in t[5:]]
    p = write(tmp_path / "b.nii.gz", dce_data(), dce_side(VolumeTiming=None,
                                                         AcquisitionTime=clock))
    d = load_dce_nifti(p)
    assert np.allclose(d.t_s, t, atol=1e-6)
    assert d.meta["TimingSource"] == "sidecar AcquisitionTime"
    # two keys that agree are fine
    p = write(tmp_path / "c.nii.gz", dce_data(), dce_side(FrameTimesStart=[v + 1 for v in
                                                                          dce_side()["VolumeTiming"]]))
    assert np.allclose(load_dce_nifti(p).t_s, 4.8 * np.arange(N_T))


@pytest.mark.parametrize("side, words", [
    (dce_side(VolumeTiming=None), ["no per-volume timing", "single AcquisitionTime",
                                   "VolumeTiming", "dce_times_s"]),
    (dce_side(VolumeTiming=None, AcquisitionTime=None), ["no per-volume timing",
                                                        "VolumeTiming", "dce_times_s"]),
    (dce_side(VolumeTiming=[4.8 * i for i in range(N_T - 1)]),
     ["VolumeTiming has 9 values", "10 volumes"]),
    (dce_side(VolumeTiming=[0, 5, 10, 10, 20, 25, 30, 35, 40, 45]),
     ["VolumeTiming is not increasing", "volume 3"]),
    (dce_side(FrameTimesStart=[5.0 * i for i in range(N_T)]),
     ["ambiguous timing", "VolumeTiming and FrameTimesStart disagree"]),
    (dce_side(VolumeTiming="0 4.8 9.6"), ["VolumeTiming must be a list"]),
    (dce_side(RepetitionTime=4.5), ["RepetitionTime 4.5 looks like ms", "in s"]),
    (dce_side(EchoTime=1.8), ["EchoTime 1.8 looks like ms"]),
    (dce_side(RepetitionTime=None), ["RepetitionTime (s) is missing"]),
    (dce_side(FlipAngle=0.26), ["FlipAngle [0.26] looks like radians", "deg"]),
    (dce_side(FlipAngle=None), ["FlipAngle (deg) is missing"]),
    (dce_side(MagneticFieldStrength=30000), ["MagneticFieldStrength 30000", "in T"]),
])
def test_dce_bad_sidecar_names_file_and_key(tmp_path: Path, side: dict[str, Any],
                                            words: list[str]) -> None:
    p = write(tmp_path / "sub-1_dce.nii.gz", dce_data(), side)
    with pytest.raises(NiftiInputError) as exc:
        load_dce_nifti(p)
    msg = str(exc.value)
    assert str(tmp_path / "sub-1_dce.json") in msg
    assert all(w in msg for w in words), msg


def test_dce_timing_override(tmp_path: Path) -> None:
    t = [0.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 20.0, 30.0, 40.0]
    p = write(tmp_path / "x.nii.gz", dce_data(), dce_side(VolumeTiming=None))
    f = tmp_path / "times.tsv"
    f.write_text("time_s\n" + "\n".join(str(v + 100) for v in t) + "\n", encoding="utf-8")
    d = load_dce_nifti(p, times=f)
    assert np.allclose(d.t_s, t) and d.meta["TimingSource"] == "sessions.tsv column dce_times_s"
    assert np.allclose(load_dce_nifti(p, times=t).t_s, t)
    with pytest.raises(NiftiInputError, match="has 9 values but the image has 10"):
        load_dce_nifti(p, times=t[:-1])
    f.write_text("0\t1\n", encoding="utf-8")
    with pytest.raises(NiftiInputError, match="one column"):
        load_dce_nifti(p, times=f)
    # the column wins over a sidecar that disagrees, with a note
    p = write(tmp_path / "y.nii.gz", dce_data(), dce_side())
    d = load_dce_nifti(p, times=t)
    assert np.allclose(d.t_s, t)
    assert any("VolumeTiming disagrees" in n for n in d.meta["Notes"])
    assert any("VolumeTiming disagrees" in n for n in d.meta["TimingWarnings"])


def test_dce_affine_qform_fallback_and_no_orientation(tmp_path: Path) -> None:
    other = AFFINE.copy()
    other[:3, 3] += [5, -3, 2]
    img = nib.Nifti1Image(dce_data(), other)
    img.set_sform(other, code=0)
    img.set_qform(AFFINE, code=1)
    nib.save(img, tmp_path / "q.nii.gz")
    (tmp_path / "q.json").write_text(json.dumps(dce_side()), encoding="utf-8")
    d = load_dce_nifti(tmp_path / "q.nii.gz")
    assert np.allclose(d.affine, AFFINE, atol=1e-5)
    assert "qform (code 1)" in d.meta["AxisConvention"]
    p = write(tmp_path / "n.nii.gz", dce_data(), dce_side(), sform_code=0, qform_code=0)
    with pytest.raises(NiftiInputError, match="neither a valid sform nor a valid qform"):
        load_dce_nifti(p)


def test_dce_shape_and_sidecar_errors(tmp_path: Path) -> None:
    p = write(tmp_path / "three.nii.gz", dce_data()[..., 0], dce_side())
    with pytest.raises(NiftiInputError, match="4-D with at least two volumes"):
        load_dce_nifti(p)
    p = write(tmp_path / "noside.nii.gz", dce_data(), None)
    with pytest.raises(NiftiInputError, match=r"noside\.json: JSON sidecar"):
        load_dce_nifti(p)
    bad = dce_data().astype(np.float32)
    bad[1, 1, 1, 3] = np.nan
    p = write(tmp_path / "nan.nii.gz", bad, dce_side())
    with pytest.raises(NiftiInputError, match="1 voxel value"):
        load_dce_nifti(p)


# --------------------------------------------------------------------------- VFA


def test_vfa_4d_list_and_3d_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vols = rng.uniform(10, 900, (*SHAPE, 3)).astype(np.float32)
    side = {"RepetitionTime": 0.0045, "EchoTime": 0.0018, "MagneticFieldStrength": 3}
    p4 = write(tmp_path / "vfa4d.nii.gz", vols, side | {"FlipAngle": [15, 2, 5]})
    v = load_vfa_nifti([p4])
    assert v.flip_angles_deg.tolist() == [2.0, 5.0, 15.0] and v.tr_s == 0.0045
    assert np.array_equal(v.data, vols[..., [1, 2, 0]])             # sorted by flip angle
    assert v.meta["FlipAngles_deg"] == [2.0, 5.0, 15.0]
    files = [write(tmp_path / f"sub-1_flip-{i}_VFA.nii.gz", vols[..., i],
                   side | {"FlipAngle": fa}) for i, fa in enumerate([15, 2, 5], start=0)]
    v3 = load_vfa_nifti(files)
    assert np.array_equal(v3.data, v.data) and np.allclose(v3.affine, AFFINE, atol=1e-6)


@pytest.mark.parametrize("case, words", [
    ("scalar_fa_4d", ["does not fit the 3 volume(s)", "list with one flip angle per volume"]),
    ("short_list", ["FlipAngle has 2 values but the image has 3 volumes"]),
    ("duplicate", ["occurs twice"]),
    ("one", ["only one flip angle"]),
    ("tr_differs", ["RepetitionTime differs"]),
    ("tr_ms", ["RepetitionTime 4.5 looks like ms"]),
    ("grid", ["all VFA images need one grid"]),
])
def test_vfa_errors(tmp_path: Path, case: str, words: list[str]) -> None:
    vols = np.ones((*SHAPE, 3), np.float32)
    side = {"RepetitionTime": 0.0045}
    files: list[Path]
    if case == "scalar_fa_4d":
        files = [write(tmp_path / "v.nii.gz", vols, side | {"FlipAngle": 5})]
    elif case == "short_list":
        files = [write(tmp_path / "v.nii.gz", vols, side | {"FlipAngle": [2, 5]})]
    else:
        fas, trs = [2, 5, 15], [0.0045] * 3
        affs = [AFFINE] * 3
        if case == "duplicate":
            fas = [2, 5, 5]
        if case == "tr_differs":
            trs = [0.0045, 0.0045, 0.005]
        if case == "tr_ms":
            trs = [4.5] * 3
        if case == "grid":
            affs = [AFFINE, AFFINE, AFFINE @ np.diag([1, 1, 1.1, 1])]
        n = 1 if case == "one" else 3
        files = [write(tmp_path / f"f{i}.nii.gz", vols[..., i], {"RepetitionTime": trs[i],
                                                                 "FlipAngle": fas[i]}, affs[i])
                 for i in range(n)]
    with pytest.raises(NiftiInputError) as exc:
        load_vfa_nifti(files)
    assert all(w in str(exc.value) for w in words), str(exc.value)


# --------------------------------------------------------------------------- sheet row


def test_image_source_exactly_one(tmp_path: Path) -> None:
    row = {"subject": "P1", "session": "pre", "dicom_dir": "/data/P1/dicom",
           "dce_nifti": "sub-P1/perf/sub-P1_dce.nii.gz"}
    with pytest.raises(NiftiInputError) as exc:
        image_source(row, base_dir=tmp_path, sheet="s.tsv")
    assert "s.tsv: session P1/pre: both dicom_dir and dce_nifti" in str(exc.value)
    assert "exactly one image source" in str(exc.value)
    with pytest.raises(NiftiInputError, match=r"P1/pre: no image source.*dicom_dir.*dce_nifti"):
        image_source({"subject": "P1", "session": "pre", "dicom_dir": "", "dce_nifti": ""})
    with pytest.raises(NiftiInputError, match="vfa_nifti apply to dce_nifti sessions only"):
        image_source({"subject": "P1", "session": "pre", "dicom_dir": "d",
                      "vfa_nifti": "a.nii.gz"})
    src = image_source({"subject": "P1", "session": "pre", "dicom_dir": "/x/dicom",
                        "hematocrit": float("nan")})
    assert src.kind == "dicom" and src.inputs() == {"dicom": "/x/dicom"}


def test_image_source_nifti_columns(tmp_path: Path) -> None:
    row = {"subject": "P1", "session": "pre", "dicom_dir": "",
           "dce_nifti": "sub-P1/perf/sub-P1_dce.nii.gz",
           "vfa_nifti": "anat/a_flip-1_VFA.nii.gz; anat/a_flip-2_VFA.nii.gz",
           "dce_times_s": "0; 4.8; 9.6"}
    src = image_source(row, base_dir=tmp_path)
    assert src.kind == "nifti" and src.dce_times_s == (0.0, 4.8, 9.6)
    assert src.inputs() == {
        "dce_nifti": str(tmp_path / "sub-P1/perf/sub-P1_dce.nii.gz"),
        "dce_json": str(tmp_path / "sub-P1/perf/sub-P1_dce.json"),
        "vfa_nifti_1": str(tmp_path / "anat/a_flip-1_VFA.nii.gz"),
        "vfa_json_1": str(tmp_path / "anat/a_flip-1_VFA.json"),
        "vfa_nifti_2": str(tmp_path / "anat/a_flip-2_VFA.nii.gz"),
        "vfa_json_2": str(tmp_path / "anat/a_flip-2_VFA.json")}
    src = image_source(row | {"dce_times_s": "timing/p1.tsv"}, base_dir=tmp_path)
    assert src.dce_times_s == str(tmp_path / "timing/p1.tsv")
    assert src.inputs()["dce_times_s"] == str(tmp_path / "timing/p1.tsv")
    with pytest.raises(NiftiInputError, match=r"column dce_nifti: 'x\.img' is not a \.nii"):
        image_source(row | {"dce_nifti": "x.img"})


# --------------------------------------------------------------------------- session


def test_convert_session_outputs_without_identifiers(tmp_path: Path) -> None:
    data = dce_data(3)
    src = tmp_path / "bids" / "sub-CANARYNAME" / "ses-1"
    dce = write(src / "perf" / "sub-1_ses-1_dce.nii.gz", data, dce_side(**CANARIES))
    vols = np.random.default_rng(4).uniform(10, 900, (*SHAPE, 2)).astype(np.float32)
    vfa = [write(src / "anat" / f"sub-1_ses-1_flip-{i + 1}_VFA.nii.gz", vols[..., i],
                 {"RepetitionTime": 0.0045, "FlipAngle": fa, **CANARIES})
           for i, fa in enumerate([3, 12])]
    lines: list[str] = []
    out = tmp_path / "out"
    written = convert_nifti_session(dce, out, subject="P1", session="pre", vfa_nifti=vfa,
                                    report=lines.append)
    assert sorted(p.name for p in out.iterdir()) == [
        "sub-P1_ses-pre_dce.json", "sub-P1_ses-pre_dce.nii.gz",
        "sub-P1_ses-pre_vfa.json", "sub-P1_ses-pre_vfa.nii.gz"]
    assert set(written) == {"dce", "dce_json", "vfa", "vfa_json"}
    img: Any = nib.load(written["dce"])
    assert np.array_equal(np.asanyarray(img.dataobj), data.astype(np.float32))
    assert np.allclose(img.affine, AFFINE, atol=1e-5)
    side = json.loads(written["dce_json"].read_text())
    assert side["VolumeTiming"] == pytest.approx(list(4.8 * np.arange(N_T)))
    vside = json.loads(written["vfa_json"].read_text())
    assert vside["FlipAngles_deg"] == [3.0, 12.0] and vside["RepetitionTime"] == 0.0045
    assert any("NIfTI" in ln for ln in lines)
    blobs = [p.read_bytes() for p in out.iterdir()]
    blobs = [gzip.decompress(b) if p.name.endswith(".gz") else b
             for b, p in zip(blobs, out.iterdir(), strict=True)]
    blobs.append("\n".join(lines).encode())
    needles = [*CANARIES.values(), "CANARYNAME", "07:13:17", "1987"]
    for blob in blobs:
        for needle in needles:
            assert needle.encode() not in blob, needle


def test_convert_session_invalid_vfa_writes_nothing(tmp_path: Path) -> None:
    dce = write(tmp_path / "in" / "d.nii.gz", dce_data(), dce_side())
    vfa = write(tmp_path / "in" / "v.nii.gz", np.ones((*SHAPE, 2), np.float32),
                {"RepetitionTime": 0.0045, "FlipAngle": 5})
    with pytest.raises(NiftiInputError, match="does not fit"):
        convert_nifti_session(dce, tmp_path / "out", subject="P1", session="pre",
                              vfa_nifti=[vfa])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
