"""Strict DICOM time parsing and timeline cross-checks (issue 13, item 2).

Every case is written here with pydicom (tests/test_dicom.py's ``write_classic``, which
shares no code with dce.io.dicom) and then corrupted tag by tag.  The truth is what the
test wrote: the phase times, and which file carries which bad value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from test_dicom import random_stored, write_classic

from dce.cli import main
from dce.io import DicomError, load_dce
from dce.io.dicom import parse_dt, parse_tm

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")

SHAPE = (3, 2, 3, 6)  # columns, rows, slices, phases
TIMES = [0.0, 6.0, 12.0, 18.0, 24.0, 30.0]


def _by_phase(paths: list[Path], n_slices: int) -> dict[int, list[Path]]:
    """write_classic writes cells slice-major, phase-minor (unless cells are skipped)."""
    n_phases = len(paths) // n_slices
    out: dict[int, list[Path]] = {t: [] for t in range(n_phases)}
    for i, p in enumerate(paths):
        out[i % n_phases].append(p)
    return out


def _set(paths: list[Path], **tags: Any) -> None:
    for p in paths:
        ds = pydicom.dcmread(p)
        for kw, val in tags.items():
            setattr(ds, kw, val)
        ds.save_as(p)


# --------------------------------------------------------------------------- parsers


@pytest.mark.parametrize(("value", "seconds"), [
    ("101010", 36610.0), ("101010.5", 36610.5), ("1010", 36600.0), ("10", 36000.0),
    ("235960.999999", 86400.999999), ("10:10:10.25", 36610.25), ("101010 ", 36610.0),
    ("", None), (None, None)])
def test_parse_tm_valid(value: Any, seconds: float | None) -> None:
    got = parse_tm(value)
    assert got == (None if seconds is None else pytest.approx(seconds, abs=1e-9))


@pytest.mark.parametrize(("value", "why"), [
    ("0969.500", "minutes 69 > 59"), ("0920.000", "fraction is only allowed after the seconds"),
    ("2500", "hours 25 > 23"), ("1261", "minutes 61 > 59"), ("101061", "seconds 61 > 60"),
    ("10:61:00", "minutes 61 > 59"), ("1010101", "not of the form"),
    ("101010.1234567", "1 to 6 digits"), ("ab", "not of the form")])
def test_parse_tm_invalid(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_tm(value)


def test_parse_dt() -> None:
    base = parse_dt("20240102")
    assert base is not None
    assert parse_dt("20240102101010.5+0100") == pytest.approx(base + 36610.5)
    for bad, why in (("202401021010.5", "fraction"), ("20241302101010", "invalid date"),
                     ("20240102256000", "hours 25"), ("2024-01-02", "not of the form")):
        with pytest.raises(ValueError, match=why):
            parse_dt(bad)


# --------------------------------------------------------------------------- invalid TM


@pytest.mark.parametrize("bad", ["0969.500", "2500", "1261", "0920.000"])
def test_invalid_tm_fails_naming_file_tag_value(tmp_path: Path, bad: str) -> None:
    paths = write_classic(tmp_path, random_stored(SHAPE), desc="Ax T1 3D", times_s=TIMES)
    last = _by_phase(paths, SHAPE[2])[5]
    _set(last, AcquisitionTime=bad, ContentTime=bad)  # no valid clock left for phase 5
    with pytest.raises(DicomError) as exc:
        load_dce(tmp_path)
    msg = str(exc.value)
    assert "AcquisitionTime (0008,0032)" in msg and repr(bad) in msg
    assert any(str(p) in msg for p in last), msg
    assert f"{len(last)} of {len(paths)} frames invalid" in msg


def test_qiba_like_export_fails_through_cli(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Like the Siemens-style QIBA v6 export: the last phases carry ``09MM.FFF`` times."""
    paths = write_classic(tmp_path / "dicom", random_stored(SHAPE), desc="dynamic",
                          times_s=TIMES, start_clock_s=9 * 3600.0)
    phases = _by_phase(paths, SHAPE[2])
    for t, value in ((4, "0920.000"), (5, "0969.500")):
        _set(phases[t], AcquisitionTime=value, ContentTime=value)
    out = tmp_path / "out"
    code = main(["convert", str(tmp_path / "dicom"), str(out), "--subject", "Q", "--session",
                 "v6"])
    err = capsys.readouterr().err
    assert code == 2
    assert ("AcquisitionTime (0008,0032) = '0920.000' is not a valid DICOM TM" in err
            or "AcquisitionTime (0008,0032) = '0969.500' is not a valid DICOM TM" in err)
    assert "6 of 18 frames invalid" in err
    assert "a fraction is only allowed after the seconds" in err
    assert not out.exists() or not any(out.iterdir())


