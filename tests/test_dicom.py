"""Tests of dce.io: DICOM discovery, sorting, timing, validation, NIfTI + sidecar output.

Real data: the vendored QIBA v9 DRO (tests/data/qiba_v9, GE and Siemens timing styles).
Everything else is written here with pydicom into tmp_path.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from dce.io import (
    DicomError,
    discover_series,
    load_dce,
    load_dce_series,
    load_vfa,
    read_nifti,
    sidecar_path,
    write_nifti,
)

QIBA = Path(__file__).parent / "data" / "qiba_v9"
MR_SOP = "1.2.840.10008.5.1.4.1.1.4"
ENH_MR_SOP = "1.2.840.10008.5.1.4.1.1.4.1"
UID_ROOT = "1.2.826.0.1.3680043.8.498."

CANARIES = {
    "PatientName": "CANARY^NAME",
    "PatientID": "CANARY123",
    "PatientBirthDate": "19010203",
    "PatientAddress": "7 CANARYWHARF ROAD",
    "InstitutionName": "CANARYHOSP",
    "InstitutionAddress": "1 CANARYSTREET",
    "ReferringPhysicianName": "CANARYDOC^REF",
    "PerformingPhysicianName": "CANARYDOC^PERF",
    "OperatorsName": "CANARYOP^X",
    "AccessionNumber": "CANARYACC77",
    "StationName": "CANARYSTATION",
    "StudyDate": "19870605",
    "SeriesDate": "19870605",
    "AcquisitionDate": "19870605",
    "StudyID": "CANARYSTUDY",
}


def new_uid() -> str:
    return UID_ROOT + str(uuid.uuid4().int)[:30]


# --------------------------------------------------------------------------- DICOM writers


def _base(sop_class: str, series_uid: str, desc: str, manufacturer: str,
          extra: dict[str, Any] | None) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    sop_uid = UID(new_uid())
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "MR"
    ds.Manufacturer = manufacturer
    ds.SeriesDescription = desc
    ds.SeriesNumber = 7
    ds.StudyInstanceUID = UID_ROOT + "4242"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = UID_ROOT + "4343"
    ds.MagneticFieldStrength = 3
    ds.MRAcquisitionType = "3D"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    for key, val in (extra or {}).items():
        setattr(ds, key, val)
    return ds


def _save(ds: Dataset, folder: Path, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or uuid.uuid4().hex[:10])
    ds.save_as(path, enforce_file_format=True)
    return path


def write_classic(folder: Path, stored: np.ndarray, *, desc: str = "t1_vibe_dyn",
                  manufacturer: str = "SIEMENS", times_s: Iterable[float] | None = None,
                  timing: str = "acq", slice_offset_s: float = 0.0,
                  iop: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
                  origin: tuple[float, float, float] = (-20.0, -30.0, 10.0),
                  pixel_spacing: tuple[float, float] = (1.0, 1.0), slice_step: float = 3.0,
                  fa: float | None = 12.0, tr: float = 4.0, te: float = 1.5,
                  slope: float = 1.0, intercept: float = 0.0,
                  skip: Iterable[tuple[int, int]] = (), dup: Iterable[tuple[int, int]] = (),
                  override: dict[tuple[int, int], dict[str, Any]] | None = None,
                  series_uid: str | None = None, extra: dict[str, Any] | None = None,
                  shuffle_instances: bool = False, nested: bool = False,
                  start_clock_s: float = 36000.0, seed: int = 0) -> list[Path]:
    """Write ``stored[col, row, slice, phase]`` (uint16) as one classic file per frame.

    ``timing``: "acq" (Siemens: AcquisitionTime/ContentTime advance per phase),
    "trigger" (GE: constant AcquisitionTime, TriggerTime in ms) or "tpi" (Philips
    classic: TemporalPositionIdentifier + NumberOfTemporalPositions, AcquisitionTime
    per phase and TriggerTime).
    """
    rng = random.Random(seed)
    n_cols, n_rows, n_slices, n_phases = stored.shape
    times = list(times_s) if times_s is not None else [6.0 * t for t in range(n_phases)]
    series_uid = series_uid or new_uid()
    iop_arr = np.asarray(iop, dtype=float)
    normal = np.cross(iop_arr[:3], iop_arr[3:])
    skip, dup = set(skip), set(dup)
    cells = [(k, t) for k in range(n_slices) for t in range(n_phases) if (k, t) not in skip]
    cells += list(dup)
    instances = list(range(1, len(cells) + 1))
    if shuffle_instances:
        rng.shuffle(instances)
    paths = []
    for (k, t), inst in zip(cells, instances, strict=True):
        ds = _base(MR_SOP, series_uid, desc, manufacturer, extra)
        ds.Rows, ds.Columns = n_rows, n_cols
        ds.PixelSpacing = list(pixel_spacing)
        ds.SliceThickness = abs(slice_step)
        ds.ImageOrientationPatient = list(iop)
        ds.ImagePositionPatient = [float(v) for v in np.asarray(origin) + k * slice_step * normal]
        if fa is not None:
            ds.FlipAngle = fa
        ds.RepetitionTime = tr
        ds.EchoTime = te
        ds.InstanceNumber = inst
        tt = (start_clock_s + times[t] + k * slice_offset_s) % 86400.0  # 10:00:00 + t
        clock = f"{int(tt // 3600):02d}{int(tt % 3600 // 60):02d}{tt % 60:09.6f}"
        if timing == "acq":
            ds.AcquisitionTime = clock
            ds.ContentTime = clock
        elif timing == "trigger":
            ds.AcquisitionTime = "100000.000"
            ds.ContentTime = "100000.000"
            ds.TriggerTime = times[t] * 1000.0
        elif timing == "tpi":
            ds.AcquisitionTime = clock
            ds.TriggerTime = times[t] * 1000.0
            ds.TemporalPositionIdentifier = t + 1
            ds.NumberOfTemporalPositions = n_phases
        if slope != 1.0 or intercept != 0.0:
            ds.RescaleSlope = slope
            ds.RescaleIntercept = intercept
        for key, val in (override or {}).get((k, t), {}).items():
            setattr(ds, key, val)
        frame = np.ascontiguousarray(stored[:, :, k, t].T.astype(np.uint16))
        ds.Rows, ds.Columns = frame.shape
        ds.PixelData = frame.tobytes()
        sub = folder / f"d{rng.randrange(3)}" / f"e{rng.randrange(2)}" if nested else folder
        paths.append(_save(ds, sub))
    return paths


def write_enhanced(path: Path, stored: np.ndarray, *, desc: str = "dce_enhanced",
                   times_s: list[float], slopes: np.ndarray, intercept: float = 5.0,
                   seed: int = 1) -> None:
    """One enhanced MR multi-frame file, frames in shuffled order."""
    n_cols, n_rows, n_slices, n_phases = stored.shape
    ds = _base(ENH_MR_SOP, new_uid(), desc, "Philips", None)
    ds.Rows, ds.Columns = n_rows, n_cols
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [0.8, 0.9]
    pm.SliceThickness = 4.0
    shared.PixelMeasuresSequence = DicomSequence([pm])
    po = Dataset()
    po.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # coronal
    shared.PlaneOrientationSequence = DicomSequence([po])
    timing = Dataset()
    timing.RepetitionTime = 3.5
    timing.FlipAngle = 10
    shared.MRTimingAndRelatedParametersSequence = DicomSequence([timing])
    echo = Dataset()
    echo.EffectiveEchoTime = 1.2
    shared.MREchoSequence = DicomSequence([echo])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    normal = np.cross([1, 0, 0], [0, 0, -1])
    cells = [(k, t) for k in range(n_slices) for t in range(n_phases)]
    random.Random(seed).shuffle(cells)
    per_frame, pixels = [], []
    for k, t in cells:
        item = Dataset()
        fc = Dataset()
        tt = 36000.0 + times_s[t] + 0.2 * k
        fc.FrameAcquisitionDateTime = (
            f"20240102{int(tt // 3600):02d}{int(tt % 3600 // 60):02d}{tt % 60:09.6f}")
        fc.TemporalPositionIndex = t + 1
        fc.StackID = "1"
        fc.InStackPositionNumber = k + 1
        item.FrameContentSequence = DicomSequence([fc])
        pp = Dataset()
        pp.ImagePositionPatient = [float(v) for v in np.array([-10.0, 5.0, 20.0])
                                   + k * 4.0 * normal]
        item.PlanePositionSequence = DicomSequence([pp])
        pv = Dataset()
        pv.RescaleSlope = float(slopes[k, t])
        pv.RescaleIntercept = intercept
        pv.RescaleType = "US"
        item.PixelValueTransformationSequence = DicomSequence([pv])
        per_frame.append(item)
        pixels.append(stored[:, :, k, t].T.astype(np.uint16))
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.NumberOfFrames = len(per_frame)
    ds.PixelData = np.ascontiguousarray(np.stack(pixels)).tobytes()
    _save(ds, path.parent, path.name)


def random_stored(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, size=shape).astype(np.uint16)


# --------------------------------------------------------------------------- QIBA v9


@pytest.fixture(scope="module")
def qiba() -> dict[str, Any]:
    return {v: load_dce(QIBA / v) for v in ("ge", "siemens")}


def test_qiba_shape_times_and_orientation(qiba: dict[str, Any]) -> None:
    ge, si = qiba["ge"], qiba["siemens"]
    # 80 rows x 50 columns -> NIfTI (i = columns, j = rows): (50, 80, 1, 61)
    for d in (ge, si):
        assert d.data.shape == (50, 80, 1, 61)
        assert d.data.dtype == np.float32
        np.testing.assert_allclose(d.t_s, np.arange(0, 361, 6.0))
        assert d.meta["VolumeTiming"] == [6.0 * i for i in range(61)]
        assert d.meta["PhaseSpacingUneven"] is False
        assert d.meta["FlipAngle"] == 30.0
        assert d.meta["RepetitionTime"] == pytest.approx(0.005)
        assert d.meta["MagneticFieldStrength"] == 1.5
    assert ge.meta["TimingSource"].startswith("TriggerTime")
    assert si.meta["TimingSource"].startswith("AcquisitionTime")
    assert "TriggerTime (0018,1060) absent in 1 frame(s)" in ge.meta["Notes"][0]
    np.testing.assert_allclose(ge.affine, si.affine)
    # stored orientation: data[:, :, 0, t] is the transposed pixel array
    for vendor, d in qiba.items():
        first = sorted((QIBA / vendor).glob("*_001.dcm"))[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pix = pydicom.dcmread(first).pixel_array
        np.testing.assert_array_equal(d.data[:, :, 0, 0], pix.T)


def test_qiba_vendors_same_phantom_not_same_pixels(qiba: dict[str, Any]) -> None:
    """Measured: GE and Siemens are NOT pixel-identical and NOT exactly proportional.

    Both are S0*f(t) + noise with S0 and sigma both 20x larger for GE, but with
    independent noise realisations (voxel correlation 0.97).  The 10x10-patch means over
    all 61 phases are proportional: GE/Siemens = 20.2-20.8 (20 from S0; the few-%
    excess is the integer quantisation of the low Siemens counts, ~10 at baseline).
    """
    ge = qiba["ge"].data[:, :, 0, :].astype(np.float64)
    si = qiba["siemens"].data[:, :, 0, :].astype(np.float64)
    assert not np.array_equal(ge, si)
    assert not np.allclose(ge, 20 * si, rtol=0.05)
    # tissue rows 10-69 (j), 6 x 5 patches of 10 x 10 (i = columns 0-49)
    pg = ge[:, 10:70].reshape(5, 10, 6, 10, 61).mean(axis=(1, 3, 4))
    ps = si[:, 10:70].reshape(5, 10, 6, 10, 61).mean(axis=(1, 3, 4))
    ratio = pg / ps
    assert np.all((ratio > 19.8) & (ratio < 21.2)), ratio
    # the time courses of the patches agree in shape
    cg = ge[:, 10:70].reshape(5, 10, 6, 10, 61).mean(axis=(1, 3))
    cs = si[:, 10:70].reshape(5, 10, 6, 10, 61).mean(axis=(1, 3))
    assert np.corrcoef(cg.ravel(), cs.ravel())[0, 1] > 0.98


def test_qiba_affine_matches_nibabel_wrapper(qiba: dict[str, Any]) -> None:
    """nibabel's DICOM wrapper: data (rows, cols), affine to LPS; ours: (cols, rows), RAS."""
    f = sorted((QIBA / "siemens").glob("*_001.dcm"))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "DICOM readers are highly experimental"
        from nibabel.nicom import dicomwrappers

        w = dicomwrappers.wrapper_from_data(pydicom.dcmread(f))
        nib_aff = np.asarray(w.affine)
        nib_data = np.asarray(w.get_data())
    flip = np.diag([-1.0, -1.0, 1.0])
    ours = qiba["siemens"].affine
    np.testing.assert_allclose(ours[:3, 0], flip @ nib_aff[:3, 1])
    np.testing.assert_allclose(ours[:3, 1], flip @ nib_aff[:3, 0])
    np.testing.assert_allclose(ours[:3, 3], flip @ nib_aff[:3, 3])
    np.testing.assert_array_equal(qiba["siemens"].data[:, :, 0, 0], nib_data.T)


