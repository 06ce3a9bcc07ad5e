"""Write images (e.g. the :mod:`dce.phantom` cohort) as DICOM MR series in vendor styles.

:func:`write_series` writes a dynamic (or single) volume series, :func:`write_vfa`
a variable-flip-angle series (one series with all flip angles, or one per flip angle),
:func:`write_b1map` a B1 (flip-angle) map in a vendor value convention,
and :func:`write_cohort_dicom` a whole phantom cohort with ROI label maps (NIfTI) and
the cohort and truth tables (TSV).

Geometry
--------
Arrays are ``(i, j, k[, t])`` with the :mod:`dce.io.dicom` convention: ``i`` = DICOM
column, ``j`` = DICOM row, ``k`` = slice, and a voxel-to-RAS+ affine. NIfTI RAS is
converted to DICOM LPS (x and y negated). ImageOrientationPatient holds the unit vectors
of ``i`` (along a row) and ``j`` (down a column), PixelSpacing is
``[row spacing (j), column spacing (i)]`` and ImagePositionPatient of slice ``k`` is the
LPS position of voxel ``(0, 0, k)``. The affine's ``k`` axis must be perpendicular to
the image plane (no shear); for the reader to reproduce the affine exactly, ``k`` must
point along ``row x column`` (as :func:`dce.phantom.affine_for` does).

Pixel values (:func:`pixel_storage`)
------------------------------------
Images are stored the way the emulated scanners store magnitude images: as integers in
scanner units, one value step per series, in the vendor's bit depth (:data:`PIXEL_FORMATS`):

``"ge"``
    Signed 16-bit (BitsStored 16, PixelRepresentation 1), no RescaleSlope/Intercept.
``"siemens"``
    Unsigned 12-bit (BitsStored 12, HighBit 11), no RescaleSlope/Intercept.
``"enhanced"``
    Unsigned 12-bit; PixelValueTransformationSequence with slope 1 and intercept 0.
``"philips"``
    Unsigned 12-bit filling the range (the largest value is stored as 4095) with
    RescaleSlope/RescaleIntercept (display value = stored value x slope + intercept)
    and the private Philips scale slope (2005,100E) and intercept (2005,100D), written
    so that the private "floating-point value" ``DV / (RescaleSlope x ScaleSlope)``
    equals the display value.

So the stored value of a voxel is ``rint(value)`` (GE, Siemens) and a reader that
applies RescaleSlope/Intercept gets the values back to within half a step. Values that
do not fit the range in scanner units (above 4095 for 12 bits) are stored with the
smallest power-of-two step that fits, written as RescaleSlope (explicit, never clipped);
negative values in an unsigned style get a RescaleIntercept. Data that are not integers
and span fewer than 256 scanner units are refused (rounding would destroy them); pass
``stored_unit`` for data on another scale. B1 maps (:func:`write_b1map`) keep a
16-bit full-range rescale (derived floating-point maps).

Vendor timing styles (``t`` = phase time in s)
---------------------------------------------
``"ge"``
    AcquisitionTime and ContentTime constant (series start); TriggerTime = ``t`` in ms.
``"siemens"``
    AcquisitionTime and ContentTime = start + ``t``; AcquisitionNumber per phase;
    no TriggerTime.
``"philips"``
    AcquisitionTime = start + ``t``; TemporalPositionIdentifier (1-based),
    NumberOfTemporalPositions and TriggerTime (ms) per dynamic series.
``"enhanced"``
    One Enhanced MR Image Storage multi-frame file: per-frame FrameContentSequence
    (TemporalPositionIndex, FrameAcquisitionDateTime, InStackPositionNumber,
    DimensionIndexValues), PlanePositionSequence, PlaneOrientationSequence and
    PixelValueTransformationSequence.

File names are hashes of the SOP Instance UID (no extension); InstanceNumber can be
shuffled so that it is not the time order. UIDs are derived deterministically from
``uid_seed`` with :func:`pydicom.uid.generate_uid`.

De-identification of the output
-------------------------------
Patient identifiers appear only where they are passed: PatientName, PatientID (and the
optional PatientBirthDate, PatientSex and ``extra_tags``). They are not used in file
names or UIDs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from dce import __version__
from dce.io._atomic import atomic_path
from dce.io.nifti import write_nifti
from dce.io.tables import write_table
from dce.phantom import (
    PRM_TRUTH_CODES,
    PRM_TRUTH_THRESHOLDS,
    TISSUE_CODES,
    Cohort,
    SessionPhantom,
    cohort_sheets,
    prm_truth,
    prm_truth_classes,
    prm_truth_table,
)

__all__ = [
    "B1_CONVENTIONS",
    "PIXEL_FORMATS",
    "UID_PREFIX",
    "VENDORS",
    "geometry_from_affine",
    "pixel_storage",
    "write_b1map",
    "write_cohort_dicom",
    "write_series",
    "write_vfa",
]

#: Vendor timing styles accepted by :func:`write_series`.
VENDORS: tuple[str, ...] = ("ge", "siemens", "philips", "enhanced")

#: UID root of the generated UIDs (pydicom's documented example root).
UID_PREFIX = "1.2.826.0.1.3680043.8.498."

_MR_SOP = "1.2.840.10008.5.1.4.1.1.4"
_ENH_MR_SOP = "1.2.840.10008.5.1.4.1.1.4.1"
_GAMMA_MHZ_PER_T = 42.577478

_STYLE = {
    "ge": {"Manufacturer": "GE MEDICAL SYSTEMS", "ManufacturerModelName": "SIGNA Premier",
           "SoftwareVersions": "phantom"},
    "siemens": {"Manufacturer": "SIEMENS", "ManufacturerModelName": "Skyra",
                "SoftwareVersions": "syngo MR phantom"},
    "philips": {"Manufacturer": "Philips Medical Systems", "ManufacturerModelName": "Ingenia",
                "SoftwareVersions": "phantom"},
    "enhanced": {"Manufacturer": "SIEMENS", "ManufacturerModelName": "MAGNETOM Vida",
                 "SoftwareVersions": "syngo MR XA phantom"},
}

#: Default series descriptions per vendor (typical vendor names; series are found from
#: their headers, :func:`dce.io.dicom.classify_series`).
DCE_DESCRIPTIONS = {"ge": "Sag DCE LAVA", "siemens": "t1_vibe_sag_dyn",
                    "philips": "DCE_THRIVE_SAG", "enhanced": "t1_vibe_sag_dyn"}
VFA_DESCRIPTIONS = {"ge": "Sag VFA T1", "siemens": "t1_vibe_sag_vfa",
                    "philips": "VFA_T1_THRIVE", "enhanced": "t1_vibe_sag_vfa"}


def _ds(x: float) -> str:
    return format_number_as_ds(float(x))


def _check_vendor(vendor: str) -> str:
    v = str(vendor).lower()
    if v not in VENDORS:
        raise ValueError(f"vendor: unknown style {vendor!r}; use one of {', '.join(VENDORS)}")
    return v


def geometry_from_affine(affine: ArrayLike) -> dict[str, Any]:
    """DICOM plane geometry from a voxel-to-RAS affine.

    Parameters
    ----------
    affine : array_like, shape (4, 4)
        Voxel ``(i, j, k)`` to RAS+ mm.

    Returns
    -------
    dict
        ``orientation`` (6 direction cosines, LPS), ``pixel_spacing`` ``[row, column]``
        (mm), ``slice_step_mm`` (signed, along row x column), ``slice_thickness_mm``,
        ``normal`` (LPS) and ``lps`` (the voxel-to-LPS affine).

    Raises
    ------
    ValueError
        Non-finite affine, zero-length or non-orthogonal in-plane axes, or a slice axis
        that is not perpendicular to the image plane.
    """
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
        raise ValueError(f"affine: need a finite 4x4 matrix, got shape {aff.shape}")
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff
    ci, cj, ck = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    di, dj, dk = (float(np.linalg.norm(c)) for c in (ci, cj, ck))
    if min(di, dj, dk) <= 0:
        raise ValueError("affine: zero voxel size")
    row, col = ci / di, cj / dj
    if abs(float(row @ col)) > 1e-6:
        raise ValueError("affine: in-plane axes are not orthogonal")
    normal = np.cross(row, col)
    step = float(ck @ normal)
    if np.linalg.norm(ck - step * normal) > 1e-6 * dk:
        raise ValueError("affine: the slice axis is not perpendicular to the image plane "
                         "(sheared/oblique stack); classic DICOM cannot represent it")
    return {"orientation": [*row.tolist(), *col.tolist()], "pixel_spacing": [dj, di],
            "slice_step_mm": step, "slice_thickness_mm": abs(step), "normal": normal,
            "lps": lps}


#: Stored pixel format per vendor style: (BitsStored, signed). BitsAllocated is 16.
PIXEL_FORMATS: dict[str, tuple[int, bool]] = {
    "ge": (16, True), "siemens": (12, False), "philips": (12, False), "enhanced": (12, False)}

#: Philips private creator of the MR scale slope (2005,100E) and intercept (2005,100D).
PHILIPS_PRIVATE_CREATOR = "Philips MR Imaging DD 001"


@dataclass(frozen=True)
class PixelStorage:
    """How a series' values are stored (:func:`pixel_storage`).

    Attributes
    ----------
    stored : ndarray of uint16 or int16
        The stored integers, same shape as the data.
    slope, intercept : float
        Value = stored x slope + intercept (slope as written, a DICOM DS string).
    bits_stored : int
        BitsStored (BitsAllocated is 16, HighBit ``bits_stored - 1``).
    signed : bool
        PixelRepresentation 1 (two's complement).
    rescale_tags : bool
        Whether RescaleSlope/RescaleIntercept are written (always in the enhanced
        PixelValueTransformationSequence).
    philips_scale : bool
        Whether the Philips private scale slope and intercept are written.
    """

    stored: NDArray[Any]
    slope: float
    intercept: float
    bits_stored: int
    signed: bool
    rescale_tags: bool
    philips_scale: bool


def _ds_float(x: float) -> float:
    """``x`` as a reader gets it back from a DS string."""
    return float(_ds(x))


def pixel_storage(data: ArrayLike, vendor: str, stored_unit: float | None = None, *,
                  full_range: bool = False) -> PixelStorage:
    """Stored integers and rescale of a series in a vendor style (module notes).

    Parameters
    ----------
    data : array_like
        Finite values (any shape), e.g. the MR signal in scanner units.
    vendor : {"ge", "siemens", "philips", "enhanced"}
    stored_unit : float, optional
        Value of one stored step (RescaleSlope). None: the vendor's convention (scanner
        units, 1, for GE/Siemens/enhanced, raised to the smallest power of two that
        fits the stored range; Philips fills its 12-bit range).
    full_range : bool
        Unsigned 16-bit filling 0..65000 (slope = span / 65000), for derived maps.

    Returns
    -------
    PixelStorage

    Raises
    ------
    ValueError
        Non-finite data; ``stored_unit`` not positive or too small for the range;
        non-integer data spanning fewer than 256 scanner units (``stored_unit`` None).
    """
    vendor = _check_vendor(vendor)
    arr = np.asarray(data)                       # float32 stays float32 (memory)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("data: NaN or infinite values cannot be stored in DICOM")
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if full_range:
        intercept = min(0.0, lo)
        slope = _ds_float((hi - intercept) / 65000.0) if hi > intercept else 1.0
        return _quantise(arr, slope, _ds_float(intercept), 16, False, True, False, vendor,
                         "full range")
    bits, signed = PIXEL_FORMATS[vendor]
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if stored_unit is not None:
        if not stored_unit > 0:
            raise ValueError(f"stored_unit: must be > 0, got {stored_unit}")
        unit, how = _ds_float(stored_unit), f"stored_unit={stored_unit:g}"
    elif vendor == "philips":                    # fill the 12-bit range
        span = hi - min(0.0, lo)                 # a step of headroom for an intercept
        unit = _ds_float(span / (top - 1 if lo < 0 else top)) if span > 0 else 1.0
        how = "12-bit range"
    else:
        integer = bool(np.all(arr == np.rint(arr)))
        if not integer and hi - lo < 256:
            raise ValueError(
                f"data: values span only {hi - lo:.4g} (from {lo:.4g} to {hi:.4g}), fewer "
                f"than 256 scanner units, and are not integers: rounding to the stored "
                f"integers of the {vendor} style would destroy them; pass stored_unit "
                "(the value of one stored step, e.g. span / 4000)")
        unit = 1.0
        while not _fits(lo, hi, unit, top, signed):
            unit *= 2.0
        how = "scanner units" if unit == 1.0 else f"power-of-two step {unit:g}"
    intercept = 0.0
    if not signed and np.rint(lo / unit) < 0:    # unsigned style: shift negative data
        intercept = _ds_float(float(np.rint(lo / unit)) * unit)
    tags = vendor == "philips" or unit != 1.0 or intercept != 0.0
    return _quantise(arr, unit, intercept, bits, signed, tags, vendor == "philips", vendor,
                     how)


def _fits(lo: float, hi: float, unit: float, top: int, signed: bool) -> bool:
    """Whether values lo..hi stored as rint(value / unit) fit the range (unsigned: with
    an intercept shifting negative values to 0)."""
    qlo, qhi = float(np.rint(lo / unit)), float(np.rint(hi / unit))
    return qlo >= -top - 1 and qhi <= top if signed else qhi - min(0.0, qlo) <= top


def _quantise(arr: NDArray[np.floating[Any]], slope: float, intercept: float, bits: int,
              signed: bool, tags: bool, philips: bool, vendor: str, how: str) -> PixelStorage:
    q = np.rint((arr - intercept) / slope)
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    bottom = -top - 1 if signed else 0
    if q.size and (q.min() < bottom or q.max() > top):
        raise ValueError(
            f"data: values {float(arr.min()):.6g} .. {float(arr.max()):.6g} need stored "
            f"integers {int(q.min())} .. {int(q.max())} at slope {slope:g} ({how}), outside "
            f"the {bits}-bit {'signed' if signed else 'unsigned'} range {bottom} .. {top} "
            f"of the {vendor} style; pass a larger stored_unit")
    stored = q.astype(np.int16 if signed else np.uint16)
    return PixelStorage(stored=stored, slope=slope, intercept=intercept, bits_stored=bits,
                        signed=signed, rescale_tags=tags, philips_scale=philips)


def _uid(seed: str, *parts: object) -> str:
    # one joined source: pydicom concatenates entropy sources without a separator, so
    # (phase 1, slice 10) and (phase 11, slice 0) would otherwise give the same UID
    return str(generate_uid(prefix=UID_PREFIX, entropy_srcs=["|".join([seed, *map(str, parts)])]))


def _tm(dt: datetime) -> str:
    return dt.strftime("%H%M%S.%f")


def _dt(dt: datetime) -> str:
    return dt.strftime("%Y%m%d%H%M%S.%f")


def _atomic_save(ds: Dataset, path: Path) -> None:
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def _pixel_module(ds: Dataset, st: PixelStorage, rows: int, cols: int) -> None:
    """Image pixel description, classic rescale and the Philips private scale."""
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = st.bits_stored
    ds.HighBit = st.bits_stored - 1
    ds.PixelRepresentation = int(st.signed)
    if ds.SOPClassUID == _MR_SOP and st.rescale_tags:
        ds.RescaleSlope = _ds(st.slope)
        ds.RescaleIntercept = _ds(st.intercept)
        ds.RescaleType = "US"
    if st.philips_scale:                        # FP = DV / (RS * SS) = DV
        block = ds.private_block(0x2005, PHILIPS_PRIVATE_CREATOR, create=True)
        block.add_new(0x0D, "FL", 0.0)                                  # (2005,100D)
        block.add_new(0x0E, "FL", float(np.float32(1.0 / st.slope)))    # (2005,100E)


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"DCE_{__version__}"[:16]
    return meta


def _base_dataset(*, vendor: str, sop_class: str, sop_instance: str, study_uid: str,
                  series_uid: str, frame_uid: str, start: datetime, study_start: datetime,
                  series_description: str, series_number: int, patient_name: str,
                  patient_id: str, patient_birth_date: str, patient_sex: str,
                  field_strength_t: float, tr_s: float, te_s: float,
                  extra_tags: Mapping[str, Any] | None) -> Dataset:
    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_instance)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyDate = study_start.strftime("%Y%m%d")
    ds.StudyTime = _tm(study_start)
    ds.SeriesDate = start.strftime("%Y%m%d")
    ds.SeriesTime = _tm(start)
    ds.AccessionNumber = ""
    ds.Modality = "MR"
    for kw, val in _STYLE[vendor].items():
        setattr(ds, kw, val)
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = series_description
    ds.ProtocolName = series_description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = patient_birth_date
    ds.PatientSex = patient_sex
    ds.BodyPartExamined = "SPINE"
    ds.PatientPosition = "HFS"
    ds.MagneticFieldStrength = _ds(field_strength_t)
    ds.ImagingFrequency = _ds(round(_GAMMA_MHZ_PER_T * field_strength_t, 6))
    ds.MRAcquisitionType = "3D"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = int(series_number)
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    if sop_class == _MR_SOP:
        ds.ScanningSequence = "GR"
        ds.SequenceVariant = "SP"
        ds.ScanOptions = ""
        ds.RepetitionTime = _ds(tr_s * 1000.0)
        ds.EchoTime = _ds(te_s * 1000.0)
        ds.EchoTrainLength = 1
    for kw, val in (extra_tags or {}).items():
        setattr(ds, kw, val)
    return ds


def _check_inputs(data: ArrayLike, times_s: ArrayLike,
                  flip_angles_deg: ArrayLike) -> tuple[NDArray[Any], NDArray[np.float64],
                                                       NDArray[np.float64]]:
    arr = np.asarray(data)
    if arr.ndim == 3:
        arr = arr[..., np.newaxis]
    if arr.ndim != 4 or min(arr.shape) < 1:
        raise ValueError(f"data: expected a 3-D or 4-D array (i, j, k[, t]), got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("data: NaN or infinite values cannot be stored in DICOM")
    t = np.atleast_1d(np.asarray(times_s, dtype=np.float64))
    if t.shape != (arr.shape[3],):
        raise ValueError(f"t_s: {t.size} times for {arr.shape[3]} volumes")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise ValueError("t_s: times must be strictly increasing")
    fa = np.broadcast_to(np.asarray(flip_angles_deg, dtype=np.float64), t.shape)
    return arr, t, np.array(fa)


def _write_volumes(out_dir: str | os.PathLike[str], data: ArrayLike, times_s: ArrayLike,
                   affine: ArrayLike, *, flip_angles_deg: ArrayLike, dynamic: bool,
                   vendor: str, tr_s: float, te_s: float, field_strength_t: float,
                   series_description: str, series_number: int, patient_name: str,
                   patient_id: str, patient_birth_date: str, patient_sex: str,
                   study_datetime: datetime, series_offset_s: float, uid_seed: str,
                   study_uid: str | None, frame_of_reference_uid: str | None,
                   shuffle_instance_numbers: bool,
                   extra_tags: Mapping[str, Any] | None,
                   image_type: Sequence[str] | None = None, stored_unit: float | None = None,
                   full_range: bool = False) -> list[Path]:
    vendor = _check_vendor(vendor)
    arr, t, fa = _check_inputs(data, times_s, flip_angles_deg)
    geo = geometry_from_affine(affine)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ni, nj, nk, nt = arr.shape
    st = pixel_storage(arr, vendor, stored_unit, full_range=full_range)
    seed = f"{uid_seed}|{series_number}|{series_description}"
    study_uid = study_uid or _uid(str(uid_seed), "study")
    frame_uid = frame_of_reference_uid or _uid(str(uid_seed), "frame")
    series_uid = _uid(seed, "series")
    start = study_datetime + timedelta(seconds=float(series_offset_s))
    lps = geo["lps"]
    positions = [lps @ np.array([0.0, 0.0, float(k), 1.0]) for k in range(nk)]
    slice_loc = [float(p[:3] @ geo["normal"]) for p in positions]
    common: dict[str, Any] = {"vendor": vendor, "study_uid": study_uid, "series_uid": series_uid,
              "frame_uid": frame_uid, "start": start, "study_start": study_datetime,
              "series_description": series_description, "series_number": series_number,
              "patient_name": patient_name, "patient_id": patient_id,
              "patient_birth_date": patient_birth_date, "patient_sex": patient_sex,
              "field_strength_t": field_strength_t, "tr_s": tr_s, "te_s": te_s,
              "extra_tags": extra_tags}

    if vendor == "enhanced":
        return [_write_enhanced(out, st, t, fa, geo, positions, dynamic=dynamic, seed=seed,
                                common=common)]

    n_files = nk * nt
    numbers = np.arange(1, n_files + 1)
    if shuffle_instance_numbers:
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8],
                                                   "little"))
        numbers = rng.permutation(numbers)
    paths = []
    for p in range(nt):
        when = start + timedelta(seconds=float(t[p]))
        for k in range(nk):
            n = p * nk + k
            sop = _uid(seed, "instance", p, k)
            ds = _base_dataset(sop_class=_MR_SOP, sop_instance=sop, **common)
            ds.ImageType = list(image_type) if image_type else (
                ["ORIGINAL", "PRIMARY", "M", "ND"] if vendor == "philips"
                else ["ORIGINAL", "PRIMARY", "OTHER"])
            ds.AcquisitionDate = when.strftime("%Y%m%d")
            ds.ContentDate = when.strftime("%Y%m%d")
            if vendor == "ge":
                ds.AcquisitionTime = _tm(start)
                ds.ContentTime = _tm(start)
                ds.TriggerTime = _ds(round(t[p] * 1000.0, 3))
            elif vendor == "siemens":
                ds.AcquisitionTime = _tm(when)
                ds.ContentTime = _tm(when)
                ds.AcquisitionNumber = p + 1
            else:  # philips
                ds.AcquisitionTime = _tm(when)
                ds.ContentTime = _tm(start)
                if dynamic:
                    ds.TemporalPositionIdentifier = p + 1
                    ds.NumberOfTemporalPositions = nt
                    ds.TriggerTime = _ds(round(t[p] * 1000.0, 3))
            ds.FlipAngle = _ds(fa[p])
            ds.InstanceNumber = int(numbers[n])
            ds.ImagePositionPatient = [_ds(round(v, 4)) for v in positions[k][:3]]
            ds.ImageOrientationPatient = [_ds(round(v, 8)) for v in geo["orientation"]]
            ds.SliceLocation = _ds(round(slice_loc[k], 4))
            ds.SliceThickness = _ds(round(geo["slice_thickness_mm"], 6))
            ds.SpacingBetweenSlices = _ds(round(geo["slice_thickness_mm"], 6))
            ds.PixelSpacing = [_ds(round(v, 6)) for v in geo["pixel_spacing"]]
            _pixel_module(ds, st, nj, ni)
            ds.PixelData = np.ascontiguousarray(st.stored[:, :, k, p].T).tobytes()
            name = hashlib.sha256(sop.encode()).hexdigest()[:20].upper()
            path = out / name
            _atomic_save(ds, path)
            paths.append(path)
    return paths


def _write_enhanced(out: Path, st: PixelStorage, t: NDArray[np.float64],
                    fa: NDArray[np.float64], geo: dict[str, Any],
                    positions: Sequence[NDArray[np.float64]], *, dynamic: bool, seed: str,
                    common: dict[str, Any]) -> Path:
    ni, nj, nk, nt = st.stored.shape
    sop = _uid(seed, "instance")
    ds = _base_dataset(sop_class=_ENH_MR_SOP, sop_instance=sop, **common)
    start: datetime = common["start"]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "T1", "NONE"]
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.ComplexImageComponent = "MAGNITUDE"
    ds.AcquisitionContrast = "T1"
    ds.ContentQualification = "RESEARCH"
    ds.ResonantNucleus = "1H"
    ds.EchoPulseSequence = "GRADIENT"
    ds.ContentDate = start.strftime("%Y%m%d")
    ds.ContentTime = _tm(start)
    ds.AcquisitionDateTime = _dt(start)
    ds.AcquisitionDuration = float(t[-1] - t[0]) + (float(np.median(np.diff(t)))
                                                    if t.size > 1 else 0.0)
    ds.InstanceNumber = 1
    ds.NumberOfFrames = nk * nt
    _pixel_module(ds, st, nj, ni)
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"

    dim_org = _uid(seed, "dimension")
    org = Dataset()
    org.DimensionOrganizationUID = dim_org
    ds.DimensionOrganizationSequence = DicomSequence([org])
    dims = []
    # (index, functional group): TemporalPositionIndex or FlipAngle, then InStackPositionNumber
    first = (((0x0020, 0x9128), (0x0020, 0x9111)) if dynamic
             else ((0x0018, 0x1314), (0x0018, 0x9112)))
    for pointer, group in (first, ((0x0020, 0x9057), (0x0020, 0x9111))):
        d = Dataset()
        d.DimensionOrganizationUID = dim_org
        d.DimensionIndexPointer = pointer
        d.FunctionalGroupPointer = group
        dims.append(d)
    ds.DimensionIndexSequence = DicomSequence(dims)

    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [_ds(round(v, 6)) for v in geo["pixel_spacing"]]
    pm.SliceThickness = _ds(round(geo["slice_thickness_mm"], 6))
    pm.SpacingBetweenSlices = _ds(round(geo["slice_thickness_mm"], 6))
    shared.PixelMeasuresSequence = DicomSequence([pm])
    echo = Dataset()
    echo.EffectiveEchoTime = float(common["te_s"]) * 1000.0
    shared.MREchoSequence = DicomSequence([echo])
    if np.all(fa == fa[0]):
        shared.MRTimingAndRelatedParametersSequence = DicomSequence(
            [_timing_item(common["tr_s"], float(fa[0]))])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    frames = []
    step = float(np.median(np.diff(t))) if t.size > 1 else 0.0
    for p in range(nt):
        when = start + timedelta(seconds=float(t[p]))
        for k in range(nk):
            item = Dataset()
            fc = Dataset()
            fc.FrameAcquisitionDateTime = _dt(when)
            fc.FrameReferenceDateTime = _dt(when)
            fc.FrameAcquisitionDuration = step * 1000.0
            if dynamic:
                fc.TemporalPositionIndex = p + 1
            fc.StackID = "1"
            fc.InStackPositionNumber = k + 1
            fc.DimensionIndexValues = [p + 1, k + 1]
            item.FrameContentSequence = DicomSequence([fc])
            pp = Dataset()
            pp.ImagePositionPatient = [_ds(round(v, 4)) for v in positions[k][:3]]
            item.PlanePositionSequence = DicomSequence([pp])
            po = Dataset()
            po.ImageOrientationPatient = [_ds(round(v, 8)) for v in geo["orientation"]]
            item.PlaneOrientationSequence = DicomSequence([po])
            pv = Dataset()
            pv.RescaleIntercept = _ds(st.intercept)
            pv.RescaleSlope = _ds(st.slope)
            pv.RescaleType = "US"
            item.PixelValueTransformationSequence = DicomSequence([pv])
            if not np.all(fa == fa[0]):
                item.MRTimingAndRelatedParametersSequence = DicomSequence(
                    [_timing_item(common["tr_s"], float(fa[p]))])
            frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    # frame order: phase-major, slice-minor; each frame is (rows, columns) = (j, i)
    ds.PixelData = np.ascontiguousarray(np.transpose(st.stored, (3, 2, 1, 0))).tobytes()
    path = out / hashlib.sha256(sop.encode()).hexdigest()[:20].upper()
    _atomic_save(ds, path)
    return path


def _timing_item(tr_s: float, fa_deg: float) -> Dataset:
    item = Dataset()
    item.RepetitionTime = float(tr_s) * 1000.0
    item.FlipAngle = float(fa_deg)
    item.EchoTrainLength = 1
    item.RFEchoTrainLength = 1
    item.GradientEchoTrainLength = 1
    return item


_DEFAULT_STUDY = datetime(2000, 1, 1, 8, 0, 0)


def write_series(out_dir: str | os.PathLike[str], data_4d: ArrayLike, t_s: ArrayLike,
                 affine: ArrayLike, *, vendor: str = "ge", flip_angle_deg: float,
                 tr_s: float, te_s: float, field_strength_t: float = 3.0,
                 series_description: str = "DCE", series_number: int = 1,
                 patient_name: str, patient_id: str, patient_birth_date: str = "",
                 patient_sex: str = "O", study_datetime: datetime = _DEFAULT_STUDY,
                 series_offset_s: float = 0.0, uid_seed: str | int = 0,
                 study_uid: str | None = None, frame_of_reference_uid: str | None = None,
                 shuffle_instance_numbers: bool = True,
                 extra_tags: Mapping[str, Any] | None = None,
                 stored_unit: float | None = None) -> list[Path]:
    """Write a dynamic (4-D) or single-volume (3-D) image as one DICOM MR series.

    Parameters
    ----------
    out_dir : path-like
        Destination folder (created); files are named by a hash of their SOP Instance UID.
    data_4d : array_like, shape (n_i, n_j, n_k, n_t) or (n_i, n_j, n_k)
        Image values (finite), in scanner units: stored as integers in the vendor's
        format (module notes, :func:`pixel_storage`).
    t_s : array_like, shape (n_t,)
        Phase times (s) relative to the series start, strictly increasing.
    affine : array_like, shape (4, 4)
        Voxel to RAS+ mm (see module notes).
    vendor : {"ge", "siemens", "philips", "enhanced"}
        Timing style (module notes). ``"enhanced"`` writes one multi-frame file.
    flip_angle_deg : float
        Flip angle (deg).
    tr_s, te_s : float
        Repetition and echo time (s); written in ms.
    field_strength_t : float
        MagneticFieldStrength (T).
    series_description : str
    series_number : int
    patient_name, patient_id : str
        Written to PatientName and PatientID only.
    patient_birth_date, patient_sex : str
        PatientBirthDate (``YYYYMMDD`` or empty) and PatientSex.
    study_datetime : datetime
        Study start (StudyDate/StudyTime).
    series_offset_s : float
        Series start relative to the study start (s).
    uid_seed : str or int
        Seed of the deterministic UIDs (same seed and arguments -> identical files). The
        study and frame-of-reference UIDs depend only on it, so series written with the
        same seed share a study.
    study_uid, frame_of_reference_uid : str, optional
        Explicit UIDs overriding the derived ones.
    shuffle_instance_numbers : bool
        Assign InstanceNumber as a (deterministic) random permutation instead of time order.
    extra_tags : mapping, optional
        Additional top-level attributes by keyword (e.g. InstitutionName), written as given.
    stored_unit : float, optional
        Value of one stored integer step (written as RescaleSlope); None: the vendor's
        convention (:func:`pixel_storage`).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ValueError
        Bad shape, times, affine or vendor; values that cannot be stored
        (:func:`pixel_storage`).
    """
    return _write_volumes(
        out_dir, data_4d, t_s, affine, flip_angles_deg=flip_angle_deg, dynamic=True,
        vendor=vendor, tr_s=tr_s, te_s=te_s, field_strength_t=field_strength_t,
        series_description=series_description, series_number=series_number,
        patient_name=patient_name, patient_id=patient_id,
        patient_birth_date=patient_birth_date, patient_sex=patient_sex,
        study_datetime=study_datetime, series_offset_s=series_offset_s,
        uid_seed=str(uid_seed), study_uid=study_uid,
        frame_of_reference_uid=frame_of_reference_uid,
        shuffle_instance_numbers=shuffle_instance_numbers, extra_tags=extra_tags,
        stored_unit=stored_unit)


def write_vfa(out_dir: str | os.PathLike[str], data: ArrayLike, flip_angles_deg: ArrayLike,
              affine: ArrayLike, *, separate_series: bool = True, vendor: str = "ge",
              tr_s: float, te_s: float, field_strength_t: float = 3.0,
              series_description: str = "VFA T1", series_number: int = 10,
              patient_name: str, patient_id: str, patient_birth_date: str = "",
              patient_sex: str = "O", study_datetime: datetime = _DEFAULT_STUDY,
              series_offset_s: float = 0.0, volume_duration_s: float = 20.0,
              uid_seed: str | int = 0, study_uid: str | None = None,
              frame_of_reference_uid: str | None = None,
              shuffle_instance_numbers: bool = True,
              extra_tags: Mapping[str, Any] | None = None,
              stored_unit: float | None = None) -> list[Path]:
    """Write variable-flip-angle volumes as DICOM.

    Parameters
    ----------
    out_dir : path-like
        Destination folder.
    data : array_like, shape (n_i, n_j, n_k, n_fa)
        One volume per flip angle.
    flip_angles_deg : array_like, shape (n_fa,)
        Flip angles (deg).
    affine : array_like, shape (4, 4)
        Voxel to RAS+ mm.
    separate_series : bool
        True: one series per flip angle (numbers ``series_number + n``, description
        ``"<series_description> FA<angle>"``); False: one series with all flip angles.
    vendor : {"ge", "siemens", "philips", "enhanced"}
        Style (no temporal-position tags are written for VFA data).
    volume_duration_s : float
        Acquisition time of one volume (s); volumes follow each other.
    tr_s, te_s, field_strength_t, series_description, series_number, patient_name,
    patient_id, patient_birth_date, patient_sex, study_datetime, series_offset_s,
    uid_seed, study_uid, frame_of_reference_uid, shuffle_instance_numbers, extra_tags
        As in :func:`write_series`.
    stored_unit : float, optional
        As in :func:`write_series`. With ``separate_series`` and None, every flip angle's
        series gets the step the whole data set needs (one scale for all flip angles,
        as a scanner's fixed receiver gain gives).

    Returns
    -------
    list of Path
    """
    arr = np.asarray(data)
    fa = np.atleast_1d(np.asarray(flip_angles_deg, dtype=np.float64))
    if arr.ndim != 4 or arr.shape[3] != fa.size:
        raise ValueError(f"data: expected shape (i, j, k, {fa.size}) for {fa.size} flip "
                         f"angles, got {arr.shape}")
    kw: dict[str, Any] = {
        "dynamic": False, "vendor": vendor, "tr_s": tr_s, "te_s": te_s,
        "field_strength_t": field_strength_t, "patient_name": patient_name,
        "patient_id": patient_id, "patient_birth_date": patient_birth_date,
        "patient_sex": patient_sex, "study_datetime": study_datetime,
        "uid_seed": str(uid_seed), "study_uid": study_uid,
        "frame_of_reference_uid": frame_of_reference_uid,
        "shuffle_instance_numbers": shuffle_instance_numbers, "extra_tags": extra_tags}
    if separate_series and stored_unit is None and vendor != "philips":
        stored_unit = pixel_storage(arr, vendor).slope
    kw["stored_unit"] = stored_unit
    if not separate_series:
        return _write_volumes(out_dir, arr, np.arange(fa.size) * volume_duration_s, affine,
                              flip_angles_deg=fa, series_description=series_description,
                              series_number=series_number, series_offset_s=series_offset_s,
                              **kw)
    paths: list[Path] = []
    for n, angle in enumerate(fa):
        paths += _write_volumes(out_dir, arr[..., n], [0.0], affine, flip_angles_deg=angle,
                                series_description=f"{series_description} FA{angle:g}",
                                series_number=series_number + n,
                                series_offset_s=series_offset_s + n * volume_duration_s, **kw)
    return paths


#: B1 map styles of :func:`write_b1map`: stored value per unit B1 factor, ImageType,
#: default SeriesDescription and value units (RealWorldValueMapping, UCUM; "" = none).
B1_CONVENTIONS: dict[str, dict[str, Any]] = {
    "siemens_tfl_b1map": {"scale": 800.0, "vendor": "siemens", "description": "tfl_b1map",
                          "image_type": ["ORIGINAL", "PRIMARY", "FLIP ANGLE MAP", "ND"],
                          "units": ""},
    "percent": {"scale": 100.0, "vendor": "philips", "description": "B1 map",
                "image_type": ["ORIGINAL", "PRIMARY", "B1", "NONE"], "units": "%"},
    "factor": {"scale": 1.0, "vendor": "ge", "description": "B1 map",
               "image_type": ["DERIVED", "PRIMARY", "B1MAP"], "units": "1"},
}


def write_b1map(out_dir: str | os.PathLike[str], b1_factor: ArrayLike, affine: ArrayLike, *,
                convention: str = "siemens_tfl_b1map", series_description: str | None = None,
                series_number: int = 5, flip_angle_deg: float = 8.0, tr_s: float = 5.0,
                te_s: float = 0.002, field_strength_t: float = 3.0, patient_name: str,
                patient_id: str, study_datetime: datetime = _DEFAULT_STUDY,
                series_offset_s: float = 30.0, uid_seed: str | int = 0,
                study_uid: str | None = None, frame_of_reference_uid: str | None = None,
                image_type: Sequence[str] | None = None,
                extra_tags: Mapping[str, Any] | None = None) -> list[Path]:
    """Write a B1 (flip-angle) map as one single-volume DICOM series in a vendor style.

    Parameters
    ----------
    out_dir : path-like
        Destination folder.
    b1_factor : array_like, shape (n_i, n_j, n_k)
        Relative B1 (actual / nominal flip angle; 1 = nominal), on the map's own grid.
    affine : array_like, shape (4, 4)
        Voxel to RAS+ mm of the map (any grid).
    convention : {"siemens_tfl_b1map", "percent", "factor"}
        How values are stored (:data:`B1_CONVENTIONS`): Siemens ``tfl_b1map`` flip
        angle in 0.1 deg for a nominal 80 deg (value = 800 x factor), percent of nominal
        (Philips style, RealWorldValueMapping units ``%``), or the factor itself
        (RealWorldValueMapping units ``1``).
    series_description : str, optional
        Default from the convention (``tfl_b1map`` or ``B1 map``).
    series_number : int
    flip_angle_deg : float
        FlipAngle header of the map sequence (deg).
    tr_s, te_s, field_strength_t, patient_name, patient_id, study_datetime,
    series_offset_s, uid_seed, study_uid, frame_of_reference_uid, extra_tags
        As in :func:`write_series`.
    image_type : sequence of str, optional
        ImageType; default from the convention (e.g. ``FLIP ANGLE MAP``).

    Returns
    -------
    list of Path
        The files written (one per slice).
    """
    if convention not in B1_CONVENTIONS:
        raise ValueError(f"convention: unknown B1 convention {convention!r}; use one of "
                         f"{', '.join(B1_CONVENTIONS)}")
    style = B1_CONVENTIONS[convention]
    arr = np.asarray(b1_factor, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"b1_factor: expected a 3-D array (i, j, k), got shape {arr.shape}")
    tags: dict[str, Any] = dict(extra_tags or {})
    if style["units"]:
        unit = Dataset()
        unit.CodeValue = style["units"]
        unit.CodingSchemeDesignator = "UCUM"
        unit.CodeMeaning = "percent" if style["units"] == "%" else "no units"
        item = Dataset()
        item.MeasurementUnitsCodeSequence = DicomSequence([unit])
        item.RealWorldValueSlope = 1.0
        item.RealWorldValueIntercept = 0.0
        item.LUTLabel = "B1"
        tags["RealWorldValueMappingSequence"] = DicomSequence([item])
    return _write_volumes(
        out_dir, arr[..., np.newaxis] * style["scale"], [0.0], affine,
        flip_angles_deg=flip_angle_deg, dynamic=False, vendor=style["vendor"], tr_s=tr_s,
        te_s=te_s, field_strength_t=field_strength_t,
        series_description=series_description or style["description"],
        series_number=series_number, patient_name=patient_name, patient_id=patient_id,
        patient_birth_date="", patient_sex="O", study_datetime=study_datetime,
        series_offset_s=series_offset_s, uid_seed=str(uid_seed), study_uid=study_uid,
        frame_of_reference_uid=frame_of_reference_uid, shuffle_instance_numbers=False,
        extra_tags=tags, image_type=list(image_type or style["image_type"]), full_range=True)


def _write_session(root: Path, ph: SessionPhantom, *, vendor: str, study: datetime,
                   uid_seed: str, patient_name: str, patient_id: str,
                   vfa_separate: bool, shuffle: bool) -> None:
    acq = ph.acquisition
    dcm = root / "dicom"
    tmp = root / f".dicom.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    ident: dict[str, Any] = {"patient_name": patient_name, "patient_id": patient_id}
    try:
        offset = 0.0
        if ph.vfa_signal is not None:
            write_vfa(tmp, ph.vfa_signal, ph.vfa_flip_angles_deg, ph.affine,
                      separate_series=vfa_separate, vendor=vendor, tr_s=acq.tr_s,
                      te_s=acq.te_s, field_strength_t=acq.field_strength_t,
                      series_description=VFA_DESCRIPTIONS[vendor], series_number=3,
                      study_datetime=study, series_offset_s=60.0, uid_seed=uid_seed,
                      shuffle_instance_numbers=shuffle, **ident)
            offset = 60.0 + 20.0 * len(ph.vfa_flip_angles_deg) + 60.0
        write_series(tmp, ph.signal, ph.t_s, ph.affine, vendor=vendor,
                     flip_angle_deg=acq.flip_angle_deg, tr_s=acq.tr_s, te_s=acq.te_s,
                     field_strength_t=acq.field_strength_t,
                     series_description=DCE_DESCRIPTIONS[vendor], series_number=20,
                     study_datetime=study, series_offset_s=offset, uid_seed=uid_seed,
                     shuffle_instance_numbers=shuffle, **ident)
        if dcm.exists():
            shutil.rmtree(dcm)
        os.replace(tmp, dcm)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _session_truth_row(ph: SessionPhantom) -> dict[str, Any]:
    """One row of ``truth/sessions_truth.tsv`` (columns documented in
    :func:`write_cohort_dicom`)."""
    a, acq, spec = ph.aif, ph.acquisition, ph.spec
    blood = spec.tissue_table()["aorta"]
    body = ph.tissue_labels != TISSUE_CODES["background"]
    bias = ph.truth.get("bias")
    bias_body = bias[body] if bias is not None and body.any() else np.ones(1)
    s = a.spec
    return {"subject": ph.subject, "session": ph.session,
            "bolus_arrival_s": a.arrival_s, "aif_peak_blood_mM": a.peak_mM,
            "aif_peak_time_s": a.peak_time_s, "aif_fwhm_s": a.fwhm_s,
            "aif_scale": a.scale, "aif_amplitude_mM": s.amplitude_mM,
            "aif_first_pass_fwhm_s": s.fwhm_s, "aif_shape": s.shape,
            "aif_recirc_delay_s": s.recirc_delay_s,
            "aif_recirc_fraction": s.recirc_fraction, "aif_recirc_width": s.recirc_width,
            "aif_recirc_shape": s.recirc_shape, "aif_plateau_mM": s.plateau_mM,
            "aif_washout_tau_s": s.washout_tau_s, "hematocrit": a.hematocrit,
            "blood_t10_s": blood.t10_s, "blood_snr": acq.snr if acq.snr is not None else np.nan,
            "blood_signal": ph.blood_signal, "noise_sigma": ph.noise_sigma,
            "gain": spec.gain, "m0_scale": acq.m0_scale,
            "bias_min": float(bias_body.min()), "bias_max": float(bias_body.max()),
            "flip_angle_deg": acq.flip_angle_deg, "tr_s": acq.tr_s, "te_s": acq.te_s,
            "vfa_flip_angles_deg": " ".join(f"{x:g}" for x in ph.vfa_flip_angles_deg),
            "r1_per_mM_per_s": acq.r1_per_mM_per_s,
            "field_strength_t": acq.field_strength_t,
            "shift_posterior_mm": spec.shift_mm[0], "shift_inferior_mm": spec.shift_mm[1],
            "shift_right_mm": spec.shift_mm[2],
            "rotation_posterior_deg": spec.rotation_deg[0],
            "rotation_inferior_deg": spec.rotation_deg[1],
            "rotation_right_deg": spec.rotation_deg[2], "supersample": acq.supersample}


def write_cohort_dicom(out_dir: str | os.PathLike[str], cohort: Cohort,
                       vendors: Sequence[str] = ("ge", "siemens", "philips"), *,
                       patient_name_format: str = "PHANTOM^{subject}",
                       patient_id_format: str = "PHANTOM{subject}",
                       vfa_separate_series: bool | None = None,
                       shuffle_instance_numbers: bool = True,
                       write_truth_maps: bool = True,
                       write_hematocrit: bool = True) -> pd.DataFrame:
    """Write a phantom cohort: DICOM per session, ROI label maps, cohort and truth tables.

    Layout under ``out_dir``::

        sessions.tsv            subject, session, days_from_rt, vendor, dicom_dir,
                                lesion_roi, marrow_roi (paths relative to out_dir),
                                hematocrit (the session's true large-vessel hematocrit,
                                as a clinical lab value; optional, write_hematocrit)
        lesions.tsv             subject, lesion, level, recurrence, recurrence_day
        truth/lesions_truth.tsv the same plus the design truth (cohort.lesions:
                                responder_like, delay_s)
        truth/lesion_truth.tsv  per lesion and session: true parameters (cohort.truth:
                                subject, session, days_from_rt, lesion, level, n_voxels,
                                ktrans_per_min, ve, vp, kep_per_min (label means of the
                                voxels' volume averages: the default truth),
                                ktrans_per_min_tissue, ve_tissue, vp_tissue,
                                kep_per_min_tissue (label means of the voxel-centre
                                tissue values), *_nominal, delay_s, t10_s, recurrence)
        truth/sessions_truth.tsv per session: the true AIF (bolus_arrival_s,
                                aif_peak_blood_mM, aif_peak_time_s, aif_fwhm_s, aif_scale
                                and the aif_* family parameters of dce.phantom.AIFSpec),
                                hematocrit, blood_t10_s, blood_snr (requested baseline
                                blood SNR), blood_signal, noise_sigma, gain, m0_scale,
                                bias_min/bias_max (receive field over the body),
                                flip_angle_deg, tr_s, te_s, vfa_flip_angles_deg,
                                r1_per_mM_per_s, field_strength_t, shift_*_mm,
                                rotation_*_deg (the patient's pose), supersample
        truth/motion_truth.tsv  per session: the true rigid motion from the subject's
                                first session (cohort.motion_truth: pose and the 4x4
                                baseline-world -> session-world matrix m00..m23, RAS mm)
        <subject>/<session>/dicom/              DCE and VFA series (hashed file names)
        <subject>/<session>/roi/<subject>_<session>_lesions.nii.gz   labels 1..k
        <subject>/<session>/roi/<subject>_<session>_marrow.nii.gz    normal-marrow ROI
        <subject>/<session>/roi/<subject>_<session>_tissue.nii.gz    tissue codes
        <subject>/<session>/truth/<subject>_<session>_<param>.nii.gz  truth maps
                                (SessionPhantom.truth: volume averages, *_tissue
                                voxel-centre values, delay_s, t10_s, m0, bias,
                                pv_fraction)
        truth/prm_truth.tsv     per follow-up session, lesion and parameter (vp,
                                ktrans_per_min): the true PRM fractions and ROI-mean
                                change on the baseline grid (dce.phantom.prm_truth_table;
                                response_pattern rim_core / uniform)
        <subject>/<session>/truth/<subject>_<session>_prm_<param>_class.nii.gz  follow-ups:
                                true PRM classes on the baseline grid (codes
                                dce.phantom.PRM_TRUTH_CODES, thresholds
                                PRM_TRUTH_THRESHOLDS); ``_prm_<param>_change`` the true
                                change (NaN outside the lesion and marrow)
        <subject>/<session>/truth/<subject>_<session>_aif.tsv  t_s, cb_mM, cp_mM at the
                                acquisition times (true blood / plasma AIF)
        <subject>/<session>/truth/<subject>_<session>_aif_fine.tsv  the same on the fine
                                grid (0.1 s)

    Parameters
    ----------
    out_dir : path-like
        Output root (created).
    cohort : dce.phantom.Cohort
    vendors : sequence of str
        Styles cycled over patients (patient ``n`` gets ``vendors[n % len(vendors)]``).
    patient_name_format, patient_id_format : str
        Formats of the synthetic PatientName and PatientID (``{subject}`` is replaced).
    vfa_separate_series : bool or None
        One VFA series per flip angle (True) or one series with all flip angles (False);
        None: per flip angle for GE and Siemens, one series for Philips and enhanced.
    shuffle_instance_numbers : bool
        Shuffle InstanceNumber (see :func:`write_series`).
    write_truth_maps : bool
        Also write the truth parameter maps (NIfTI).
    write_hematocrit : bool
        Add the ``hematocrit`` column (each session's true large-vessel hematocrit,
        :attr:`dce.phantom.AIFSpec.hematocrit`) to ``sessions.tsv``, as a clinical lab
        value would provide it; False leaves it out (the pipeline then assumes one).

    Returns
    -------
    DataFrame
        The sessions table written to ``sessions.tsv``.

    Notes
    -----
    Each session's DICOM folder is assembled under a temporary name and renamed into
    place (an existing one is replaced). Sessions are rendered one at a time.
    """
    root = Path(out_dir)
    styles = [_check_vendor(v) for v in vendors]
    sessions, lesions = cohort_sheets(cohort, styles, hematocrit=write_hematocrit)
    root.mkdir(parents=True, exist_ok=True)
    subjects = list(dict.fromkeys(cohort.sessions["subject"]))
    aif_rows = []
    for ph, row in zip(cohort, sessions.itertuples(index=False), strict=True):
        subj, ses = ph.subject, ph.session
        vendor = str(row.vendor)
        sdir = root / subj / ses
        sdir.mkdir(parents=True, exist_ok=True)
        rt_day = datetime(2001, 1, 1, 8, 0, 0) + timedelta(days=30 * subjects.index(subj))
        study = rt_day + timedelta(days=float(ph.spec.days_from_rt))
        separate = vfa_separate_series if vfa_separate_series is not None else \
            vendor in ("ge", "siemens")
        _write_session(sdir, ph, vendor=vendor, study=study,
                       uid_seed=f"dce-phantom|{cohort.seed}|{subj}|{ses}",
                       patient_name=patient_name_format.format(subject=subj),
                       patient_id=patient_id_format.format(subject=subj),
                       vfa_separate=separate, shuffle=shuffle_instance_numbers)
        stem = f"{subj}_{ses}"
        les_path, mar_path = root / str(row.lesion_roi), root / str(row.marrow_roi)
        labels = {str(le.label): le.level for le in ph.spec.lesions}
        write_nifti(les_path, ph.lesion_labels, ph.affine, {"Labels": labels})
        write_nifti(mar_path, ph.marrow_roi, ph.affine, {"Labels": {"1": "normal marrow"}})
        write_nifti(sdir / "roi" / f"{stem}_tissue.nii.gz", ph.tissue_labels, ph.affine,
                    {"Labels": {str(v): k for k, v in TISSUE_CODES.items()},
                     "Levels": list(ph.levels)})
        if write_truth_maps:
            for name, arr in ph.truth.items():
                write_nifti(sdir / "truth" / f"{stem}_{name}.nii.gz", arr.astype(np.float32),
                            ph.affine)
            _write_prm_truth(sdir / "truth", stem, cohort, subj, ses)
        a = ph.aif
        write_table(pd.DataFrame({"t_s": a.t_s, "cb_mM": a.cb_mM, "cp_mM": a.cp_mM}),
                   sdir / "truth" / f"{stem}_aif.tsv")
        write_table(pd.DataFrame({"t_s": a.t_fine_s, "cb_mM": a.cb_fine_mM,
                                 "cp_mM": a.cp_fine_mM}),
                   sdir / "truth" / f"{stem}_aif_fine.tsv")
        aif_rows.append(_session_truth_row(ph))
    write_table(sessions, root / "sessions.tsv")
    write_table(lesions, root / "lesions.tsv")
    (root / "truth").mkdir(exist_ok=True)
    write_table(cohort.lesions, root / "truth" / "lesions_truth.tsv")
    write_table(cohort.truth, root / "truth" / "lesion_truth.tsv")
    write_table(pd.DataFrame(aif_rows), root / "truth" / "sessions_truth.tsv")
    write_table(prm_truth_table(cohort), root / "truth" / "prm_truth.tsv")
    write_table(cohort.motion_truth(), root / "truth" / "motion_truth.tsv")
    return sessions


def _write_prm_truth(folder: Path, stem: str, cohort: Cohort, subject: str,
                     session: str) -> None:
    """True PRM class and change maps of a follow-up session (nothing for a baseline)."""
    first = cohort.sessions[cohort.sessions["subject"] == subject]["session"].iloc[0]
    if session == first:
        return
    t = prm_truth(cohort, subject, session)
    labels = {str(v): k for k, v in PRM_TRUTH_CODES.items()}
    for name, thr in PRM_TRUTH_THRESHOLDS.items():
        write_nifti(folder / f"{stem}_prm_{name}_class.nii.gz",
                    prm_truth_classes(t, name), t["affine"],
                    {"Labels": labels, "Threshold": thr, "Space": "baseline"})
        change = t[f"{name}_followup"] - t[f"{name}_baseline"]
        write_nifti(folder / f"{stem}_prm_{name}_change.nii.gz", change.astype(np.float32),
                    t["affine"], {"Space": "baseline"})
