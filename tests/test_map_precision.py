"""Lossy map storage (config ``outputs.map_significant_bits``): dce.io.maps.round_significand
against an independent float64 construction of the nearest value with the given number of
significand bits, the error bound, and write_map's sidecar record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dce.io import read_nifti
from dce.io.maps import map_precision, round_significand, write_map


def nearest_with_bits(x: np.ndarray, bits: int) -> np.ndarray:
    """x = m 2^e (0.5 <= |m| < 1): m rounded to bits + 1 binary digits (the leading one and
    ``bits`` explicit ones), ties to even (np.round), in float64."""
    m, e = np.frexp(x.astype(np.float64))
    scale = 2.0 ** (bits + 1)
    return np.ldexp(np.round(m * scale) / scale, e)


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(200_000) * np.exp(rng.uniform(-30, 30, 200_000))
    ties = np.float32(1.0) + np.float32(2.0 ** -13) * np.arange(1, 9, dtype=np.float32)
    return np.concatenate([x.astype(np.float32), ties, -ties])


@pytest.mark.parametrize("bits", [1, 7, 10, 12, 16, 22])
def test_round_significand_is_the_nearest_value(values: np.ndarray, bits: int) -> None:
    got = round_significand(values, bits)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, nearest_with_bits(values, bits).astype(np.float32))
    rel = np.abs(got.astype(np.float64) - values) / np.abs(values.astype(np.float64))
    assert rel.max() <= map_precision(bits)["StoredPrecision"]["MaxRelativeError"]
    assert rel.max() > 0.5 * 2.0 ** -(bits + 1)                 # the bound is reached
    low = got.view(np.uint32) & np.uint32((1 << (23 - bits)) - 1)
    assert not np.any(low)                                      # dropped bits are zero


def test_round_significand_special_values() -> None:
    x = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, np.finfo(np.float32).max, 1e-42],
                 dtype=np.float32)
    got = round_significand(x, 4)
    assert got[0] == 0 and got[1] == 0 and np.signbit(got[1])
    assert np.isnan(got[2]) and got[3] == np.inf and got[4] == -np.inf
    assert np.isfinite(got[5]) and got[5] <= x[5]               # not rounded to infinity
    np.testing.assert_array_equal(round_significand(x, 23), x)
    with pytest.raises(ValueError, match="significant_bits"):
        round_significand(x, 0)


def test_write_map_rounds_float_maps_and_records_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ktrans = rng.uniform(0, 0.3, (6, 5, 4)).astype(np.float32)
    ktrans[0, 0, 0] = np.nan
    path = write_map(tmp_path / "k.nii.gz", "ktrans", ktrans, np.eye(4), {"Sources": []},
                     significant_bits=10)
    data, _, side = read_nifti(path)
    np.testing.assert_array_equal(data, nearest_with_bits(ktrans, 10).astype(np.float32))
    assert side["StoredPrecision"]["SignificantBits"] == 10
    assert side["StoredPrecision"]["MaxRelativeError"] == 2.0 ** -11
    assert side["Column"] == "ktrans_per_min"
    # lossless default and integer maps: untouched, no record
    data, _, side = read_nifti(write_map(tmp_path / "l.nii.gz", "ktrans", ktrans, np.eye(4)))
    np.testing.assert_array_equal(data, ktrans)
    assert "StoredPrecision" not in side
    codes = rng.integers(0, 7, (6, 5, 4)).astype(np.int8)
    data, _, side = read_nifti(write_map(tmp_path / "s.nii.gz", "fitstatus", codes, np.eye(4),
                                         significant_bits=10))
    np.testing.assert_array_equal(data, codes)
    assert "StoredPrecision" not in side
