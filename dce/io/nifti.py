"""NIfTI images with JSON sidecars, written atomically.

``write_nifti("x.nii.gz", data, affine, sidecar)`` writes ``x.nii.gz`` and ``x.json``.
Both are first written under hidden temporary names in the destination folder and then
moved into place with :func:`os.replace`, the sidecar first and the image last, so a
crash never leaves a truncated file under the final name and an existing image always
has its sidecar.

The sidecar must be de-identified by construction (see :mod:`dce.io.dicom`, which
builds it from an allow-list).  As a second line of defence :func:`write_nifti` refuses
keys that name patient, institution, physician, date, clock-time or UID attributes.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dce.io._jsontext import dumps
from dce.io._nibabel import nibabel as nib
from dce.io._nibabel import nibabel_volumeutils

apply_read_scaling = nibabel_volumeutils.apply_read_scaling

__all__ = ["SCALED_DESCRIP", "DynamicContents", "NiftiContents", "read_dynamic", "read_nifti",
           "sidecar_path", "write_nifti", "write_sidecar"]

#: NIfTI ``descrip`` of images :func:`write_nifti` stored as 16-bit integers with
#: ``scl_slope``/``scl_inter`` (DICOM stored values): :func:`read_nifti` returns them as
#: float32 even when the scaling is the identity (nibabel cannot tell ``scl_slope = 1``
#: from an unscaled integer image: it writes 1 for both).
SCALED_DESCRIP = "dce: scaled 16-bit integers, read as float32"

#: gzip levels of :func:`write_nifti` for ``.nii.gz`` (nibabel's default is 1, its fastest).
#: Maps and other 3-D images: level 4, about 2.5 % smaller than level 1 for about 0.05 s
#: more CPU per demo session (29 maps of 96x96x10); 4-D images (DCE, VFA: noisy 16-bit
#: integers, at most 3 % smaller at any level, level 3+ costs 0.1-0.8 s more): level 2.
#: Lossless at any level; reading costs the same.
GZIP_LEVEL_3D = 4
GZIP_LEVEL_4D = 2

#: Sidecar keys that are never written (identifiers, dates, clock times, UIDs).
_FORBIDDEN_KEY = re.compile(
    r"patient|institution|physician|operator|accession|birth|address|uid|date|"
    r"^(study|series|acquisition|content)time$|^studyid$|stationname|deviceserial|"
    r"requesting|performing|referring|otherpatient|ethnic|occupation",
    re.IGNORECASE)


class NiftiContents(NamedTuple):
    """What :func:`read_nifti` returns: ``data, affine, sidecar = read_nifti(path)``."""

    data: NDArray[Any]
    affine: NDArray[np.float64]
    sidecar: dict[str, Any]


class DynamicContents(NamedTuple):
    """What :func:`read_dynamic` returns: the image and its SPGR timing."""

    data: NDArray[Any]
    affine: NDArray[np.float64]
    sidecar: dict[str, Any]
    t_s: NDArray[np.float64]
    flip_angle_deg: float
    tr_s: float


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """JSON sidecar path of a NIfTI path (``x.nii.gz`` or ``x.nii`` -> ``x.json``).

    Parameters
    ----------
    path : path-like
        A ``.nii`` or ``.nii.gz`` file name.

    Returns
    -------
    Path
    """
    p = Path(path)
    name = p.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return p.with_name(name[: -len(ext)] + ".json")
    raise ValueError(f"{p}: NIfTI file name must end in .nii or .nii.gz")


def _check_sidecar_keys(obj: Any, where: str = "sidecar") -> None:
    if isinstance(obj, dict):
        for key, val in obj.items():
            if _FORBIDDEN_KEY.search(str(key)):
                raise ValueError(f"{where}: key {key!r} looks like a patient/institution "
                                 "identifier, date, clock time or UID and is never written")
            _check_sidecar_keys(val, f"{where}.{key}")
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _check_sidecar_keys(item, where)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"sidecar: value of type {type(obj).__name__} is not JSON serialisable")


def _tmp_name(final: Path, ext: str) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{ext}")


def _integer_packing(arr: NDArray[Any], scaling: tuple[float, float] | None
                     ) -> NDArray[np.integer[Any]] | None:
    """The 16-bit integers ``q`` with ``float32(q * slope + inter) == arr`` exactly
    (float64 arithmetic, as a NIfTI reader applies ``scl_slope``/``scl_inter``), or None.
    The identity ``(1, 0)`` qualifies too (integers in scanner units): nibabel writes
    ``scl_slope = 1`` for every unscaled integer image, so the header's ``descrip``
    (:data:`SCALED_DESCRIP`) marks packed values for :func:`read_nifti`.

    Checked in blocks of 4 M values in the array's own memory order (nibabel's images are
    Fortran-ordered: no whole-volume copy; the integers come back in the same order). The
    identity is checked in float32 (integers up to 2**24 are exact there), any other
    rescale in float64 (temporaries of 32 MB, not of the volume).
    """
    if scaling is None or arr.dtype != np.float32 or arr.size == 0:
        return None
    slope, inter = (float(np.float32(v)) for v in scaling)
    if not (np.isfinite(slope) and np.isfinite(inter)) or slope == 0.0:
        return None
    order: Literal["C", "F"] = ("F" if arr.flags.f_contiguous and not arr.flags.c_contiguous
                                else "C")
    flat = arr.reshape(-1, order=order)         # a view when arr is contiguous
    identity = slope == 1.0 and inter == 0.0
    q = None if identity else np.empty(flat.size, dtype=np.int32)
    lo_ok, hi_ok = np.iinfo(np.int16).min, np.iinfo(np.uint16).max
    qmin, qmax = hi_ok, lo_ok
    step = 1 << 22
    for lo in range(0, flat.size, step):
        block = flat[lo:lo + step]
        if identity:   # NaN fails the equality, +-inf the range
            qb = np.rint(block)
            if not np.array_equal(qb, block):
                return None
        else:
            if not np.all(np.isfinite(block)):
                return None
            qb = np.rint((block.astype(np.float64) - inter) / slope)
            if not np.array_equal((qb * slope + inter).astype(np.float32), block):
                return None
        bmin, bmax = qb.min(), qb.max()
        if bmin < lo_ok or bmax > hi_ok:
            return None
        qmin, qmax = min(qmin, int(bmin)), max(qmax, int(bmax))
        if q is not None:
            q[lo:lo + step] = qb
    if qmin >= 0:
        dtype: type[np.integer[Any]] = np.uint16
    elif qmax <= np.iinfo(np.int16).max:
        dtype = np.int16
    else:
        return None
    ints = flat.astype(dtype) if q is None else q.astype(dtype)   # exact: checked above
    return ints.reshape(arr.shape, order=order)


def write_nifti(path: str | os.PathLike[str], data: ArrayLike, affine: ArrayLike,
                sidecar: dict[str, Any] | None = None, *,
                scaling: tuple[float, float] | None = None) -> Path:
    """Write a NIfTI-1 image and its JSON sidecar atomically.

    Parameters
    ----------
    path : path-like
        Destination, ending in ``.nii.gz`` (gzip at :data:`GZIP_LEVEL_3D` for 3-D,
        :data:`GZIP_LEVEL_4D` for 4-D data) or ``.nii``.  Missing parent folders are
        created.
    data : array_like, 3-D or 4-D
        Image in NIfTI voxel order.  Stored with its own dtype (bool as uint8).
    affine : array_like, shape (4, 4)
        Voxel to RAS+ mm; written as both qform and sform (code 1, scanner).
    sidecar : dict, optional
        JSON-serialisable metadata written to :func:`sidecar_path`.  If it holds
        ``VolumeTiming`` (s) matching the 4th axis, the median phase spacing is stored
        as the 4th pixdim (seconds); otherwise the 4th axis has no time unit.
    scaling : tuple of float, optional
        ``(slope, intercept)`` of float32 ``data`` that are integers times slope plus
        intercept (DICOM stored values, :attr:`dce.io.dicom.DynamicSeries.scaling`):
        stored as 16-bit integers with ``scl_slope``/``scl_inter`` when that reproduces
        every value exactly (:func:`read_nifti` returns the same float32 array; the
        identity ``(1, 0)`` too, marked by ``descrip`` = :data:`SCALED_DESCRIP`), else
        as float32. Lossless either way; integers in scanner units (12 bits, noise of a few
        units) compress to about half the float32 size or less.

    Returns
    -------
    Path
        The image path.

    Raises
    ------
    ValueError
        Wrong file extension, data not 3-D/4-D, affine not a finite 4x4, a sidecar key
        that looks like an identifier, or non-finite numbers in the sidecar.
    """
    path = Path(path)
    json_path = sidecar_path(path)
    arr = np.asanyarray(data)
    if arr.ndim not in (3, 4):
        raise ValueError(f"{path}: data must be 3-D or 4-D, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
        raise ValueError(f"{path}: affine must be a finite 4x4 matrix, got shape {aff.shape}")
    text = None if sidecar is None else _sidecar_text(sidecar, json_path)

    packed = _integer_packing(arr, scaling)
    img = nib.Nifti1Image(arr if packed is None else packed, aff)
    hdr = img.header
    if packed is not None and scaling is not None:
        hdr.set_slope_inter(float(np.float32(scaling[0])), float(np.float32(scaling[1])))
        hdr["descrip"] = SCALED_DESCRIP
    times = (sidecar or {}).get("VolumeTiming")
    if arr.ndim == 4 and isinstance(times, (list, tuple)) and len(times) == arr.shape[3] > 1:
        hdr.set_xyzt_units("mm", "sec")
        zooms = list(hdr.get_zooms())
        zooms[3] = float(np.median(np.diff(np.asarray(times, dtype=np.float64))))
        hdr.set_zooms(zooms)
    else:
        hdr.set_xyzt_units("mm", "unknown")
    img.set_qform(aff, code=1)
    img.set_sform(aff, code=1)

    path.parent.mkdir(parents=True, exist_ok=True)
    ext = ".nii.gz" if path.name.endswith(".nii.gz") else ".nii"
    tmp_img = _tmp_name(path, ext)
    tmp_json = _tmp_name(json_path, ".json")
    try:
        if ext == ".nii.gz":
            _save_gzip(img, tmp_img, GZIP_LEVEL_4D if arr.ndim == 4 else GZIP_LEVEL_3D)
        else:
            nib.save(img, tmp_img)
        if text is not None:
            with open(tmp_json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            os.replace(tmp_json, json_path)
        os.replace(tmp_img, path)
    finally:
        for tmp in (tmp_img, tmp_json):
            if tmp.exists():
                tmp.unlink()
    return path


def _save_gzip(img: Any, path: Path, level: int) -> None:
    """Write ``img`` as a single-file NIfTI to ``path``, gzip-compressed at ``level``, as
    deterministically as nibabel does (no file name, modification time 0 in the gzip
    header: same image, same bytes)."""
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh,
                                               compresslevel=level, mtime=0) as gz:
        img.to_file_map(img.make_file_map({"image": gz}))


def _sidecar_text(sidecar: dict[str, Any], json_path: Path) -> str:
    """The sidecar as JSON text (keys checked for identifiers; NaN/inf refused)."""
    _check_sidecar_keys(sidecar)
    try:
        return dumps(sidecar, default=_json_default)
    except ValueError as exc:
        raise ValueError(f"{json_path}: sidecar has NaN/inf values ({exc})") from None


def write_sidecar(path: str | os.PathLike[str], sidecar: dict[str, Any]) -> Path:
    """Write only the JSON sidecar of the image ``path`` (atomically), as
    :func:`write_nifti` would: the record of an image that is not kept (e.g. the 4-D
    concentration, an intermediate held in memory by the workflow).

    Parameters
    ----------
    path : path-like
        The image path (``.nii.gz`` or ``.nii``); the sidecar is :func:`sidecar_path`.
    sidecar : dict
        JSON-serialisable metadata.

    Returns
    -------
    Path
        The sidecar path.

    Raises
    ------
    ValueError
        A key that looks like an identifier, or non-finite numbers.
    """
    json_path = sidecar_path(path)
    text = _sidecar_text(sidecar, json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(json_path, ".json")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, json_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return json_path


def read_nifti(path: str | os.PathLike[str], *, require_sidecar: bool = False,
               volumes: int | None = None) -> NiftiContents:
    """Read a NIfTI image and its JSON sidecar.

    Parameters
    ----------
    path : path-like
        A ``.nii`` or ``.nii.gz`` file.
    require_sidecar : bool
        If True, a missing sidecar is an error; otherwise the sidecar is ``{}``.
    volumes : int, optional
        Read only the first ``volumes`` entries of the last axis of a 4-D image (e.g. the
        pre-contrast phases of a DCE series): the values of the whole read's
        ``data[..., :volumes]``, but only that part of the file is read (and inflated).

    Returns
    -------
    NiftiContents
        ``(data, affine, sidecar)``; ``data`` in the stored dtype, or float32 for integer
        data with a scale factor (``scl_slope``/``scl_inter`` applied in float64, as
        :func:`write_nifti` stores DICOM stored values; also unit-scaled integers
        marked by :data:`SCALED_DESCRIP`); ``affine`` the sform (or qform) voxel to
        RAS+ mm.

    Raises
    ------
    FileNotFoundError
        The image (or a required sidecar) does not exist.
    ValueError
        The sidecar is not valid JSON (the message names the file).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such NIfTI file")
    img = nib.load(path)
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ValueError(f"{path}: not a NIfTI image ({type(img).__name__})")
    if volumes is not None and len(img.shape) != 4:
        raise ValueError(f"{path}: volumes= needs a 4-D image, got shape {img.shape}")
    data = _scaled_float32(img) if volumes is None else None
    if data is None:
        # a part of a 4-D image: only its bytes are read; nibabel's scaling (float64),
        # rounded to float32 below, as _scaled_float32 does for the whole image
        data = np.asanyarray(img.dataobj if volumes is None
                             else img.dataobj[..., :int(volumes)])
        if np.issubdtype(img.get_data_dtype(), np.integer) and (
                np.issubdtype(data.dtype, np.floating)
                or bytes(img.header["descrip"]).rstrip(b"\0") == SCALED_DESCRIP.encode()):
            data = data.astype(np.float32)   # scaled integers (DICOM stored values)
    affine = np.asarray(img.affine, dtype=np.float64)
    jpath = sidecar_path(path)
    sidecar: dict[str, Any] = {}
    if jpath.exists():
        try:
            sidecar = json.loads(jpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{jpath}: invalid JSON sidecar ({exc})") from None
    elif require_sidecar:
        raise FileNotFoundError(f"{jpath}: sidecar of {path} is missing")
    return NiftiContents(data=data, affine=affine, sidecar=sidecar)


def _scaled_float32(img: Any) -> NDArray[np.float32] | None:
    """Scaled integer data of ``img`` as float32, or None when not scaled integers.

    The values of ``np.asanyarray(img.dataobj).astype(np.float32)`` (nibabel's
    ``apply_read_scaling``, float64 for 16-bit data, then rounded to float32), computed in
    slabs of the last axis: a 4-D image then needs no float64 copy of the whole volume
    (about 0.4 GB at 256x256x12x60). Fortran order, as nibabel returns it.
    """
    proxy = img.dataobj
    if not (np.issubdtype(img.get_data_dtype(), np.integer) and nib.is_proxy(proxy)):
        return None
    slope, inter = np.asanyarray(proxy.slope), np.asanyarray(proxy.inter)
    if (float(slope), float(inter)) == (1.0, 0.0):
        return None
    raw = np.asanyarray(proxy.get_unscaled())
    out = np.empty(raw.shape, dtype=np.float32, order="F")
    if raw.size == 0:
        return out
    n_last = raw.shape[-1]
    step = max(1, (1 << 22) // max(1, raw.size // n_last))   # about 4 M values per slab
    for lo in range(0, n_last, step):
        out[..., lo:lo + step] = apply_read_scaling(raw[..., lo:lo + step], slope, inter)
    return out


def read_dynamic(path: str | os.PathLike[str]) -> DynamicContents:
    """Read a dynamic (DCE) NIfTI image with the timing of its required sidecar.

    Parameters
    ----------
    path : path-like
        A ``.nii`` or ``.nii.gz`` file whose sidecar holds ``VolumeTiming`` (s),
        ``FlipAngle`` (deg) and ``RepetitionTime`` (s).

    Returns
    -------
    DynamicContents
        ``(data, affine, sidecar, t_s, flip_angle_deg, tr_s)``.

    Raises
    ------
    FileNotFoundError
        The image or its sidecar does not exist.
    ValueError
        The sidecar lacks one of those keys (the message names the file and the key).
    """
    img = read_nifti(path, require_sidecar=True)
    meta = img.sidecar
    try:
        t = np.asarray(meta["VolumeTiming"], dtype=float)
        fa, tr = float(meta["FlipAngle"]), float(meta["RepetitionTime"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: sidecar lacks {exc} (VolumeTiming, FlipAngle, "
                         "RepetitionTime)") from None
    return DynamicContents(img.data, img.affine, meta, t, fa, tr)
