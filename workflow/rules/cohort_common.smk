# Helpers of the cohort rules (workflow/rules/cohort.smk): constants, input functions,
# output lists. Included by cohort.smk.

from types import SimpleNamespace

COHORT = f"{RESULTS}/cohort"
COHORT_CFG = config["cohort"]
COHORT_ENDPOINTS = [e["name"] for e in COHORT_CFG["endpoints"]]
COHORT_LOG = f"{RESULTS}/logs/cohort/{{rule}}.log"
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
    return f"{RESULTS}/benchmarks/cohort/{rule}.tsv"


def all_roi_tables(wildcards):
    return [ses("roi", "tsv").format(subject=s, session=t) for s, t in all_session_keys()]


def all_tic_tables(wildcards):
    return [ses("tic", "tsv").format(subject=s, session=t) for s, t in all_session_keys()]


def _subject_sessions(subject):
    sessions, _ = sheets()
    rows = sessions[sessions["subject"] == subject].sort_values("days_from_rt")
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
            parts.append(f"{e.get('label') or e['name']} = {v}")
    return ", ".join(parts)


def lesion_map_figures():
    _, lesions = sheets()
    return [
        f"{COHORT}/maps/sub-{s}_lesion-{int(l)}_maps.{ext}"
        for s, l in zip(lesions["subject"], lesions["lesion"])
        for ext in ("png", "pdf")
    ]


def cohort_outputs(wildcards):
    """Every product of the cohort analysis (for rule all)."""
    if not COHORT_CFG["enabled"]:
        return []
    results = (COHORT_FRAMES, PREDICTION_RESULTS, ROC_RESULTS, PREPOST_RESULTS)
    out = list(cohort_inputs_of(*results).values())
    out += [f"{COHORT}/tables/summary.tsv", f"{COHORT}/figures/tic_types.png"]
    for name in COHORT_TABLES:
        out += [f"{COHORT}/tables/{name}.{ext}" for ext in ("md", "tex", "html")]
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