# --------------------------------------------------------------------------- vendor styles


def test_siemens_style_instance_numbers_shuffled_nested_and_junk(tmp_path: Path) -> None:
    stored = random_stored((3, 4, 2, 5))
    times = [0.0, 7.5, 15.0, 22.5, 30.0]
    write_classic(tmp_path / "in", stored, times_s=times, slice_offset_s=1.0,
                  shuffle_instances=True, nested=True, seed=3)
    (tmp_path / "in" / "notes.txt").write_text("not dicom")
    (tmp_path / "in" / "d0" / "fake.dcm").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "in" / "d1").mkdir(exist_ok=True)
    (tmp_path / "in" / "d1" / "README").write_bytes(b"")
    series = discover_series(tmp_path / "in")
    assert len(series) == 1 and series[0].n_files == 10
    d = load_dce(series)
    np.testing.assert_array_equal(d.data, stored.astype(np.float32))
    np.testing.assert_allclose(d.t_s, times)  # phase start = earliest slice
    assert d.meta["PhaseOrderSource"].startswith("time order per slice position")


def test_ge_style_trigger_time(tmp_path: Path) -> None:
    stored = random_stored((3, 4, 3, 4), seed=1)
    write_classic(tmp_path, stored, manufacturer="GE MEDICAL SYSTEMS", timing="trigger",
                  times_s=[0, 5, 10, 20], shuffle_instances=True)
    d = load_dce(tmp_path)
    np.testing.assert_array_equal(d.data, stored.astype(np.float32))
    np.testing.assert_allclose(d.t_s, [0, 5, 10, 20])
    assert d.meta["TimingSource"] == "TriggerTime (0018,1060)"
    assert d.meta["PhaseSpacingUneven"] is True
    assert d.meta["PhaseSpacingRange_s"] == [5.0, 10.0]


