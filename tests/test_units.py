"""Physical range checks with unit hints: library, command line, workflow configuration;
and the workflow's B1 map column.

Each wrong-unit value is the right value converted to the unit it is confused with
(T10 in ms, TR in ms, flip angle in radians, relaxivity per M per s, hematocrit and B1
in percent); the error must name the quantity, the value and the unit it looks like.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from numpy.typing import NDArray
from wfutil import B1_PERCENT, DEMO, RESULTS, sessions_sheet, snakemake

from dce._checks import check_config_units, check_hematocrit
from dce.cli import main
from dce.signal import signal_to_concentration
from dce.t1 import VFAModel

FA_DEG, TR_S, T10_S, R1 = 15.0, 0.004, 1.2, 4.5
HINTS = {
    "t10": r"t10_s: T1 of 1000 \(median\) looks like ms; T10 is in s",
    "tr": r"tr_s: repetition time 4 looks like ms; TR is in s",
    "fa": r"flip_angle_deg: flip angle\(s\) 0.261799 look like radians; flip angles are in "
          r"degrees",
    "r1": r"r1_per_mM_per_s: relaxivity 4500 looks like per M per s; r1 is per mM per s",
    "b1": r"b1: B1 factor median 100 looks like percent",
}


def _signal() -> NDArray[np.float64]:
    """SPGR signals (written out here) of 2 voxels: baseline then a step of R1."""
    a = np.deg2rad(FA_DEG)
    r1 = np.array([1 / T10_S] * 4 + [1 / T10_S + 2.0] * 4)
    e1 = np.exp(-TR_S * r1)
    s = 1000.0 * np.sin(a) * (1 - e1) / (1 - e1 * np.cos(a))
    return np.stack([s, 0.9 * s])


# --------------------------------------------------------------------------- library


@pytest.mark.parametrize(("override", "hint"), [
    ({"t10_s": 1000.0}, "t10"),                         # T1 in ms
    ({"t10_s": np.array([1000.0, 1400.0])}, "t10"),     # a T1 map in ms
    ({"tr_s": 4.0}, "tr"),                              # TR in ms
    ({"flip_angle_deg": np.deg2rad(FA_DEG)}, "fa"),     # radians
    ({"r1_per_mM_per_s": 4500.0}, "r1"),                # per M per s
    ({"b1": np.array([95.0, 105.0])}, "b1"),            # percent
])
def test_signal_to_concentration_unit_hints(override: dict[str, Any], hint: str) -> None:
    args: dict[str, Any] = {"t10_s": T10_S, "tr_s": TR_S, "flip_angle_deg": FA_DEG,
                            "r1_per_mM_per_s": R1, "baseline": 4, **override}
    if hint == "t10" and np.ndim(override["t10_s"]):
        pattern = r"t10_s: T1 of 1200 \(median\) looks like ms; T10 is in s"
    else:
        pattern = HINTS[hint]
    with pytest.raises(ValueError, match=pattern):
        signal_to_concentration(_signal(), **args)


def test_right_units_pass_and_give_the_step() -> None:
    res = signal_to_concentration(_signal(), t10_s=T10_S, tr_s=TR_S, flip_angle_deg=FA_DEG,
                                  r1_per_mM_per_s=R1, baseline=4)
    np.testing.assert_allclose(res.conc_mM[:, 4:], 2.0 / R1, rtol=1e-9)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"tr_s": 5.5}, r"tr_s: repetition time 5.5 looks like ms"),
    ({"flip_angle_deg": np.deg2rad([2.0, 5.0, 12.0])}, r"look like radians"),
    ({"b1": 100.0}, r"b1: B1 factor median 100 looks like percent"),
])
def test_vfa_unit_hints(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"flip_angle_deg": [2.0, 5.0, 12.0], "tr_s": 0.0055, **kwargs}
    with pytest.raises(ValueError, match=match):
        VFAModel(**args)


def test_vfa_degrees_with_small_first_angle_pass() -> None:
    """Only a list that is entirely <= 1.6 is taken for radians: 1.5, 3, 10 deg is fine."""
    assert VFAModel([1.5, 3.0, 10.0], 0.005).flip_angle_deg.tolist() == [1.5, 3.0, 10.0]


def test_hematocrit_percent() -> None:
    with pytest.raises(ValueError, match=r"hematocrit: 45 looks like percent; hematocrit is a "
                                         r"fraction"):
        check_hematocrit(45)
    assert check_hematocrit(0.45) == 0.45


def test_check_config_units() -> None:
    bad = {"acquisition": {"r1_per_mM_per_s": 4500, "hematocrit": 42},
           "t1": {"fallback_t10_s": 1200, "t1_range_s": [10, 20000]},
           "aif": {"blood_t10_s": 1650}}
    msgs = check_config_units(bad)
    assert len(msgs) == 5, msgs
    for key, words in [("acquisition.r1_per_mM_per_s", "looks like per M per s"),
                       ("acquisition.hematocrit", "looks like percent"),
                       ("t1.fallback_t10_s", "looks like ms"),
                       ("aif.blood_t10_s", "looks like ms"),
                       ("t1.t1_range_s", "looks like ms")]:
        assert any(m.startswith(key) and words in m for m in msgs), (key, msgs)
    good = {"acquisition": {"r1_per_mM_per_s": 4.5, "hematocrit": 0.42},
            "t1": {"fallback_t10_s": 1.2, "t1_range_s": [0.01, 20.0]},
            "aif": {"blood_t10_s": "literature"}}
    assert check_config_units(good) == []
    assert check_config_units({}) == []
    assert check_config_units({"acquisition": "oops"}) == []      # left to the schema


# --------------------------------------------------------------------------- command line


def _nifti(path: Path, data: NDArray[Any], affine: NDArray[Any],
           sidecar: dict[str, Any] | None = None) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine), path)
    if sidecar is not None:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(sidecar))
    return path


@pytest.mark.parametrize(("args", "hint"), [
    (["--t10-s", "1000"], "looks like ms; T10 is in s"),
    (["--t10-s", "1.2", "--tr-s", "4"], "looks like ms; TR is in s"),
    (["--t10-s", "1.2", "--flip-angle-deg", "0.26"], "look like radians"),
    (["--t10-s", "1.2", "--r1-per-mM-per-s", "4500"], "looks like per M per s"),
])
def test_cli_unit_hints(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                        hint: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["conc", str(tmp_path / "dce.nii.gz"), str(tmp_path / "c.nii.gz"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert hint in err, err
    assert not (tmp_path / "c.nii.gz").exists()


def test_cli_sidecar_in_wrong_units_and_b1(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Units from a sidecar are checked too; --b1 (percent, coarser grid) corrects the flip
    angle: the concentration of a voxel scanned at 1.1 x nominal comes back exact."""
    aff = np.diag([2.0, 2.0, 4.0, 1.0])
    b1_true = 1.1
    a = np.deg2rad(FA_DEG * b1_true)
    r1 = np.array([1 / T10_S] * 4 + [1 / T10_S + 2.0] * 4)
    e1 = np.exp(-TR_S * r1)
    sig = np.broadcast_to(800 * np.sin(a) * (1 - e1) / (1 - e1 * np.cos(a)), (4, 4, 2, 8))
    dce = _nifti(tmp_path / "dce.nii.gz", sig, aff,
                 {"FlipAngle": FA_DEG, "RepetitionTime": TR_S * 1000,   # TR in ms
                  "VolumeTiming": list(range(8))})
    out = tmp_path / "conc.nii.gz"
    assert main(["conc", str(dce), str(out), "--t10-s", "1.2"]) == 2
    assert "tr_s: repetition time 4 looks like ms; TR is in s" in capsys.readouterr().err
    assert not out.exists()

    _nifti(dce, sig, aff, {"FlipAngle": FA_DEG, "RepetitionTime": TR_S})
    b1 = _nifti(tmp_path / "b1.nii.gz", np.full((3, 3, 3), 100 * b1_true),
                np.diag([4.0, 4.0, 8.0, 1.0]))
    assert main(["conc", str(dce), str(out), "--t10-s", "1.2", "--b1", str(b1)]) == 0
    conc = np.asarray(nib.load(out).dataobj)  # type: ignore[attr-defined]
    np.testing.assert_allclose(conc[..., 4:], 2.0 / R1, rtol=1e-5)
    side = json.loads(out.with_name("conc.json").read_text())
    assert (side["B1Source"], side["B1Convention"], side["B1Median"]) == (
        "sheet file", "percent", 1.1)
    assert main(["conc", str(dce), str(out), "--t10-s", "1.2"]) == 0     # without: biased
    plain = np.asarray(nib.load(out).dataobj)  # type: ignore[attr-defined]
    assert abs(float(np.median(plain[..., 4:])) * R1 / 2.0 - 1.0) > 0.04   # 5.5 %