def test_invalid_tm_fallback_is_loud(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """AcquisitionTime broken, ContentTime valid and confirmed by InstanceNumber."""
    stored = random_stored(SHAPE, seed=3)
    paths = write_classic(tmp_path / "dicom", stored, desc="Ax T1 3D", times_s=TIMES)
    last = _by_phase(paths, SHAPE[2])[5]
    _set(last, AcquisitionTime="0969.500")
    d = load_dce(tmp_path / "dicom")
    np.testing.assert_allclose(d.t_s, TIMES)
    np.testing.assert_array_equal(d.data, stored.astype(np.float32))
    assert d.meta["TimingSource"].startswith("ContentTime")
    (detail,) = d.timing_details  # report and log: file and value
    assert "FALLBACK" in detail and "'0969.500'" in detail and "InstanceNumber" in detail
    assert any(str(p) in detail for p in last)
    (warning,) = d.meta["TimingWarnings"]  # sidecar: no file name, no clock time
    assert warning == ("AcquisitionTime (0008,0032): 3 of 18 frames hold a value that is not "
                       "a valid DICOM TM (minutes 69 > 59; a fraction is only allowed after "
                       "the seconds (HHMMSS.FFFFFF)); FALLBACK: phase times from ContentTime "
                       "(0008,0033) instead, whose order agrees with InstanceNumber "
                       "(0020,0013) per slice position")
    # CLI: WARNING on stderr, exit 0, and the warning in the sidecar
    out = tmp_path / "out"
    code = main(["convert", str(tmp_path / "dicom"), str(out), "--subject", "A", "--session",
                 "B"])
    err = capsys.readouterr().err
    assert code == 0
    assert f"WARNING (timing): {detail}" in err
    meta = json.loads((out / "sub-A_ses-B_dce.json").read_text())
    assert meta["TimingWarnings"] == [warning]


def test_invalid_tm_no_fallback_without_confirmation(tmp_path: Path) -> None:
    """With InstanceNumber shuffled (and no AcquisitionNumber) nothing confirms ContentTime."""
    paths = write_classic(tmp_path, random_stored(SHAPE), desc="Ax T1 3D", times_s=TIMES,
                          shuffle_instances=True, seed=5)
    last = _by_phase(paths, SHAPE[2])[5]
    _set(last, AcquisitionTime="0969.500")
    with pytest.raises(DicomError, match="neither TemporalPositionIdentifier, AcquisitionNumber "
                                         "nor InstanceNumber confirms") as exc:
        load_dce(tmp_path)
    assert "'0969.500'" in str(exc.value) and any(str(p) in str(exc.value) for p in last)


def test_invalid_tm_with_tpi_falls_back_to_trigger_time(tmp_path: Path) -> None:
    """Philips classic: AcquisitionTime broken, TriggerTime increases with TPI."""
    stored = random_stored(SHAPE, seed=4)
    paths = write_classic(tmp_path, stored, desc="DCE", manufacturer="Philips", timing="tpi",
                          times_s=TIMES)
    _set(_by_phase(paths, SHAPE[2])[2], AcquisitionTime="1261")
    d = load_dce(tmp_path)
    np.testing.assert_allclose(d.t_s, TIMES)
    assert d.meta["TimingSource"].startswith("TriggerTime")
    assert "FALLBACK" in d.meta["TimingWarnings"][0] and "'1261'" in d.timing_details[0]
    assert "TemporalPositionIdentifier" in d.meta["TimingWarnings"][0]


# --------------------------------------------------------------------------- disagreement


def test_times_disagree_with_temporal_position_identifier(tmp_path: Path) -> None:
    paths = write_classic(tmp_path, random_stored(SHAPE), desc="DCE", manufacturer="Philips",
                          timing="tpi", times_s=TIMES)
    phases = _by_phase(paths, SHAPE[2])
    _set(phases[2], AcquisitionTime="100018.000000")  # phase 3 (TPI) at 18 s
    _set(phases[3], AcquisitionTime="100012.000000")  # phase 4 (TPI) at 12 s
    with pytest.raises(DicomError) as exc:
        load_dce(tmp_path)
    msg = str(exc.value)
    assert "inconsistent timeline" in msg and "non-increasing phase times" in msg
    assert "AcquisitionTime (0008,0032)" in msg
    assert "TemporalPositionIdentifier 3, " not in msg  # values are paired per file
    assert "AcquisitionTime '100018.000000', TemporalPositionIdentifier 3" in msg
    assert "AcquisitionTime '100012.000000', TemporalPositionIdentifier 4" in msg
    assert any(str(p) in msg for p in phases[2]) and any(str(p) in msg for p in phases[3])


def test_times_disagree_with_instance_number(tmp_path: Path) -> None:
    """No TPI: swapping two phases' clock times would re-sort them; InstanceNumber says no."""
    shape = (3, 2, 2, 12)
    times = [5.0 * t for t in range(12)]
    paths = write_classic(tmp_path, random_stored(shape), desc="Ax T1 3D", times_s=times)
    phases = _by_phase(paths, shape[2])
    _set(phases[2], AcquisitionTime="100015.000000", ContentTime="100015.000000")
    _set(phases[3], AcquisitionTime="100010.000000", ContentTime="100010.000000")
    with pytest.raises(DicomError) as exc:
        load_dce(tmp_path)
    msg = str(exc.value)
    assert "inconsistent timeline" in msg and "InstanceNumber (0020,0013)" in msg
    assert "AcquisitionTime '100010.000000', InstanceNumber 4" in msg  # written phase 3
    assert "AcquisitionTime '100015.000000', InstanceNumber 3" in msg  # written phase 2
    assert "never re-sorted" in msg


def test_times_disagree_with_acquisition_number(tmp_path: Path) -> None:
    shape = (3, 2, 2, 4)
    ov = {(k, t): {"AcquisitionNumber": t + 1} for k in range(2) for t in range(4)}
    paths = write_classic(tmp_path, random_stored(shape), desc="Ax T1 3D", override=ov,
                          shuffle_instances=True, seed=2)
    phases = _by_phase(paths, shape[2])
    _set(phases[1], AcquisitionTime="100012.000000", ContentTime="100012.000000")
    _set(phases[2], AcquisitionTime="100006.000000", ContentTime="100006.000000")
    with pytest.raises(DicomError) as exc:
        load_dce(tmp_path)
    msg = str(exc.value)
    assert "disagrees with AcquisitionNumber (0020,0012)" in msg
    assert "AcquisitionNumber 3 -> 2" in msg


def test_consistent_references_are_recorded(tmp_path: Path) -> None:
    shape = (3, 2, 2, 4)
    ov = {(k, t): {"AcquisitionNumber": t + 1} for k in range(2) for t in range(4)}
    write_classic(tmp_path, random_stored(shape), desc="Ax T1 3D", override=ov)
    d = load_dce(tmp_path)
    np.testing.assert_allclose(d.t_s, [0, 6, 12, 18])
    assert d.meta["TimingWarnings"] == []
    assert any("cross-checked with AcquisitionNumber (0020,0012) and InstanceNumber" in n
               for n in d.meta["Notes"])
