"""Header-based series detection (issue 13, item 1): DCE, VFA, B1 map, derived series.

The visits are written here with pydicom (tests/test_dicom.py's ``write_classic``) or,
for the B1 maps, with the project's writer (dce.io.dicom_write.write_b1map, which shares
no code with the reader).  Descriptions are chosen so that no name-based rule could find
them; the truth is which series the test wrote as what, and their pixel values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_dicom import random_stored, write_classic

from dce.cli import main
from dce.io import DicomError, classify_series, discover_series, load_vfa, read_nifti
from dce.io import dicom_write as dw
from dce.io.b1 import session_b1
from dce.io.convert import convert_visit

NC, NR, NZ = 4, 3, 2  # columns, rows, slices
ORIGIN = (-20.0, -30.0, 10.0)
DAY = "20240102"  # AcquisitionDate: with the clock times, tells pre- from post-contrast


def write_dce(folder: Path, *, desc: str = "Ax 3D T1", seed: int = 0,
              **kw: Any) -> np.ndarray:
    stored = random_stored((NC, NR, NZ, 5), seed=seed)
    kw.setdefault("start_clock_s", 36600.0)  # 10:10, after the VFA series
    kw["extra"] = {"AcquisitionDate": DAY, **kw.get("extra", {})}
    write_classic(folder / f"dce{seed}", stored, desc=desc, fa=12.0, **kw)
    return stored


def write_vfa_series(folder: Path, descs: list[str], fas: list[float], *,
                     one_series: bool = False, seed: int = 1, **kw: Any) -> np.ndarray:
    """VFA volumes (NC, NR, NZ, n_fa), one series per angle or one multi-angle series."""
    stored = random_stored((NC, NR, NZ, len(fas)), seed=seed)
    kw["extra"] = {"AcquisitionDate": DAY, **kw.get("extra", {})}
    if one_series:
        ov = {(k, t): {"FlipAngle": fas[t]} for k in range(NZ) for t in range(len(fas))}
        write_classic(folder / "vfa", stored, desc=descs[0], override=ov,
                      times_s=[20.0 * t for t in range(len(fas))], **kw)
    else:
        for t, (d, fa) in enumerate(zip(descs, fas, strict=True)):
            write_classic(folder / f"vfa{t}", stored[..., t:t + 1], desc=d, fa=fa,
                          start_clock_s=36000.0 + 20 * t, **kw)
    return stored


@pytest.mark.parametrize(("descs", "fas", "one_series"), [
    (["ax flip 5", "ax flip 10", "ax flip 15"], [5.0, 10.0, 15.0], False),  # QIBA style
    (["MFA"], [2.0, 5.0, 10.0, 15.0], True),  # CAM-DCE-DRO style
    (["VFA"], [3.0, 15.0], True),
    (["T1 map FA2", "T1 map FA10"], [2.0, 10.0], False),
    (["", ""], [4.0, 18.0], False),  # no description at all
], ids=["flip", "MFA", "VFA", "T1-map-FA", "no-description"])
def test_vfa_found_from_headers(tmp_path: Path, descs: list[str], fas: list[float],
                                one_series: bool) -> None:
    vfa = write_vfa_series(tmp_path / "dicom", descs, fas, one_series=one_series)
    dce = write_dce(tmp_path / "dicom", desc="")  # the DCE series has no name either
    roles = classify_series(discover_series(tmp_path / "dicom"))
    assert sorted(s.description for s in roles.vfa) == sorted(descs)
    assert roles.dce().n_frames == NZ * 5
    paths = convert_visit(tmp_path / "dicom", tmp_path / "out", subject="S", session="T")
    data, _, meta = read_nifti(paths["vfa"])
    order = np.argsort(fas)
    np.testing.assert_array_equal(data, vfa[..., order].astype(np.float32))
    assert meta["FlipAngles_deg"] == sorted(fas)
    d, _, dmeta = read_nifti(paths["dce"])
    np.testing.assert_array_equal(d, dce.astype(np.float32))
    assert dmeta["VolumeTiming"] == [0.0, 6.0, 12.0, 18.0, 24.0]


def test_vfa_off_grid_or_post_contrast_is_not_taken(tmp_path: Path) -> None:
    write_dce(tmp_path)
    write_vfa_series(tmp_path, ["flip 5", "flip 10"], [5.0, 10.0])
    # a third angle on another grid, and a post-contrast volume on the DCE grid
    write_classic(tmp_path / "other_grid", random_stored((NC, NR, NZ, 1)), desc="flip 15",
                  fa=15.0, origin=(-20.0, -30.0, 40.0))
    write_classic(tmp_path / "post", random_stored((NC, NR, NZ, 1)), desc="T1 post",
                  fa=20.0, start_clock_s=37800.0, extra={"AcquisitionDate": DAY})
    roles = classify_series(discover_series(tmp_path))
    assert sorted(s.description for s in roles.vfa) == ["flip 10", "flip 5"]
    text = "\n".join(roles.lines())
    assert "'flip 15' (series 7, 2 files, 2 frames): other: single phase, FA 15 deg, but " \
           "not on the DCE grid (slice positions differ)" in text
    assert "'T1 post' (series 7, 2 files, 2 frames): other: single phase, FA 20 deg, but " \
           "acquired after the DCE series started (post-contrast)" in text
    # the SeriesDescription pattern overrides the header rules
    v = load_vfa(tmp_path, pattern=r"^flip (5|10)$")
    np.testing.assert_allclose(v.flip_angles_deg, [5, 10])


def test_derived_series_ignored(tmp_path: Path) -> None:
    dce = write_dce(tmp_path, desc="Ax dyn")
    write_dce(tmp_path, desc="Ax dyn", seed=7,  # a subtraction that keeps the name
              extra={"ImageType": ["DERIVED", "SECONDARY", "SUBTRACTION"]})
    write_dce(tmp_path, desc="Ax dyn MOCO", seed=8)
    write_dce(tmp_path, desc="Ax dyn", seed=9, extra={"ImageType": ["DERIVED", "PRIMARY",
                                                                   "MIP"]})
    roles = classify_series(discover_series(tmp_path))
    assert [r.role for r in roles.roles].count("derived") == 3
    paths = convert_visit(tmp_path, tmp_path / "out", subject="S", session="T")
    data, _, _ = read_nifti(paths["dce"])
    np.testing.assert_array_equal(data, dce.astype(np.float32))


def test_two_dce_candidates_error_and_pattern_override(tmp_path: Path) -> None:
    write_dce(tmp_path, desc="Ax 3D T1 A")
    other = write_dce(tmp_path, desc="Ax 3D T1 B", seed=3)
    with pytest.raises(DicomError) as exc:
        convert_visit(tmp_path, tmp_path / "out", subject="S", session="T")
    msg = str(exc.value)
    assert "2 series match the DCE series by headers" in msg
    assert "convert.dce_pattern" in msg and "--dce-pattern" in msg
    assert msg.count("DCE: dynamic: 5 phases x 2 slice(s), FA 12 deg") == 2
    paths = convert_visit(tmp_path, tmp_path / "out", subject="S", session="T",
                          dce_pattern=r"T1 B$")
    data, _, meta = read_nifti(paths["dce"])
    np.testing.assert_array_equal(data, other.astype(np.float32))
    assert meta["SeriesDescription"] == "Ax 3D T1 B"


def test_no_vfa_converts_and_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dce = write_dce(tmp_path / "dicom", desc="Ax 3D T1")
    out = tmp_path / "out"
    code = main(["convert", str(tmp_path / "dicom"), str(out), "--subject", "S", "--session",
                 "T"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "WARNING: no VFA series in this visit" in err and "t1.missing_vfa" in err
    assert "VFA: none found" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["sub-S_ses-T_dce.json",
                                                     "sub-S_ses-T_dce.nii.gz"]
    data, _, _ = read_nifti(out / "sub-S_ses-T_dce.nii.gz")
    np.testing.assert_array_equal(data, dce.astype(np.float32))
    code = main(["convert", str(tmp_path / "dicom"), str(tmp_path / "o2"), "--subject", "S",
                 "--session", "T", "--require-vfa"])
    assert code == 2 and "no VFA series" in capsys.readouterr().err


# --------------------------------------------------------------------------- B1 maps


def b1_truth(shape: tuple[int, int, int]) -> np.ndarray:
    i, j, k = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    return 0.8 + 0.4 * (0.5 * i + 0.3 * j + 0.2 * k)  # 0.8 .. 1.2


B1_AFFINE = np.array([[-6.0, 0, 0, 25.0], [0, -5.0, 0, 40.0], [0, 0, 8.0, 2.0],
                      [0, 0, 0, 1.0]])  # its own, coarser grid


@pytest.mark.parametrize(("convention", "scale"), [
    ("siemens_tfl_b1map", 800.0), ("percent", 100.0), ("factor", 1.0)])
def test_b1_map_detected_and_written_raw(tmp_path: Path, convention: str,
                                         scale: float) -> None:
    write_dce(tmp_path / "dicom")
    write_vfa_series(tmp_path / "dicom", ["a", "b"], [3.0, 15.0])
    truth = b1_truth((6, 5, 3))
    dw.write_b1map(tmp_path / "dicom" / "b1", truth, B1_AFFINE, convention=convention,
                   patient_name="X", patient_id="Y")
    roles = classify_series(discover_series(tmp_path / "dicom"))
    b1 = roles.b1()
    assert b1 is not None and len(roles.vfa) == 2
    paths = convert_visit(tmp_path / "dicom", tmp_path / "out", subject="S", session="T")
    assert paths["b1"].name == "sub-S_ses-T_desc-raw_B1map.nii.gz"
    data, affine, meta = read_nifti(paths["b1"])
    assert data.shape == truth.shape
    np.testing.assert_allclose(data, truth * scale, atol=1.2 * scale / 65000.0 * 1.3)
    np.testing.assert_allclose(affine, B1_AFFINE, atol=1e-4)
    assert meta["B1Convention"] == convention
    assert meta["ImageType"] == dw.B1_CONVENTIONS[convention]["image_type"]
    assert meta["Manufacturer"]
    text = json.dumps(meta)
    for needle in ("X", "Y"):  # patient name / ID never copied
        assert f'"{needle}"' not in text
    # end to end: the conversion record (as rule convert writes it) -> the B1 factor of
    # the T1 and concentration steps, the convention taken from the sidecar (auto)
    record = tmp_path / "out" / "sub-S_ses-T_convert.json"
    record.write_text(json.dumps({"b1": paths["b1"].name}), encoding="utf-8")
    b1s = session_b1(record, None, truth.shape, B1_AFFINE, convention="auto")
    assert b1s.factor is not None
    np.testing.assert_allclose(b1s.factor, truth, atol=1e-4)


def test_b1_by_description_only_has_unknown_convention(tmp_path: Path) -> None:
    write_dce(tmp_path / "dicom")
    write_classic(tmp_path / "dicom" / "b1", random_stored((NC, NR, NZ, 1), seed=5),
                  desc="B1 field", manufacturer="ACME", fa=60.0)
    lines: list[str] = []
    paths = convert_visit(tmp_path / "dicom", tmp_path / "out", subject="S", session="T",
                          report=lines.append)
    _, _, meta = read_nifti(paths["b1"])
    assert meta["B1Convention"] is None
    assert any("WARNING: B1 value convention not recognised" in ln for ln in lines)
    # two equally weak candidates: an error asking for convert.b1_pattern
    write_classic(tmp_path / "dicom" / "b1b", random_stored((NC, NR, NZ, 1), seed=6),
                  desc="B1 second", manufacturer="ACME", fa=60.0)
    with pytest.raises(DicomError, match=r"2 series qualify as the B1 map.*convert\.b1_pattern"):
        convert_visit(tmp_path / "dicom", tmp_path / "o2", subject="S", session="T")
    paths = convert_visit(tmp_path / "dicom", tmp_path / "o3", subject="S", session="T",
                          b1_pattern="second")
    _, _, meta = read_nifti(paths["b1"])
    assert meta["SeriesDescription"] == "B1 second"


def test_tfl_b1map_map_preferred_over_its_anatomical_image(tmp_path: Path) -> None:
    """Siemens tfl_b1map writes an anatomical image and the flip angle map, same name."""
    write_dce(tmp_path / "dicom")
    truth = b1_truth((6, 5, 3))
    dw.write_b1map(tmp_path / "dicom" / "anat", truth * 0 + 0.5, B1_AFFINE, series_number=5,
                   image_type=["ORIGINAL", "PRIMARY", "M", "ND"], patient_name="X",
                   patient_id="Y")
    dw.write_b1map(tmp_path / "dicom" / "map", truth, B1_AFFINE, series_number=6,
                   patient_name="X", patient_id="Y")
    roles = classify_series(discover_series(tmp_path / "dicom"))
    assert len(roles.b1_candidates) == 2
    b1 = roles.b1()
    assert b1 is not None and b1.series_number == 6
    assert "ImageType ORIGINAL/PRIMARY/FLIP ANGLE MAP/ND" in roles.reason(b1)