def test_philips_classic_tpi_rescale_uneven_reversed_slices(tmp_path: Path) -> None:
    stored = random_stored((4, 3, 3, 4), seed=2)
    times = [0.0, 10.0, 15.0, 30.0]
    # slices written with a negative step so file order is opposite to the normal
    write_classic(tmp_path, stored, manufacturer="Philips Medical Systems", timing="tpi",
                  times_s=times, slope=2.5, intercept=-10.0, slice_step=-3.0,
                  desc="DCE_THRIVE", seed=4)
    d = load_dce(tmp_path)
    expected = stored.astype(np.float64) * 2.5 - 10.0
    # ascending along the normal = reverse of the written slice order
    np.testing.assert_allclose(d.data, expected[:, :, ::-1, :])
    np.testing.assert_allclose(d.t_s, times)
    assert d.meta["PhaseOrderSource"] == "TemporalPositionIdentifier (0020,0100)"
    assert d.meta["TimingSource"] == "AcquisitionTime (0008,0032)"
    assert d.meta["PhaseSpacingUneven"] is True
    assert d.affine[2, 3] == pytest.approx(10.0 - 2 * 3.0)  # lowest slice first


def test_one_rescale_is_stored_losslessly_as_16_bit(tmp_path: Path) -> None:
    """A series with one RescaleSlope/Intercept: the NIfTI holds the stored values as
    16-bit integers with scl_slope/scl_inter, and reading it gives back the converted
    float32 array bit for bit: stored * slope + intercept with the float32 slope."""
    stored = np.random.default_rng(7).integers(0, 65000, size=(6, 5, 2, 3)).astype(np.uint16)
    slope, intercept = 0.0188071101262, -3.25
    write_classic(tmp_path / "in", stored, times_s=[0.0, 5.0, 10.0], slope=slope,
                  intercept=intercept)
    d = load_dce(tmp_path / "in")
    s32 = float(np.float32(slope))
    assert d.scaling == (s32, intercept)
    expected = (stored.astype(np.float64) * s32 + intercept).astype(np.float32)
    np.testing.assert_array_equal(d.data, expected)
    assert np.max(np.abs(d.data - (stored * slope + intercept))) <= 1e-6 * 65000 * slope
    path = write_nifti(tmp_path / "dce.nii.gz", d.data, d.affine, d.meta, scaling=d.scaling)
    img: Any = nib.load(path)
    assert img.get_data_dtype() == np.uint16
    np.testing.assert_array_equal(np.asanyarray(img.dataobj.get_unscaled()), stored)
    back = read_nifti(path).data
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, d.data)
    # the same data without the scaling hint: float32 on disk, the same values read
    plain = write_nifti(tmp_path / "plain.nii.gz", d.data, d.affine, d.meta)
    img = nib.load(plain)
    assert img.get_data_dtype() == np.float32
    np.testing.assert_array_equal(read_nifti(plain).data, d.data)
    # a hint the data do not follow (one value off the grid): float32, not rounded
    off = d.data.copy()
    off[0, 0, 0, 0] += np.float32(0.25) * np.float32(s32)
    odd = write_nifti(tmp_path / "odd.nii.gz", off, d.affine, d.meta, scaling=d.scaling)
    img = nib.load(odd)
    assert img.get_data_dtype() == np.float32
    np.testing.assert_array_equal(read_nifti(odd).data, off)


