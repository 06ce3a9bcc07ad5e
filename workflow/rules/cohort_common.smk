# Helpers of the cohort rules (workflow/rules/cohort.smk): constants, input functions,
# output lists. Included by cohort.smk.

from collections.abc import Mapping
from types import SimpleNamespace

import yaml
from snakemake.logging import logger

from dce.cohort.sessions import analysed_note
from dce.semiquant import TICRule

COHORT_CFG = config["cohort"]
# a study preset (config/studies/<name>.yaml, cohort.study) writes to its own folder, so
# every preset can run on the same per-session results
COHORT_ID = f"studies/{COHORT_CFG['study']['name']}" if COHORT_CFG.get("study") else "cohort"
COHORT = f"{RESULTS}/{COHORT_ID}"
COHORT_ENDPOINTS = [e["name"] for e in COHORT_CFG["endpoints"]]
COHORT_LOG = f"{RESULTS}/logs/{COHORT_ID}/{{rule}}.log"
# sessions left out of the cohort analysis after errors, with the reasons (header only
# when none is: session_selection in common.smk)
EXCLUSIONS = f"{COHORT}/exclusions.tsv"
# the map statistics of cohort.tsv and marrow.tsv in long format (dce.roi.cohort_long_table)
ROI_LONG = f"{COHORT}/roi_long.tsv"
COHORT_TABLES = ["summary", "prepost", "roc", "delong", "predictions", "lead_time", "quality"]


# The cohort's result objects (dce.cohort.frames.CohortFrames, dce.cohort.analysis
# PredictionResults, RocResults, PrePostResults): field name -> file. The rule computing an
# object writes one output per field (dce.io.results.write_results); a rule using it names
# them all as inputs (dce.io.results.read_results).
COHORT_FRAMES = {
    "cohort": "cohort.tsv",
    "marrow": "marrow.tsv",
    "changes": "changes.tsv",
    "predictors": "predictors.tsv",
}
PREDICTION_RESULTS = {
    "lesions": "predictions_lesions.tsv",
    "patients": "predictions_patients.tsv",
    "folds": "predictions_folds.tsv",
    "summary": "predictions_summary.tsv",
    "lead": "lead_time.tsv",
    "lead_summary": "lead_time_summary.tsv",
}
ROC_RESULTS = {"roc": "roc.tsv", "curves": "roc_curves.tsv", "delong": "delong.tsv"}
PREPOST_RESULTS = {"paired": "prepost_paired.tsv", "between": "prepost_groups.tsv"}
DIAGNOSTIC_RESULTS = {"groups": "diagnostic_groups.tsv", "rules": "diagnostic_rules.tsv"}
# tables of the rule cohort_diagnostic (dce.cohort.diagnostic)
DIAGNOSTIC_TABLES = ["groups", "rules"]
# result files in the report ("6. Data") -> caption
_DATA_CAPTIONS = {
    "cohort.tsv": "cohort_table",
    "changes.tsv": "changes",
    "predictions_lesions.tsv": "predictions_data",
    "predictions_patients.tsv": "predictions_data",
}


def cohort_inputs_of(*objects):
    """Every file of the result objects, by field name."""
    return {name: f"{COHORT}/{file}" for files in objects for name, file in files.items()}


def cohort_outputs_of(files):
    """The files of one result object, by field name (report items marked)."""
    out = cohort_inputs_of(files)
    for name, file in files.items():
        if file in _DATA_CAPTIONS:
            out[name] = report(
                out[name],
                caption=f"../report/{_DATA_CAPTIONS[file]}.rst",
                category="6. Data",
            )
    return out


def cohort_log(rule):
    return COHORT_LOG.replace("{rule}", rule)


def cohort_bench(rule):
    return f"{RESULTS}/benchmarks/{COHORT_ID}/{rule}.tsv"


def all_roi_tables(wildcards):
    return [ses("roi", "tsv").format(subject=s, session=t) for s, t in all_session_keys()]


def all_tic_tables(wildcards):
    return [ses("tic", "tsv").format(subject=s, session=t) for s, t in all_session_keys()]


def cohort_exclusions(wildcards):
    """Param function: the rows of the exclusions table (session_selection)."""
    return session_selection()[1].to_dict("records")


def cohort_sessions(wildcards):
    """Param function: {"analysed": n, "total": n, "note": sentence or ""}."""
    sessions, _ = sheets()
    analysed, table = session_selection()
    return {
        "analysed": len(analysed),
        "total": len(sessions),
        "note": analysed_note(len(analysed), len(sessions), table),
    }


