# Helpers shared by the rules: config validation, the session and lesion sheets
# (read by dce.io.tables), output naming and wildcard constraints. The dce package is a
# dependency of the workflow (`pip install` of the repository brings Snakemake), so its
# import-light public API (sheet reader, output registry) is used at parse time.

import functools
import glob
import os

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from dce._checks import check_config_units
from dce.cohort.config import parse_config
from dce.cohort.sessions import check_sheets, session_exclusions
from dce.io.jobs import ERROR_RECORD_SUFFIX, read_error_records
from dce.io.nifti_input import NiftiInputError, image_source
from dce.io.tables import SheetError, read_sheets
from dce.registry import FIT_STATUS_MAP, fit_map_names, roi_map_names, semiquant_map_names

# unit hints first (the schema's range errors alone do not say "looks like ms")
_UNIT_PROBLEMS = check_config_units(config)
if _UNIT_PROBLEMS:
    raise WorkflowError("configuration: " + "; ".join(_UNIT_PROBLEMS))
validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["results"].rstrip("/")
DEMO = config["demo"]["enabled"]
SESSIONS_SCHEMA = workflow.source_path("../schemas/sessions.schema.yaml")
LESIONS_SCHEMA = workflow.source_path("../schemas/lesions.schema.yaml")

SES = f"{RESULTS}/sub-{{subject}}/ses-{{session}}/sub-{{subject}}_ses-{{session}}"
LOG = f"{RESULTS}/logs/sub-{{subject}}/ses-{{session}}/{{rule}}.log"
BENCH = f"{RESULTS}/benchmarks/sub-{{subject}}/ses-{{session}}/{{rule}}.tsv"
# Set (to 1) in the environment of the run that the onerror handler (Snakefile) starts
# after failed jobs: the workflow then covers only the sessions that completed without
# error (session_selection), so the cohort analysis runs on them.
COMPLETED_ONLY_ENV = "DCE_COHORT_COMPLETED_ONLY"
COMPLETED_ONLY = os.environ.get(COMPLETED_ONLY_ENV) == "1"

# parameter maps written by the rules fit and roi ("what" in the file names), from
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


def intermediate(path):
    """A pure intermediate output: temp() (removed once its consumers have run) unless
    config outputs.keep_intermediates."""
    return path if config["outputs"]["keep_intermediates"] else temp(path)


# The 4-D concentration, a pure intermediate of the rule kinetics (held in memory from the
# concentration step to the fit). Its path is named in the fit maps' sidecars (Sources) and
# carries the concentration's sidecar _conc.json; the volume is written only with
# outputs.keep_intermediates, then compressed like every kept image (.nii.gz; otherwise
# .nii, the name of the temporary file earlier versions wrote and removed).
CONC = ses("conc", "nii.gz" if config["outputs"]["keep_intermediates"] else "nii")


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
    return _checked_sheets(sessions_path, lesions_path)


@functools.lru_cache(maxsize=1)
def _demo_sheets():
    """The demo cohort's sheets from its design (dce.phantom.demo_cohort, cohort_sheets:
    milliseconds, no image), as demo_cohort (demo.smk) writes them, so that the sessions
    and every job are known at parse time, before the files exist."""
    from dce.phantom import cohort_sheets, demo_cohort

    demo = config["demo"]
    design = cohort_sheets(
        demo_cohort(
            demo["n_patients"],
            demo["seed"],
            matrix=demo["matrix"],
            n_phases=demo["n_phases"],
        ),
        demo["vendors"],
    )
    return _checked_sheets(config["sessions"], config["lesions"], design=design)


def _checked_sheets(sessions_path, lesions_path, design=None):
    path_columns = (
        "dicom_dir",
        "lesion_roi",
        "marrow_roi",
        config["aif"]["mask_column"],
        "b1_map",
    )
    try:
        sessions, lesions = read_sheets(
            sessions_path,
            lesions_path,
            path_columns=path_columns,
            validate=_validate_sheet,
            design=design,
        )
    except SheetError as exc:
        raise WorkflowError(str(exc)) from None
    for row in sessions.to_dict("records"):  # exactly one image source per session
        _checked_image_source(row)
    if design is None:  # the demo's files are outputs of the rule demo_cohort
        check_sheet_paths(sessions, path_columns)
    check_sheets_against_config(sessions, lesions)
    return sessions, lesions


