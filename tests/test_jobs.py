"""Tests for dce.io.jobs: the rule scripts' job context and writers, with a stand-in for
the ``snakemake`` object (no Snakemake involved)."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dce import _threads
from dce.io.jobs import (
    PROCESS_CPU_PREFIX,
    error_record_path,
    job,
    job_label,
    read_error_records,
    save_figure,
    tsv_rows_text,
    write_json,
    write_tsv,
    write_tsv_columns,
    write_tsv_rows,
)
from dce.io.nifti import write_nifti, write_sidecar


class Wildcards(SimpleNamespace):
    """Attribute access plus ``keys()``, like Snakemake's wildcards."""

    def keys(self) -> list[str]:
        return list(vars(self))


def _sm(tmp: Path, outputs: list[str], rule: str = "aif", **wildcards: str) -> Any:
    return SimpleNamespace(wildcards=Wildcards(**wildcards), rule=rule, threads=1,
                           log=[str(tmp / "logs" / f"{rule}.log")],
                           output=[str(tmp / o) for o in outputs])


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """job() reconfigures the root logger, warnings capture, thread variables and the fit
    kernels' thread count of the process: restore them after each test."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    n_threads = _threads._n_threads
    with warnings.catch_warnings():
        yield
    for h in root.handlers:
        if h not in handlers:
            h.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    _threads.set_num_threads(n_threads)


def test_label_names_subject_session_and_rule(tmp_path: Path) -> None:
    assert job_label(_sm(tmp_path, [], subject="01", session="pre")) == \
        "sub-01 ses-pre rule aif"
    assert job_label(_sm(tmp_path, [], rule="cohort_table")) == "rule cohort_table"


def test_job_logs_to_the_log_file_and_captures_warnings(tmp_path: Path) -> None:
    sm = _sm(tmp_path, ["a.tsv"], subject="01", session="pre")
    with job(sm) as log:
        log.info("hello %d", 42)
        logging.getLogger("dce.somewhere").warning("library says %s", "careful")
        warnings.warn("numbers look odd", UserWarning, stacklevel=1)
        Path(sm.output[0]).write_text("x\n")
        t0 = time.process_time()
        while time.process_time() - t0 < 0.1:     # burn some CPU
            pass
        burnt = time.process_time() - t0
    text = Path(sm.log[0]).read_text()
    assert "sub-01 ses-pre rule aif: start (1 thread(s))" in text
    assert _threads.get_num_threads() == 1   # the fit kernels use the job's threads
    assert "INFO hello 42" in text and "WARNING library says careful" in text
    assert "UserWarning: numbers look odd" in text
    assert "sub-01 ses-pre rule aif: done in" in text
    # the process CPU so far (start-up included): at least the CPU burnt in the body
    cpu = float(text.split(f"({PROCESS_CPU_PREFIX} ")[1].split(" s)")[0])
    assert cpu >= burnt > 0.05
    assert Path(sm.output[0]).is_file()


def test_job_error_removes_partial_outputs_and_names_the_job(tmp_path: Path) -> None:
    sm = _sm(tmp_path, ["x_dce.nii.gz", "x_aif.tsv", "never_written.json"],
             subject="07", session="post")
    sidecar = tmp_path / "x_dce.json"
    unrelated = tmp_path / "keep.txt"
    unrelated.write_text("not an output\n")
    with pytest.raises(RuntimeError) as info, job(sm):
        for name in ("x_dce.nii.gz", "x_aif.tsv"):
            (tmp_path / name).write_text("partial")
        sidecar.write_text("{}")
        raise ValueError("x_dce.nii.gz: sidecar lacks 'FlipAngle'")
    msg = str(info.value)
    assert msg == ("sub-07 ses-post rule aif: ValueError: x_dce.nii.gz: sidecar lacks "
                   "'FlipAngle'")
    assert isinstance(info.value.__cause__, ValueError)
    assert not (tmp_path / "x_dce.nii.gz").exists() and not (tmp_path / "x_aif.tsv").exists()
    assert not sidecar.exists()  # the NIfTI output's sidecar goes too
    assert unrelated.is_file()
    text = Path(sm.log[0]).read_text()
    assert "ERROR sub-07 ses-post rule aif: failed: x_dce.nii.gz" in text
    assert "Traceback" in text


def test_job_error_removes_extra_outputs_with_their_sidecars(tmp_path: Path) -> None:
    """``extra_outputs``: files the job writes besides its declared outputs (here the
    sidecar of an image held in memory) are removed on an error like the outputs."""
    sm = _sm(tmp_path, ["x_T1map.nii.gz"], subject="07", session="post")
    image = tmp_path / "x_conc.nii"
    with pytest.raises(RuntimeError), job(sm, extra_outputs=[image]):
        write_sidecar(image, {"Units": "mM"})
        assert (tmp_path / "x_conc.json").is_file() and not image.exists()
        raise ValueError("too few voxels")
    assert not (tmp_path / "x_conc.json").exists()


def test_sidecar_alone_is_the_sidecar_write_nifti_writes(tmp_path: Path) -> None:
    side = {"Units": "mM", "VolumeTiming": [0.0, 2.5, 5.0], "FlipAngle": np.float64(12.0),
            "Counts": {"ok": np.int64(3)}}
    write_nifti(tmp_path / "a" / "x_conc.nii", np.zeros((2, 2, 1, 3), np.float32),
                np.eye(4), side)
    assert write_sidecar(tmp_path / "b" / "x_conc.nii", side) == tmp_path / "b" / "x_conc.json"
    assert not (tmp_path / "b" / "x_conc.nii").exists()
    assert (tmp_path / "b" / "x_conc.json").read_bytes() == \
        (tmp_path / "a" / "x_conc.json").read_bytes()
    with pytest.raises(ValueError, match="NaN"):
        write_sidecar(tmp_path / "c.nii", {"x": float("nan")})
    with pytest.raises(ValueError):
        write_sidecar(tmp_path / "c.nii", {"PatientName": "X"})
    assert not list(tmp_path.glob("c*"))


def test_float_columns_give_the_text_of_the_data_frame_writer(tmp_path: Path) -> None:
    """write_tsv_columns (no pandas) writes the bytes write_tsv writes for the same data
    frame: %.6g floats, n/a for NaN, -0, inf, integers stored as floats."""
    cols = {"t_s": np.arange(5) * 2.5, "cb_mM": [0.0, -0.0, 1.23456789e-7, 6.5e5, np.nan],
            "x": [np.inf, -np.inf, 1e16, 123456.5, 7.0]}
    write_tsv(pd.DataFrame(cols), tmp_path / "pandas.tsv")
    write_tsv_columns(cols, tmp_path / "plain.tsv")
    assert (tmp_path / "plain.tsv").read_bytes() == (tmp_path / "pandas.tsv").read_bytes()
    with pytest.raises(ValueError, match="one length"):
        write_tsv_columns({"a": [1.0], "b": [1.0, 2.0]}, tmp_path / "bad.tsv")


#: Rows whose columns cover each dtype pandas infers from Python and numpy scalars.
TRICKY_ROWS: list[dict[str, Any]] = [
    {"int": 1, "big": 123456789, "float": 0.1, "ints_nan": 3, "bool": True, "str": "a\tb",
     "str_none": None, "mixed": 1.0, "none": None, "np": np.float64(1e-7),
     "npint": np.int64(7), "npbool": np.bool_(False), "neg0": -0.0, "f32": np.float32(0.1)},
    {"int": -2, "big": 10**15, "float": float("nan"), "ints_nan": None, "bool": False,
     "str": 'quote "x"', "str_none": "line\nbreak", "mixed": "s", "none": None,
     "np": np.nan, "npint": np.int64(-1), "npbool": np.bool_(True), "neg0": float("inf"),
     "f32": np.float32(-3.5)},
    {"int": 0, "big": 5, "float": 1e16, "ints_nan": 1234567, "bool": True, "str": "",
     "str_none": float("nan"), "mixed": True, "none": None, "np": np.float64(-2.5e-300),
     "npint": np.int64(0), "npbool": np.bool_(True), "neg0": 123456.5,
     "f32": np.float32(1e-8)},
]


def test_row_table_gives_the_text_of_the_data_frame_writer(tmp_path: Path) -> None:
    """tsv_rows_text / write_tsv_rows (no pandas) write the bytes write_tsv writes for
    pandas.DataFrame(rows): int, float (%.6g, n/a, -0, inf, ints with a None become
    floats), bool, string (quoted when holding a tab, quote or line break), mixed object
    columns, all-missing columns, numpy scalars; missing keys; no rows."""
    cols = list(TRICKY_ROWS[0])
    for rows, columns in [(TRICKY_ROWS, cols), (TRICKY_ROWS[:1], cols),
                          (TRICKY_ROWS[1:], [*cols[::-1], "absent"]), ([], ["a", "b"])]:
        write_tsv(pd.DataFrame(rows, columns=columns), tmp_path / "pandas.tsv")
        write_tsv_rows(rows, columns, tmp_path / "plain.tsv")
        assert (tmp_path / "plain.tsv").read_bytes() == (tmp_path / "pandas.tsv").read_bytes()
    # a value outside the simple cases (a date) is left to pandas: the same text
    odd = [{"d": np.datetime64("2020-01-02"), "x": 1}]
    assert tsv_rows_text(odd, ["d", "x"]) == pd.DataFrame(odd).to_csv(
        sep="\t", index=False, na_rep="n/a", float_format="%.6g")


def test_failed_job_leaves_an_error_record_until_it_succeeds(tmp_path: Path) -> None:
    """A failure writes logs/<rule>.error.json (subject, session, rule, message on one
    line); the next start of the job removes it; a job without session wildcards gets
    None there; the reader sorts by subject, session, rule and skips vanished files."""
    sm = _sm(tmp_path, ["o.tsv"], rule="convert", subject="03", session="fu2")
    record = tmp_path / "logs" / "convert.error.json"
    assert error_record_path(sm.log[0]) == record
    with pytest.raises(RuntimeError), job(sm):
        raise OSError("dicom/fu2/IM7: cannot decode pixel data\n  (file truncated)")
    assert json.loads(record.read_text()) == {
        "subject": "03", "session": "fu2", "rule": "convert",
        "error": "OSError: dicom/fu2/IM7: cannot decode pixel data (file truncated)"}
    cohort = _sm(tmp_path, [], rule="cohort_table")
    with pytest.raises(RuntimeError), job(cohort):
        raise ValueError("no ROI table")
    other = _sm(tmp_path / "b", [], rule="aif", subject="01", session="pre")
    with pytest.raises(RuntimeError), job(other):
        raise ValueError("ROI outside the image field of view")
    paths = [record, tmp_path / "logs" / "cohort_table.error.json",
             tmp_path / "b" / "logs" / "aif.error.json", tmp_path / "gone.error.json"]
    recs = read_error_records(paths)
    assert [(r["subject"], r["session"], r["rule"]) for r in recs] == [
        ("01", "pre", "aif"), ("03", "fu2", "convert"), (None, None, "cohort_table")]
    with job(sm):                      # the rerun succeeds: the record is gone
        Path(sm.output[0]).write_text("ok\n")
    assert not record.exists()


def test_write_tsv_missing_values_and_precision(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.tsv"
    write_tsv(pd.DataFrame({"a": [1.0 / 3.0, math.nan], "b": ["x", "y"]}), path)
    assert path.read_text() == "a\tb\n0.333333\tx\nn/a\ty\n"
    assert [p.name for p in path.parent.iterdir()] == ["t.tsv"]  # no temporary left


def test_write_json_refuses_nan_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    obj = {"b": 1, "a": [0.5, None], "v": [[1, 2], [3, 4]], "d": [{"x": 1}]}
    write_json(obj, path)
    assert path.read_text() == ('{\n  "b": 1,\n  "a": [0.5, null],\n  "v": [\n    [1, 2],\n'
                                '    [3, 4]\n  ],\n  "d": [\n    {\n      "x": 1\n    }\n  ]\n}\n')
    assert json.loads(path.read_text()) == obj
    bad = tmp_path / "bad.json"
    with pytest.raises(ValueError):
        write_json({"x": float("nan")}, bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.json"]


def test_save_figure_writes_a_png(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot(np.arange(3))
    path = tmp_path / "f.png"
    save_figure(fig, path)
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_job_removes_temporaries_left_by_a_killed_attempt(tmp_path: Path) -> None:
    """A killed job (SIGKILL mid-write) leaves its writers' hidden temporary files; the
    next attempt removes those of its own outputs (and their sidecars), nothing else."""
    sm = _sm(tmp_path, ["ses/sub-01_ses-pre_B1map.nii.gz", "ses/sub-01_ses-pre_aif.png"],
             subject="01", session="pre")
    ses = tmp_path / "ses"
    ses.mkdir()
    stale = [ses / ".sub-01_ses-pre_B1map.nii.gz.28841.c589aef71d60.tmp.nii.gz",
             ses / ".sub-01_ses-pre_B1map.json.28841.0123456789ab.tmp.json",
             ses / ".sub-01_ses-pre_aif.png.28841.89abcdef.tmp.png"]
    keep = [ses / ".sub-01_ses-pre_T1map.nii.gz.28841.c589aef71d60.tmp.nii.gz",
            ses / "sub-01_ses-pre_B1map.nii.gz.notes.txt"]
    for p in stale + keep:
        p.write_bytes(b"partial")
    with job(sm):
        assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep)
    text = Path(sm.log[0]).read_text(encoding="utf-8")
    assert text.count("a temporary file left by an interrupted earlier run") == 3


#: Heavy packages a rule job must not import because it does not use them (its script's
#: top-level imports, the Snakemake preamble aside): tables without pandas, figures only
#: where one is drawn.
LEAN_JOBS = {
    "convert": ("pandas", "matplotlib"),
    "kinetics": ("pandas", "matplotlib"),
    "register": ("pandas", "matplotlib"),
    "prm": ("pandas",),
    "provenance": ("pandas", "matplotlib", "numpy", "scipy", "nibabel"),
}


@pytest.mark.parametrize("rule", LEAN_JOBS)
def test_rule_scripts_import_only_what_they_use(rule: str) -> None:
    """The top-level imports of workflow/scripts/<rule>.py, run in a fresh interpreter,
    leave the packages of :data:`LEAN_JOBS` unloaded."""
    repo = Path(__file__).resolve().parents[1]
    script = repo / "workflow" / "scripts" / f"{rule}.py"
    code = (
        "import ast, sys\n"
        f"tree = ast.parse(open({str(script)!r}).read())\n"
        "body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]\n"
        "exec(compile(ast.Module(body=body, type_ignores=[]), 'imports', 'exec'), {})\n"
        f"print(sorted(m for m in {LEAN_JOBS[rule]!r} if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo)}, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"{rule} imports {done.stdout.strip()}"
