# Parametric response maps (dce.prm) of every registered follow-up session (register.smk)
# against its baseline session, on the baseline grid: per-lesion PRM+ / PRM0 / PRM-
# fractions, class maps and a figure, in the follow-up's session folder. A follow-up
# whose registration failed its QC gets NaN fractions with the reason (never used).
# The baseline maps get the smoothing that the follow-up's trilinear resampling applied
# (dce.prm.match_interpolation_smoothing: the transform and the follow-up's own grid).


include: "prm_common.smk"


rule prm:
    input:
        **{f"base_{m}": baseline_path(ses(m, "nii.gz")) for m in PRM_CFG["maps"]},
        **{f"fu_{m}": ses(f"space-baseline_{m}", "nii.gz") for m in PRM_CFG["maps"]},
        base_fitstatus=baseline_path(ses(FIT_STATUS_MAP, "nii.gz")),
        fu_fitstatus=ses(f"space-baseline_{FIT_STATUS_MAP}", "nii.gz"),
        fu_grid=ses(FIT_STATUS_MAP, "nii.gz"),
        base_dce=baseline_path(ses("dce", "nii.gz")),
        base_lesion_roi=baseline_session_path("lesion_roi"),
        base_marrow_roi=baseline_optional_path("marrow_roi"),
        qc=ses("desc-registration_qc", "json"),
        xfm=ses("desc-tobaseline_xfm", "json"),
    output:
        **{k: v for k, v in prm_outputs_by_name().items() if k != "png"},
        png=report(
            ses("prm", "png"),
            caption="../report/prm.rst",
            category="10. Parametric response",
            labels={"session": "{subject} / {session}", "figure": "PRM"},
        ),
    log:
        ses_log("prm"),
    benchmark:
        ses_bench("prm")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        prm=PRM_CFG,
        baseline_session=lambda wc: baseline_session_of(wc.subject),
        lesions=expected_lesions,
        n_baseline=config["acquisition"]["n_baseline"],
    script:
        "../scripts/prm.py"
