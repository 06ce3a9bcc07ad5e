"""Study presets (config/studies/*.yaml): each is a valid configuration over
config/config.yaml whose cross-references hold, names its source, and maps onto ROI
statistics the pipeline writes. Their run on the demo cohort is in tests/test_cohort.py
(test_workflow_study_preset, on the shared per-session results of its demo run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.utils import update_config, validate

from dce.cohort import config as cc

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
PRESETS = sorted((REPO / "config" / "studies").glob("*.yaml"))

#: The analyses of issue 15 (the seed review's studies), by preset.
EXPECTED = {"kumar_recurrence", "lis_hdigrt", "chu_tic", "chen_ktrans_pd", "santos_chordoma",
            "morales_hemangioma", "arevalo_fracture", "lang_myeloma", "verma_tuberculosis",
            "meng_saha_vascularity", "liu_disc"}


def merged(preset: Path) -> dict[str, Any]:
    """config/config.yaml with the preset merged over it (as ``--configfile`` does)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load(preset.read_text()))
    validate(cfg, str(SCHEMA))
    return cfg


def test_every_study_of_the_issue_has_a_preset() -> None:
    assert {p.stem for p in PRESETS} == EXPECTED


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_is_valid_and_documented(preset: Path) -> None:
    cfg = cc.parse_config(merged(preset)["cohort"])
    assert cfg.study is not None and cfg.study.name == preset.stem
    assert cfg.study.source and cfg.study.notes and cfg.study.title
    for r in cfg.rules:        # a preset's fixed cut-offs are published ones
        assert r.source and r.published, r.name
    names = {p.name for p in cfg.predictors}
    assert set(cfg.figures["roc"]) <= names
    if cfg.study.design == "diagnostic":
        assert all(p.kind == "value" for p in cfg.predictors)
        assert all(e.column for e in cfg.endpoints)


def test_verma_cutoff_is_the_published_one() -> None:
    cfg = cc.parse_config(merged(REPO / "config" / "studies" / "verma_tuberculosis.yaml")
                          ["cohort"])
    (rule,) = cfg.rules
    assert (rule.predictor, rule.direction, rule.threshold, rule.strict) == \
        ("kep", "higher", 1.17, False)
    assert cfg.predictor("kep").parameter == "kep_per_min_mean"