def test_cli_t1map_with_b1(tmp_path: Path) -> None:
    aff = np.diag([2.0, 2.0, 4.0, 1.0])
    fas = np.array([2.0, 5.0, 12.0])
    a = np.deg2rad(fas * 0.85)
    e1 = np.exp(-0.0055 / 1.4)
    sig = np.broadcast_to(900 * np.sin(a) * (1 - e1) / (1 - e1 * np.cos(a)), (3, 3, 2, 3))
    vfa = _nifti(tmp_path / "vfa.nii.gz", sig, aff,
                 {"FlipAngles_deg": fas.tolist(), "RepetitionTime": 0.0055})
    b1 = _nifti(tmp_path / "b1.nii.gz", np.full((3, 3, 2), 0.85), aff)
    out = tmp_path / "sub-X_T1map.nii.gz"
    assert main(["t1map", str(vfa), str(out), "--b1", str(b1)]) == 0
    t1 = np.asarray(nib.load(out).dataobj)  # type: ignore[attr-defined]
    np.testing.assert_allclose(t1, 1.4, rtol=1e-5)
    assert (tmp_path / "sub-X_M0map.nii.gz").exists()
    assert main(["t1map", str(vfa), str(out), "--flip-angles-deg", "0.03", "0.09",
                 "0.21"]) == 2