def check_sheet_paths(sessions, columns):
    """Every file or folder the session sheet names exists (all missing ones in one
    message, before any job; Snakemake itself would name only the first)."""
    missing = [
        f"{s}/{t} {col} {path}"
        for col in columns
        if col in sessions.columns
        for s, t, path in zip(sessions["subject"], sessions["session"], sessions[col])
        if path and not os.path.exists(path)
    ]
    if missing:
        raise WorkflowError(
            f"{config['sessions']}: {len(missing)} path(s) do not exist (subject/session "
            f"column path): {'; '.join(missing)}. Fix the paths (relative to the sheet's "
            "folder) or remove the sessions' rows (checked before any job: nothing was run)"
        )


def check_sheets_against_config(sessions, lesions):
    """The sheets against the cohort configuration, before any per-session job
    (dce.cohort.sessions.check_sheets: baseline session, endpoint and event-day
    columns, predictor sessions; dce.cohort.config.parse_config: cross-references)."""
    if not config["cohort"]["enabled"]:
        return
    try:
        check_sheets(
            parse_config(config["cohort"]),
            sessions,
            lesions,
            sessions_path=config["sessions"],
            lesions_path=config["lesions"],
        )
    except ValueError as exc:
        raise WorkflowError(f"{exc} (checked before any job: nothing was run)") from None


def sheets():
    """(sessions, lesions) data frames, validated; paths resolved against the sheet.
    The demo cohort before its files exist: its design (_demo_sheets); once written, the
    files (identical to the design unless edited since, e.g. a column added)."""
    paths = (config["sessions"], config["lesions"])
    if DEMO and not all(os.path.exists(p) for p in paths):
        return _demo_sheets()
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


def _image_source(wildcards):
    return _checked_image_source(session_row(wildcards).to_dict())


def _checked_image_source(row):
    try:
        return image_source(
            row,
            base_dir=os.path.dirname(config["sessions"]) or ".",
            sheet=config["sessions"],
        )
    except NiftiInputError as exc:
        raise WorkflowError(str(exc)) from None


def session_images(wildcards):
    """Input function (unpack) of the convert and provenance rules; the session's image
    files by role, ``dicom`` (a folder) or ``dce_nifti``, ``dce_json``, ``vfa_nifti_<n>``,
    ``vfa_json_<n>``, ``dce_times_s`` (dce.io.nifti_input.ImageSource.inputs); exactly one
    of the columns dicom_dir and dce_nifti must be given."""
    return _image_source(wildcards).inputs()


def session_image_source(wildcards):
    """Param function of the convert rule; the session's image source as a dict."""
    return _image_source(wildcards).as_dict()


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
        # lesion label -> ROI/segment name in the lesion ROI file (dce.io.rois); empty: by label
        "names": (
            {int(k): str(v) for k, v in zip(rows["lesion"], rows["roi_name"]) if str(v)}
            if "roi_name" in rows
            else {}
        ),
    }


