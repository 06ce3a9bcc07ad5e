"""Tests of dce.roi: ROI geometry, lesion statistics, ROI curves and the ROI TIC table.

Geometry: the phantom's lesion label map is re-expressed on other grids (transposed,
flipped, finer, coarser, oblique) with the affine that keeps every voxel at the same world
position, and :func:`match_roi` must bring it back. Statistics are compared with plain
numpy on the masked voxels of each label; TIC tables use piecewise-linear curves whose
metrics are known exactly (as in test_semiquant).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from dce.fit import STATUS_USABLE
from dce.phantom import Acquisition, LesionSpec, SessionPhantom, make_session
from dce.roi import (
    PERCENTILES,
    ROIWarning,
    _plan,
    match_roi,
    require_labels,
    roi_curves,
    roi_statistics,
    roi_tic_table,
)

NAME = "sub-P01_ses-pre_lesions.nii.gz"


@pytest.fixture(scope="module")
def phantom() -> SessionPhantom:
    return make_session(seed=3, lesions=(LesionSpec(1, "L1"), LesionSpec(2, "T12")),
                        acquisition=Acquisition(n_phases=8, vfa_flip_angles_deg=None,
                                                snr=None))


def _kind(roi_affine: np.ndarray, roi_shape: tuple[int, ...], img_affine: np.ndarray,
          img_shape: tuple[int, int, int]) -> str:
    return _plan(np.linalg.inv(roi_affine) @ img_affine, roi_shape, img_shape)[0]


def _scale_affine(factors: Sequence[float], offsets: Sequence[float]) -> np.ndarray:
    """ROI voxel index r -> image voxel index ``offsets + r * factors`` (homogeneous)."""
    s = np.eye(4)
    s[:3, :3] = np.diag(factors)
    s[:3, 3] = offsets
    return s


# --------------------------------------------------------------------------------------
# geometry: exact paths
# --------------------------------------------------------------------------------------

def test_identical_grid_passes_through(phantom: SessionPhantom) -> None:
    lab = phantom.lesion_labels
    out = match_roi(lab, phantom.affine, phantom.signal.shape, phantom.affine, name=NAME)
    assert out.dtype == np.int32 and out.shape == lab.shape
    np.testing.assert_array_equal(out, lab)
    assert not np.shares_memory(out, lab)
    # float32-rounded affine (as stored in a NIfTI sform) still counts as identical
    aff32 = phantom.affine.astype(np.float32)
    assert _kind(aff32, lab.shape, phantom.affine, lab.shape) == "identity"


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("flips", list(itertools.product([False, True], repeat=3)))
def test_permuted_flipped_roi_is_exact(phantom: SessionPhantom, perm: tuple[int, ...],
                                       flips: tuple[bool, ...]) -> None:
    lab = phantom.lesion_labels
    roi = np.transpose(lab, perm)               # roi[w] = lab[v] with v[perm[a]] = w[a]
    roi = np.flip(roi, axis=tuple(a for a in range(3) if flips[a]))
    # roi voxel index -> image voxel index
    m = np.zeros((4, 4))
    m[3, 3] = 1.0
    for a in range(3):
        m[perm[a], a] = -1.0 if flips[a] else 1.0
        m[perm[a], 3] = roi.shape[a] - 1 if flips[a] else 0.0
    roi_aff = (phantom.affine @ m).astype(np.float32)   # stored as float32 in NIfTI
    expect = "identity" if perm == (0, 1, 2) and not any(flips) else "permute"
    assert _kind(roi_aff, roi.shape, phantom.affine, lab.shape) == expect
    out = match_roi(roi.astype(np.float32), roi_aff, lab.shape, phantom.affine, name=NAME)
    np.testing.assert_array_equal(out, lab)


def test_trailing_singleton_axis_accepted(phantom: SessionPhantom) -> None:
    lab = phantom.lesion_labels
    out = match_roi(lab[..., None], phantom.affine, lab.shape, phantom.affine, name=NAME)
    np.testing.assert_array_equal(out, lab)


def test_cropped_roi_same_orientation(phantom: SessionPhantom) -> None:
    """A sub-box of the image grid (integer offset) is placed exactly, 0 elsewhere."""
    lab = phantom.lesion_labels
    nz = np.argwhere(lab > 0)
    lo, hi = nz.min(0) - 1, nz.max(0) + 2
    crop = lab[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    roi_aff = phantom.affine @ _scale_affine((1, 1, 1), tuple(float(v) for v in lo))
    assert _kind(roi_aff, crop.shape, phantom.affine, lab.shape) == "resample"
    out = match_roi(crop, roi_aff, lab.shape, phantom.affine, name=NAME)
    np.testing.assert_array_equal(out, lab)


# --------------------------------------------------------------------------------------
# geometry: nearest-neighbour resampling
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("factors", [(2, 2, 3), (3, 3, 1), (2, 1, 2)])
@pytest.mark.parametrize("flip_k", [False, True])
def test_upsampled_roi_grid(phantom: SessionPhantom, factors: tuple[int, int, int],
                            flip_k: bool) -> None:
    """An ROI drawn on a finer grid (each image voxel split into f_i x f_j x f_k)."""
    lab = phantom.lesion_labels
    roi = lab
    for a, f in enumerate(factors):
        roi = np.repeat(roi, f, axis=a)
    # fine voxel r of image voxel v: r = f v + q, q = 0..f-1; centre at v + (q + 0.5)/f - 0.5
    fac = tuple(1.0 / f for f in factors)
    off = tuple(0.5 / f - 0.5 for f in factors)
    geo = _scale_affine(fac, off)
    if flip_k:
        roi = roi[:, :, ::-1]
        fl = np.eye(4)
        fl[2, 2], fl[2, 3] = -1.0, roi.shape[2] - 1
        geo = geo @ fl
    roi_aff = phantom.affine @ geo
    assert _kind(roi_aff, roi.shape, phantom.affine, lab.shape) == "resample"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = match_roi(roi, roi_aff, lab.shape, phantom.affine, name=NAME)
    np.testing.assert_array_equal(out, lab)


def test_coarser_roi_grid_nearest_neighbour() -> None:
    """ROI voxels twice the image voxel size in i and j: image voxel i takes ROI i // 2."""
    rng = np.random.default_rng(11)
    img_shape = (9, 7, 4)                       # odd: the last row/column lies past the ROI
    roi = rng.integers(0, 4, size=(4, 3, 4))
    img_aff = np.diag([0.9, 1.1, 4.0, 1.0])
    img_aff[:3, 3] = [-3.0, 2.0, 7.0]
    # ROI voxel c centre = image voxel coordinate 2 c + 0.5
    roi_aff = img_aff @ _scale_affine((2.0, 2.0, 1.0), (0.5, 0.5, 0.0))
    out = match_roi(roi, roi_aff, img_shape, img_aff, name=NAME)
    i, j, k = np.meshgrid(*(np.arange(n) for n in img_shape), indexing="ij")
    ri, rj = i // 2, j // 2
    inside = (ri < roi.shape[0]) & (rj < roi.shape[1])
    expect = np.zeros(img_shape, dtype=np.int64)
    expect[inside] = roi[ri[inside], rj[inside], k[inside]]
    np.testing.assert_array_equal(out, expect)


