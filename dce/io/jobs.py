"""Plumbing of the workflow's rule scripts: the job context and the atomic table, JSON and
figure writers.

Every rule script is ``with job(snakemake) as log: ...``: :func:`job` sends logging and
warnings to ``snakemake.log[0]``, limits the BLAS threads and those of the fit kernels
(:mod:`dce._threads`) to the job's threads, and
on any error removes the job's partial outputs, writes an *error record* (subject, session,
rule, message; :func:`error_record_path`) beside the log, and re-raises with the subject,
session and rule in the message (the original error, naming the file, follows). The
workflow reads the records back (:func:`read_error_records`) to list the sessions it had
to leave out of the cohort analysis.

Nothing here imports Snakemake: the ``snakemake`` object of a script is taken duck-typed
(attributes ``wildcards`` (with ``keys()``), ``rule``, ``log``, ``output`` and
``threads``), so the plumbing is testable with a plain stand-in.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import math
import os
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from dce.io._atomic import FIGURE_DPI, atomic_path, save_figure_atomic
from dce.io._jsontext import dumps

__all__ = [
    "ERROR_RECORD_SUFFIX",
    "PROCESS_CPU_PREFIX",
    "error_record_path",
    "job",
    "job_label",
    "process_cpu_text",
    "read_error_records",
    "save_figure",
    "save_figure_formats",
    "tsv_rows_text",
    "write_json",
    "write_tsv",
    "write_tsv_columns",
    "write_tsv_rows",
]

#: Variables that cap the threads of the BLAS/OpenMP libraries (set only when unset).
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: Suffix of the error record written beside a failed job's log (``<rule>.error.json``).
ERROR_RECORD_SUFFIX = ".error.json"


def job_label(sm: Any) -> str:
    """``sub-<s> ses-<t> rule <r>`` of a rule job, for messages.

    Parameters
    ----------
    sm : snakemake-like
        Has ``wildcards`` (with ``keys()``) and ``rule``; ``subject`` and ``session``
        appear only when they are wildcards of the rule.

    Returns
    -------
    str
    """
    wc = sm.wildcards
    parts = []
    if "subject" in wc.keys():
        parts.append(f"sub-{wc.subject}")
    if "session" in wc.keys():
        parts.append(f"ses-{wc.session}")
    parts.append(f"rule {sm.rule}")
    return " ".join(parts)


def _limit_threads(n: int) -> None:
    """Cap the BLAS/OpenMP threads and those of the fit kernels (:mod:`dce._threads`,
    which does not import numba) at ``n``."""
    for var in _THREAD_VARS:
        os.environ.setdefault(var, str(n))
    from dce._threads import set_num_threads

    set_num_threads(max(1, n))


def _outputs(sm: Any, extra: Any = ()) -> list[Path]:
    """The job's declared outputs (and ``extra`` paths) plus the JSON sidecars of the NIfTI
    ones."""
    paths = [Path(p) for p in (*sm.output, *extra)]
    extra = []
    for p in paths:
        for ext in (".nii.gz", ".nii"):
            if p.name.endswith(ext):
                extra.append(p.with_name(p.name[: -len(ext)] + ".json"))
    return paths + extra


def _remove_stale_temporaries(paths: list[Path]) -> list[Path]:
    """Remove the temporary files of ``paths`` (``.<name>.<pid>.<random>.tmp<ext>``, the
    atomic writers' names, :mod:`dce.io._atomic`, :func:`dce.io.nifti.write_nifti`) that an
    earlier attempt of the job left when it was killed mid-write (SIGKILL, a node lost, a
    wall-time limit: its own clean-up never ran); the paths removed."""
    removed = []
    for p in paths:
        for tmp in p.parent.glob(f".{glob.escape(p.name)}.*.tmp*"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def error_record_path(log_path: str | os.PathLike[str]) -> Path:
    """The error record of the job logging to ``log_path``: ``<log stem>.error.json``
    in the log's folder (e.g. ``logs/sub-01/ses-pre/convert.error.json``)."""
    p = Path(log_path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(stem + ERROR_RECORD_SUFFIX)


def _error_message(exc: BaseException) -> str:
    """``<ExceptionType>: <message>`` on one line (runs of white space as one space)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _write_error_record(sm: Any, exc: BaseException) -> None:
    wc = sm.wildcards
    record = {
        "subject": str(wc.subject) if "subject" in wc.keys() else None,
        "session": str(wc.session) if "session" in wc.keys() else None,
        "rule": str(sm.rule),
        "error": _error_message(exc),
    }
    write_json(record, error_record_path(sm.log[0]))


def read_error_records(paths: Any) -> list[dict[str, Any]]:
    """The error records (:func:`job`) in ``paths``, sorted by subject, session, rule.

    Parameters
    ----------
    paths : iterable of path-like
        Record files (``*.error.json``); a file that vanished meanwhile is skipped.

    Returns
    -------
    list of dict
        ``subject``, ``session`` (None for a job without these wildcards), ``rule`` and
        ``error`` (``"<ExceptionType>: <message>"`` on one line; the message names the
        file and the problem).
    """
    out = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                rec = json.load(fh)
        except FileNotFoundError:
            continue
        out.append({k: rec.get(k) for k in ("subject", "session", "rule", "error")})
    return sorted(out, key=lambda r: (str(r["subject"]), str(r["session"]), str(r["rule"])))


@contextmanager
def job(sm: Any, extra_outputs: Any = ()) -> Iterator[logging.Logger]:
    """Run the body of a rule script as one job.

    Parameters
    ----------
    sm : snakemake-like
        The script's ``snakemake`` object (duck-typed): ``log[0]`` (log file, replaced),
        ``threads`` (default 1), ``output`` (paths), ``wildcards`` and ``rule``.
    extra_outputs : iterable of path-like
        Files the job writes besides its declared outputs (e.g. the sidecar of an image held
        in memory, named by the image path), removed like them on an error.

    Yields
    ------
    logging.Logger
        Logger ``dce.workflow.<rule>``; the root logger (so the library's loggers too)
        and captured warnings go to the log file.

    Raises
    ------
    RuntimeError
        On any error in the body, after logging the traceback, removing the outputs
        (and NIfTI sidecars) that exist and writing the error record
        (:func:`error_record_path`; a record left by an earlier failure of the job is
        removed when it starts): ``"<job label>: <ExceptionType>: <message>"``
        (:func:`job_label`), chained to the original exception.

    Notes
    -----
    When it starts, the job removes the temporary files of its outputs that an earlier,
    killed attempt left behind (:func:`_remove_stale_temporaries`; a killed process cannot
    clean up, and Snakemake removes only the declared outputs of an incomplete job).
    """
    threads = int(getattr(sm, "threads", 1) or 1)
    _limit_threads(threads)
    log_path = Path(sm.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    error_record_path(log_path).unlink(missing_ok=True)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    log = logging.getLogger(f"dce.workflow.{sm.rule}")
    where = job_label(sm)
    log.info("%s: start (%d thread(s))", where, threads)
    for tmp in _remove_stale_temporaries(_outputs(sm, extra_outputs)):
        log.warning("removed %s, a temporary file left by an interrupted earlier run",
                    tmp.name)
    t0 = time.perf_counter()
    try:
        yield log
    except BaseException as exc:
        log.error("%s: failed: %s\n%s", where, exc, traceback.format_exc())
        for p in _outputs(sm, extra_outputs):
            if p.is_file():
                p.unlink()
        _write_error_record(sm, exc)
        raise RuntimeError(f"{where}: {type(exc).__name__}: {exc}") from exc
    finally:
        handler.flush()
    log.info("%s: done in %.2f s (%s)", where, time.perf_counter() - t0, process_cpu_text())
    handler.close()


#: Prefix of the CPU figure in a job's last log line (:func:`process_cpu_text`; read back by
#: benchmarks/bench_workflow.py).
PROCESS_CPU_PREFIX = "process CPU"


def process_cpu_text() -> str:
    """``process CPU <s> s``: the CPU seconds (user + system, child processes included) of
    the current process since it started, i.e. of the whole job: interpreter start, the
    script preamble, imports and work (only the interpreter's exit comes after).

    Snakemake's benchmark files sample a job's CPU every 0.5 s, so for jobs of a second or
    two they miss up to half a second; this figure is exact."""
    t = os.times()
    cpu = t.user + t.system + t.children_user + t.children_system
    return f"{PROCESS_CPU_PREFIX} {cpu:.2f} s"


def write_tsv(df: Any, path: str | os.PathLike[str]) -> None:
    """Write a table atomically (temporary name in the same folder, then rename).

    Parameters
    ----------
    df : pandas.DataFrame
        Written without the index, missing values as ``n/a``, floats as ``%.6g``.
    path : path-like
    """
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.6g")


def write_tsv_columns(columns: Any, path: str | os.PathLike[str]) -> None:
    """Write float columns as a table atomically, without pandas: the same text as
    :func:`write_tsv` of their data frame (floats as ``%.6g``, NaN as ``n/a``).

    Parameters
    ----------
    columns : mapping of str to array_like
        Column name -> 1-D values (converted to float), all of one length.
    path : path-like

    Raises
    ------
    ValueError
        Columns of different lengths or not 1-D.
    """
    import numpy as np

    names = list(columns)
    cols = [np.asarray(columns[n], dtype=np.float64) for n in names]
    if any(c.ndim != 1 or c.shape != cols[0].shape for c in cols):
        raise ValueError(f"{path}: the columns {names} must be 1-D and of one length")
    lines = ["\t".join(names)]
    for row in zip(*(c.tolist() for c in cols), strict=True):
        lines.append("\t".join("n/a" if v != v else format(v, ".6g") for v in row))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _column_cells(values: list[Any]) -> list[str] | None:
    """The cells pandas writes for one column of ``pandas.DataFrame(rows)`` (its dtype
    inferred from the values as pandas does), or None for values outside the cases
    handled here."""
    import numpy as np

    bools = [isinstance(v, (bool, np.bool_)) for v in values]
    if values and all(bools):                               # bool column
        return [str(bool(v)) for v in values]
    numbers = [not b and isinstance(v, (Integral, Real)) for v, b in zip(values, bools,
                                                                          strict=True)]
    if values and all(numbers) and all(isinstance(v, Integral) for v in values):
        return [str(int(v)) for v in values]                # int64 column
    if values and all(n or v is None for n, v in zip(numbers, values, strict=True)):
        # float64 column (ints with floats or None are floats too): %.6g, NaN as n/a
        out = []
        for v in values:
            f = float("nan") if v is None else float(v)
            out.append("n/a" if math.isnan(f) else format(f, ".6g"))
        return out
    if all(isinstance(v, str) or _is_missing(v) for v in values):  # string column
        return ["n/a" if _is_missing(v) else v for v in values]
    if all(isinstance(v, (str, bool, int, float)) or v is None for v in values):
        return ["n/a" if _is_missing(v) else str(v) for v in values]  # object column
    return None


def tsv_rows_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """The TSV text of a table given as rows, without pandas: byte for byte the text of
    :func:`write_tsv` of ``pandas.DataFrame(rows, columns=columns)``.

    Each column's type is inferred as pandas infers it from Python (or numpy) scalars:
    all bool -> ``True``/``False``; all integers -> digits; numbers and None (at least
    one not an integer, or a None) -> floats as ``%.6g``, NaN and None as ``n/a``;
    strings and None/NaN -> the strings, missing as ``n/a``; a mixture -> ``str()`` of
    each value, missing as ``n/a``. Fields holding a tab, quote or line break are quoted
    (``csv.QUOTE_MINIMAL``, as pandas writes them). Any other value (an array, a date)
    falls back to pandas.

    Parameters
    ----------
    rows : sequence of mapping
        One mapping per row (a missing key is a missing value).
    columns : sequence of str
        The columns, in order.

    Returns
    -------
    str
    """
    cells = [_column_cells([r.get(c) for r in rows]) for c in columns]
    if any(col is None for col in cells):
        import pandas as pd  # values outside the simple cases: pandas decides

        text = pd.DataFrame(list(rows), columns=list(columns)).to_csv(
            sep="\t", index=False, na_rep="n/a", float_format="%.6g")
        return str(text)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", quotechar='"', quoting=csv.QUOTE_MINIMAL,
                        lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*cells, strict=True) if cells else [[] for _ in rows])
    return buf.getvalue()


def write_tsv_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                   path: str | os.PathLike[str]) -> None:
    """Write a table given as rows atomically, without pandas (:func:`tsv_rows_text`: the
    same text as :func:`write_tsv` of its data frame).

    Parameters
    ----------
    rows : sequence of mapping
    columns : sequence of str
    path : path-like
    """
    text = tsv_rows_text(rows, columns)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write JSON atomically (indent 2, lists of numbers on one line
    (:func:`dce.io._jsontext.dumps`), trailing newline; NaN refused).

    Parameters
    ----------
    obj : JSON-serialisable
    path : path-like
    """
    with atomic_path(path) as tmp:
        tmp.write_text(dumps(obj) + "\n", encoding="utf-8")


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = FIGURE_DPI) -> None:
    """Save a matplotlib figure atomically (the format from the suffix; PNG at ``dpi``,
    :func:`dce.io._atomic.save_figure_atomic`).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : path-like
    dpi : int
        PNG resolution (dpi).
    """
    save_figure_atomic(fig, path, dpi)


def save_figure_formats(fig: Any, paths: Sequence[str | os.PathLike[str]],
                        dpi: int = FIGURE_DPI) -> None:
    """Save a figure in every format of ``paths`` (by suffix) atomically, then close
    (:func:`dce.io._atomic.save_figure_atomic`: PNG at ``dpi``, vector PDF).

    Closing concerns figures made by pyplot only (it keeps them); pyplot is not imported
    for it (about 0.04 s: pyplot loads its styles and chooses a backend), since a figure
    made without pyplot, as :mod:`dce.viz` makes them, is not pyplot's to close."""
    import sys

    try:
        for path in paths:
            save_figure_atomic(fig, path, dpi)
    finally:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close(fig)