def _subject_sessions(subject):
    sessions, _ = sheets()
    covered = set(all_session_keys())
    rows = sessions[
        [
            s == subject and (s, t) in covered
            for s, t in zip(sessions["subject"], sessions["session"])
        ]
    ].sort_values("days_from_rt")
    return list(rows["session"]), [float(d) for d in rows["days_from_rt"]]


def _lesion_maps_inputs(wildcards):
    """Per session of the subject (in time order): DCE, fit status, maps, lesion ROI."""
    subject = wildcards.subject
    names, _ = _subject_sessions(subject)
    maps = COHORT_CFG["figures"]["maps"]
    return {
        "dce": [ses("dce", "nii.gz").format(subject=subject, session=t) for t in names],
        "fitstatus": [
            ses(FIT_STATUS_MAP, "nii.gz").format(subject=subject, session=t) for t in names
        ],
        "maps": [ses(m, "nii.gz").format(subject=subject, session=t) for t in names for m in maps],
        "lesion_roi": [
            session_row(SimpleNamespace(subject=subject, session=t))["lesion_roi"] for t in names
        ],
    }


def _lesion_row(wildcards):
    _, lesions = sheets()
    row = lesions[
        (lesions["subject"] == wildcards.subject)
        & (lesions["lesion"].astype(int) == int(wildcards.lesion))
    ]
    if row.empty:
        raise WorkflowError(
            f"{config['lesions']}: no lesion {wildcards.lesion} of subject {wildcards.subject}"
        )
    return row.iloc[0]


def _lesion_outcome(wildcards):
    row = _lesion_row(wildcards)
    parts = []
    for e in COHORT_CFG["endpoints"]:
        v = row.get(e["name"], "")
        if v is not None and str(v) not in ("", "<NA>", "nan"):
            word = {"1": "yes", "1.0": "yes", "0": "no", "0.0": "no"}.get(str(v), str(v))
            parts.append(f"{e.get('label') or e['name']}: {word}")
    return ", ".join(parts)


def lesion_map_figures():
    _, lesions = sheets()
    if COMPLETED_ONLY:  # lesions of the subjects analysed
        lesions = lesions[lesions["subject"].isin({s for s, _ in all_session_keys()})]
    return [
        f"{COHORT}/maps/sub-{s}_lesion-{int(l)}_maps.{ext}"
        for s, l in zip(lesions["subject"], lesions["lesion"])
        for ext in ("png", "pdf")
    ]


def cohort_outputs(wildcards):
    """Every product of the cohort analysis (for rule all)."""
    if not COHORT_CFG["enabled"]:
        return []
    results = (
        COHORT_FRAMES,
        PREDICTION_RESULTS,
        ROC_RESULTS,
        PREPOST_RESULTS,
        DIAGNOSTIC_RESULTS,
    )
    out = list(cohort_inputs_of(*results).values()) + [EXCLUSIONS, ROI_LONG]
    out += [f"{COHORT}/tables/summary.tsv", f"{COHORT}/figures/tic_types.png"]
    for name in COHORT_TABLES + DIAGNOSTIC_TABLES:
        out += [f"{COHORT}/tables/{name}.{ext}" for ext in ("md", "tex", "html")]
    for e in COHORT_ENDPOINTS:
        out += [f"{COHORT}/figures/groups_{e}.{ext}" for ext in ("png", "pdf")]
    for e in COHORT_ENDPOINTS:
        for fig in ("roc", "waterfall", "prepost"):
            out += [f"{COHORT}/figures/{fig}_{e}.{ext}" for ext in ("png", "pdf")]
    return out + lesion_map_figures()


def _table_outputs():
    out = {}
    for name in COHORT_TABLES:
        out[f"{name}_md"] = f"{COHORT}/tables/{name}.md"
        out[f"{name}_tex"] = f"{COHORT}/tables/{name}.tex"
        out[f"{name}_html"] = report(
            f"{COHORT}/tables/{name}.html",
            caption=f"../report/table_{name}.rst",
            category="5. Tables",
        )
    return out


