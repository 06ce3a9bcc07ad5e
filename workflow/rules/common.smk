# Helpers shared by the rules: config validation, the session and lesion sheets,
# output naming and wildcard constraints.

import functools
import os
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["results"].rstrip("/")
DEMO = config["demo"]["enabled"]
SESSIONS_SCHEMA = workflow.source_path("../schemas/sessions.schema.yaml")
LESIONS_SCHEMA = workflow.source_path("../schemas/lesions.schema.yaml")

SES = f"{RESULTS}/sub-{{subject}}/ses-{{session}}/sub-{{subject}}_ses-{{session}}"
LOG = f"{RESULTS}/logs/sub-{{subject}}/ses-{{session}}/{{rule}}.log"
BENCH = f"{RESULTS}/benchmarks/sub-{{subject}}/ses-{{session}}/{{rule}}.tsv"
WARMUP = f"{RESULTS}/benchmarks/numba_warmup.json"

# parameter maps written by the rules fit and semiquant ("what" in the file names)
FIT_MAPS = ["ktrans", "kep", "ve", "vp", "r2", "rmse", "delay", "fitstatus"]
SEMIQUANT_MAPS = ["peakenh", "ttp", "washin", "maxslope", "washout", "tictype"] + [
    f"iauc{w}" for w in config["semiquant"]["iauc_windows_s"]
]


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


def _sheet_error(path, msg):
    return WorkflowError(f"{path}: {msg}")


def _read_sheet(path):
    if not os.path.exists(path):
        raise _sheet_error(path, "sheet not found (config: sessions/lesions)")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - report any parse error with the file name
        raise _sheet_error(path, f"cannot read as a tab-separated table ({exc})") from None
    df.columns = [c.strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())


def _numeric(df, col, path, integer=False, required=True):
    if col not in df.columns:
        return
    raw = df[col]
    empty = raw == ""
    num = pd.to_numeric(raw.where(~empty), errors="coerce")
    bad = num.isna() & ~empty
    if bad.any() or (required and empty.any()):
        row = int((bad | (empty if required else False)).to_numpy().nonzero()[0][0])
        raise _sheet_error(
            path,
            f"row {row + 2}: column {col!r} must be a number, got {raw.iloc[row]!r}",
        )
    if integer:
        whole = num.dropna() == num.dropna().round()
        if not whole.all():
            raise _sheet_error(path, f"column {col!r} must hold whole numbers")
        df[col] = num.astype("Int64")
    else:
        df[col] = num


def _validate_sheet(df, schema, path):
    try:
        validate(df, schema=schema)
    except WorkflowError as exc:
        raise _sheet_error(
            path,
            f"does not match workflow/schemas/{os.path.basename(schema)} (rows are "
            f"counted from 0 after the header): {exc}",
        ) from None


@functools.lru_cache(maxsize=4)
def _load_sheets(sessions_path, lesions_path, _mtimes):
    ses_df = _read_sheet(sessions_path)
    _numeric(ses_df, "days_from_rt", sessions_path)
    _numeric(ses_df, "hematocrit", sessions_path, required=False)
    _validate_sheet(ses_df, SESSIONS_SCHEMA, sessions_path)
    dup = ses_df.duplicated(["subject", "session"])
    if dup.any():
        r = ses_df[dup].iloc[0]
        raise _sheet_error(
            sessions_path, f"session {r.subject}/{r.session} is listed more than once"
        )
    les_df = _read_sheet(lesions_path)
    _numeric(les_df, "lesion", lesions_path, integer=True)
    _numeric(les_df, "recurrence", lesions_path, integer=True, required=False)
    _numeric(les_df, "recurrence_day", lesions_path, required=False)
    _validate_sheet(les_df, LESIONS_SCHEMA, lesions_path)
    dup = les_df.duplicated(["subject", "lesion"])
    if dup.any():
        r = les_df[dup].iloc[0]
        raise _sheet_error(
            lesions_path, f"lesion {r.lesion} of subject {r.subject} is listed twice"
        )
    missing = sorted(set(ses_df["subject"]) - set(les_df["subject"]))
    if missing:
        raise _sheet_error(
            lesions_path,
            f"no lesion listed for subject(s) {', '.join(missing)} of {sessions_path}",
        )
    base = Path(sessions_path).parent
    for col in ("dicom_dir", "lesion_roi", "marrow_roi", config["aif"]["mask_column"]):
        if col in ses_df.columns:
            ses_df[col] = [
                "" if v == "" else os.path.normpath(base / v) for v in ses_df[col]
            ]
    return ses_df.set_index(["subject", "session"], drop=False), les_df


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
    return out


def all_benchmarks(wildcards):
    rules_ = ["convert", "t1map", "concentration", "aif", "fit", "semiquant", "roi"]
    return [
        ses_bench(r).format(subject=s, session=t)
        for s, t in all_session_keys()
        for r in rules_
    ]
