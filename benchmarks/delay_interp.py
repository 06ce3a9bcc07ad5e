"""Bias of the kinetic fit when the tissue's bolus delay is not a multiple of the sampling.

An independent test bench (it shares no code with :mod:`dce.models` or :mod:`dce.fit`,
which it only *calls*): for each case

* a plasma input from one of three families, evaluated analytically on a fine grid
  (``FINE_S`` = 0.01 s): the phantom's gamma-variate family (:func:`dce.phantom.aif_blood_mM`,
  its own code), a Parker-like form (two Gaussians plus a sigmoid-switched exponential,
  Parker et al. MRM 2006, its first-pass width scaled) and a biexponential with a rise
  (``A (e^{-u/tau1} - e^{-u/tau_r}) + B (e^{-u/tau2} - e^{-u/tau_r})``, a kink at the
  arrival); first-pass FWHM 6-15 s, arrival 3-5 frames plus a random sub-frame offset;
* frame times every ``dt`` = 2.5, 5 or 7 s over 5 min;
* extended Tofts tissue curves (Ktrans 0.02-0.5 /min, ve 0.1-0.5, vp 0-0.2) driven by
  the input delayed by the tissue delay (0 and five delays uniform in 0-5 s), by this
  file's own exponential recursion on the fine grid (exact for the piecewise-linear
  fine-grid input; at 0.01 s steps a smooth curve's error is below 1e-5);
* both the input and the tissue sampled at the frame times, either instantaneously
  (``inst``) or as the mean over each frame centred on its time (``avg``, the temporal
  footprint of an acquisition);
* the fitter (``TracerKineticModel``, extended Tofts, NLLS) gets the *sampled* input at
  the frame times, either at the true delay (``known``, isolates the input model) or with
  the delay fitted over the default grid (``fitted``, -2..10 s in 0.5 s).

Candidate input models (``--methods``): ``linear`` (the input samples joined by straight
lines: the fitter's historic model), ``cubic`` (not-a-knot cubic spline of the samples),
``cubic0`` (the same clipped at >= 0), ``pchip``, ``akima``, ``makima`` and ``sinc``
(band-limited: FFT resampling of the samples minus their end-to-end line; even sampling
only); each is evaluated here on ``--sub`` sub-knots per sample interval and handed to the
fitter as a finely sampled input (``t_aif_s``), which the fitter convolves exactly as
piecewise linear. ``--methods fitter-<name>`` instead passes the raw samples and
``aif_interpolation=<name>`` to the fitter (the option as implemented).

Prints per method, sampling and delay mode ``key=value`` lines: median / 5th / 95th
percentile and max |.| of the relative error (%) of Ktrans, ve and vp (vp > 0 only), the
absolute vp error where the true vp is 0, and the delay error (s), over all cases, for
delay 0 and for delays > 0.

Run: ``PYTHONPATH=$PWD python benchmarks/delay_interp.py`` (about 1-3 min; ``--quick``
for fewer cases, ``--noise 0.02`` adds Gaussian noise of that fraction of each curve's
peak, ``--reps`` noisy copies per curve, ``--aif-noise 0.02`` noise of that fraction of the
input's peak to the sampled input, one draw per case).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import Akima1DInterpolator, CubicSpline, PchipInterpolator
from scipy.signal import lfilter, resample

from dce.fit import TracerKineticModel
from dce.phantom import AIFSpec, aif_blood_mM

FINE_S = 0.01
T_END_S = 300.0
KTRANS = (0.02, 0.05, 0.1, 0.25, 0.5)
VE = (0.1, 0.3, 0.5)
VP = (0.0, 0.05, 0.2)
Arr = NDArray[np.float64]


# ----------------------------------------------------------------------- input families
def _fwhm(t: Arr, c: Arr) -> float:
    i = int(np.argmax(c))
    above = np.flatnonzero(c >= 0.5 * c[i])
    lo = above[above <= i].min()
    hi = above[above >= i]
    hi = hi[np.concatenate([[True], np.diff(hi) == 1])].max()   # first contiguous run
    return float(t[hi] - t[lo])


def gamma_family(fwhm_s: float, arrival_s: float, rng: np.random.Generator
                 ) -> Callable[[Arr], Arr]:
    spec = AIFSpec(arrival_s=arrival_s, amplitude_mM=float(rng.uniform(3, 7.5)),
                   fwhm_s=fwhm_s, shape=float(rng.uniform(3.5, 6.0)),
                   recirc_delay_s=float(rng.uniform(15, 25)),
                   recirc_fraction=float(rng.uniform(0.2, 0.4)),
                   recirc_width=float(rng.uniform(1.2, 1.8)),
                   recirc_shape=float(rng.uniform(3, 5)), plateau_mM=0.8,
                   washout_tau_s=float(rng.uniform(180, 600)), hematocrit=0.42)
    return lambda t: aif_blood_mM(t, spec) / (1 - spec.hematocrit)


def parker_family(fwhm_s: float, arrival_s: float, rng: np.random.Generator
                  ) -> Callable[[Arr], Arr]:
    """Parker 2006 (blood, mM; t in min) with both Gaussians widened by fwhm/7.96 s and
    placed 3 sigma after the arrival."""
    f = fwhm_s / (2.3548 * 0.0563 * 60.0)
    a1, a2, t1, t2, s1, s2 = 0.809, 0.330, 0.17046, 0.365, 0.0563 * f, 0.132 * f
    alpha, beta, s, tau = 1.050, 0.1685, 38.078, 0.483
    t0 = arrival_s / 60.0 + 3 * s1 - t1            # time shift (min)

    def cp(t: Arr) -> Arr:
        x = np.asarray(t) / 60.0 - t0
        g1 = a1 / (s1 * np.sqrt(2 * np.pi)) * np.exp(-((x - t1) ** 2) / (2 * s1 ** 2))
        g2 = a2 / (s2 * np.sqrt(2 * np.pi)) * np.exp(-((x - (t1 + (t2 - t1) * f)) ** 2)
                                                        / (2 * s2 ** 2))
        w = alpha * np.exp(-beta * x) / (1 + np.exp(-s * (x - (tau - t1) * f - t1)))
        return np.asarray((g1 + g2 + w) / 0.58)
    return cp


def biexp_family(fwhm_s: float, arrival_s: float, rng: np.random.Generator
                 ) -> Callable[[Arr], Arr]:
    """A (e^{-u/tau1} - e^{-u/tau_r}) / peak + B (e^{-u/tau2} - e^{-u/tau_r}); tau1 tuned
    to the FWHM (bisection)."""
    tr = float(rng.uniform(0.3, 0.6)) * fwhm_s / 2.446   # u e^{-u/tau}: FWHM 2.446 tau
    amp, b, tau2 = float(rng.uniform(4, 9)), float(rng.uniform(0.08, 0.15)), 400.0
    u = np.arange(0.0, 120.0, 0.01)

    def shape(tau1: float, uu: Arr) -> Arr:
        uu = np.clip(uu, 0.0, None)
        um = np.log(tau1 / tr) * tau1 * tr / (tau1 - tr)       # first-pass peak time
        first = (np.exp(-uu / tau1) - np.exp(-uu / tr)) / (np.exp(-um / tau1)
                                                           - np.exp(-um / tr))
        return np.asarray(amp * first + amp * b * (np.exp(-uu / tau2) - np.exp(-uu / tr)))

    lo, hi = 1.001 * tr, 40.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _fwhm(u, shape(mid, u)) < fwhm_s:
            lo = mid
        else:
            hi = mid
    tau1 = 0.5 * (lo + hi)
    return lambda t: shape(tau1, np.asarray(t) - arrival_s)


FAMILIES = {"gamma": gamma_family, "parker": parker_family, "biexp": biexp_family}


# ----------------------------------------------------------------------------- truth
def exp_conv_fine(cp: Arr, kep_per_min: Arr) -> Arr:
    """int_0^t cp(s) exp(-kep (t - s)) ds (mM s) on the fine grid, rows per kep; the
    recursion E_{n+1} = e E_n + h (c_n p1 + (c_{n+1} - c_n) p2) as an IIR filter."""
    h = FINE_S
    out = np.empty((kep_per_min.size, cp.size))
    for j, k in enumerate(kep_per_min / 60.0):
        x = k * h
        e = np.exp(-x)
        p1 = -np.expm1(-x) / x
        p2 = (x - 1 + e) / (x * x)
        # E_{n+1} - e E_n = h p2 c_{n+1} + h (p1 - p2) c_n
        out[j] = lfilter([h * p2, h * (p1 - p2)], [1.0, -e], cp)
        out[j] -= h * p2 * cp[0] * e ** np.arange(cp.size)   # E_0 = 0, not h p2 c_0
    return out


def sample(fine: Arr, t_frames: Arr, dt: float, how: str) -> Arr:
    tf = np.arange(fine.shape[-1]) * FINE_S
    if how == "inst":
        return np.stack([np.interp(t_frames, tf, r) for r in np.atleast_2d(fine)])
    half = round(dt / 2 / FINE_S)
    idx = np.rint(t_frames / FINE_S).astype(int)
    cs = np.cumsum(np.pad(np.atleast_2d(fine), ((0, 0), (1, 0))), axis=1)
    lo = np.clip(idx - half, 0, None)
    hi = np.clip(idx + half, None, fine.shape[-1] - 1) + 1
    return (cs[:, hi] - cs[:, lo]) / (hi - lo)


# ------------------------------------------------------------------------ candidates
def upsample(t: Arr, c: Arr, method: str, sub: int) -> tuple[Arr, Arr]:
    if method == "linear":
        return t, c
    tt = np.concatenate([np.linspace(a, b, sub + 1)[:-1] for a, b in pairwise(t)]
                        + [t[-1:]])
    if method in ("cubic", "cubic0"):
        y = CubicSpline(t, c)(tt)
        if method == "cubic0":
            y = np.maximum(y, 0.0)
    elif method == "pchip":
        y = PchipInterpolator(t, c)(tt)
    elif method in ("akima", "makima"):
        y = Akima1DInterpolator(t, c, method=method)(tt)
    elif method == "sinc":
        line = c[0] + (c[-1] - c[0]) * (t - t[0]) / (t[-1] - t[0])
        r = resample(c - line, t.size * sub)
        tr = t[0] + np.arange(t.size * sub) * (t[1] - t[0]) / sub
        y = np.interp(tt, tr, r) + c[0] + (c[-1] - c[0]) * (tt - t[0]) / (t[-1] - t[0])
    else:
        raise ValueError(method)
    y[::sub] = c                                   # the samples themselves
    return tt, y


# ----------------------------------------------------------------------------- bench
@dataclass
class Case:
    family: str
    dt: float
    how: str
    t: Arr
    cp_samples: Arr
    curves: Arr          # (n, nt)
    kt: Arr
    ve: Arr
    vp: Arr
    delay: Arr
    sampling_ratio: str = ""     # first-pass FWHM / dt, binned


def _ratio_bin(fwhm_s: float, dt: float) -> str:
    r = fwhm_s / dt
    return "lt1.5" if r < 1.5 else "1.5to2.5" if r < 2.5 else "ge2.5"


def make_cases(rng: np.random.Generator, n_aif: int, dts: tuple[float, ...],
               hows: tuple[str, ...], n_delays: int, noise: float, reps: int,
               aif_noise: float = 0.0) -> list[Case]:
    cases = []
    tf = np.arange(0.0, T_END_S + 10.0, FINE_S)
    kt, ve, vp = (a.ravel() for a in np.meshgrid(KTRANS, VE, VP, indexing="ij"))
    for fam, make in FAMILIES.items():
        for _ in range(n_aif):
            fwhm = float(rng.uniform(6, 15))
            for dt in dts:
                t = np.arange(0.0, T_END_S, dt)
                arrival = dt * float(rng.integers(3, 6)) + float(rng.uniform(0, dt))
                cpf = make(fwhm, arrival, rng)
                delays = np.concatenate([[0.0], rng.uniform(0, 5, n_delays - 1)])
                for how in hows:
                    cp_s = sample(cpf(tf)[None], t, dt, how)[0]
                    if aif_noise > 0:
                        cp_s = cp_s + aif_noise * cp_s.max() * rng.standard_normal(cp_s.size)
                    curves, rows = [], []
                    for d in delays:
                        cpd = cpf(tf - d)
                        e = exp_conv_fine(cpd, kt / ve)
                        ct = kt[:, None] / 60.0 * e + vp[:, None] * cpd[None]
                        curves.append(sample(ct, t, dt, how))
                        rows.append(np.full(kt.size, d))
                    c = np.concatenate(curves)
                    dd = np.concatenate(rows)
                    k3 = [np.tile(a, delays.size) for a in (kt, ve, vp)]
                    if noise > 0:
                        sd = noise * c.max(axis=1, keepdims=True)
                        c = np.concatenate([c + sd * rng.standard_normal(c.shape)
                                            for _ in range(reps)])
                        dd = np.tile(dd, reps)
                        k3 = [np.tile(a, reps) for a in k3]
                    ratio = _ratio_bin(_fwhm(tf, cpf(tf)), dt)
                    cases.append(Case(fam, dt, how, t, cp_s, c, k3[0], k3[1], k3[2], dd, ratio))
    return cases


def fit_case(case: Case, method: str, sub: int, mode: str) -> dict[str, Arr]:
    kw: dict[str, Any] = {"delay_neighbourhood": None, "enhancement_z": None}
    if method.startswith("fitter-"):
        ta, ca = case.t, case.cp_samples
        kw["aif_interpolation"] = method.split("-", 1)[1]
    else:   # the candidate's fine samples, joined by straight lines
        ta, ca = upsample(case.t, case.cp_samples, method, sub)
        kw["aif_interpolation"] = "linear"
    out = {k: np.empty(case.kt.size) for k in ("kt", "ve", "vp", "delay")}
    if mode == "fitted":
        groups = [(None, np.arange(case.kt.size))]
    else:
        groups = [(d, np.flatnonzero(case.delay == d)) for d in np.unique(case.delay)]
    for d, rows in groups:
        if d is None:
            m = TracerKineticModel(case.t, ca, t_aif_s=ta, fit_delay=True, **kw)
        else:
            m = TracerKineticModel(case.t, ca, t_aif_s=ta, delay_s=float(d), **kw)
        f = m.fit(case.curves[rows])
        out["kt"][rows] = f.ktrans_per_min
        out["ve"][rows] = f.ve
        out["vp"][rows] = f.vp
        out["delay"][rows] = f.delay_s
    return out


def _m(x: Arr) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    return float(np.median(x)), float(np.percentile(np.abs(x), 90))


def summarise(prefix: str, res: dict[str, Arr], kt: Arr, ve: Arr, vp: Arr, d: Arr) -> None:
    """One line per Ktrans level: median and 90th percentile of |error| of Ktrans, ve, vp
    (relative, %, vp > 0 only), the 90th percentile of |vp| where the true vp is 0, and of
    the delay error (s)."""
    ekt = 100 * (res["kt"] / kt - 1)
    eve = 100 * (res["ve"] / ve - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        evp = np.where(vp > 0, 100 * (res["vp"] / vp - 1), np.nan)
    edl = res["delay"] - d
    for k in np.unique(kt):
        s = kt == k
        parts = [f"kt={k:g}", f"n={int(s.sum())}"]
        for name, e in (("ktrans_pct", ekt), ("ve_pct", eve), ("vp_pct", evp),
                        ("delay_s", edl)):
            med, p90 = _m(e[s])
            parts.append(f"{name}_med={med:+.2f} {name}_p90abs={p90:.2f}")
        z = s & (vp == 0)
        parts.append(f"vp0_p90={np.percentile(np.abs(res['vp'][z]), 90):.4f}")
        print(prefix, " ".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="*",
                    default=["linear", "cubic", "cubic0", "pchip", "akima", "makima", "sinc"])
    ap.add_argument("--sub", type=int, default=10, help="sub-knots per sample interval")
    ap.add_argument("--dts", nargs="*", type=float, default=[2.5, 5.0, 7.0])
    ap.add_argument("--sampling", nargs="*", default=["inst", "avg"])
    ap.add_argument("--modes", nargs="*", default=["known", "fitted"])
    ap.add_argument("--n-aif", type=int, default=2, help="inputs per family and dt")
    ap.add_argument("--n-delays", type=int, default=6)
    ap.add_argument("--noise", type=float, default=0.0)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--aif-noise", type=float, default=0.0,
                    help="Gaussian noise SD of the sampled input, fraction of its peak")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--by", default="dt", choices=["dt", "family", "sampling_ratio", "none"])
    a = ap.parse_args()
    if a.quick:
        a.n_aif, a.n_delays = 1, 4
    cases = make_cases(np.random.default_rng(a.seed), a.n_aif, tuple(a.dts),
                       tuple(a.sampling), a.n_delays, a.noise, a.reps, a.aif_noise)
    print(f"cases={len(cases)} curves={sum(c.kt.size for c in cases)} noise={a.noise} "
          f"aif_noise={a.aif_noise} sub={a.sub}")
    for mode in a.modes:
        for method in a.methods:
            for how in a.sampling:
                sel = [c for c in cases if c.how == how and
                       not (method == "sinc" and np.ptp(np.diff(c.t)) > 1e-9)]
                res = [fit_case(c, method, a.sub, mode) for c in sel]
                cat = {k: np.concatenate([r[k] for r in res]) for k in res[0]}
                tr = {k: np.concatenate([getattr(c, k) for c in sel])
                      for k in ("kt", "ve", "vp", "delay")}
                groups: dict[str, NDArray[np.bool_]] = {"all": np.ones(cat["kt"].size, bool),
                                          "d0": tr["delay"] == 0, "dpos": tr["delay"] > 0}
                if a.by != "none":
                    lab = np.concatenate([np.full(c.kt.size, str(getattr(c, a.by)))
                                          for c in sel])
                    for v in np.unique(lab):
                        groups[f"{a.by}{v}_dpos"] = (lab == v) & (tr["delay"] > 0)
                for g, msk in groups.items():
                    summarise(f"mode={mode} method={method} sampling={how} group={g}",
                              {k: v[msk] for k, v in cat.items()},
                              tr["kt"][msk], tr["ve"][msk], tr["vp"][msk], tr["delay"][msk])


if __name__ == "__main__":
    main()
