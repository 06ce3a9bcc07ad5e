# The synthetic demo cohort (dce.phantom), written as DICOM with ROIs, sheets and truth
# into the folder of config["sessions"]. Its sessions and sheet rows are a cheap function
# of config["demo"] (common.smk, _demo_sheets), so every job is known at parse time; the
# rule writes those sheets, each session's DICOM folder and ROIs (its outputs).

if DEMO:
    _demo_dir = os.path.dirname(config["sessions"]) or "."
    if os.path.basename(config["sessions"]) != "sessions.tsv" or config["lesions"] != (
        os.path.join(_demo_dir, "lesions.tsv") if _demo_dir != "." else "lesions.tsv"
    ):
        raise WorkflowError(
            "demo.enabled: the demo cohort is written as <folder>/sessions.tsv and "
            "<folder>/lesions.tsv; set config sessions/lesions accordingly"
        )

    _demo_sessions = sheets()[0]

    rule demo_cohort:
        output:
            sessions=config["sessions"],
            lesions=config["lesions"],
            truth_lesions=os.path.join(_demo_dir, "truth", "lesion_truth.tsv"),
            truth_sessions=os.path.join(_demo_dir, "truth", "sessions_truth.tsv"),
            truth_motion=os.path.join(_demo_dir, "truth", "motion_truth.tsv"),
            truth_prm=os.path.join(_demo_dir, "truth", "prm_truth.tsv"),
            dicom=[directory(p) for p in _demo_sessions["dicom_dir"]],
            lesion_roi=list(_demo_sessions["lesion_roi"]),
            marrow_roi=list(_demo_sessions["marrow_roi"]),
        log:
            f"{RESULTS}/logs/demo_cohort.log",
        benchmark:
            f"{RESULTS}/benchmarks/demo_cohort.tsv"
        conda:
            "../envs/dce.yaml"
        resources:
            mem_mb=1500,
            runtime=30,
        params:
            demo=config["demo"],
        script:
            "../scripts/demo_cohort.py"
