# The session's B1 factor on the DCE grid (sessions.tsv `b1_map` or the converted B1
# series), pre-contrast T1 (T10) and M0 maps from the VFA series (or the fixed fallback
# T10), and signal -> contrast agent concentration (SPGR signal equation, T10, M0 and B1
# maps). One job: the concentration always needs the T1 maps of the same session, so a
# separate job would only add a process start and a second read of the DCE image.


rule concentration:
    input:
        dce=ses("dce", "nii.gz"),
        record=ses("convert", "json"),
        b1=optional_session_path("b1_map"),
    output:
        t1=ses("T1map", "nii.gz"),
        m0=ses("M0map", "nii.gz"),
        b1=ses("B1map", "nii.gz"),
        conc=intermediate(CONC),  # read only by the fit
        status=ses("concstatus", "nii.gz"),
    log:
        ses_log("concentration"),
    benchmark:
        ses_bench("concentration")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1500,
        runtime=15,
    params:
        t1=config["t1"],
        b1=config["b1"],
        r1=config["acquisition"]["r1_per_mM_per_s"],
        n_baseline=config["acquisition"]["n_baseline"],
        m0=config["concentration"]["m0"],
        map_significant_bits=config["outputs"]["map_significant_bits"],
    script:
        "../scripts/concentration.py"