def session_outputs(subject, session):
    """Every per-session product of the workflow that stays (not the intermediates)."""
    wc = {"subject": subject, "session": session}
    paths = [
        ses("dce", "nii.gz"),
        ses("T1map", "nii.gz"),
        ses("B1map", "nii.gz"),
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


# ----------------------------------------------------------------------------- registration
# Every follow-up session (a session of a subject other than its baseline session) is
# registered to the baseline (register.smk); its outputs are in the follow-up's folder.

LESION_ROI_MAP = "lesions"  # registration.maps: the lesion ROI (labels) resampled
_unknown_maps = sorted(
    set(config["registration"]["maps"]) - {*FIT_MAPS, *SEMIQUANT_MAPS, LESION_ROI_MAP}
)
if _unknown_maps:
    raise WorkflowError(
        f"registration.maps: {_unknown_maps} are not maps of a session; use "
        f"{', '.join([*FIT_MAPS, *SEMIQUANT_MAPS, LESION_ROI_MAP])}"
    )


def baseline_session_of(subject):
    """The subject's baseline session: cohort.baseline_session, or (null) the session
    with the smallest days_from_rt; None when the subject has no such session."""
    sessions, _ = sheets()
    own = sessions[sessions["subject"] == subject]
    name = config["cohort"]["baseline_session"]
    if name is not None:
        return str(name) if (own["session"] == str(name)).any() else None
    if own.empty:
        return None
    days = pd.to_numeric(own["days_from_rt"])
    return str(own["session"].iloc[int(days.to_numpy().argmin())])


def followup_keys(keys):
    """The (subject, session) pairs of ``keys`` to register: not a baseline session, and
    the subject's baseline session is among ``keys`` too."""
    if not config["registration"]["enabled"]:
        return []
    key_set = set(keys)
    out = []
    for subject, session in keys:
        base = baseline_session_of(subject)
        if base is not None and session != base and (subject, base) in key_set:
            out.append((subject, session))
    return out


def baseline_path(pattern):
    """Input function: ``pattern`` (a ses() path) of the subject's baseline session."""

    def _get(wildcards):
        base = baseline_session_of(wildcards.subject)
        if base is None:
            raise WorkflowError(
                f"subject {wildcards.subject}: no baseline session to "
                "register to (cohort.baseline_session)"
            )
        return pattern.format(subject=wildcards.subject, session=base)

    return _get


def baseline_session_path(column):
    """Input function: a path column of the baseline session's sheet row."""

    def _get(wildcards):
        sessions, _ = sheets()
        base = baseline_session_of(wildcards.subject)
        return sessions.loc[(wildcards.subject, base)][column]

    return _get


def register_outputs_by_name():
    """The outputs of the rule register by name (patterns of a follow-up session)."""
    out = {
        "xfm_json": ses("desc-tobaseline_xfm", "json"),
        "xfm_tfm": ses("desc-tobaseline_xfm", "tfm"),
        "qc": ses("desc-registration_qc", "json"),
    }
    for name in config["registration"]["maps"]:
        out[f"map_{name}"] = ses(f"space-baseline_{name}", "nii.gz")
    return out


def register_outputs(subject, session):
    wc = {"subject": subject, "session": session}
    return [p.format(**wc) for p in register_outputs_by_name().values()]


def completed_session(subject, session):
    """Whether every per-session output of the session exists."""
    return all(os.path.exists(p) for p in session_outputs(subject, session))


def error_records():
    """The error records of failed per-session jobs (dce.io.jobs), in the logs."""
    pattern = f"{RESULTS}/logs/sub-*/ses-*/*{ERROR_RECORD_SUFFIX}"
    return read_error_records(sorted(glob.glob(pattern)))


def session_selection():
    """(sessions the run covers, exclusions table): every session of the sheet and an
    empty table; with COMPLETED_ONLY_ENV set, the sessions that completed without error
    (and whose baseline did) and the table of the others with their reasons
    (dce.cohort.sessions.session_exclusions)."""
    sessions, _ = sheets()
    keys = list(zip(sessions["subject"], sessions["session"]))
    if not COMPLETED_ONLY:
        return keys, session_exclusions(sessions, keys, [], None)[1]
    return _completed_selection(tuple(keys))


@functools.lru_cache(maxsize=2)
def _completed_selection(keys):
    sessions, _ = sheets()
    completed = [k for k in keys if completed_session(*k)]
    return session_exclusions(
        sessions, completed, error_records(), config["cohort"]["baseline_session"]
    )


def all_session_keys():
    return session_selection()[0]


def all_outputs(wildcards):
    out = []
    keys = all_session_keys()
    for subject, session in keys:
        out += session_outputs(subject, session)
    for subject, session in followup_keys(keys):
        out += register_outputs(subject, session)
    out.append(f"{RESULTS}/benchmarks/summary.tsv")
    out.append(f"{RESULTS}/provenance.json")
    out.append(f"{RESULTS}/dataset_description.json")
    out.append(f"{RESULTS}/.bidsignore")
    return out


def all_benchmarks(wildcards):
    rules_ = ["convert", "kinetics", "roi"]
    keys = all_session_keys()
    out = [ses_bench(r).format(subject=s, session=t) for s, t in keys for r in rules_]
    out += [
        ses_bench(r).format(subject=s, session=t)
        for s, t in followup_keys(keys)
        for r in (["register", "prm"] if PRM_ON else ["register"])  # PRM_ON: prm_common.smk
    ]
    return out


sheets()  # check them now, before the DAG is built
