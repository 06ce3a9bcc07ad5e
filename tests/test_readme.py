"""The README as a user guide: its example sheets are valid inputs, its opening is the two
set-up commands, the documents and figure it names exist. No Snakemake run.

The example sheets go through what the workflow does before any job (workflow/rules/
common.smk): the sheet reader, the JSON schemas (Snakemake's validate, as the rules call
it), one image source per session, and the check against the analysis plan of
config/config.yaml.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from dce.cohort.config import parse_config
from dce.cohort.sessions import check_sheets
from dce.io.nifti_input import image_source
from dce.io.tables import read_sheets

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SCHEMAS = REPO / "workflow" / "schemas"


def example(name: str) -> str:
    """The code block after ``<!-- example: <name> ... -->`` (tabs kept)."""
    m = re.search(rf"<!-- example: {re.escape(name)}[^>]*-->\s*```tsv\n(.*?)```", README,
                  re.DOTALL)
    assert m, f"README has no example {name}"
    return m.group(1)


def study_config() -> dict[str, Any]:
    """config/config.yaml over the schema defaults (as the workflow validates it)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    validate(cfg, str(SCHEMAS / "config.schema.yaml"))
    return cfg


def test_opening_is_the_two_setup_commands() -> None:
    first = re.search(r"```bash\n(.*?)```", README, re.DOTALL)
    assert first is not None and README.index(first.group(0)) < README.index("\n## ")
    commands = [ln.split("#")[0].strip() for ln in first.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_example_sheets_are_valid(tmp_path: Path) -> None:
    (tmp_path / "sessions.tsv").write_text(example("sessions.tsv"), encoding="utf-8")
    (tmp_path / "lesions.tsv").write_text(example("lesions.tsv"), encoding="utf-8")
    # the tab-separated layout survived (an editor turning tabs to spaces breaks it)
    assert all("\t" in ln for ln in example("sessions.tsv").splitlines())

    def check(df: pd.DataFrame, kind: str, path: Any) -> None:
        validate(df, str(SCHEMAS / f"{kind}.schema.yaml"))

    sessions, lesions = read_sheets(tmp_path / "sessions.tsv", tmp_path / "lesions.tsv",
                                    validate=check, path_columns=("dicom_dir", "lesion_roi"))
    assert len(sessions) == 5 and len(lesions) == 3
    for row in sessions.to_dict("records"):
        assert image_source({str(k): v for k, v in row.items()}).kind == "dicom"
    assert sessions["hematocrit"].isna().sum() == 3       # empty: the configured value
    cohort = parse_config(study_config()["cohort"])
    check_sheets(cohort, sessions, lesions)


def test_example_sheets_errors_are_caught(tmp_path: Path) -> None:
    """The check above is not vacuous: the same sheets with a bad ID fail it."""
    bad = example("sessions.tsv").replace("S02\tfu2", "S02\tfu 2")
    (tmp_path / "sessions.tsv").write_text(bad, encoding="utf-8")
    (tmp_path / "lesions.tsv").write_text(example("lesions.tsv"), encoding="utf-8")

    def check(df: pd.DataFrame, kind: str, path: Any) -> None:
        validate(df, str(SCHEMAS / f"{kind}.schema.yaml"))

    with pytest.raises(Exception, match="does not match"):
        read_sheets(tmp_path / "sessions.tsv", tmp_path / "lesions.tsv", validate=check)


def test_named_documents_and_figure_exist() -> None:
    for doc in sorted(set(re.findall(r"docs/[\w.-]+\.(?:md|png)", README))):
        assert (REPO / doc).is_file(), doc
    for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        path = REPO / img
        assert path.is_file() and path.stat().st_size < 200_000, img
