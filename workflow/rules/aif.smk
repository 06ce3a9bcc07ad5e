# Arterial input function: automatic aorta AIF with QC, population fallback, delay.


rule aif:
    input:
        dce=ses("dce", "nii.gz"),
        t1=ses("T1map", "nii.gz"),
        lesion_roi=session_path("lesion_roi"),
        marrow_roi=optional_session_path("marrow_roi"),
        aorta=optional_session_path(config["aif"]["mask_column"]),
    output:
        tsv=ses("aif", "tsv"),
        qc=ses("aif", "json"),
        png=report(
            ses("aif", "png"),
            caption="../report/session_aif.rst",
            category="8. Sessions",
            subcategory="AIF QC",
            labels={"session": "{subject} / {session}", "figure": "AIF"},
        ),
        voxels=ses("aifvoxels", "nii.gz"),
    log:
        ses_log("aif"),
    benchmark:
        ses_bench("aif")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1500,
        runtime=15,
    params:
        aif=config["aif"],
        n_baseline=config["acquisition"]["n_baseline"],
        hematocrit=session_hematocrit,
        r1=config["acquisition"]["r1_per_mM_per_s"],
        lesions=expected_lesions,  # labels and ROI names of the spine prior's lesion ROI
    script:
        "../scripts/aif.py"
