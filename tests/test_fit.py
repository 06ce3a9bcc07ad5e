"""Fitting: noise-free recovery (property tests), noisy accuracy, status codes, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dce import models
from dce.aif import blood_to_plasma, parker_aif
from dce.fit import STATUS_FIT, FitBounds, TracerKineticModel


def _grid(kind: str, seed: int = 3) -> np.ndarray:
    if kind == "even":
        return np.arange(60) * 5.0
    rng = np.random.default_rng(seed)
    return np.cumsum(np.r_[0.0, rng.uniform(1.5, 9.0, 59)])


def _aif(t: np.ndarray) -> np.ndarray:
    return blood_to_plasma(parker_aif(t, delay_s=30.0), 0.42)


_MODELS = {kind: {m: TracerKineticModel(_grid(kind), _aif(_grid(kind)), model=m)
                  for m in ("extended_tofts", "tofts", "patlak")} for kind in ("even", "uneven")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ktrans=st.floats(1e-3, 2.0), ve=st.floats(0.02, 1.0), vp=st.floats(0.0, 0.3),
       kind=st.sampled_from(["even", "uneven"]))
def test_extended_tofts_recovers_parameters(ktrans: float, ve: float, vp: float,
                                            kind: str) -> None:
    model = _MODELS[kind]["extended_tofts"]
    conc = model.predict(ktrans_per_min=ktrans, ve=ve, vp=vp)
    fit = model.fit(conc)
    assert fit.status == 0 or (ve > 0.99 and fit.status == 2), STATUS_FIT[int(fit.status)]
    np.testing.assert_allclose(fit.ktrans_per_min, ktrans, rtol=2e-3)
    np.testing.assert_allclose(fit.ve, ve, rtol=2e-2)
    np.testing.assert_allclose(fit.vp, vp, atol=1e-4)
    assert fit.r2 > 0.99999


@settings(max_examples=40, deadline=None)
@given(ktrans=st.floats(1e-3, 2.0), ve=st.floats(0.02, 1.0),
       kind=st.sampled_from(["even", "uneven"]))
def test_tofts_recovers_parameters(ktrans: float, ve: float, kind: str) -> None:
    model = _MODELS[kind]["tofts"]
    fit = model.fit(model.predict(ktrans_per_min=ktrans, ve=ve))
    assert fit.status == 0 or (ve > 0.99 and fit.status == 2)
    np.testing.assert_allclose(fit.ktrans_per_min, ktrans, rtol=2e-3)
    np.testing.assert_allclose(fit.ve, ve, rtol=2e-2)
    assert fit.vp == 0.0


@settings(max_examples=30, deadline=None)
@given(ktrans=st.floats(1e-3, 2.0), vp=st.floats(0.0, 0.3),
       kind=st.sampled_from(["even", "uneven"]))
def test_patlak_recovers_parameters(ktrans: float, vp: float, kind: str) -> None:
    model = _MODELS[kind]["patlak"]
    fit = model.fit(model.predict(ktrans_per_min=ktrans, vp=vp))
    np.testing.assert_allclose(fit.ktrans_per_min, ktrans, rtol=1e-6)
    np.testing.assert_allclose(fit.vp, vp, atol=1e-8)
    assert np.isnan(fit.ve) and np.isnan(fit.kep_per_min)


@pytest.mark.parametrize("model_name", ["extended_tofts", "tofts", "patlak"])
@pytest.mark.parametrize(("n_t", "dtype"), [(300, np.float64), (299, np.float64),
                                            (300, np.float32), (298, np.float32)])
def test_llsq_exact_enough_on_fine_sampling(model_name: str, n_t: int, dtype: type) -> None:
    """Murase LLSQ approximates the tissue integral by trapezoids: accurate at fine sampling
    (curves of float32 and float64, time points a multiple of four or not: the kernels' block
    copy moves whole groups of four time points when it can, the rest one by one)."""
    t = np.arange(n_t) * 1.0
    model = TracerKineticModel(t, _aif(t), model=model_name, method="llsq")
    kt = np.array([0.05, 0.2, 0.6])
    ve = np.array([0.1, 0.3, 0.5])
    vp = np.array([0.02, 0.05, 0.1]) * (model_name != "tofts")
    conc: np.ndarray = model.predict(ktrans_per_min=kt, ve=ve, vp=vp).astype(dtype)
    fit = model.fit(conc)
    np.testing.assert_array_equal(fit.status, 0)
    np.testing.assert_allclose(fit.ktrans_per_min, kt, rtol=0.02)
    np.testing.assert_allclose(fit.vp, vp, atol=2e-3)
    if model_name != "patlak":
        np.testing.assert_allclose(fit.ve, ve, rtol=0.02)
    assert np.all(fit.r2 > 0.999)


@pytest.mark.parametrize(("n_t", "dtype", "order"), [(61, np.float32, "C"),
                                                     (62, np.float32, "F"),
                                                     (63, np.float64, "C"),
                                                     (60, np.float32, "C"),
                                                     (60, np.float64, "F")])
def test_llsq_equals_least_squares_of_the_linear_equation(n_t: int, dtype: type,
                                                          order: str) -> None:
    """Every sample enters the LLSQ sums: the extended Tofts LLSQ of noisy curves equals
    ``numpy.linalg.lstsq`` of the Murase equation C = p1 A + vp cp - kep I (A, I: trapezoid
    running integrals of the input and of the curve; Ktrans = p1 - kep vp), whatever the
    number of time points, dtype or memory order."""
    rng = np.random.default_rng(n_t)
    t = np.cumsum(np.r_[0.0, rng.uniform(2.0, 8.0, n_t - 1)])
    cp = _aif(t)
    model = TracerKineticModel(t, cp, method="llsq", enhancement_z=None,
                               aif_interpolation="linear")   # A: trapezoid integral of cp
    conc = model.predict(ktrans_per_min=rng.uniform(0.05, 0.8, (5, 7)),
                         ve=rng.uniform(0.1, 0.5, (5, 7)), vp=rng.uniform(0.01, 0.1, (5, 7)))
    conc = (conc + rng.normal(0.0, 0.01, conc.shape)).astype(dtype)
    fit = model.fit(np.asfortranarray(conc) if order == "F" else conc)
    t_min = t / 60.0

    def running_integral(y: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros((*y.shape[:-1], 1)),
                               np.cumsum(0.5 * np.diff(t_min) * (y[..., 1:] + y[..., :-1]),
                                         axis=-1)], axis=-1)

    a = running_integral(cp)
    for idx in np.ndindex(conc.shape[:-1]):
        c = conc[idx].astype(np.float64)
        design = np.column_stack([a, cp, -running_integral(c)])
        p1, vp, kep = np.linalg.lstsq(design, c, rcond=None)[0]
        assert fit.status[idx] == 0
        np.testing.assert_allclose(fit.kep_per_min[idx], kep, rtol=1e-6)
        np.testing.assert_allclose(fit.vp[idx], vp, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(fit.ktrans_per_min[idx], p1 - kep * vp, rtol=1e-6)


def test_noisy_volume_within_osipi_tolerance() -> None:
    """Seeded noisy 4-D volume (float32): >= 95% of voxels within the OSIPI tolerances."""
    t = _grid("even")
    model = _MODELS["even"]["extended_tofts"]
    rng = np.random.default_rng(11)
    shape = (12, 10, 3)
    kep = np.exp(rng.uniform(np.log(0.1), np.log(3.0), shape))
    ve = rng.uniform(0.05, 0.5, shape)
    kt = kep * ve
    vp = rng.uniform(0.0, 0.1, shape)
    conc = models.extended_tofts(t, _aif(t), ktrans_per_min=kt, ve=ve, vp=vp)
    conc = (conc + rng.normal(0, 0.005, conc.shape)).astype(np.float32)
    fit = model.fit(conc)
    assert fit.ktrans_per_min.shape == shape
    ok = ((np.abs(fit.ktrans_per_min - kt) <= 0.005 + 0.1 * kt)
          & (np.abs(fit.ve - ve) <= 0.05) & (np.abs(fit.vp - vp) <= 0.025))
    assert ok.mean() >= 0.95
    # the NLLS must not be worse than its LLSQ start
    llsq = TracerKineticModel(t, _aif(t), method="llsq").fit(conc)
    assert np.median(np.abs(fit.ktrans_per_min - kt)) < np.median(np.abs(llsq.ktrans_per_min - kt))


def test_fitted_delay_recovers_shift() -> None:
    t = _grid("even")
    cp = _aif(t)
    truth = models.extended_tofts(t, cp, ktrans_per_min=[0.2, 0.4], ve=[0.3, 0.4],
                                  vp=[0.05, 0.02], delay_s=6.5)
    fit = TracerKineticModel(t, cp, fit_delay=True,
                             delay_grid_s=np.arange(0, 12.01, 0.5)).fit(truth)
    np.testing.assert_allclose(fit.delay_s, 6.5)
    np.testing.assert_allclose(fit.ktrans_per_min, [0.2, 0.4], rtol=1e-3)


def test_status_codes_and_mask() -> None:
    t = _grid("even")
    cp = _aif(t)
    model = TracerKineticModel(t, cp, bounds=FitBounds(vp_max=0.2))
    good = model.predict(ktrans_per_min=0.2, ve=0.3, vp=0.05)
    conc = np.stack([good, good, np.zeros_like(good), 0.5 * cp, good])
    conc[1, 7] = np.nan
    fit = model.fit(conc, mask=[True, True, True, True, False])
    # an all-zero curve does not enhance: status 5, Ktrans = vp = 0 (not fitted); 0.5 cp with
    # vp <= 0.2 drives Ktrans to its bound (fast exchange): status 6, nested vp-only model
    assert list(fit.status) == [0, 1, 5, 6, -1]
    assert np.isnan(fit.ktrans_per_min[1]) and np.isnan(fit.ktrans_per_min[4])
    assert fit.ktrans_per_min[2] == 0.0 and fit.vp[2] == 0.0 and np.isnan(fit.ve[2])
    assert fit.vp[3] == pytest.approx(0.2)     # at the configured upper bound
    assert fit.ktrans_per_min[3] == 0.0 and np.isnan(fit.kep_per_min[3])
    assert set(STATUS_FIT) >= {0, 1, 2, 3, 4, 5, 6, 7}


def test_integer_input_and_predict_shapes() -> None:
    t = _grid("even")
    model = _MODELS["even"]["extended_tofts"]
    fit = model.fit(np.zeros((2, 2, t.size), dtype=np.int16))
    assert fit.status.shape == (2, 2)
    assert np.all(fit.status == 5)     # not enhancing


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"model": "toft"}, "model: unknown model 'toft'"),
    ({"method": "lm"}, "method: unknown method 'lm'"),
    ({"cp_mM": np.zeros(60)}, "cp_mM: the input function is zero everywhere"),
    ({"cp_mM": np.ones(59)}, "mismatched lengths"),
    ({"t_s": np.r_[np.arange(59) * 5.0, 100.0]}, "t_s: times must be strictly increasing"),
    ({"t_s": np.arange(3.0), "cp_mM": np.ones(3)}, "t_s: need at least 4 time points"),
    ({"fit_delay": True, "method": "llsq"}, "fit_delay: delay fitting needs method='nlls'"),
    ({"bounds": "x"}, "bounds: expected a FitBounds"),
])
def test_model_bad_arguments(kwargs: dict, match: str) -> None:
    args: dict[str, Any] = {"t_s": _grid("even"), "cp_mM": _aif(_grid("even"))}
    args.update(kwargs)
    t_s = args.pop("t_s")
    cp = args.pop("cp_mM")
    with pytest.raises(ValueError, match=match):
        TracerKineticModel(t_s, cp, **args)


def test_fit_bad_data() -> None:
    model = _MODELS["even"]["tofts"]
    with pytest.raises(ValueError, match="conc_mM: last axis has length 59 but t_s has 60"):
        model.fit(np.zeros((3, 59)))
    with pytest.raises(ValueError, match="conc_mM: empty array"):
        model.fit(np.zeros((0, 60)))
    with pytest.raises(ValueError, match="mask: shape"):
        model.fit(np.zeros((3, 60)), mask=[True, False])
    with pytest.raises(ValueError, match=r"bounds\.kep_per_min"):
        FitBounds(kep_per_min=(1.0, 0.5))


@pytest.mark.parametrize("n", [4, 5, 64, 1601])
@pytest.mark.parametrize("width", [None, 1, 25])
def test_spline_table_equals_scipy_cubic_spline(n: int, width: int | None) -> None:
    """The kep-table spline (dce.fit builds it without importing scipy.interpolate) is
    SciPy's not-a-knot CubicSpline, bit for bit."""
    from scipy.interpolate import CubicSpline

    from dce.fit import _not_a_knot_spline

    rng = np.random.default_rng(n)
    x = np.linspace(np.log(0.01), np.log(10.0), n) if n % 2 else np.sort(rng.uniform(-3, 3, n))
    y = rng.normal(size=(n,) if width is None else (n, width))
    ref = CubicSpline(x, y, axis=0).c
    got = _not_a_knot_spline(x, y)
    assert got.shape == ref.shape and np.array_equal(got, ref)


def test_fit_module_does_not_import_scipy_interpolate() -> None:
    """The fit job's start: dce.fit needs neither scipy.interpolate nor scipy.optimize."""
    import subprocess
    import sys

    code = ("import sys, dce.fit; print(sorted(m for m in ('scipy.interpolate', "
            "'scipy.optimize', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
