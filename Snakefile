# DCE-MRI of spinal bone lesions treated with radiation: per-session pipeline
#   convert -> t1map -> concentration -> aif -> fit -> roi   (+ semiquant, figures)
# Configuration: config/config.yaml (documented in config/README.md).
# Run: snakemake   (the workflow profile profiles/default sets cores and resources)

from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/aif.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/roi.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/cohort.smk"


rule all:
    input:
        WARMUP,  # listed here too, so it compiles while the demo cohort is written
        all_outputs,
        cohort_outputs,
    default_target: True
