"""Tofts fit of the QIBA DCE-MRI DRO v9 (Duke/QIBA, tests/data/qiba_v9; see its LICENSE).

Both vendor styles are read through :mod:`dce.io` (GE: TriggerTime; Siemens:
AcquisitionTime). The phantom's design (README): 6 x 5 patches of 10 x 10 pixels in rows
10-69, Ktrans by patch row 0.01, 0.02, 0.05, 0.1, 0.2, 0.35 /min, ve by patch column 0.01,
0.05, 0.1, 0.2, 0.5; blood in rows 70-79; T1 tissue 1.0 s, T1 blood 1.44 s, TR 5 ms,
FA 30 deg, hematocrit 0.45; M0 = S0 (10000 GE, 500 Siemens); Rician noise sigma 100 / 5.

The noise is strong (tissue SNR about 2 at baseline), so the patch curves are the
noise-floor corrected patch means (:func:`dce.signal.rician_corrected_mean`) with sigma
estimated from the data (:func:`dce.signal.rician_sigma`), converted with the DRO's M0.
Relaxivity cancels out of Ktrans and ve (tissue and AIF scale together); 4.5 /mM/s is used.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dce.fit import TracerKineticModel
from dce.io import load_dce
from dce.signal import rician_corrected_mean, rician_sigma, signal_to_concentration

DATA = Path(__file__).parent / "data" / "qiba_v9"
KTRANS = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.35])
VE = np.array([0.01, 0.05, 0.1, 0.2, 0.5])
M0 = {"ge": 10000.0, "siemens": 500.0}
N_BASELINE = 10


def _patch_fit(vendor: str) -> tuple[np.ndarray, np.ndarray, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series = load_dce(DATA / vendor)
    sig = series.data[:, :, 0, :].astype(np.float64)        # (columns i, rows j, t)
    n_t = sig.shape[-1]
    # noise sd from the baseline phases of each tissue patch (method of moments)
    sigma = float(np.median([rician_sigma(sig[c * 10:(c + 1) * 10, 10 + r * 10:20 + r * 10,
                                               :N_BASELINE]) for r in range(6) for c in range(5)]))
    kw: dict[str, Any] = {"tr_s": 0.005, "flip_angle_deg": 30.0, "r1_per_mM_per_s": 4.5,
                          "m0": M0[vendor]}
    blood = rician_corrected_mean(sig[:, 70:80, :].reshape(-1, n_t), sigma=sigma)
    cb = signal_to_concentration(blood, t10_s=1.44, **kw)
    assert cb.status == 0
    cp = cb.conc_mM / (1.0 - 0.45)
    curves = np.array([[rician_corrected_mean(
        sig[c * 10:(c + 1) * 10, 10 + r * 10:20 + r * 10, :].reshape(-1, n_t), sigma=sigma)
        for c in range(5)] for r in range(6)])
    conc = signal_to_concentration(curves, t10_s=1.0, **kw)
    assert np.all(conc.status == 0)
    fit = TracerKineticModel(series.t_s, cp, model="tofts").fit(conc.conc_mM)
    return fit.ktrans_per_min, fit.ve, sigma


@pytest.mark.parametrize(("vendor", "sigma_true"), [("ge", 100.0), ("siemens", 5.0)])
def test_qiba_v9_tofts_patches(vendor: str, sigma_true: float) -> None:
    ktrans, ve, sigma = _patch_fit(vendor)
    assert sigma == pytest.approx(sigma_true, rel=0.05)
    rel_err = np.abs(ktrans - KTRANS[:, None]) / KTRANS[:, None]
    sel = np.broadcast_to(VE[None, :] >= 0.05, rel_err.shape)
    median_err = float(np.median(rel_err[sel]))
    print(f"{vendor}: Ktrans median |rel err| over {sel.sum()} patches (ve >= 0.05) = "
          f"{median_err:.4f}")
    assert median_err <= 0.10
    # ve of the well-determined patches (Ktrans >= 0.1 /min) within OSIPI's 0.05
    np.testing.assert_allclose(ve[3:, 1:], np.broadcast_to(VE[1:], (3, 4)), atol=0.05)


def test_rician_correction_removes_bias() -> None:
    """Seeded Rician samples: the plain mean is biased, the corrected mean is not."""
    rng = np.random.default_rng(5)
    a, sd = 180.0, 100.0
    m = np.abs(a + rng.normal(0, sd, 200_000) + 1j * rng.normal(0, sd, 200_000))
    assert m.mean() > 1.1 * a
    assert rician_corrected_mean(m, sigma=sd) == pytest.approx(a, rel=0.01)
    assert rician_sigma(m) == pytest.approx(sd, rel=0.02)
    with pytest.raises(ValueError, match="sigma: must be >= 0"):
        rician_corrected_mean(m, sigma=-1.0)