def test_oblique_roi_matches_world_nearest_neighbour() -> None:
    """A rotated, shifted ROI grid: compare with a k-d tree search in world coordinates."""
    rng = np.random.default_rng(5)
    img_shape = (14, 12, 5)
    img_aff = np.diag([1.5, 1.5, 4.0, 1.0])
    img_aff[:3, 3] = [-10.0, -9.0, -8.0]
    ang = np.deg2rad(23.0)
    rot = np.array([[np.cos(ang), -np.sin(ang), 0.0], [np.sin(ang), np.cos(ang), 0.0],
                    [0.0, 0.0, 1.0]])
    roi_shape = (40, 40, 16)
    roi_aff = np.eye(4)
    roi_aff[:3, :3] = rot @ np.diag([0.83, 0.91, 1.7])
    roi_aff[:3, 3] = [-6.1, -26.3, -14.2]
    roi = rng.integers(0, 3, size=roi_shape)
    # every image voxel centre lies inside the ROI grid box -> the tree needs no bounds check
    img_idx = np.argwhere(np.ones(img_shape, dtype=bool)).T.astype(float)
    img_world = img_aff[:3, :3] @ img_idx + img_aff[:3, 3:]
    roi_idx = np.argwhere(np.ones(roi_shape, dtype=bool)).T.astype(float)
    in_roi = np.linalg.inv(roi_aff)[:3] @ np.vstack([img_world, np.ones(img_idx.shape[1])])
    assert np.all(in_roi >= 0) and np.all(in_roi <= np.array(roi_shape)[:, None] - 1)
    tree = cKDTree((roi_aff[:3, :3] @ roi_idx + roi_aff[:3, 3:]).T)
    _, nearest = tree.query(img_world.T)
    expect = roi.ravel()[nearest].reshape(img_shape)
    with pytest.warns(ROIWarning, match="outside the image field of view"):
        out = match_roi(roi, roi_aff, img_shape, img_aff, name=NAME)   # ROI larger than FOV
    np.testing.assert_array_equal(out, expect)


