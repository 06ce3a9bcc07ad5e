"""One source of defaults: workflow/schemas/config.schema.yaml.

config/README.md's parameter tables are generated from the schema (tools/config_docs.py),
config/config.yaml holds the study and overrides only, the test configuration in .test/
is valid. No Snakemake run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

_spec = importlib.util.spec_from_file_location("config_docs", REPO / "tools" / "config_docs.py")
assert _spec is not None and _spec.loader is not None
config_docs = importlib.util.module_from_spec(_spec)
sys.modules["config_docs"] = config_docs
_spec.loader.exec_module(config_docs)

#: Keys of config/config.yaml that describe the study (inputs, the demo cohort, the cohort
#: analysis plan): they may restate a schema default. Every other key there must override.
STUDY_KEYS = ("sessions", "lesions", "results", "demo.", "cohort.baseline_session",
              "cohort.endpoints", "cohort.predictors", "cohort.rules", "cohort.cv_cutoff",
              "cohort.logistic", "cohort.delong", "cohort.prepost_parameters",
              "cohort.figures.")


def _leaves(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _defaults() -> dict[str, Any]:
    cfg: dict[str, Any] = {"sessions": "s.tsv", "lesions": "l.tsv"}
    validate(cfg, str(SCHEMA))
    return cfg


def test_readme_tables_are_generated_from_the_schema() -> None:
    text = (REPO / "config" / "README.md").read_text(encoding="utf-8")
    assert config_docs.render_readme(text, config_docs.load_schema()) == text, (
        "config/README.md is out of date: run python tools/config_docs.py")


def test_every_schema_key_is_documented_with_its_default() -> None:
    schema = config_docs.load_schema()
    text = (REPO / "config" / "README.md").read_text(encoding="utf-8")
    sections = ["inputs"] + [k for k, v in schema["properties"].items()
                             if v.get("type") == "object"]
    assert config_docs.documented_sections(text) == sections
    documented = {}
    for section in sections:
        for key, default, meaning in config_docs.section_rows(schema, section):
            assert meaning, f"{section} {key}: no description in the schema"
            assert default, f"{section} {key}: no default in the schema"
            assert f"| `{key}` | {default} | " in text, f"{section} {key}: not in the README"
            documented[key if section == "inputs" else f"{section}.{key}"] = default
    assert set(documented) == set(_leaves(_defaults()))


def test_config_yaml_holds_the_study_and_overrides_only() -> None:
    """Defaults are not copied into config/config.yaml: a key there restates its schema
    default only if it describes the study (inputs, demo cohort, cohort analysis plan)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    filled = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(filled, str(SCHEMA))
    defaults = _leaves(_defaults())
    for key, value in _leaves(cfg).items():
        if key.startswith(STUDY_KEYS):
            continue
        assert value != defaults.get(key), f"config/config.yaml restates the default of {key}"
    assert filled["demo"]["enabled"] is True       # the demo is the repository's study


@pytest.mark.parametrize("path", [".test/config/config.yaml", "config/scale/config.yaml"])
def test_overlay_configs_are_valid(path: str) -> None:
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    overlay = yaml.safe_load((REPO / path).read_text())
    merged = {**base, **overlay}
    validate(merged, str(SCHEMA))
    assert merged["demo"]["enabled"] is True
