"""The fit kernels' thread dispatch (dce._threads), quickselect median and enhancement test."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pytest

from dce import _threads
from dce._select import median as _median
from dce.aif import parker_aif
from dce.fit import _MAD_DIFF, TracerKineticModel, _enhancing


@pytest.fixture(autouse=True)
def _restore_threads() -> Any:
    n = _threads._n_threads
    yield
    _threads.set_num_threads(n)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 59, 60, 61])
def test_quickselect_median_equals_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(200):
        x = np.abs(rng.normal(size=n))
        if rng.random() < 0.3:           # ties, as from quantised data
            x = np.round(x, 1)
        got = _median(x.copy(), n)
        assert got == np.median(x)       # the same number, not just close


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_enhancement_bounds_agree_with_the_exact_test(dtype: Any) -> None:
    """The cheap bounds (delta <= 0; median <= 2 mean) never change the decision of
    delta > thr * median(|d|) / 0.954 (checked off the rounding level at the threshold)."""
    rng = np.random.default_rng(7)
    n = 59
    c = rng.normal(size=(500, n + 1))
    c[:50] = np.round(c[:50], 1)         # ties, as from quantised data
    c[50:60, : n // 2 + 2] = 1.0         # median |difference| 0
    c = c.astype(dtype)
    dbuf = np.abs(np.diff(c.astype(np.float64), axis=1))
    scratch = np.empty(n)
    thr = 1.7
    for j in range(c.shape[0]):
        sd = np.median(dbuf[j]) / _MAD_DIFF
        for delta in (-1.0, 0.0, 0.5 * thr * sd, thr * sd * (1 - 1e-9), thr * sd * (1 + 1e-9),
                      1.5 * thr * sd, 3.0 * thr * sd, 1e-12):
            want = delta > thr * sd
            assert _enhancing(delta, thr, dbuf[j].sum(), c, j, scratch) == want


def _volume() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.arange(40) * 6.0
    cp = parker_aif(t, delay_s=30.0) / 0.58
    model = TracerKineticModel(t, cp)
    n = 3000
    kt = rng.uniform(0.0, 0.6, n)
    ve = rng.uniform(0.05, 0.6, n)
    vp = rng.uniform(0.0, 0.1, n)
    conc = model.predict(ktrans_per_min=kt, ve=ve, vp=vp) + rng.normal(0, 0.01, (n, t.size))
    conc[::97] *= 0.0                    # not enhancing
    conc[5, 3] = np.nan
    return t, cp, conc.astype(np.float32)


@pytest.mark.parametrize("kw", [{}, {"method": "llsq"}, {"model": "tofts"},
                                {"fit_delay": True, "delay_grid_s": [0.0, 3.0]}])
def test_results_do_not_depend_on_the_thread_count(kw: dict[str, Any]) -> None:
    t, cp, conc = _volume()
    model = TracerKineticModel(t, cp, **kw)
    _threads.set_num_threads(1)
    one = model.fit(conc)
    _threads.set_num_threads(2)
    two = model.fit(conc)
    assert np.unique(one.status).size >= 3   # the fit saw fitted, 1 and 5 voxels
    for (k, a), b in zip(one.maps().items(), two.maps().values(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_run_chunks_covers_every_row_once() -> None:
    seen = np.zeros(10_000, dtype=int)

    def kernel(out: np.ndarray, lo: int, hi: int) -> None:
        out[lo:hi] += 1

    _threads.set_num_threads(3)
    _threads.run_chunks(kernel, seen.size, seen, block=64)
    assert np.all(seen == 1)
    with pytest.raises(ValueError, match="threads"):
        _threads.set_num_threads(0)


def test_slow_first_call_logs_a_compilation_notice(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_threads, "NOTICE_AFTER_S", 0.05)
    monkeypatch.setattr(_threads, "_first_call_s", 0.0)
    monkeypatch.setattr(_threads, "_noticed", False)

    def fast(lo: int, hi: int) -> None:
        pass

    def slow(lo: int, hi: int) -> None:
        time.sleep(0.3)

    with caplog.at_level(logging.INFO, logger="dce.fit"):
        _threads.run_chunks(fast, 10)
        assert "compiling" not in caplog.text       # quick first calls stay quiet
        _threads.run_chunks(slow, 10)
        _threads.run_chunks(slow, 10)
    assert caplog.text.count("compiling the fit kernels") == 1


def _sum_in_child(n: int) -> int:
    seen = np.zeros(n, dtype=int)

    def kernel(out: np.ndarray, lo: int, hi: int) -> None:
        out[lo:hi] += 1

    _threads.run_chunks(kernel, n, seen, block=16)
    return int(seen.sum())


def test_a_forked_child_gets_its_own_pool() -> None:
    """The parent's pool threads do not exist in a forked child: the child must not wait on
    them forever."""
    import multiprocessing

    _threads.set_num_threads(2)
    assert _sum_in_child(1000) == 1000          # the parent's pool now exists
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply_async(_sum_in_child, (1000,)).get(timeout=60) == 1000


def test_serial_blas_before_numpy_in_the_kinetics_job() -> None:
    """serial_blas sets every BLAS thread variable to 1, overriding what Snakemake set to
    the job's threads, and the kinetics script calls it before anything imports numpy."""
    import ast
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, **dict.fromkeys(_threads.BLAS_THREAD_VARS, "2")}
    code = ("import os, sys; from dce._threads import serial_blas, BLAS_THREAD_VARS; "
            "serial_blas(); print(sys.modules.get('numpy') is None, "
            "sorted({os.environ[v] for v in BLAS_THREAD_VARS}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.split(maxsplit=1) == ["True", "['1']\n"]
    script = Path(__file__).parents[1] / "workflow" / "scripts" / "kinetics.py"
    body = ast.parse(script.read_text(encoding="utf-8")).body
    calls = [i for i, n in enumerate(body) if isinstance(n, ast.Expr)
             and isinstance(n.value, ast.Call) and getattr(n.value.func, "id", "") == "serial_blas"]
    imports = [i for i, n in enumerate(body) if isinstance(n, ast.Import | ast.ImportFrom)
               and not (isinstance(n, ast.ImportFrom) and n.module == "dce._threads")]
    assert calls and calls[0] < min(imports)