def test_ties_go_to_higher_roi_index() -> None:
    """ROI at exactly twice the resolution: each image centre is halfway between two ROI
    voxel centres and takes the higher index, also with float32-rounded affines."""
    img_shape = (5, 3, 2)
    img_aff = np.diag([1.7, 1.7, 3.3, 1.0])
    img_aff[:3, 3] = [-101.3, 57.9, 12.1]
    roi = np.zeros((10, 3, 2), dtype=np.int64)
    roi[0::2] = 1                                   # lower halves
    roi[1::2] = 2                                   # upper halves
    roi_aff = (img_aff @ _scale_affine((0.5, 1.0, 1.0), (-0.25, 0.0, 0.0))).astype(np.float32)
    with pytest.warns(ROIWarning, match="label 1 lost entirely"):
        out = match_roi(roi, roi_aff, img_shape, img_aff.astype(np.float32), name=NAME)
    assert np.all(out == 2)


def test_partly_outside_fov_warns(phantom: SessionPhantom) -> None:
    """ROI voxel r sits at image voxel r + shift along i: lesion 1 is cut by the edge."""
    lab = phantom.lesion_labels
    ni = lab.shape[0]
    rows = np.argwhere(lab == 1)[:, 0]
    shift = ni - (int(rows.min()) + int(rows.max())) // 2 - 1   # about half of lesion 1 out
    roi_aff = phantom.affine @ _scale_affine((1, 1, 1), (float(shift), 0.0, 0.0))
    with pytest.warns(ROIWarning, match=rf"^{NAME}: label 1: \d+% of its 192 ROI voxels lie "
                                        "outside the image field of view"):
        out = match_roi(lab, roi_aff, lab.shape, phantom.affine, name=NAME)
    expect = np.zeros_like(lab)
    expect[shift:] = lab[:-shift]
    np.testing.assert_array_equal(out, expect)
    assert 0 < np.count_nonzero(out == 1) < 192


# --------------------------------------------------------------------------------------
# geometry: errors name the file
# --------------------------------------------------------------------------------------

def test_roi_outside_fov_names_file(phantom: SessionPhantom) -> None:
    lab = phantom.lesion_labels
    far = phantom.affine.copy()
    far[:3, 3] += [0.0, 0.0, 500.0]
    with pytest.raises(ValueError, match=rf"^{NAME}: the ROI lies entirely outside the image"):
        match_roi(lab, far, lab.shape, phantom.affine, name=NAME)