def test_enhanced_multiframe(tmp_path: Path) -> None:
    stored = random_stored((5, 3, 2, 3), seed=5)
    slopes = np.array([[1.0, 2.0, 0.5], [1.5, 1.0, 3.0]])
    times = [0.0, 4.0, 9.0]
    write_enhanced(tmp_path / "enh" / "IM_0001", stored, times_s=times, slopes=slopes)
    series = discover_series(tmp_path)
    assert series[0].enhanced and series[0].n_files == 1 and series[0].n_frames == 6
    d = load_dce(series)
    expected = stored.astype(np.float64) * slopes[None, None] + 5.0
    np.testing.assert_allclose(d.data, expected)
    assert d.scaling is None            # per-frame slopes: written as float32
    np.testing.assert_allclose(d.t_s, times)
    assert d.meta["TimingSource"] == "FrameAcquisitionDateTime (0018,9074)"
    assert d.meta["PhaseOrderSource"] == "TemporalPositionIndex (0020,9128)"
    assert d.meta["FlipAngle"] == 10.0
    assert d.meta["RepetitionTime"] == pytest.approx(0.0035)
    assert d.meta["EchoTime"] == pytest.approx(0.0012)
    assert d.meta["VoxelSize_mm"] == [0.9, 0.8, 4.0]
    # coronal: i -> +x (LPS) = -x (RAS); j -> -z; k -> normal = row x col = (0, 1, 0) LPS
    np.testing.assert_allclose(d.affine[:3, :3], [[-0.9, 0, 0], [0, 0, -4.0], [0, -0.8, 0]],
                               atol=1e-12)


