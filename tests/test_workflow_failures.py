"""A cohort with broken sessions still gets its cohort analysis (issue 13 item 7), and the
sheets are checked against the cohort configuration before any job.

Builds on the shared run of the test cohort (``run`` in conftest.py): its per-session
results are copied (times kept, so nothing reruns) into ``results_fail``, two follow-up
sessions of two subjects are broken (a truncated DICOM file; a lesion ROI 500 mm outside
the field of view) and their results removed, and Snakemake is run from the command line
with ``--keep-going`` as a user would. The failed jobs' error records, the cohort analysis
of the other sessions (the onerror handler's second run) and the exit status are checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from wfutil import DEMO, RESULTS, SNAKEFILE, TEST_CONFIG, break_dicom, run_cli, sessions_sheet

from dce.io.nifti import read_nifti, write_nifti

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP via snakemake

OUT = "results_fail"


def _command(work: Path, extra: Mapping[str, Any], *args: str) -> list[str]:
    """``python -m snakemake`` on the test configuration plus ``extra`` (a second
    configuration file) in ``work``."""
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:12]
    cfg = work / f"extra_{digest}.yaml"
    cfg.write_text(yaml.safe_dump(extra), encoding="utf-8")
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(work),
            "--configfile", str(TEST_CONFIG), str(cfg), "--cores", "2", *args]


def _keys(df: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(df["subject"].astype(str), df["session"].astype(str), strict=True))


@dataclass
class Failed:
    """The keep-going run with two broken sessions."""

    work: Path
    sessions: pd.DataFrame
    truncated: tuple[str, str]      # (subject, session) with a truncated DICOM file
    truncated_file: str
    outside: tuple[str, str]        # (subject, session) with the lesion ROI outside
    returncode: int
    output: str
    seconds: float


@pytest.fixture(scope="module")
def failed(run: Path) -> Failed:
    demo = run / DEMO
    sessions = sessions_sheet(run)
    subjects = list(dict.fromkeys(sessions["subject"]))
    fu = sessions[sessions["session"] != "pre"]
    a = fu[fu["subject"] == subjects[0]].iloc[0]
    b = fu[fu["subject"] == subjects[1]].iloc[-1]
    bad = demo / "fail"
    bad.mkdir()
    trunc = break_dicom(demo / a.dicom_dir, bad / "trunc", "truncated")
    img = read_nifti(demo / b.lesion_roi)
    shifted = img.affine.copy()
    shifted[:3, 3] += 500.0
    write_nifti(bad / "outside.nii.gz", img.data, shifted)
    sheet = sessions.copy()
    sheet.loc[a.name, "dicom_dir"] = "fail/trunc"
    sheet.loc[b.name, "lesion_roi"] = "fail/outside.nii.gz"
    sheet.to_csv(demo / "sessions_fail.tsv", sep="\t", index=False)
    # the shared run's per-session results, times kept; the broken sessions' removed
    shutil.copytree(run / RESULTS, run / OUT, copy_function=shutil.copy2,
                    ignore=shutil.ignore_patterns("cohort", "provenance.json", "logs"))
    (run / OUT / "benchmarks" / "summary.tsv").unlink()
    for r in (a, b):
        shutil.rmtree(run / OUT / f"sub-{r.subject}" / f"ses-{r.session}")
    extra = {"demo": {"enabled": False}, "sessions": f"{DEMO.as_posix()}/sessions_fail.tsv",
             "lesions": f"{DEMO.as_posix()}/lesions.tsv", "results": OUT,
             "cohort": {"bootstrap": {"n": 200}}}
    t0 = time.perf_counter()
    done = run_cli(_command(run, extra, "--keep-going"))
    return Failed(work=run, sessions=sessions, truncated=(a.subject, a.session),
                  truncated_file=Path(trunc).name, outside=(b.subject, b.session),
                  returncode=done.returncode, output=done.stdout + done.stderr,
                  seconds=time.perf_counter() - t0)


@pytest.mark.workflow
def test_broken_sessions_are_listed_and_the_others_analysed(failed: Failed) -> None:
    """Exit status non-zero; cohort/exclusions.tsv names each broken session, the failed
    rule and the error (file and problem), and no identifier; every cohort table covers
    exactly the other sessions; ROC, predictions, figures, lesion maps, run provenance
    and benchmark summary exist; no per-session job of the other sessions ran again."""
    work, out = failed.work, failed.work / OUT
    assert failed.returncode != 0, failed.output[-3000:]
    assert "cohort/exclusions.tsv" in failed.output
    excl = pd.read_csv(out / "cohort" / "exclusions.tsv", sep="\t", dtype=str,
                       keep_default_na=False)
    assert list(excl.columns) == ["subject", "session", "rule", "reason"]
    assert _keys(excl) == {failed.truncated, failed.outside}, excl
    rows: dict[tuple[str, str], dict[str, str]] = {
        (str(r["subject"]), str(r["session"])): {str(k): str(v) for k, v in r.items()}
        for r in excl.to_dict("records")}
    trunc = rows[failed.truncated]
    assert trunc["rule"] == "convert"
    assert failed.truncated_file in trunc["reason"]
    assert "cannot decode pixel data" in trunc["reason"]
    outside = rows[failed.outside]
    assert outside["rule"] in ("kinetics", "roi")
    assert "outside.nii.gz" in outside["reason"]
    assert "outside the image field of view" in outside["reason"]
    needles = [n for n in (work / "canaries.txt").read_text().split("\n") if n]
    text = (out / "cohort" / "exclusions.tsv").read_text().lower()
    assert not [n for n in needles if n.lower() in text]
    # every cohort table: the other sessions, all of them
    every = _keys(failed.sessions)
    analysed = every - {failed.truncated, failed.outside}
    cohort = pd.read_csv(out / "cohort" / "cohort.tsv", sep="\t", dtype=str)
    assert _keys(cohort) == analysed
    assert _keys(pd.read_csv(out / "cohort" / "marrow.tsv", sep="\t", dtype=str)) == analysed
    changes = pd.read_csv(out / "cohort" / "changes.tsv", sep="\t", dtype=str)
    assert _keys(changes) == {k for k in analysed if k[1] != "pre"}
    pred = pd.read_csv(out / "cohort" / "predictors.tsv", sep="\t", dtype=str)
    for col in (c for c in pred.columns if c.endswith("__session")):
        used = set(zip(pred["subject"], pred[col].fillna(""), strict=True))
        assert not used & {failed.truncated, failed.outside}, col
    for name in ("roc.tsv", "predictions_lesions.tsv", "prepost_paired.tsv",
                 "tables/summary.md", "figures/tic_types.png"):
        assert (out / "cohort" / name).is_file(), name
    roc = pd.read_csv(out / "cohort" / "roc.tsv", sep="\t")
    assert roc["auc"].notna().any()
    summary = (out / "cohort" / "tables" / "summary.md").read_text()
    assert f"Sessions analysed: {len(analysed)} of {len(every)}" in summary
    maps = sorted(p.name for p in (out / "cohort" / "maps").glob("*.png"))
    assert any(m.startswith(f"sub-{failed.truncated[0]}_") for m in maps)
    record = json.loads((out / "provenance.json").read_text())
    assert _keys(pd.DataFrame(record["sessions"])) == analysed
    bench = pd.read_csv(out / "benchmarks" / "summary.tsv", sep="\t", dtype=str)
    assert _keys(bench) == analysed
    ran = {(p.parent.parent.name[4:], p.parent.name[4:])
           for p in (out / "logs").glob("sub-*/ses-*/*.log")}
    assert ran == {failed.truncated, failed.outside}


@pytest.mark.workflow
def test_report_lists_the_excluded_sessions(failed: Failed) -> None:
    """The HTML report of the analysed sessions (the command the run prints) carries the
    exclusions table with its caption counting the sessions."""
    work = failed.work
    extra = {"demo": {"enabled": False}, "sessions": f"{DEMO.as_posix()}/sessions_fail.tsv",
             "lesions": f"{DEMO.as_posix()}/lesions.tsv", "results": OUT,
             "cohort": {"bootstrap": {"n": 200}}}
    report = work / "report_fail.html"
    assert "DCE_COHORT_COMPLETED_ONLY=1 snakemake --report" in failed.output
    os.environ["DCE_COHORT_COMPLETED_ONLY"] = "1"
    try:
        done = run_cli(_command(work, extra, "--report", str(report)))
    finally:
        del os.environ["DCE_COHORT_COMPLETED_ONLY"]
    assert done.returncode == 0, done.stderr[-3000:]
    html = report.read_text(encoding="utf-8")
    n = len(failed.sessions)
    assert "exclusions.tsv" in html
    assert f"{n - 2}\\nof {n} sessions analysed" in html or f"{n - 2} of {n} sessions" in html


@pytest.mark.workflow
def test_a_complete_run_has_an_empty_exclusions_table(run: Path) -> None:
    out = run / RESULTS / "cohort"
    assert (out / "exclusions.tsv").read_text() == "subject\tsession\trule\treason\n"
    assert "Sessions analysed" not in (out / "tables" / "summary.md").read_text()
    assert not list((run / RESULTS / "logs").rglob("*.error.json"))


@pytest.mark.workflow
@pytest.mark.parametrize("cohort, words", [
    ({"baseline_session": "base0"}, ["cohort.baseline_session is 'base0'",
                                     "sessions.tsv", "or to null"]),
    ({"endpoints": [{"name": "progression"}]},
     ["cohort.endpoints: no column 'progression' in", "lesions.tsv"]),
    ("missing files", ["sessions_missing.tsv: 2 path(s) do not exist", "lesion_roi",
                       "nowhere/roi.nii.gz", "dicom_dir", "nowhere/dicom"]),
])
def test_sheet_config_mismatch_fails_before_any_job(run: Path, cohort: Any,
                                                    words: list[str]) -> None:
    """A baseline session no session has, an endpoint column the lesion sheet lacks, or
    files the session sheet names that do not exist, stop the run in seconds with the key,
    the sheet and what exists; no job ran."""
    sessions = sessions_sheet(run)
    names = sorted(set(sessions["session"]))
    sheet = "sessions.tsv"
    if cohort == "missing files":
        sessions.loc[1, "lesion_roi"] = "nowhere/roi.nii.gz"
        sessions.loc[3, "dicom_dir"] = "nowhere/dicom"
        sheet = "sessions_missing.tsv"
        sessions.to_csv(run / DEMO / sheet, sep="\t", index=False)
        cohort = {}
    extra = {"demo": {"enabled": False}, "sessions": f"{DEMO.as_posix()}/{sheet}",
             "lesions": f"{DEMO.as_posix()}/lesions.tsv", "results": "results_mismatch",
             "cohort": cohort}
    t0 = time.perf_counter()
    done = run_cli(_command(run, extra))
    seconds = time.perf_counter() - t0
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert all(w in text for w in words), text[-3000:]
    if "baseline_session" in cohort:
        assert f"(sessions: {', '.join(names)})" in text
    assert "nothing was run" in text
    assert not (run / "results_mismatch").exists()
    assert seconds < 60, seconds