# --------------------------------------------------------------------------- workflow


@pytest.mark.workflow
def test_config_unit_hint_fails_the_dry_run(tmp_path: Path) -> None:
    """`snakemake -n` with a relaxivity per M per s fails at parse time with the hint,
    before any job (no demo cohort is written)."""
    with pytest.raises(Exception) as exc_info:
        snakemake(tmp_path, config={"acquisition": {"r1_per_mM_per_s": 4500}},
                  mode="dryrun")
    text = str(exc_info.value) + "".join(str(a) for a in exc_info.value.args)
    if exc_info.value.__cause__ is not None:
        text += str(exc_info.value.__cause__)
    assert "acquisition.r1_per_mM_per_s: relaxivity 4500 looks like per M per s" in text, text
    assert not (tmp_path / DEMO).exists()


@pytest.mark.workflow
def test_workflow_b1_map_column(run: Path) -> None:
    """The shared run's first session has a sheet b1_map (100 %, coarser shifted grid,
    wfutil.add_b1_map): its B1map is 1.0 on the DCE grid and the T1/conc sidecars record
    the sheet file; the other sessions record none."""
    sheet = sessions_sheet(run)
    found = 0
    for row in sheet.itertuples(index=False):
        stem = run / RESULTS / f"sub-{row.subject}" / f"ses-{row.session}" / \
            f"sub-{row.subject}_ses-{row.session}"
        b1 = np.asarray(nib.load(f"{stem}_B1map.nii.gz").dataobj)  # type: ignore[attr-defined]
        side = {k: json.loads(Path(f"{stem}_{k}.json").read_text())
                for k in ("B1map", "T1map", "conc")}
        if row.b1_map:
            found += 1
            np.testing.assert_allclose(b1, B1_PERCENT / 100.0, rtol=1e-6)
            assert side["B1map"]["B1Source"] == "sheet file"
            assert side["B1map"]["B1Convention"] == "percent"
            assert side["B1map"]["B1VoxelsOutsideMap"] == 0
            for k in ("T1map", "conc"):
                assert side[k]["B1Applied"] is True and side[k]["B1Median"] == 1.0
        else:
            assert np.isnan(b1).all() and side["B1map"]["B1Source"] == "none"
            assert side["conc"]["B1Applied"] is False
    assert found == 1
