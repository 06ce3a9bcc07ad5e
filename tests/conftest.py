"""Shared fixtures: one real run of the workflow on the test cohort (.test/config), with
canary identifiers planted in its DICOM, and its HTML report.

Two layers (marker registered in pyproject.toml): ``pytest -m "not workflow"`` is the unit
layer; every test running Snakemake is marked ``workflow``. The hooks below enforce it: a
test using the ``run`` fixture, or calling the Snakemake helpers of ``wfutil``, without the
marker is an error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import wfutil
from wfutil import add_b1_map, prepare_cohort, report_command, run_cli, snakemake


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items
                if "run" in getattr(item, "fixturenames", ())
                and item.get_closest_marker("workflow") is None]
    if unmarked:
        raise pytest.UsageError("tests using the shared workflow run must be marked "
                                f"@pytest.mark.workflow: {unmarked}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture of ``item`` is set up: may it (and its fixtures) run Snakemake?"""
    wfutil.WORKFLOW_ALLOWED = item.get_closest_marker("workflow") is not None


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Work directory of the test cohort processed by the workflow (one real run), with
    ``report.html`` and ``canaries.txt`` (the identifiers planted in the input DICOM); its
    first session has a sheet ``b1_map`` (wfutil.add_b1_map)."""
    work = tmp_path_factory.mktemp("wf")
    needles = prepare_cohort(work)
    add_b1_map(work)
    (work / "canaries.txt").write_text("\n".join(needles) + "\n", encoding="utf-8")
    snakemake(work)
    done = run_cli(report_command(work, work / "report.html"))
    assert done.returncode == 0, done.stderr[-3000:]
    return work
