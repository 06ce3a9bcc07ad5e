# Helpers of the PRM rule (workflow/rules/prm.smk) - configuration checks, input functions,
# output lists. Included by prm.smk.

from snakemake.logging import logger

PRM_CFG = config["prm"]
PRM_ON = PRM_CFG["enabled"] and config["registration"]["enabled"]

PRM_MAPS_ALLOWED = ("ktrans", "kep", "ve", "vp")  # the kinetic maps (dce.registry)

if PRM_ON:
    _unknown = [m for m in PRM_CFG["maps"] if m not in PRM_MAPS_ALLOWED]
    if _unknown:
        raise WorkflowError(
            f"prm.maps: {', '.join(_unknown)} not one of {', '.join(PRM_MAPS_ALLOWED)}"
        )
    _missing = [
        m for m in [*PRM_CFG["maps"], "fitstatus"] if m not in config["registration"]["maps"]
    ]
    if _missing:
        raise WorkflowError(
            f"prm.maps: {', '.join(_missing)} not in registration.maps (the follow-up maps "
            "resampled onto the baseline grid); add them there"
        )
    _no_threshold = [
        m
        for m in PRM_CFG["maps"]
        if PRM_CFG["thresholds"].get(m) is None and PRM_CFG["fallback_thresholds"].get(m) is None
    ]
    if _no_threshold:
        raise WorkflowError(
            f"prm: map(s) {', '.join(_no_threshold)} have neither prm.thresholds nor "
            "prm.fallback_thresholds (needed when the marrow ROI is too small)"
        )


_prm_predictors = [
    p["name"]
    for p in config["cohort"]["predictors"]
    if str(p.get("parameter", "")).startswith("prm_")
]
if config["cohort"]["enabled"] and _prm_predictors and not PRM_ON:
    logger.warning(
        f"cohort.predictors {', '.join(_prm_predictors)} use PRM fractions but prm or "
        "registration is disabled: they are missing (NaN) for every lesion"
    )


def baseline_optional_path(column):
    """Input function: a path column of the baseline session's row that may be empty."""

    def _get(wildcards):
        sessions, _ = sheets()
        row = sessions.loc[(wildcards.subject, baseline_session_of(wildcards.subject))]
        value = row[column] if column in row.index else ""
        return [value] if value else []

    return _get


def prm_outputs_by_name():
    out = {"tsv": ses("prm", "tsv"), "png": ses("prm", "png"), "pdf": ses("prm", "pdf")}
    for m in PRM_CFG["maps"]:
        out[f"dseg_{m}"] = ses(f"desc-prm{m}_dseg", "nii.gz")
    return out


def prm_outputs(wildcards):
    """Every output of the rule prm (for rule all)."""
    if not PRM_ON:
        return []
    return [
        p.format(subject=s, session=t)
        for s, t in followup_keys(all_session_keys())
        for p in prm_outputs_by_name().values()
    ]


def all_prm_tables(wildcards):
    """The PRM tables of every registered follow-up (input of cohort_table)."""
    if not PRM_ON:
        return []
    return [
        ses("prm", "tsv").format(subject=s, session=t) for s, t in followup_keys(all_session_keys())
    ]
