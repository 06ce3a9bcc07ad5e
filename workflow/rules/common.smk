# Helpers shared by the rules: config validation, the session and lesion sheets
# (read by dce.io.tables), output naming and wildcard constraints. The dce package is a
# dependency of the workflow (`pip install` of the repository brings Snakemake), so its
# import-light public API (sheet reader, output registry) is used at parse time.

import functools
import os

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from dce.io.tables import SheetError, read_sheets
from dce.registry import FIT_STATUS_MAP, fit_map_names, roi_map_names, semiquant_map_names

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["results"].rstrip("/")
DEMO = config["demo"]["enabled"]
SESSIONS_SCHEMA = workflow.source_path("../schemas/sessions.schema.yaml")
LESIONS_SCHEMA = workflow.source_path("../schemas/lesions.schema.yaml")

SES = f"{RESULTS}/sub-{{subject}}/ses-{{session}}/sub-{{subject}}_ses-{{session}}"
LOG = f"{RESULTS}/logs/sub-{{subject}}/ses-{{session}}/{{rule}}.log"
BENCH = f"{RESULTS}/benchmarks/sub-{{subject}}/ses-{{session}}/{{rule}}.tsv"
WARMUP = f"{RESULTS}/benchmarks/numba_warmup.json"

# parameter maps written by the rules fit and semiquant ("what" in the file names), from
# the package's registry of outputs
FIT_MAPS = fit_map_names()
SEMIQUANT_MAPS = semiquant_map_names(config["semiquant"]["iauc_windows_s"])


wildcard_constraints:
    subject="[A-Za-z0-9]+",
    session="[A-Za-z0-9]+",


def ses(what, ext):
    """Per-session output path pattern sub-<s>_ses-<t>_<what>.<ext>."""
    return f"{SES}_{what}.{ext}"


def ses_log(rule):
    return LOG.replace("{rule}", rule)


def ses_bench(rule):
    return BENCH.replace("{rule}", rule)


def map_outputs(names):
    return {name: ses(name, "nii.gz") for name in names}


# ----------------------------------------------------------------------------- sheets


def _validate_sheet(df, kind, path):
    schema = SESSIONS_SCHEMA if kind == "sessions" else LESIONS_SCHEMA
    try:
        validate(df, schema=schema)
    except WorkflowError as exc:
        raise WorkflowError(
            f"{path}: does not match workflow/schemas/{os.path.basename(schema)} (rows are "
            f"counted from 0 after the header): {exc}",
        ) from None


@functools.lru_cache(maxsize=4)
def _load_sheets(sessions_path, lesions_path, _mtimes):
    path_columns = ("dicom_dir", "lesion_roi", "marrow_roi", config["aif"]["mask_column"])
    try:
        return read_sheets(
            sessions_path,
            lesions_path,
            path_columns=path_columns,
            validate=_validate_sheet,
        )
    except SheetError as exc:
        raise WorkflowError(str(exc)) from None


def sheets():
    """(sessions, lesions) data frames, validated; paths resolved against the sheet."""
    if DEMO:
        checkpoints.demo_cohort.get()
    paths = (config["sessions"], config["lesions"])
    mtimes = tuple(os.path.getmtime(p) if os.path.exists(p) else None for p in paths)
    return _load_sheets(*paths, mtimes)


def session_row(wildcards):
    sessions, _ = sheets()
    try:
        return sessions.loc[(wildcards.subject, wildcards.session)]
    except KeyError:
        raise WorkflowError(
            f"{config['sessions']}: no session {wildcards.subject}/{wildcards.session}"
        ) from None


def session_hematocrit(wildcards):
    """Param function: the session's ``hematocrit`` (sessions.tsv, optional column, e.g.
    a blood count) or ``acquisition.hematocrit``."""
    row = session_row(wildcards)
    value = row["hematocrit"] if "hematocrit" in row.index else None
    if value is None or pd.isna(value):
        return float(config["acquisition"]["hematocrit"])
    return float(value)


def lesion_rows(subject):
    _, lesions = sheets()
    return lesions[lesions["subject"] == subject]


def session_path(column):
    """Input function: a path column of the session's row."""

    def _get(wildcards):
        return session_row(wildcards)[column]

    return _get


def optional_session_path(column):
    """Input function: a path column that may be empty or absent (-> no input)."""

    def _get(wildcards):
        row = session_row(wildcards)
        value = row[column] if column in row.index else ""
        return [value] if value else []

    return _get


def expected_lesions(wildcards):
    rows = lesion_rows(wildcards.subject)
    return {
        "labels": [int(v) for v in rows["lesion"]],
        "levels": [str(v) for v in rows["level"]] if "level" in rows else [],
        "sheet": config["lesions"],
    }


def session_outputs(subject, session):
    """Every per-session product of the workflow."""
    wc = {"subject": subject, "session": session}
    paths = [
        ses("dce", "nii.gz"),
        ses("T1map", "nii.gz"),
        ses("conc", "nii.gz"),
        ses("aif", "tsv"),
        ses("aif", "png"),
        ses("roi", "tsv"),
        ses("tic", "tsv"),
        ses("tic", "png"),
        ses("maps", "png"),
        ses("provenance", "json"),
    ]
    paths += list(map_outputs(FIT_MAPS).values())
    paths += list(map_outputs(SEMIQUANT_MAPS).values())
    return [p.format(**wc) for p in paths]


def all_session_keys():
    sessions, _ = sheets()
    return list(zip(sessions["subject"], sessions["session"]))


def all_outputs(wildcards):
    out = []
    for subject, session in all_session_keys():
        out += session_outputs(subject, session)
    out.append(f"{RESULTS}/benchmarks/summary.tsv")
    out.append(f"{RESULTS}/provenance.json")
    out.append(f"{RESULTS}/dataset_description.json")
    out.append(f"{RESULTS}/.bidsignore")
    return out


def all_benchmarks(wildcards):
    rules_ = ["convert", "t1map", "concentration", "aif", "fit", "semiquant", "roi"]
    return [
        ses_bench(r).format(subject=s, session=t) for s, t in all_session_keys() for r in rules_
    ]