def test_empty_after_matching_names_file() -> None:
    """Labels on thin ROI slices between the image slice centres: nothing is sampled."""
    img_shape = (6, 6, 4)
    img_aff = np.diag([2.0, 2.0, 6.0, 1.0])
    roi = np.zeros((6, 6, 12), dtype=np.uint8)
    roi[2:4, 2:4, 0::3] = 1                   # ROI slice 3k + 1 sits at image slice k
    roi_aff = img_aff @ _scale_affine((1.0, 1.0, 1.0 / 3.0), (0.0, 0.0, -1.0 / 3.0))
    with pytest.raises(ValueError, match=rf"^{NAME}: empty after matching"):
        match_roi(roi, roi_aff, img_shape, img_aff, name=NAME)
    roi[2:4, 2:4, 1] = 2                      # now one sampled slice holds label 2
    with pytest.warns(ROIWarning, match="label 1 lost entirely"):
        out = match_roi(roi, roi_aff, img_shape, img_aff, name=NAME)
    assert set(np.unique(out).tolist()) == {0, 2}


@pytest.mark.parametrize(("data", "msg"), [
    (np.zeros((4, 4, 3)), "no labelled"),
    (np.full((4, 4, 3), 0.5), "non-integer label values"),
    (np.full((4, 4, 3), np.nan), "NaN"),
    (-np.ones((4, 4, 3)), "negative label"),
    (np.ones((4, 4, 3, 2)), "3-D ROI label volume, got 4-D"),
    (np.ones((4, 4)), "got 2-D"),
    (np.array([["a"]]), "got 2-D"),
])
def test_bad_roi_data_names_file(data: np.ndarray, msg: str) -> None:
    with pytest.raises(ValueError, match=rf"^{NAME}: .*{msg}"):
        match_roi(data, np.eye(4), (4, 4, 3), np.eye(4), name=NAME)


def test_bad_affines_and_shape_name_file() -> None:
    roi = np.ones((4, 4, 3))
    with pytest.raises(ValueError, match=rf"^{NAME}: ROI affine: expected a 4x4"):
        match_roi(roi, np.eye(3), (4, 4, 3), np.eye(4), name=NAME)
    sing = np.eye(4)
    sing[2, 2] = 0.0
    with pytest.raises(ValueError, match=rf"^{NAME}: image affine: singular"):
        match_roi(roi, np.eye(4), (4, 4, 3), sing, name=NAME)
    with pytest.raises(ValueError, match=rf"^{NAME}: image_shape"):
        match_roi(roi, np.eye(4), (4, 4), np.eye(4), name=NAME)
    with pytest.raises(ValueError, match="name"):
        match_roi(roi, np.eye(4), (4, 4, 3), np.eye(4), name="")
    # float labels within NIfTI scaling round-off are fine
    out = match_roi(roi * (1 + 1e-6), np.eye(4), (4, 4, 3, 9), np.eye(4), name=NAME)
    assert out.dtype == np.int32 and np.all(out == 1)


def test_require_labels(phantom: SessionPhantom) -> None:
    lab = phantom.lesion_labels
    np.testing.assert_array_equal(require_labels(lab, [1, 2], NAME), [1, 2])
    np.testing.assert_array_equal(require_labels(lab, [2], NAME), [1, 2])
    with pytest.raises(ValueError, match=rf"^{NAME}: lesion label\(s\) 3, 7 listed in "
                                         r"lesions.tsv not found in the ROI \(labels "
                                         r"present: 1, 2\)"):
        require_labels(lab, [1, 7, 3], NAME, expected_from="lesions.tsv")
    with pytest.raises(ValueError, match="labels present: none"):
        require_labels(np.zeros((2, 2, 2), dtype=int), [1], NAME)
    with pytest.raises(ValueError, match="positive whole numbers"):
        require_labels(lab, [1.5], NAME)  # type: ignore[list-item]


# --------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------

