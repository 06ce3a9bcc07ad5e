# DCE-MRI of spinal bone lesions treated with radiation: per-session pipeline
#   convert -> kinetics (T1 maps, concentration, AIF, model fit) -> roi (with the
#   semi-quantitative maps, figures); each follow-up: register (to its baseline session)
#   -> prm (parametric response maps)
# and the cohort analysis over all sessions; one rule file per stage (workflow/rules/).
# Configuration: config/config.yaml over the schema defaults (config/README.md).
# Run: snakemake   (the workflow profile profiles/default sets cores and scheduling;
# every rule states its own threads and resources)

from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/kinetics.smk"
include: "workflow/rules/roi.smk"
include: "workflow/rules/register.smk"
include: "workflow/rules/prm.smk"
include: "workflow/rules/benchmarks.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/cohort.smk"


rule all:
    default_target: True
    input:
        all_outputs,
        prm_outputs,
        cohort_outputs,


# After failed jobs (with --keep-going), the cohort analysis of the sessions that completed,
# and cohort/exclusions.tsv listing the others with their errors (cohort_common.smk);
# Snakemake still exits non-zero.
onerror:
    analyse_completed_sessions()