def _diagnostic_outputs():
    """Outputs of cohort_diagnostic (its result files, tables and figures)."""
    out = cohort_outputs_of(DIAGNOSTIC_RESULTS)
    for name in DIAGNOSTIC_TABLES:
        out[f"{name}_md"] = f"{COHORT}/tables/{name}.md"
        out[f"{name}_tex"] = f"{COHORT}/tables/{name}.tex"
        out[f"{name}_html"] = report(
            f"{COHORT}/tables/{name}.html",
            caption=f"../report/table_{name}.rst",
            category="5. Tables",
        )
    for e in COHORT_ENDPOINTS:
        out[f"groups_{e}_png"] = report(
            f"{COHORT}/figures/groups_{e}.png",
            caption="../report/groups.rst",
            category="9. Group comparison",
            labels={"figure": "groups", "endpoint": e},
        )
        out[f"groups_{e}_pdf"] = f"{COHORT}/figures/groups_{e}.pdf"
    return out


def _figure_outputs():
    out = {}
    for e in COHORT_ENDPOINTS:
        for fig, cat in (
            ("roc", "1. ROC"),
            ("waterfall", "2. Waterfall"),
            ("prepost", "3. Pre/post"),
        ):
            out[f"{fig}_{e}_png"] = report(
                f"{COHORT}/figures/{fig}_{e}.png",
                caption=f"../report/{fig}.rst",
                category=cat,
                labels={"figure": fig, "endpoint": e},
            )
            out[f"{fig}_{e}_pdf"] = f"{COHORT}/figures/{fig}_{e}.pdf"
    out["tic_png"] = report(
        f"{COHORT}/figures/tic_types.png",
        caption="../report/tic_types.rst",
        category="4. TIC types",
    )
    out["tic_pdf"] = f"{COHORT}/figures/tic_types.pdf"
    return out


# ------------------------------------------------------------------- after failed jobs


def _plain(value):
    """Configuration overrides as plain dicts and lists (YAML-serialisable)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def analyse_completed_sessions():
    """The onerror handler (Snakefile): after a --keep-going run of the whole workflow
    in which jobs failed, run the workflow again, without lock, restricted to the
    sessions that completed without error (COMPLETED_ONLY_ENV, session_selection): only
    the cohort analysis, the run provenance and the benchmark summary are left to do.
    The cohort tables then cover those sessions, and cohort/exclusions.tsv lists the
    others with the error of each. Snakemake still exits non-zero afterwards."""
    import subprocess
    import sys
    import tempfile

    if COMPLETED_ONLY or not COHORT_CFG["enabled"]:
        return
    targets = set(workflow.dag_settings.targets or ())
    if targets - {"all"}:
        return  # explicit targets: the cohort was not asked for
    if not workflow.execution_settings.keep_going:
        logger.warning(
            "cohort analysis of the completed sessions skipped: run with --keep-going "
            "(as the workflow profile does) to analyse them and list the failed sessions "
            f"in {EXCLUSIONS}"
        )
        return
    try:  # whatever fails here must not hide the run's own error
        sessions, _ = sheets()
        keys = tuple(zip(sessions["subject"], sessions["session"]))
        analysed = _completed_selection(keys)[0]
    except Exception as exc:
        logger.error(f"no cohort analysis of the completed sessions: {exc}")
        return
    if not analysed:
        logger.error("jobs failed and no session completed: no cohort analysis")
        return
    logger.warning(
        f"jobs failed: running the cohort analysis on the {len(analysed)} of {len(keys)} "
        "sessions that completed; the others are listed with their errors in "
        f"{EXCLUSIONS}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        overrides = os.path.join(tmp, "config.yaml")
        with open(overrides, "w", encoding="utf-8") as fh:
            yaml.safe_dump(_plain(workflow.config_settings.overwrite_config), fh)
        cmd = [sys.executable, "-m", "snakemake", "-s", workflow.main_snakefile]
        cmd += ["-d", os.getcwd(), "--configfile", overrides, "--nolock", "--keep-going"]
        cmd += ["--cores", str(workflow.resource_settings.cores or 1)]
        cmd += ["--workflow-profile", "none"]
        env = {**os.environ, COMPLETED_ONLY_ENV: "1"}
        try:
            done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, check=False)
            status = done.returncode
        except OSError as exc:
            status = str(exc)
    if status != 0:
        logger.error(f"the cohort analysis of the completed sessions failed too ({status})")
    else:
        logger.warning(
            f"sessions left out of the cohort analysis: see {EXCLUSIONS}; the report of "
            f"the analysed sessions: {COMPLETED_ONLY_ENV}=1 snakemake --report report.html"
        )
