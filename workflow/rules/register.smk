# Rigid registration of every follow-up session to its subject's baseline session
# (cohort.baseline_session; null: the earliest), on the pre-contrast mean of the DCE
# series inside a margin around the baseline lesions (dce.register). Writes the transform
# (JSON 4x4 in RAS world mm and ITK .tfm), a QC record and the follow-up's maps resampled
# onto the baseline grid, in the follow-up session folder. A registration that fails its
# QC still writes its outputs (so the other subjects finish) with passed: false; the log
# names subject, session and the problem, and consumers must not use it.


rule register:
    input:
        **map_outputs([m for m in config["registration"]["maps"] if m != LESION_ROI_MAP]),
        dce=ses("dce", "nii.gz"),
        lesion_roi=session_path("lesion_roi"),
        baseline_dce=baseline_path(ses("dce", "nii.gz")),
        baseline_lesion_roi=baseline_session_path("lesion_roi"),
    output:
        **register_outputs_by_name(),
    log:
        ses_log("register"),
    benchmark:
        ses_bench("register")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        baseline_session=lambda wc: baseline_session_of(wc.subject),
        lesions=expected_lesions,
        n_baseline=config["acquisition"]["n_baseline"],
        registration=config["registration"],
        map_significant_bits=config["outputs"]["map_significant_bits"],
    script:
        "../scripts/register.py"
