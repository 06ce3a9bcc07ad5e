# Signal -> contrast agent concentration (SPGR signal equation, T10, M0 and B1 maps).


rule concentration:
    input:
        dce=ses("dce", "nii.gz"),
        t1=ses("T1map", "nii.gz"),
        m0=ses("M0map", "nii.gz"),
        b1=ses("B1map", "nii.gz"),
    output:
        conc=intermediate(ses("conc", "nii.gz")),  # read only by the fit
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
        r1=config["acquisition"]["r1_per_mM_per_s"],
        n_baseline=config["acquisition"]["n_baseline"],
        m0=config["concentration"]["m0"],
        b1=config["b1"],
    script:
        "../scripts/concentration.py"
