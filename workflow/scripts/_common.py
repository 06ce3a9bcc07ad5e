"""Shared plumbing of the workflow scripts (not a rule script itself).

Every rule script is ``with job(snakemake) as log: ...``: the context manager sends
logging and warnings to ``snakemake.log[0]``, limits the BLAS/numba threads to the job's
threads, and on any error removes the job's partial outputs and re-raises with the subject,
session and rule in the message (the original error, naming the file, follows).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:  # the conda environment does not install the package: use the source tree
    import dce  # noqa: F401
except ImportError:  # pragma: no cover - depends on the deployment
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dce.io._atomic import atomic_path

#: Map name in the file names -> (column name with units, display label, display unit).
MAPS: dict[str, tuple[str, str, str]] = {
    "ktrans": ("ktrans_per_min", "Ktrans", "/min"),
    "kep": ("kep_per_min", "kep", "/min"),
    "ve": ("ve", "ve", ""),
    "vp": ("vp", "vp", ""),
    "r2": ("r2", "R²", ""),
    "rmse": ("rmse_mM", "RMSE", "mM"),
    "delay": ("delay_s", "delay", "s"),
    "fitstatus": ("status", "fit status", ""),
    "peakenh": ("peak_enhancement_pct", "peak enhancement", "%"),
    "ttp": ("time_to_peak_s", "time to peak", "s"),
    "washin": ("wash_in_slope_pct_per_s", "wash-in slope", "%/s"),
    "maxslope": ("max_slope_pct_per_s", "max slope", "%/s"),
    "washout": ("washout_pct", "washout", "%"),
    "tictype": ("tic_type_code", "TIC type", "0 none, 1-5 = A-E"),
}


def map_info(name: str) -> tuple[str, str, str]:
    """(column, label, unit) of a map name, including ``iauc<seconds>``."""
    if name in MAPS:
        return MAPS[name]
    m = re.fullmatch(r"iauc(\d+)", name)
    if m:
        return (f"iauc_{m.group(1)}s", f"IAUC {m.group(1)} s", "a.u. s")
    raise KeyError(f"unknown map name {name!r}")

#: TIC type letters and their codes in the ``tictype`` map.
TIC_CODES = {"": 0, "A": 1, "B": 2, "C": 3, "D": 4, "E": 5}


def label(sm: Any) -> str:
    """``sub-<s> ses-<t> rule <r>`` for messages."""
    wc = sm.wildcards
    parts = []
    if "subject" in wc.keys():
        parts.append(f"sub-{wc.subject}")
    if "session" in wc.keys():
        parts.append(f"ses-{wc.session}")
    parts.append(f"rule {sm.rule}")
    return " ".join(parts)


def _limit_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    try:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover
        pass


def _outputs(sm: Any) -> list[Path]:
    paths = [Path(p) for p in sm.output]
    # NIfTI sidecars are written next to the images
    extra = []
    for p in paths:
        for ext in (".nii.gz", ".nii"):
            if p.name.endswith(ext):
                extra.append(p.with_name(p.name[: -len(ext)] + ".json"))
    return paths + extra


@contextmanager
def job(sm: Any) -> Iterator[logging.Logger]:
    """Run a rule script: log to ``snakemake.log[0]``, clean up and name the job on error."""
    threads = int(getattr(sm, "threads", 1) or 1)
    _limit_threads(threads)
    log_path = Path(sm.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    log = logging.getLogger(f"dce.workflow.{sm.rule}")
    where = label(sm)
    log.info("%s: start (%d thread(s))", where, threads)
    t0 = time.perf_counter()
    try:
        yield log
    except BaseException as exc:
        log.error("%s: failed: %s\n%s", where, exc, traceback.format_exc())
        for p in _outputs(sm):
            if p.is_file():
                p.unlink()
        raise RuntimeError(f"{where}: {type(exc).__name__}: {exc}") from exc
    finally:
        handler.flush()
    log.info("%s: done in %.2f s", where, time.perf_counter() - t0)
    handler.close()


def write_tsv(df: Any, path: str | os.PathLike[str]) -> None:
    """Write a table atomically (temporary name in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.6g")


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write JSON atomically."""
    import json

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def save_figure(fig: Any, path: str | os.PathLike[str]) -> None:
    """Save a matplotlib figure atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
