"""Shared fixtures: one real run of the workflow on the test cohort (config/test), with
canary identifiers planted in its DICOM, and its HTML report."""

from __future__ import annotations

from pathlib import Path

import pytest
from wfutil import prepare_cohort, report_command, run_cli, snakemake


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Work directory of the test cohort processed by the workflow (one real run), with
    ``report.html`` and ``canaries.txt`` (the identifiers planted in the input DICOM)."""
    work = tmp_path_factory.mktemp("wf")
    needles = prepare_cohort(work)
    (work / "canaries.txt").write_text("\n".join(needles) + "\n", encoding="utf-8")
    snakemake(work)
    done = run_cli(report_command(work, work / "report.html"))
    assert done.returncode == 0, done.stderr[-3000:]
    return work
