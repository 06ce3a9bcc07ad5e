"""read_nifti(..., volumes=n): the first n volumes of a 4-D image, read from only that part
of the file, with the values and dtype of the whole read (scaled integers as float32).

The truth is built here with nibabel's writer and the scaling formula
``stored * slope + inter`` (float64, rounded to float32), not with the project's reader.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dce.io import read_nifti, write_nifti

AFFINE = np.diag([2.0, 2.5, 4.0, 1.0])


def _stored(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, size=shape).astype(np.int16)


@pytest.mark.parametrize("n", [1, 3, 7])
def test_scaled_integers_first_volumes(tmp_path: Path, n: int) -> None:
    raw = _stored((5, 4, 3, 7))
    img = nib.Nifti1Image(raw, AFFINE)
    img.header.set_slope_inter(0.37, -12.5)
    path = tmp_path / "dce.nii.gz"
    nib.save(img, path)
    slope = float(np.float32(0.37))          # the header stores float32
    truth = (raw[..., :n].astype(np.float64) * slope - 12.5).astype(np.float32)
    part = read_nifti(path, volumes=n).data
    assert part.dtype == np.float32 and part.shape == (5, 4, 3, n)
    np.testing.assert_array_equal(part, truth)
    np.testing.assert_array_equal(part, read_nifti(path).data[..., :n])


def test_float_and_unit_scaled_images(tmp_path: Path) -> None:
    flt = np.random.default_rng(1).normal(size=(4, 3, 2, 6)).astype(np.float32)
    nib.save(nib.Nifti1Image(flt, AFFINE), tmp_path / "f.nii.gz")
    part = read_nifti(tmp_path / "f.nii.gz", volumes=2).data
    assert part.dtype == np.float32
    np.testing.assert_array_equal(part, flt[..., :2])
    # integer-valued data as the project stores DICOM values (16-bit, unit scale)
    ints = _stored((4, 3, 2, 6), seed=2).astype(np.float32)
    write_nifti(tmp_path / "i.nii.gz", ints, AFFINE, {"Units": "a.u."})
    whole = read_nifti(tmp_path / "i.nii.gz").data
    part = read_nifti(tmp_path / "i.nii.gz", volumes=4).data
    assert part.dtype == whole.dtype
    np.testing.assert_array_equal(part, ints[..., :4])


def test_volumes_needs_a_4d_image(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.float32), AFFINE), tmp_path / "m.nii.gz")
    with pytest.raises(ValueError, match=r"m\.nii\.gz.*4-D"):
        read_nifti(tmp_path / "m.nii.gz", volumes=2)