def test_affine_maps_voxel_to_dicom_position(tmp_path: Path) -> None:
    """Oblique, anisotropic, non-square: voxel (i, j, k) lands on its DICOM LPS point."""
    row = np.array([0.8, 0.6, 0.0])
    col = np.array([0.0, 0.0, -1.0])
    stored = random_stored((6, 4, 3, 2), seed=6)  # 6 columns, 4 rows
    origin = np.array([12.0, -7.0, 33.0])
    write_classic(tmp_path, stored, iop=(*row, *col), origin=tuple(origin),
                  pixel_spacing=(0.7, 1.3), slice_step=2.5)
    d = load_dce(tmp_path)
    normal = np.cross(row, col)
    for i, j, k in [(0, 0, 0), (5, 3, 2), (2, 1, 1)]:
        lps = origin + k * 2.5 * normal + i * 1.3 * row + j * 0.7 * col  # PixelSpacing[1]: i
        ras = lps * [-1, -1, 1]
        np.testing.assert_allclose((d.affine @ [i, j, k, 1])[:3], ras, atol=1e-9)
    assert np.linalg.det(d.affine[:3, :3]) > 0
    # and the intensities went with the geometry
    np.testing.assert_array_equal(d.data, stored.astype(np.float32))
    # nibabel agrees on the voxel sizes and orientation codes
    img = nib.Nifti1Image(d.data, d.affine)
    np.testing.assert_allclose(img.header.get_zooms()[:3], [1.3, 0.7, 2.5], rtol=1e-6)


def test_midnight_crossing(tmp_path: Path) -> None:
    stored = random_stored((2, 2, 1, 4), seed=11)
    write_classic(tmp_path, stored, times_s=[0, 5, 10, 15], start_clock_s=86400.0 - 7.0)
    d = load_dce(tmp_path)
    np.testing.assert_allclose(d.t_s, [0, 5, 10, 15])
    np.testing.assert_array_equal(d.data, stored.astype(np.float32))


def test_disagreeing_timing_tags_noted(tmp_path: Path) -> None:
    stored = random_stored((2, 2, 2, 3), seed=12)
    bad = {(k, 2): {"TriggerTime": 30000.0} for k in range(2)}  # AcquisitionTime says 12 s
    write_classic(tmp_path, stored, manufacturer="Philips", timing="tpi", override=bad)
    d = load_dce(tmp_path)
    np.testing.assert_allclose(d.t_s, [0, 6, 12])
    assert any("TriggerTime (0018,1060) disagrees" in n and "18.000 s" in n
               for n in d.meta["Notes"])


def test_non_image_dicom_skipped(tmp_path: Path) -> None:
    write_classic(tmp_path, random_stored((2, 2, 1, 2)))
    sr = _base("1.2.840.10008.5.1.4.1.1.88.11", new_uid(), "report", "X", None)
    for kw in ("SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
               "HighBit", "PixelRepresentation"):
        delattr(sr, kw)
    _save(sr, tmp_path, "sr_object")
    series = discover_series(tmp_path)
    assert [s.description for s in series] == ["t1_vibe_dyn"]


# --------------------------------------------------------------------------- selection


def test_series_selection_errors_list_series(tmp_path: Path) -> None:
    # issue 13: series are found from their headers; the description is an override
    stored = random_stored((2, 2, 1, 2))
    single = random_stored((2, 2, 1, 1))
    write_classic(tmp_path / "a", single, desc="t2_tse_sag")
    write_classic(tmp_path / "b", single, desc="localizer")
    with pytest.raises(DicomError, match="no DCE series") as exc:
        load_dce(tmp_path)
    msg = str(exc.value)
    assert "'t2_tse_sag'" in msg and "'localizer'" in msg and "1 files" in msg
    assert "convert.dce_pattern" in msg
    write_classic(tmp_path / "c", stored, desc="dyn_1")
    write_classic(tmp_path / "d", stored, desc="DCE_2")
    write_classic(tmp_path / "e", stored, desc="dyn_1_SUB")  # derived: excluded
    with pytest.raises(DicomError, match="2 series match the DCE series by headers") as exc:
        load_dce(tmp_path)
    msg = str(exc.value)
    assert "'dyn_1'" in msg and "'DCE_2'" in msg and "--dce-pattern" in msg
    assert "'dyn_1_SUB' (series 7, 2 files, 2 frames): derived" in msg
    assert load_dce(tmp_path, pattern=r"^dce_2$").meta["SeriesDescription"] == "DCE_2"


# --------------------------------------------------------------------------- corrupt files


def test_truncated_header_raises_naming_file(tmp_path: Path) -> None:
    paths = write_classic(tmp_path, random_stored((3, 3, 1, 2)))
    raw = paths[0].read_bytes()
    bad = tmp_path / "broken_file"
    bad.write_bytes(raw[:300])  # DICM marker and meta, dataset cut short
    with pytest.raises(DicomError, match=r"broken_file.*truncated or corrupt"):
        discover_series(tmp_path)


def test_truncated_pixels_raise_on_load(tmp_path: Path) -> None:
    paths = write_classic(tmp_path, random_stored((8, 8, 1, 3)))
    raw = paths[1].read_bytes()
    paths[1].write_bytes(raw[:-40])
    series = discover_series(tmp_path)  # header intact: the file belongs to the series
    with pytest.raises(DicomError, match=f"{paths[1].name}.*pixel data"):
        load_dce_series(series[0])


# --------------------------------------------------------------------------- validation


