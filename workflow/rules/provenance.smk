# Provenance of every output set: sub-<s>_ses-<t>_provenance.json in each session folder
# and <results>/provenance.json for the whole run (package versions, configuration hash,
# input file hashes; dce.io.provenance, hashed by the script). The whole configuration is a
# parameter, so a configuration change rewrites the records. The results folder is a BIDS
# derivatives dataset: <results>/dataset_description.json and .bidsignore
# (dce.io.derivatives; naming rules in docs/outputs.md).

from dce import __version__ as DCE_VERSION


rule provenance:
    input:
        unpack(session_images),
        roi=ses("roi", "tsv"),
        lesion_roi=session_path("lesion_roi"),
        marrow_roi=optional_session_path("marrow_roi"),
        aorta_roi=optional_session_path(config["aif"]["mask_column"]),
        b1_map=optional_session_path("b1_map"),
    output:
        ses("provenance", "json"),
    log:
        ses_log("provenance"),
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=500,
        runtime=10,
    params:
        config=config,
    script:
        "../scripts/provenance.py"


rule run_provenance:
    input:
        sessions=config["sessions"],
        lesions=config["lesions"],
        records=lambda wc: [
            ses("provenance", "json").format(subject=s, session=t) for s, t in all_session_keys()
        ],
    output:
        f"{RESULTS}/provenance.json",
    log:
        f"{RESULTS}/logs/provenance.log",
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=500,
        runtime=10,
    params:
        config=config,
    script:
        "../scripts/provenance.py"


rule dataset_description:
    output:
        description=f"{RESULTS}/dataset_description.json",
        bidsignore=f"{RESULTS}/.bidsignore",
    log:
        f"{RESULTS}/logs/dataset_description.log",
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=200,
        runtime=5,
    params:
        version=DCE_VERSION,  # a new package version rewrites GeneratedBy
    script:
        "../scripts/dataset_description.py"
