"""Pixel storage of the synthetic DICOM writer (dce.io.dicom_write) in the vendor styles,
read back by pydicom (raw stored values) and by dce.io.dicom + dce.io.nifti (rescaled).

The truth is the integers each test constructs: the stored values the writer must put in
the files (scanner units: ``rint(value)``; Philips: the 12-bit range filled), checked in
the files with pydicom, independently of the project's reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest

from dce.io import dicom_write as dw
from dce.io import load_dce, read_nifti, write_nifti

AFFINE = np.array([[-2.0, 0, 0, 30.0], [0, -2.5, 0, 40.0], [0, 0, 4.0, -8.0], [0, 0, 0, 1.0]])
SHAPE = (7, 6, 3, 4)  # columns, rows, slices, phases
T_S = [0.0, 5.0, 10.0, 15.0]


def known_integers(lo: int, hi: int, seed: int = 0) -> np.ndarray:
    """Integers lo..hi (both present) in SHAPE."""
    q = np.random.default_rng(seed).integers(lo, hi + 1, size=SHAPE)
    q.flat[0], q.flat[1] = lo, hi
    return q


def write(folder: Path, data: np.ndarray, vendor: str, **kw: Any) -> list[Path]:
    return dw.write_series(folder, data, T_S, AFFINE, vendor=vendor, flip_angle_deg=15.0,
                           tr_s=0.004, te_s=0.0015, patient_name="A^B", patient_id="C",
                           shuffle_instance_numbers=False, **kw)


def raw_stored(paths: list[Path]) -> tuple[np.ndarray, list[Any]]:
    """Stored values (columns, rows, slices, phases) and the datasets, by pydicom."""
    dss = [pydicom.dcmread(p) for p in paths]
    if len(dss) == 1:                              # enhanced: phase-major frames
        frames = dss[0].pixel_array.reshape(SHAPE[3], SHAPE[2], SHAPE[1], SHAPE[0])
        return np.transpose(frames, (3, 2, 1, 0)), dss
    out = np.empty(SHAPE, dtype=dss[0].pixel_array.dtype)
    for ds in dss:                                 # unshuffled: InstanceNumber - 1 =
        p, k = divmod(int(ds.InstanceNumber) - 1, SHAPE[2])   # phase x n_slices + slice
        out[:, :, k, p] = ds.pixel_array.T
    return out, dss


@pytest.mark.parametrize(("vendor", "bits", "signed"), [
    ("ge", 16, True), ("siemens", 12, False), ("enhanced", 12, False)])
def test_scanner_units_store_the_rounded_values(tmp_path: Path, vendor: str, bits: int,
                                                signed: bool) -> None:
    """Stored = rint(value), no rescale; the conversion gives the integers back exactly
    and keeps them as 16-bit integers in the NIfTI."""
    q = known_integers(0, 4095)
    frac = np.random.default_rng(1).uniform(-0.45, 0.45, SHAPE)   # -0.45 rounds to 0
    paths = write(tmp_path / "dcm", q + frac, vendor)
    stored, dss = raw_stored(paths)
    np.testing.assert_array_equal(stored, q)
    ds = dss[0]
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, bits, bits - 1)
    assert ds.PixelRepresentation == int(signed)
    assert stored.dtype == (np.int16 if signed else np.uint16)
    if vendor == "enhanced":
        pv = ds.PerFrameFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
        assert (float(pv.RescaleSlope), float(pv.RescaleIntercept)) == (1.0, 0.0)
    else:
        assert all("RescaleSlope" not in d and "RescaleIntercept" not in d for d in dss)
    d = load_dce(tmp_path / "dcm")
    assert d.scaling == (1.0, 0.0)
    np.testing.assert_array_equal(d.data, q.astype(np.float32))
    path = write_nifti(tmp_path / "dce.nii.gz", d.data, d.affine, d.meta, scaling=d.scaling)
    img: Any = nib.load(path)
    assert img.get_data_dtype() == np.uint16
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), q)
    back = read_nifti(path).data
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, q.astype(np.float32))


def test_ge_signed_values(tmp_path: Path) -> None:
    q = known_integers(-300, 30000, seed=2)
    stored, dss = raw_stored(write(tmp_path / "dcm", q.astype(float), "ge"))
    np.testing.assert_array_equal(stored, q)
    assert "RescaleSlope" not in dss[0]
    d = load_dce(tmp_path / "dcm")
    np.testing.assert_array_equal(d.data, q.astype(np.float32))
    path = write_nifti(tmp_path / "dce.nii.gz", d.data, d.affine, d.meta, scaling=d.scaling)
    img: Any = nib.load(path)
    assert img.get_data_dtype() == np.int16
    np.testing.assert_array_equal(read_nifti(path).data, q.astype(np.float32))


def test_philips_fills_12_bits_with_rescale_and_private_scale(tmp_path: Path) -> None:
    """Largest value stored as 4095; RescaleSlope = max / 4095 applied by the reader; the
    private scale slope (2005,100E) makes DV / (RS * SS) the display value."""
    values = known_integers(0, 1500, seed=3) + 0.3
    stored, dss = raw_stored(write(tmp_path / "dcm", values, "philips"))
    ds = dss[0]
    assert (ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (12, 11, 0)
    rs, ri = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    assert ri == 0.0 and rs == pytest.approx(1500.3 / 4095, rel=1e-12)
    assert int(stored.max()) == 4095 and int(stored.min()) == round(0.3 / rs) == 1
    np.testing.assert_array_equal(stored, np.rint(values / rs))
    assert {(float(d.RescaleSlope), float(d.RescaleIntercept)) for d in dss} == {(rs, ri)}
    block = ds.private_block(0x2005, dw.PHILIPS_PRIVATE_CREATOR)
    assert float(block[0x0D].value) == 0.0
    assert float(block[0x0E].value) * rs == pytest.approx(1.0, rel=1e-6)
    d = load_dce(tmp_path / "dcm")
    assert d.scaling == (float(np.float32(rs)), 0.0)
    expected = (stored.astype(np.float64) * float(np.float32(rs))).astype(np.float32)
    np.testing.assert_array_equal(d.data, expected)
    assert np.max(np.abs(d.data - values)) <= 0.5 * rs * (1 + 1e-5)
    path = write_nifti(tmp_path / "dce.nii.gz", d.data, d.affine, d.meta, scaling=d.scaling)
    img: Any = nib.load(path)
    assert img.get_data_dtype() == np.uint16
    assert img.dataobj.slope == pytest.approx(np.float32(rs))
    np.testing.assert_array_equal(read_nifti(path).data, d.data)


@pytest.mark.parametrize("vendor", ["siemens", "enhanced", "ge"])
def test_values_beyond_the_range_get_an_explicit_power_of_two_step(tmp_path: Path,
                                                                   vendor: str) -> None:
    """Never clipped: above the stored range the step doubles until the values fit, and
    the step is written as RescaleSlope."""
    top = 32767 if vendor == "ge" else 4095
    q = known_integers(0, 3 * top, seed=4)          # needs a step of 4
    stored, dss = raw_stored(write(tmp_path / "dcm", q.astype(float), vendor))
    assert int(stored.max()) <= top
    ds = dss[0]
    slope = float((ds.PerFrameFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
                    if vendor == "enhanced" else ds).RescaleSlope)
    assert slope == 4.0
    np.testing.assert_array_equal(stored, np.rint(q / 4.0))
    d = load_dce(tmp_path / "dcm")
    assert np.max(np.abs(d.data - q)) <= 2.0
    with pytest.raises(ValueError, match=rf"outside the {16 if vendor == 'ge' else 12}-bit"):
        write(tmp_path / "x", q.astype(float), vendor, stored_unit=1.0)


def test_negative_values_in_an_unsigned_style_get_an_intercept(tmp_path: Path) -> None:
    q = known_integers(-100, 3000, seed=5)
    stored, dss = raw_stored(write(tmp_path / "dcm", q.astype(float), "siemens"))
    assert float(dss[0].RescaleIntercept) == -100.0 and float(dss[0].RescaleSlope) == 1.0
    np.testing.assert_array_equal(stored, q + 100)
    np.testing.assert_array_equal(load_dce(tmp_path / "dcm").data, q.astype(np.float32))


def test_explicit_stored_unit(tmp_path: Path) -> None:
    values = known_integers(0, 4000, seed=6) * 0.001     # a factor map, 0 .. 4
    stored, dss = raw_stored(write(tmp_path / "dcm", values, "siemens", stored_unit=0.001))
    assert float(dss[0].RescaleSlope) == 0.001
    np.testing.assert_array_equal(stored, known_integers(0, 4000, seed=6))
    np.testing.assert_allclose(load_dce(tmp_path / "dcm").data, values, atol=1e-6)


def test_small_non_integer_values_are_refused(tmp_path: Path) -> None:
    values = np.random.default_rng(7).uniform(0.0, 2.0, SHAPE)
    with pytest.raises(ValueError, match="fewer than 256 scanner units"):
        write(tmp_path / "dcm", values, "ge")
    assert not (tmp_path / "dcm").exists() or not any((tmp_path / "dcm").iterdir())


def test_separate_vfa_series_share_one_step(tmp_path: Path) -> None:
    """One flip angle's volume needs a step of 2, the other fits: both get the step 2
    (one receiver scale for the whole VFA acquisition)."""
    data = np.stack([known_integers(0, 3000, seed=8)[..., 0],
                     known_integers(0, 6000, seed=9)[..., 0]], axis=-1).astype(float)
    paths = dw.write_vfa(tmp_path, data, [3.0, 15.0], AFFINE, separate_series=True,
                         vendor="siemens", tr_s=0.004, te_s=0.0015, patient_name="A",
                         patient_id="B")
    slopes = {float(pydicom.dcmread(p, stop_before_pixels=True).RescaleSlope) for p in paths}
    assert slopes == {2.0}