def _err(tmp_path: Path, **kw: Any) -> str:
    kw.setdefault("desc", "dyn_check")
    write_classic(tmp_path, kw.pop("stored", random_stored((3, 2, 3, 4))), **kw)
    with pytest.raises(DicomError) as exc:
        load_dce(tmp_path)
    msg = str(exc.value)
    assert "'dyn_check'" in msg  # every message names the series
    return msg


def test_missing_phase_with_tpi(tmp_path: Path) -> None:
    msg = _err(tmp_path, timing="tpi", skip=[(0, 2), (1, 2), (2, 2)])
    assert "missing phase" in msg and "[3]" in msg


def test_missing_slice_in_one_phase(tmp_path: Path) -> None:
    msg = _err(tmp_path, skip=[(1, 2)])
    assert "incomplete grid" in msg and "slice 1 has 3 of 4 phases" in msg
    assert "t = 12.000" in msg


def test_missing_slice_in_one_phase_tpi(tmp_path: Path) -> None:
    msg = _err(tmp_path, timing="tpi", skip=[(2, 1)])
    assert "incomplete grid" in msg and "phase 2" in msg and "lacks slice 2" in msg


def test_missing_slice_in_every_phase(tmp_path: Path) -> None:
    stored = random_stored((3, 2, 4, 2))
    msg = _err(tmp_path, stored=stored, skip=[(2, 0), (2, 1)])
    assert "uneven slice spacing" in msg


def test_duplicated_position_within_phase(tmp_path: Path) -> None:
    msg = _err(tmp_path, dup=[(1, 2)])
    assert "duplicated position within a phase" in msg and "slice 1" in msg


def test_duplicated_position_within_phase_tpi(tmp_path: Path) -> None:
    msg = _err(tmp_path, timing="tpi", override={(0, 1): {"TemporalPositionIdentifier": 3}})
    assert "duplicated position within phase 3" in msg


def test_non_monotonic_phase_times(tmp_path: Path) -> None:
    msg = _err(tmp_path, timing="tpi", times_s=[0, 10, 5, 20])
    assert "non-increasing phase times" in msg and "phase 2" in msg


def test_duplicate_phase_times(tmp_path: Path) -> None:
    msg = _err(tmp_path, timing="tpi", times_s=[0, 10, 10, 20])
    assert "duplicate phase times" in msg


def test_mixed_flip_angle(tmp_path: Path) -> None:
    msg = _err(tmp_path, override={(1, 3): {"FlipAngle": 25}})
    assert "mixed flip angle" in msg and "25 deg in 1 frame(s)" in msg


def test_mixed_tr(tmp_path: Path) -> None:
    msg = _err(tmp_path, override={(0, 0): {"RepetitionTime": 5.5}})
    assert "mixed repetition time (TR)" in msg and "5.5 ms" in msg


def test_inconsistent_matrix(tmp_path: Path) -> None:
    stored = random_stored((3, 2, 2, 2))
    write_classic(tmp_path, stored, desc="dyn_check", skip=[(0, 0)])
    big = random_stored((4, 2, 1, 1))
    write_classic(tmp_path, big, desc="dyn_check",
                  series_uid=discover_series(tmp_path)[0].uid)
    with pytest.raises(DicomError, match=r"'dyn_check'.*inconsistent matrix size") as exc:
        load_dce(tmp_path)
    assert "2 rows x 4 columns in 1 frame(s)" in str(exc.value)


def test_no_timing_tag(tmp_path: Path) -> None:
    msg = _err(tmp_path, timing="none")
    assert "cannot order the phases" in msg


# --------------------------------------------------------------------------- VFA


def test_vfa_one_series_several_flip_angles(tmp_path: Path) -> None:
    stored = random_stored((3, 2, 2, 3), seed=8)
    fas = [15, 2, 10]  # written out of order
    ov = {(k, t): {"FlipAngle": fas[t], "AcquisitionTime": "101010"}
          for k in range(2) for t in range(3)}
    write_classic(tmp_path, stored, desc="VFA_T1", override=ov)
    v = load_vfa(tmp_path)
    assert v.data.shape == (3, 2, 2, 3)
    np.testing.assert_allclose(v.flip_angles_deg, [2, 10, 15])
    np.testing.assert_array_equal(v.data, stored[..., [1, 2, 0]].astype(np.float32))
    assert v.tr_s == pytest.approx(0.004)
    assert v.meta["FlipAngles_deg"] == [2.0, 10.0, 15.0]


def test_vfa_one_series_per_flip_angle_next_to_dce(tmp_path: Path) -> None:
    stored = random_stored((3, 2, 2, 2), seed=9)
    for t, fa in enumerate([15, 3]):
        write_classic(tmp_path / f"fa{fa}", stored[..., t:t + 1], desc=f"t1_vibe_fa{fa}",
                      fa=fa, slope=2.0)
    write_classic(tmp_path / "dyn", random_stored((3, 2, 2, 4)), desc="t1_vibe_dyn fa12")
    v = load_vfa(tmp_path)
    np.testing.assert_allclose(v.flip_angles_deg, [3, 15])
    np.testing.assert_array_equal(v.data, 2.0 * stored[..., ::-1].astype(np.float32))
    assert sorted(v.meta["SeriesDescriptions"]) == ["t1_vibe_fa15", "t1_vibe_fa3"]
    assert load_dce(tmp_path).data.shape == (3, 2, 2, 4)


