"""Bolus-delay fitting and the no-false-uptake policy, against an independent forward model.

The truth comes from this file only (not from dce.aif or dce.models): a plasma input made of
a gamma-variate first pass, a recirculation gamma variate and a slow washout, on a 0.05 s
grid; the extended Tofts tissue curve is its own numerical convolution (trapezoid recursion
on that grid) of the input delayed by the tissue delay. Tissue and input are sampled at 5 s
phases; the fitter receives the *sampled* input at the phase times (what a measured aortic
AIF is), not the fine curve. Lesion: Ktrans 0.15 /min, kep 0.5 /min (ve 0.3), vp 0.08,
peak ~0.5 mM, Gaussian noise SD 0.03 mM per voxel; a 10 x 10 x 2 ROI (200 voxels).

The 5 s sampling alone costs (noise-free, true delay, this input; tested below): with
straight lines between the input samples (the default ``aif_interpolation="linear"``)
vp +0.1 / +6.5 / +3.9 / +4.4 % and Ktrans +0.6 / -3.4 / -1.9 / -2.1 % at delays
0 / 2 / 4 / 6 s; with the cubic input vp +0.2 / +2.3 / +0.9 / +1.6 % and Ktrans +0.4 /
-1.0 / -0.0 / -0.5 % (tests/test_models_interpolation.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import lfilter

from dce.fit import STATUS_FIT, FitBounds, TracerKineticModel

DT = 0.05                                   # s, fine grid of the truth
T = np.arange(60) * 5.0                     # s, phase times
KT, KEP, VP = 0.15, 0.5, 0.08               # lesion
SIGMA = 0.03                                # mM, voxel noise
DELAYS = (0.0, 2.0, 4.0, 6.0)


def _gamma_variate(t: np.ndarray, t0: float, alpha: float, beta: float,
                   peak: float) -> np.ndarray:
    x = np.clip(t - t0, 0.0, None)
    return peak * x**alpha * np.exp(-x / beta) / ((alpha * beta) ** alpha * np.exp(-alpha))


def plasma_input(t: np.ndarray, beta: float = 3.0) -> np.ndarray:
    """Plasma concentration (mM): first pass (arrival 22.3 s, peak 6 mM), recirculation and
    a slow washout plateau."""
    x = np.clip(t - 30.0, 0.0, None)
    return (_gamma_variate(t, 22.3, 3.0, beta, 6.0) + _gamma_variate(t, 36.0, 4.0, 3.5, 1.1)
            + 1.1 * (1.0 - np.exp(-x / 6.0)) * np.exp(-x / 400.0))


def tissue(t_phase: np.ndarray, ktrans: float, kep: float, vp: float, delay: float,
           beta: float = 3.0) -> np.ndarray:
    """Extended Tofts by numerical convolution on the 0.05 s grid, sampled at ``t_phase``."""
    tf = np.arange(0.0, t_phase[-1] + DT / 2, DT)
    cp = plasma_input(tf - delay, beta)
    decay = np.exp(-kep / 60.0 * DT)
    # E_i = E_{i-1} decay + dt/2 (cp_{i-1} decay + cp_i): trapezoid rule of the convolution
    drive = np.r_[0.0, 0.5 * DT * (cp[:-1] * decay + cp[1:])]
    e = lfilter([1.0], [1.0, -decay], drive)
    return np.interp(t_phase, tf, ktrans / 60.0 * e + vp * cp)


def _model(**kw: object) -> TracerKineticModel:
    return TracerKineticModel(T, plasma_input(T), **kw)  # type: ignore[arg-type]


def _roi(delay: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return tissue(T, KT, KEP, VP, delay) + rng.normal(0.0, SIGMA, (10, 10, 2, T.size))


def _default_model() -> TracerKineticModel:
    """The workflow default: delay fitted on the default grid, 3x3x1 neighbourhood."""
    return _model(fit_delay=True, delay_neighbourhood=(3, 3, 1))


def test_own_forward_model_matches_closed_form() -> None:
    """Sanity of the test's own convolution: constant input 1 mM from t=0 gives
    Ktrans/kep (1 - exp(-kep t)) + vp."""
    tf = np.arange(0.0, 300.0 + DT / 2, DT)
    decay = np.exp(-0.5 / 60.0 * DT)
    drive = np.r_[0.0, 0.5 * DT * (decay + 1.0) * np.ones(tf.size - 1)]
    e = lfilter([1.0], [1.0, -decay], drive)
    np.testing.assert_allclose(0.15 / 60.0 * e, 0.3 * (1 - np.exp(-0.5 / 60.0 * tf)),
                               atol=1e-6)


@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize(("interp", "vp_tol", "kt_tol"), [("linear", 0.08, 0.06),
                                                          ("cubic", 0.04, 0.02)])
def test_sampling_cost_noise_free(delay: float, interp: str, vp_tol: float,
                                  kt_tol: float) -> None:
    """Noise-free curve, fitter given the true delay: what the 5 s sampling of the input
    costs on its own (the floor of every method below)."""
    fit = _model(delay_s=delay, aif_interpolation=interp).fit(tissue(T, KT, KEP, VP, delay))
    assert fit.status == 0
    assert abs(fit.vp / VP - 1) < vp_tol
    assert abs(fit.ktrans_per_min / KT - 1) < kt_tol


@pytest.mark.parametrize("delay", DELAYS)
def test_delay_recovered_roi_voxel_mean(delay: float) -> None:
    """200 noisy voxels, default delay fit: voxel delays within 1 s, ROI means of vp and
    Ktrans within 10 % of the truth."""
    fit = _default_model().fit(_roi(delay, seed=int(10 * delay) + 1))
    assert np.all(fit.status == 0), np.unique(fit.status)
    assert abs(np.median(fit.delay_s) - delay) <= 1.0
    assert np.mean(np.abs(fit.delay_s - delay) <= 1.0) >= 0.95
    assert abs(np.mean(fit.vp) / VP - 1) <= 0.10
    assert abs(np.mean(fit.ktrans_per_min) / KT - 1) <= 0.10


@pytest.mark.parametrize("delay", DELAYS)
def test_delay_recovered_roi_mean_curve(delay: float) -> None:
    """The ROI-mean curve fitted with the delay fitted: delay within 1 s, vp and Ktrans
    within 10 %."""
    curve = _roi(delay, seed=int(10 * delay) + 1).reshape(-1, T.size).mean(axis=0)
    fit = _model(fit_delay=True).fit(curve)
    assert fit.status == 0
    assert abs(float(fit.delay_s) - delay) <= 1.0
    assert abs(float(fit.vp) / VP - 1) <= 0.10
    assert abs(float(fit.ktrans_per_min) / KT - 1) <= 0.10


def test_ignoring_the_delay_biases_vp() -> None:
    """Why the delay is fitted by default: at 4 s, a fit without delay loses > 25 % of vp."""
    fit = _model().fit(_roi(4.0, seed=41))
    assert np.mean(fit.vp) / VP - 1 < -0.25


def test_neighbourhood_delay_less_noisy_than_per_voxel() -> None:
    """At twice the noise, the neighbourhood-selected delay scatters far less than the
    per-voxel argmin and the ROI-mean vp stays within 10 %."""
    rng = np.random.default_rng(5)
    conc = tissue(T, KT, KEP, VP, 2.0) + rng.normal(0.0, 2 * SIGMA, (10, 10, 2, T.size))
    voxel = _model(fit_delay=True).fit(conc)
    nbhd = _default_model().fit(conc)
    assert np.std(nbhd.delay_s) < 0.6 * np.std(voxel.delay_s)
    assert abs(np.mean(nbhd.vp) / VP - 1) <= 0.10


@pytest.mark.parametrize(("model", "nbhd"), [("extended_tofts", None),
                                             ("extended_tofts", (3, 3, 1)),
                                             ("tofts", None), ("patlak", None)])
def test_descent_search_equals_exhaustive_search(model: str, nbhd: tuple[int, ...] | None
                                                 ) -> None:
    """The default search (descent on the NLLS residual from the delay of the smallest
    linear residual) ends on the delay of the exhaustive search (every delay for every
    curve) for (almost) every voxel, for each model's linear start (with and without the
    vp and efflux terms), own curve or neighbourhood choice."""
    conc = _roi(3.7, seed=2)
    fast_model = _model(fit_delay=True, model=model, delay_neighbourhood=nbhd)
    assert fast_model.policy()["DelaySearch"].startswith("descent")
    fast = fast_model.fit(conc)
    slow_model = _model(fit_delay=True, model=model, delay_neighbourhood=nbhd)
    slow_model._refine_delay = False
    assert slow_model.policy()["DelaySearch"] == "exhaustive"
    slow = slow_model.fit(conc)
    assert np.mean(fast.delay_s == slow.delay_s) >= 0.97
    assert np.allclose(np.mean(fast.vp), np.mean(slow.vp), rtol=0.01)
    assert np.allclose(np.mean(fast.ktrans_per_min), np.mean(slow.ktrans_per_min), rtol=0.01)


def test_flat_noisy_curve_not_enhancing() -> None:
    """Flat noisy curves: the enhancement test sends (almost) all to status 5, which carries
    Ktrans = vp = 0 (never a positive value from a degenerate fit), kep, ve, delay NaN."""
    rng = np.random.default_rng(9)
    conc = rng.normal(0.0, SIGMA, (20, 20, 1, T.size))
    fit = _default_model().fit(conc)
    quiet = fit.status == 5
    assert quiet.mean() >= 0.9
    assert np.all(fit.ktrans_per_min[quiet] == 0.0) and np.all(fit.vp[quiet] == 0.0)
    assert np.all(np.isnan(fit.ve[quiet]) & np.isnan(fit.kep_per_min[quiet]))
    assert np.all(np.isnan(fit.delay_s[quiet]) & np.isnan(fit.r2[quiet]))
    np.testing.assert_allclose(np.median(fit.rmse_mM[quiet]), SIGMA, rtol=0.1)
    # without the test, the same curves show uptake in about half the voxels
    free = _model(fit_delay=True, enhancement_z=None).fit(conc)
    assert np.mean(free.ktrans_per_min > 0) > 0.3
    assert "not enhancing" in STATUS_FIT[5]


def test_weak_marrow_not_zeroed() -> None:
    """Weakly enhancing marrow (Ktrans 0.02 /min, vp 0.01) at the lesion noise level keeps
    most voxels fitted and an ROI mean close to the truth."""
    rng = np.random.default_rng(12)
    conc = tissue(T, 0.02, 0.2, 0.01, 2.0) + rng.normal(0.0, SIGMA, (20, 20, 1, T.size))
    fit = _default_model().fit(conc)
    assert np.mean(fit.status == 5) < 0.15
    assert abs(np.mean(fit.ktrans_per_min) / 0.02 - 1) < 0.15
    assert abs(np.mean(fit.vp) / 0.01 - 1) < 0.25


def test_kep_at_upper_bound_reports_nested_models() -> None:
    """A curve that is a scaled (delayed) input: kep runs to its upper limit; the extended
    Tofts fit reports the vp-only model, the Tofts fit the ve-only (fast exchange) model."""
    curve = 0.2 * plasma_input(T - 2.0)
    fit = _model(fit_delay=True).fit(curve)
    assert int(fit.status) == 6
    assert fit.ktrans_per_min == 0.0 and np.isnan(fit.kep_per_min) and np.isnan(fit.ve)
    assert fit.vp == pytest.approx(0.2, rel=0.05)
    tofts = _model(fit_delay=True, model="tofts").fit(curve)
    assert int(tofts.status) == 6
    assert np.isnan(tofts.ktrans_per_min) and tofts.ve == pytest.approx(0.2, rel=0.05)


def test_kep_at_lower_bound_reports_patlak() -> None:
    """Slow efflux below the kep search range: status 7 with the Patlak values."""
    curve = tissue(T, 0.05, 0.01, 0.05, 0.0)      # kep 0.01 /min: Patlak-like in 5 min
    model = _model(bounds=FitBounds(kep_per_min=(0.2, 250.0), ve_max=5.0))
    fit = model.fit(curve)
    assert int(fit.status) == 7
    assert np.isnan(fit.kep_per_min) and np.isnan(fit.ve)
    assert fit.ktrans_per_min == pytest.approx(0.05, rel=0.1)
    assert fit.vp == pytest.approx(0.05, rel=0.1)


def test_policy_and_argument_checks() -> None:
    model = _default_model()
    pol = model.policy()
    json.dumps(pol)
    assert pol["DelayGrid_s"][0] == -2.0 and pol["DelayGrid_s"][-1] == 10.0
    assert pol["EnhancementTest"]["n_pre_phases"] == 5      # phases before 25 s
    assert set(pol["StatusCodes"]) == {str(k) for k in STATUS_FIT}
    with pytest.raises(ValueError, match="delay_neighbourhood: 3 axes but the image has 1"):
        model.fit(np.zeros((4, T.size)))
    with pytest.raises(ValueError, match="delay_neighbourhood: need odd positive integers"):
        _model(fit_delay=True, delay_neighbourhood=(2, 3, 1))
    with pytest.raises(ValueError, match="enhancement_z"):
        _model(enhancement_z=-1.0)
    with pytest.raises(ValueError, match="delay_grid_s"):
        _model(fit_delay=True, delay_grid_s=[np.nan])


def test_fortran_ordered_image_gives_the_maps_of_the_c_ordered_one() -> None:
    """An image as nibabel reads it (Fortran order: time slowest) is fitted in its own voxel
    order: with a mask and the neighbourhood delay choice, every map equals the C-ordered
    image's bit for bit, and the fitted delays recover the phantom's (to the 0.5 s grid)."""
    rng = np.random.default_rng(11)
    shape = (7, 6, 3)
    delay = np.where(np.arange(7)[:, None, None] < 4, 2.0, 6.0) * np.ones(shape)
    kt = rng.uniform(0.1, 0.4, shape)
    img = np.empty((*shape, T.size))
    for idx in np.ndindex(shape):
        img[idx] = tissue(T, float(kt[idx]), 0.8, 0.05, float(delay[idx]))
    img += rng.normal(0.0, 0.005, img.shape)
    img32 = img.astype(np.float32)
    mask = np.ones(shape, dtype=bool)
    mask[2, 1:4, 1] = False
    model = _model(fit_delay=True, delay_neighbourhood=(3, 3, 1))
    ref = model.fit(np.ascontiguousarray(img32), mask=mask).maps()
    got = model.fit(np.asfortranarray(img32), mask=mask).maps()
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k].shape == shape
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    assert np.all(ref["status"][~mask] == -1)
    inner = mask.copy()
    inner[3:5] = False                        # the boxes that straddle the delay edge
    assert np.all(np.abs(ref["delay_s"][inner] - delay[inner]) <= 0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_neighbourhood_curves_voxel_and_time_major_equal_box_means(dtype: type) -> None:
    """The neighbourhood mean curves (frames of a time-major image one by one, groups of
    frames of a voxel-major one) are the same numbers either way, and the mean of the
    weighted voxels of each box (direct sums, independent of scipy)."""
    from dce.fit import _neighbourhood_curves

    rng = np.random.default_rng(5)
    shape, nt, size = (6, 5, 4), 19, (3, 3, 1)
    img: np.ndarray = rng.normal(1.0, 0.3, (*shape, nt)).astype(dtype)
    weight = rng.random(shape) > 0.3
    c_major = _neighbourhood_curves(np.ascontiguousarray(img), weight, size)
    t_major = _neighbourhood_curves(np.asfortranarray(img), weight, size)
    assert c_major.dtype == t_major.dtype == dtype
    np.testing.assert_array_equal(c_major, t_major)
    ref = []
    for idx in zip(*np.nonzero(weight), strict=True):
        box = tuple(slice(max(i - s // 2, 0), i + s // 2 + 1) for i, s in zip(idx, size,
                                                                               strict=True))
        ref.append(img[box][weight[box]].astype(np.float64).mean(axis=0))
    np.testing.assert_allclose(c_major, np.array(ref), rtol=1e-5 if dtype == np.float32
                               else 1e-12)