def _reference_stats(values: np.ndarray, ddof: int = 1) -> dict[str, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {k: np.nan for k in ("mean", "median", "sd", "max")} | \
            {f"p{q}": np.nan for q in PERCENTILES} | {"n_finite": 0}
    out = {"mean": float(np.mean(v)), "median": float(np.median(v)),
           "sd": float(np.std(v, ddof=ddof)) if v.size > ddof else np.nan,
           "max": float(np.max(v)), "n_finite": int(v.size)}
    for q in PERCENTILES:
        out[f"p{q}"] = float(np.percentile(v, q))
    return out


@pytest.fixture
def stat_case() -> dict[str, Any]:
    rng = np.random.default_rng(2024)
    shape = (18, 16, 7)
    labels = rng.choice([0, 0, 0, 3, 7, 200], size=shape).astype(np.int16)
    labels[0, 0, 0] = 9                                    # single-voxel label
    labels[1, 0, 0] = labels[2, 0, 0] = 11                 # label whose values are all NaN
    ktrans = rng.gamma(2.0, 0.05, size=shape)
    vp = rng.uniform(0.0, 0.2, size=shape)
    kep = rng.lognormal(0.0, 0.5, size=shape)
    kep[rng.random(shape) < 0.2] = np.nan                  # undefined where Ktrans = 0
    kep[rng.random(shape) < 0.02] = np.inf
    kep[1:3, 0, 0] = np.nan
    status = rng.choice([-1, 0, 0, 0, 0, 1, 2, 3], size=shape).astype(np.int8)
    return {"labels": labels, "maps": {"ktrans_per_min": ktrans, "vp": vp,
                                       "kep_per_min": kep}, "status": status}


@pytest.mark.parametrize("ddof", [1, 0])
def test_statistics_match_numpy_per_label(stat_case: dict[str, Any], ddof: int) -> None:
    labels, maps, status = stat_case["labels"], stat_case["maps"], stat_case["status"]
    df = roi_statistics(maps, labels, status=status, voxel_volume_mm3=16.2, ddof=ddof)
    assert df["label"].tolist() == [3, 7, 9, 11, 200]
    for col in ("vp_mean", "ktrans_per_min_p95", "ktrans_per_min_max", "kep_per_min_median",
                "vp_sd", "vp_p5", "vp_p25", "vp_p75", "vp_n_finite", "fit_failed_fraction",
                "n_fit_failed", "volume_mm3", "n_voxels"):
        assert col in df.columns
    for _, row in df.iterrows():
        sel = labels == row["label"]
        assert row["n_voxels"] == sel.sum()
        assert row["volume_mm3"] == pytest.approx(16.2 * sel.sum())
        assert row["n_fit_failed"] == np.count_nonzero(status[sel] != 0)
        assert row["fit_failed_fraction"] == pytest.approx(np.mean(status[sel] != 0))
        for key, arr in maps.items():
            ref = _reference_stats(arr[sel], ddof)
            for stat, val in ref.items():
                got = row[f"{key}_{stat}"]
                if np.isnan(val):
                    assert np.isnan(got), (key, stat, row["label"])
                else:
                    assert got == pytest.approx(val, rel=1e-12, abs=1e-15), (key, stat)
    one = df.set_index("label").loc[9]
    assert np.isnan(one["vp_sd"]) if ddof == 1 else one["vp_sd"] == 0.0
    assert one["vp_p5"] == one["vp_max"] == stat_case["maps"]["vp"][0, 0, 0]
    nan_row = df.set_index("label").loc[11]
    assert nan_row["kep_per_min_n_finite"] == 0 and np.isnan(nan_row["kep_per_min_p95"])


def test_statistics_take_status_from_fit_maps(stat_case: dict[str, Any]) -> None:
    labels, status = stat_case["labels"], stat_case["status"]
    maps = dict(stat_case["maps"], status=status)      # like TracerKineticFit.maps()
    df = roi_statistics(maps, labels)
    assert not any(c.startswith("status_") for c in df.columns)
    ref = roi_statistics(stat_case["maps"], labels, status=status)
    pd.testing.assert_frame_equal(df, ref)
    with pytest.raises(ValueError, match="status: given both"):
        roi_statistics(maps, labels, status=status)


def test_statistics_usable_status_codes() -> None:
    """Nested-model and not-enhancing voxels (dce.fit.STATUS_USABLE) are not failed fits."""
    labels = np.array([1, 1, 1, 1, 1, 2, 2, 2])
    status = np.array([0, 5, 6, 7, 2, -1, 1, 3])
    maps = {"vp": np.arange(8.0)}
    df = roi_statistics(maps, labels, status=status, usable_status=STATUS_USABLE)
    assert df["n_fit_failed"].tolist() == [1, 2]
    assert df["fit_failed_fraction"].tolist() == pytest.approx([0.2, 2 / 3])
    df0 = roi_statistics(maps, labels, status=status)
    assert df0["n_fit_failed"].tolist() == [4, 3]


def test_statistics_float32_and_errors(stat_case: dict[str, Any]) -> None:
    labels = stat_case["labels"]
    vp32 = stat_case["maps"]["vp"].astype(np.float32)
    df = roi_statistics({"vp": vp32}, labels)
    sel = labels == 7
    assert df.set_index("label").loc[7, "vp_p95"] == pytest.approx(
        np.percentile(vp32[sel].astype(np.float64), 95), rel=1e-12)
    assert "fit_failed_fraction" not in df.columns
    with pytest.raises(ValueError, match=r"maps\['vp'\]: shape"):
        roi_statistics({"vp": vp32[:-1]}, labels)
    with pytest.raises(ValueError, match="status: shape"):
        roi_statistics({"vp": vp32}, labels, status=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="labels: no labelled"):
        roi_statistics({"vp": vp32}, np.zeros_like(labels))
    with pytest.raises(ValueError, match="labels: non-integer"):
        roi_statistics({"vp": vp32}, labels + 0.5)


def test_statistics_on_phantom_truth(phantom: SessionPhantom) -> None:
    """Mean truth per lesion equals the phantom's own lesion truth table."""
    truth = phantom.lesion_truth()
    df = roi_statistics({"ktrans_per_min": phantom.truth["ktrans_per_min"],
                         "vp": phantom.truth["vp"]}, phantom.lesion_labels)
    for _, row in truth.iterrows():
        got = df.set_index("label").loc[int(row["lesion"])]
        assert got["n_voxels"] == row["n_voxels"]
        assert got["ktrans_per_min_mean"] == pytest.approx(row["ktrans_per_min"], rel=1e-12)
        assert got["vp_mean"] == pytest.approx(row["vp"], rel=1e-12)


# --------------------------------------------------------------------------------------
# curves and TIC table
# --------------------------------------------------------------------------------------

def test_roi_curves_match_numpy() -> None:
    rng = np.random.default_rng(8)
    labels = rng.choice([0, 1, 4], size=(8, 7, 3))
    sig = rng.normal(100.0, 10.0, size=(8, 7, 3, 12)).astype(np.float32)
    sig[0, 0, 0, 5] = np.nan
    labels[0, 0, 0] = 1
    labs, mean, sd = roi_curves(sig, labels)
    np.testing.assert_array_equal(labs, [1, 4])
    for r, lab in enumerate(labs):
        x = sig[labels == lab].astype(np.float64)          # (n_vox, n_t)
        np.testing.assert_allclose(mean[r], np.nanmean(x, axis=0), rtol=1e-12)
        np.testing.assert_allclose(sd[r], np.nanstd(x, axis=0, ddof=1), rtol=1e-10)
    with pytest.raises(ValueError, match="signal_4d: shape"):
        roi_curves(sig[..., 0], labels)


S0 = 200.0
T = np.arange(0.0, 305.0, 5.0)            # baseline phases 0..25 s, arrival at 25 s
KNOTS = {
    "A": ([25, 55, 300], [0, 15, 15]),   # 7.5% peak: flat; slope 0.5/s, 0.25 %/s
    "B": ([25, 300], [0, 80]),
    "C": ([25, 40, 55, 300], [0, 60, 100, 100]),
    "D": ([25, 40, 55, 300], [0, 60, 100, 60]),   # max slope 4/s = 2 %/s, PE 50%
    "E": ([25, 40, 55, 300], [0, 60, 100, 160]),
}


def _curve(kind: str, s0: float = S0) -> np.ndarray:
    kt, ke = KNOTS[kind]
    return s0 + np.interp(T, kt, ke) * s0 / S0


def _tic_volume() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lesions 1..4 of types D, E, C, B; marrow of type A with S0 = 400."""
    shape = (6, 5, 4)
    labels = np.zeros(shape, dtype=np.uint8)
    marrow = np.zeros(shape, dtype=np.uint8)
    labels[0:2, 0:2, 0] = 1
    labels[2:4, 0:2, 0] = 2
    labels[0:2, 2:4, 1] = 3
    labels[4:6, 0:2, 2] = 4
    marrow[0:4, 0:4, 3] = 1
    sig = np.full((*shape, T.size), 50.0)
    rng = np.random.default_rng(1)
    for lab, kind in zip((1, 2, 3, 4), "DECB", strict=True):
        idx = np.argwhere(labels == lab)
        noise = rng.normal(0.0, 3.0, size=(idx.shape[0] // 2, T.size))
        noise = np.vstack([noise, -noise])           # zero-mean across the ROI's voxels
        sig[tuple(idx.T)] = _curve(kind) + noise
    sig[marrow > 0] = _curve("A", 400.0)
    return sig, labels, marrow


def test_tic_table_types_and_rslope_exact() -> None:
    sig, labels, marrow = _tic_volume()
    df = roi_tic_table(sig, T, labels, marrow, n_baseline=6)
    assert df["roi"].tolist() == ["lesion"] * 4 + ["marrow"]
    assert df["label"].tolist()[:4] == [1, 2, 3, 4] and pd.isna(df["label"].iloc[4])
    assert df["tic_type"].tolist() == ["D", "E", "C", "B", "A"]
    assert df["n_voxels"].tolist() == [4, 4, 4, 4, 16]
    d, mar = df.iloc[0], df.iloc[4]
    assert d["max_slope_pct_per_s"] == pytest.approx(2.0, rel=1e-12)
    assert mar["max_slope_pct_per_s"] == pytest.approx(0.25, rel=1e-12)
    assert d["rslope_max"] == pytest.approx(8.0, rel=1e-12)        # (4/200) / (1/400)
    assert d["peak_enhancement_pct"] == pytest.approx(50.0, rel=1e-12)
    assert d["normalized_peak_enhancement"] == pytest.approx(50.0 / 7.5, rel=1e-12)
    assert mar["rslope_max"] == 1.0
    for col in ("iauc_60s", "iauc_90s", "time_to_peak_s", "washout_pct", "flags",
                "tic_early_fraction", "tic_late_change_pct"):
        assert col in df.columns
    absolute = roi_tic_table(sig, T, labels, marrow, n_baseline=6, rslope_from="absolute")
    assert absolute["rslope_max"].iloc[0] == pytest.approx(4.0, rel=1e-12)   # 4/s / 1/s


def test_tic_table_without_marrow_and_overlap_warning() -> None:
    sig, labels, marrow = _tic_volume()
    df = roi_tic_table(sig, T, labels, n_baseline=6)
    assert df["roi"].tolist() == ["lesion"] * 4
    assert df["rslope_max"].isna().all() and df["normalized_peak_enhancement"].isna().all()
    marrow[0, 0, 0] = 1                                    # inside lesion 1
    with pytest.warns(ROIWarning, match="1 voxel"):
        roi_tic_table(sig, T, labels, marrow, n_baseline=6)
    with pytest.raises(ValueError, match="marrow_roi: shape"):
        roi_tic_table(sig, T, labels, marrow[:-1], n_baseline=6)
    with pytest.raises(ValueError, match="rslope_from"):
        roi_tic_table(sig, T, labels, marrow, n_baseline=6,
                      rslope_from="ratio")  # type: ignore[arg-type]