def test_vfa_mixed_tr_and_single_fa(tmp_path: Path) -> None:
    stored = random_stored((3, 2, 1, 1))
    write_classic(tmp_path / "a", stored, desc="vfa_fa2", fa=2)
    with pytest.raises(DicomError, match="no series qualifies by headers"):
        load_vfa(tmp_path)  # one flip angle is not VFA (issue 13: header detection)
    with pytest.raises(DicomError, match="only one flip angle"):
        load_vfa(tmp_path, pattern="vfa")
    write_classic(tmp_path / "b", stored, desc="vfa_fa15", fa=15, tr=6.0)
    with pytest.raises(DicomError, match="mixed repetition time"):
        load_vfa(tmp_path)


# --------------------------------------------------------------------------- NIfTI output


def test_write_read_roundtrip_atomic(tmp_path: Path) -> None:
    d = load_dce(QIBA / "siemens")
    out = tmp_path / "sub-01" / "ses-1" / "sub-01_ses-1_dce.nii.gz"
    assert write_nifti(out, d.data, d.affine, d.meta) == out
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "sub-01_ses-1_dce.json", "sub-01_ses-1_dce.nii.gz"]
    data, affine, sidecar = read_nifti(out, require_sidecar=True)
    np.testing.assert_array_equal(data, d.data)
    np.testing.assert_allclose(affine, d.affine)
    assert sidecar == json.loads(json.dumps(d.meta))
    img = nib.load(out)
    assert isinstance(img, nib.Nifti1Image)
    hdr = img.header
    assert hdr.get_zooms()[3] == pytest.approx(6.0)
    assert hdr.get_xyzt_units() == ("mm", "sec")
    assert int(hdr["sform_code"]) == 1 and int(hdr["qform_code"]) == 1


