"""How results are stored on disk (issue 14, disk footprint): the PNG figures keep every
pixel matplotlib renders (RGB when opaque), and the gzip-compressed NIfTI images hold
exactly the bytes of the uncompressed NIfTI, deterministically."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any, Literal

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from dce.io import read_nifti
from dce.io._atomic import save_figure_atomic
from dce.io.nifti import write_nifti


def _figure(transparent: bool) -> Figure:
    """A small deterministic figure: a line, an image with a colour bar, text."""
    fig = plt.figure(figsize=(3.5, 2.0))
    if transparent:
        fig.patch.set_alpha(0.0)
    ax = fig.add_axes((0.1, 0.15, 0.35, 0.7))
    ax.plot(np.linspace(0, 1, 50), np.sin(np.linspace(0, 6, 50)), label="sin")
    ax.legend()
    ax2 = fig.add_axes((0.55, 0.15, 0.35, 0.7))
    im = ax2.imshow(np.add.outer(np.arange(20.0), np.arange(30.0)), cmap="viridis")
    fig.colorbar(im, ax=ax2)
    ax2.set_title("map")
    return fig


@pytest.mark.parametrize("transparent", [False, True])
def test_png_keeps_the_pixels_matplotlib_renders(tmp_path: Path, transparent: bool) -> None:
    ours, theirs = tmp_path / "ours.png", tmp_path / "theirs.png"
    fig = _figure(transparent)
    save_figure_atomic(fig, ours, dpi=300)
    plt.close(fig)
    fig = _figure(transparent)
    fig.savefig(theirs, dpi=300)        # matplotlib's own PNG writer (always RGBA)
    plt.close(fig)
    with Image.open(ours) as a, Image.open(theirs) as b:
        assert a.size == b.size == (1050, 600)
        assert min(a.info["dpi"]) == pytest.approx(300, abs=0.01)
        assert a.mode == ("RGBA" if transparent else "RGB")
        pa, pb = np.asarray(a), np.asarray(b)
    assert pb.shape[-1] == 4
    if transparent:
        assert (pb[..., 3] < 255).any()
        np.testing.assert_array_equal(pa, pb)
    else:
        assert (pb[..., 3] == 255).all()           # opaque: the alpha channel says nothing
        np.testing.assert_array_equal(pa, pb[..., :3])
        assert ours.stat().st_size < theirs.stat().st_size


@pytest.mark.parametrize("shape", [(20, 18, 6), (20, 18, 6, 9)])
def test_gzip_nifti_is_the_uncompressed_nifti_deterministically(tmp_path: Path,
                                                                 shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    data = (rng.normal(100, 5, shape)).astype(np.float32)
    data[:3] = np.nan
    aff = np.diag([1.5, 1.5, 4.0, 1.0])
    plain = write_nifti(tmp_path / "a.nii", data, aff)
    first = write_nifti(tmp_path / "a.nii.gz", data, aff).read_bytes()
    second = write_nifti(tmp_path / "b.nii.gz", data, aff).read_bytes()
    assert first == second                                         # same image, same bytes
    assert gzip.decompress(first) == plain.read_bytes()           # lossless: the .nii inside
    # gzip header (RFC 1952): no file name (FLG bit 3 clear), modification time 0
    assert first[:2] == b"\x1f\x8b" and not first[3] & 0x08
    assert struct.unpack("<I", first[4:8])[0] == 0
    np.testing.assert_array_equal(read_nifti(tmp_path / "a.nii.gz").data, data)
    img: Any = nib.load(tmp_path / "a.nii.gz")
    assert img.shape == shape and np.allclose(img.affine, aff)


def test_gzip_nifti_is_smaller_than_nibabels_fastest_level(tmp_path: Path) -> None:
    # a map-like image: smooth values, NaN outside a disc, two rounded slices
    x, y, _ = np.meshgrid(np.arange(48), np.arange(48), np.arange(8), indexing="ij")
    data = (0.1 + 0.001 * x + 0.002 * y).astype(np.float32)
    data[(x - 24) ** 2 + (y - 24) ** 2 > 400] = np.nan
    data[..., :2] = np.round(data[..., :2], 2)
    ours = write_nifti(tmp_path / "ours.nii.gz", data, np.eye(4))
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "level1.nii.gz")   # nibabel: 1
    assert ours.stat().st_size < (tmp_path / "level1.nii.gz").stat().st_size


@pytest.mark.parametrize("fortran", [False, True])
def test_integer_images_are_stored_as_16_bit_integers_in_either_memory_order(
        tmp_path: Path, fortran: bool) -> None:
    """Scanner integers given as float32 with the identity rescale (or a rescale) come
    back exactly, stored as 16-bit integers, whatever the array's memory order."""
    rng = np.random.default_rng(7)
    q = rng.integers(0, 4096, size=(9, 8, 5, 6))
    order: Literal["C", "F"] = "F" if fortran else "C"
    arr = np.asarray(q.astype(np.float32), order=order)
    path = write_nifti(tmp_path / "ident.nii.gz", arr, np.eye(4), scaling=(1.0, 0.0))
    img: Any = nib.load(path)
    assert img.get_data_dtype() == np.uint16
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), q)
    np.testing.assert_array_equal(read_nifti(path).data, arr)
    signed = np.asarray((q - 2000).astype(np.float32), order=order)
    path = write_nifti(tmp_path / "signed.nii.gz", signed, np.eye(4), scaling=(1.0, 0.0))
    img = nib.load(path)
    assert img.get_data_dtype() == np.int16
    np.testing.assert_array_equal(read_nifti(path).data, signed)
    scaled = np.asarray((q * 0.25 + 3.0).astype(np.float32), order=order)
    path = write_nifti(tmp_path / "scaled.nii.gz", scaled, np.eye(4), scaling=(0.25, 3.0))
    img = nib.load(path)
    assert img.get_data_dtype() == np.uint16
    np.testing.assert_array_equal(read_nifti(path).data, scaled)


@pytest.mark.parametrize("bad", [0.5, np.nan, np.inf, -40000.0, 70000.0])
def test_values_that_are_not_16_bit_integers_are_stored_as_float32(tmp_path: Path,
                                                                   bad: float) -> None:
    """One voxel off the integer grid (or non-finite, or out of the 16-bit range) and the
    image is stored as float32 instead: never rounded, never clipped."""
    arr = np.asarray(np.arange(4 * 3 * 2 * 5, dtype=np.float32).reshape(4, 3, 2, 5),
                     order="F")
    arr[1, 2, 1, 3] = bad
    path = write_nifti(tmp_path / "odd.nii.gz", arr, np.eye(4), scaling=(1.0, 0.0))
    img: Any = nib.load(path)
    assert img.get_data_dtype() == np.float32
    np.testing.assert_array_equal(read_nifti(path).data, arr)
