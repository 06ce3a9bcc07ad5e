"""Same inputs, identical outputs, whether the fit kernels were compiled in this process or
loaded from numba's cache.

A kernel compiled with floating-point contraction (``fastmath`` flag ``contract``: a * b + c
fused into one FMA instruction) may be fused differently by the in-process JIT and by the
object code numba writes to its cache, so a fresh environment (a new CI machine, a new
cluster node image) gave results differing in the last bits from a warm one (61 of 24,576
voxels in the NLLS Ktrans of the volume below, up to 1.6e-9 /min; about 1,900 voxels of a
256 x 256 x 12 session). Run in subprocesses, each with the same empty cache directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from dce.aif import blood_to_plasma, parker_aif
from dce.models import make_input_grid

_FIT = """
import sys
import numpy as np
from dce.fit import TracerKineticModel
d = np.load(sys.argv[1])
out = {}
for method in ("nlls", "llsq"):
    delay = method == "nlls"
    fit = TracerKineticModel(d["t"], d["cp"], method=method, fit_delay=delay,
                             delay_neighbourhood=(3, 3, 1) if delay else None).fit(d["conc"])
    for name in ("ktrans_per_min", "kep_per_min", "ve", "vp", "delay_s", "status", "r2",
                 "rmse_mM"):
        out[f"{method}_{name}"] = np.asarray(getattr(fit, name))
np.savez(sys.argv[2], **out)
"""


def test_fresh_compile_and_cached_kernels_give_identical_fits(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    t = np.arange(60) * 5.0
    cp = blood_to_plasma(parker_aif(t, delay_s=30.0), 0.42)
    shape = (64, 64, 6)
    n = int(np.prod(shape))
    kep = np.exp(rng.uniform(np.log(0.1), np.log(3.0), n))
    ve = rng.uniform(0.05, 0.5, n)
    vp = rng.uniform(0.0, 0.1, n)
    conc = np.empty((n, t.size))
    for d in (0.0, 2.0, 4.0, 6.0):       # bolus delays (s), a band of rows each
        grid = make_input_grid(t, cp, delay_s=d)
        rows = slice(int(d / 2) * n // 4, (int(d / 2) + 1) * n // 4)
        conc[rows] = (kep[rows, None] * ve[rows, None] * grid.convolve(kep[rows]) / 60.0
                      + vp[rows, None] * grid.cp_mM)
    conc += rng.normal(0.0, 0.02, conc.shape)
    np.savez(tmp_path / "in.npz", t=t, cp=cp, conc=conc.reshape(*shape, t.size))
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    for name in ("fresh", "cached"):   # the first run compiles, the second loads the cache
        subprocess.run([sys.executable, "-c", _FIT, str(tmp_path / "in.npz"),
                        str(tmp_path / f"{name}.npz")], env=env, check=True,
                       capture_output=True, text=True)
    assert any(cache.rglob("*.nbi")), "the first run wrote no numba cache"
    fresh, cached = np.load(tmp_path / "fresh.npz"), np.load(tmp_path / "cached.npz")
    assert sorted(fresh.files) == sorted(cached.files)
    for key in fresh.files:
        assert np.array_equal(fresh[key], cached[key], equal_nan=True), key