def test_write_refuses_identifiers_and_keeps_old_file(tmp_path: Path) -> None:
    out = tmp_path / "x.nii"
    write_nifti(out, np.zeros((2, 2, 2)), np.eye(4), {"a": 1})
    before = out.read_bytes()
    with pytest.raises(ValueError, match="PatientName"):
        write_nifti(out, np.ones((2, 2, 2)), np.eye(4), {"PatientName": "x"})
    with pytest.raises(ValueError, match="NaN"):
        write_nifti(out, np.ones((2, 2, 2)), np.eye(4), {"v": float("nan")})
    with pytest.raises(ValueError, match=r"\.nii"):
        write_nifti(tmp_path / "x.img", np.ones((2, 2, 2)), np.eye(4))
    assert out.read_bytes() == before
    assert json.loads(sidecar_path(out).read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.nii"]


def test_no_identifiers_in_any_output(tmp_path: Path) -> None:
    clock = {"AcquisitionTime": "101112.125"}
    extra = {**CANARIES}
    stored = random_stored((3, 2, 2, 3), seed=10)
    write_classic(tmp_path / "dcm" / "dyn", stored, desc="dyn", extra=extra,
                  times_s=[0, 6, 12])
    for fa in (2, 15):
        write_classic(tmp_path / "dcm" / f"fa{fa}", stored[..., :1], desc=f"vfa_fa{fa}",
                      fa=fa, extra={**extra, **clock})
    assert b"CANARYHOSP" in next((tmp_path / "dcm" / "fa2").iterdir()).read_bytes()
    series = discover_series(tmp_path / "dcm")
    uids = {s.uid for s in series} | {UID_ROOT + "4242", UID_ROOT + "4343"}
    d = load_dce(series)
    v = load_vfa(series)
    out = tmp_path / "out"
    write_nifti(out / "dce.nii.gz", d.data, d.affine, d.meta)
    write_nifti(out / "dce_plain.nii", d.data, d.affine, d.meta)
    write_nifti(out / "vfa.nii.gz", v.data, v.affine, v.meta)
    blobs = []
    for p in sorted(out.iterdir()):
        raw = p.read_bytes()
        blobs.append(gzip.decompress(raw) if p.name.endswith(".gz") else raw)
    blobs.append(repr(series).encode())
    blobs.append(json.dumps([d.meta, v.meta]).encode())
    needles = [*CANARIES.values(), "CANARY", "101112", *uids]
    for blob in blobs:
        for needle in needles:
            assert needle.encode() not in blob, needle
            assert needle.replace("^", " ").encode() not in blob, needle


# --------------------------------------------------------------------------- pixel reading


def _pixel_file(path: Path, values: np.ndarray, *, bits_stored: int, signed: bool,
                implicit: bool = False, trailing: bool = False) -> Path:
    """One image file (frames, rows, cols) of ``values`` as raw integers (high bits as
    given, so the unused-bits handling shows), by pydicom's writer."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(MR_SOP)
    meta.MediaStorageSOPInstanceUID = UID(new_uid())
    meta.TransferSyntaxUID = UID("1.2.840.10008.1.2" if implicit else ExplicitVRLittleEndian)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = new_uid()
    ds.Modality = "MR"
    n_frames, ds.Rows, ds.Columns = values.shape
    if n_frames > 1:
        ds.NumberOfFrames = n_frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = values.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = values.astype(values.dtype.newbyteorder("<")).tobytes()
    if trailing:
        ds.add_new(0xFFFCFFFC, "OB", b"\x00\x00")  # DataSetTrailingPadding after the pixels
    ds.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return path


@pytest.mark.parametrize(("dtype", "shape", "bits", "implicit"), [
    (np.uint16, (1, 5, 7), 12, False),   # high bits set: cleared, as pydicom does
    (np.int16, (1, 4, 6), 12, True),     # signed 12-bit in 16: sign-extended
    (np.uint8, (1, 3, 3), 8, False),     # odd length: padded to even
    (np.uint16, (3, 4, 5), 16, False),   # multi-frame
    (np.int32, (1, 2, 3), 20, True),
])
def test_native_pixels_equal_pydicom(tmp_path: Path, dtype: Any, shape: tuple[int, ...],
                                     bits: int, implicit: bool) -> None:
    from pydicom.pixels import pixel_array

    from dce.io.dicom import _native_pixels

    info = np.iinfo(dtype)
    values = np.random.default_rng(3).integers(info.min, info.max, size=shape, dtype=dtype,
                                               endpoint=True)
    path = _pixel_file(tmp_path / "f.dcm", values, bits_stored=bits,
                       signed=info.min < 0, implicit=implicit)
    expect = pixel_array(path)
    got = _native_pixels(path, pydicom.dcmread(path, stop_before_pixels=True))
    assert got is not None and got.dtype == expect.dtype and got.shape == expect.shape
    np.testing.assert_array_equal(got, expect)
    if bits < values.dtype.itemsize * 8:   # the high bits were not all valid: corrected
        assert not np.array_equal(expect.reshape(shape), values)


def test_native_pixels_declines_other_layouts(tmp_path: Path) -> None:
    from dce.io.dicom import _native_pixels

    values = np.arange(12, dtype=np.uint16).reshape(1, 3, 4)
    trail = _pixel_file(tmp_path / "t.dcm", values, bits_stored=16, signed=False,
                        trailing=True)           # an element after the pixel data
    assert _native_pixels(trail, pydicom.dcmread(trail, stop_before_pixels=True)) is None
    ok = _pixel_file(tmp_path / "ok.dcm", values, bits_stored=16, signed=False)
    head = pydicom.dcmread(ok, stop_before_pixels=True)
    ok.write_bytes(ok.read_bytes()[:-2])         # truncated pixel data
    assert _native_pixels(ok, head) is None
    head.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.2")   # big endian
    assert _native_pixels(ok, head) is None


@pytest.mark.parametrize("vendor", ["ge", "siemens", "philips", "enhanced"])
def test_native_pixels_of_written_series_equal_pydicom(tmp_path: Path, vendor: str) -> None:
    from pydicom.pixels import pixel_array

    from dce.io.dicom import _native_pixels
    from dce.io.dicom_write import write_series

    data = np.random.default_rng(5).uniform(0.0, 900.0, size=(6, 5, 2, 3))
    paths = write_series(tmp_path, data, [0.0, 5.0, 10.0], np.diag([1.0, 1.0, 3.0, 1.0]),
                         vendor=vendor, flip_angle_deg=12.0, tr_s=0.004, te_s=0.0015,
                         patient_name="X", patient_id="X")
    for path in paths:
        got = _native_pixels(path, pydicom.dcmread(path, stop_before_pixels=True))
        assert got is not None
        expect = pixel_array(path)
        assert got.dtype == expect.dtype
        np.testing.assert_array_equal(got, expect)


def test_native_pixels_decline_big_endian_qiba() -> None:
    # the vendored QIBA files are explicit VR big endian: decoded by pydicom instead
    from dce.io.dicom import _native_pixels

    path = sorted((QIBA / "ge").glob("*.dcm"))[0]
    head = pydicom.dcmread(path, stop_before_pixels=True)
    assert str(head.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.2"
    assert _native_pixels(path, head) is None


def test_conversion_imports_pydicom_without_requests() -> None:
    """The conversion job's start: pydicom's download helper falls back to urllib, and
    ``requests`` stays importable afterwards (dce.io._pydicom)."""
    import subprocess
    import sys

    code = ("import sys, dce.io.convert; a = 'requests' in sys.modules; "
            "import pydicom.data.download as d, requests; "
            "print(a, d.HAVE_REQUESTS, requests.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False", "requests"]


def test_nifti_io_imports_nibabel_without_pydicom() -> None:
    """A NIfTI-only job's start: nibabel is imported with pydicom hidden (its DICOM header
    extensions stay raw bytes), and ``pydicom`` stays importable afterwards
    (dce.io._nibabel, dce.io._hide)."""
    import subprocess
    import sys

    code = ("import sys, dce.io.nifti; a = 'pydicom' in sys.modules; "
            "import pydicom; print(a, pydicom.__name__, sys.modules['pydicom'] is pydicom)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "pydicom", "True"]
