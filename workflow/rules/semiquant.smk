# Semi-quantitative (model-free) maps from the signal: enhancement, slopes, IAUC, TIC type.


rule semiquant:
    input:
        dce=ses("dce", "nii.gz"),
    output:
        **map_outputs(SEMIQUANT_MAPS),
    log:
        ses_log("semiquant"),
    benchmark:
        ses_bench("semiquant")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        n_baseline=config["acquisition"]["n_baseline"],
        iauc=config["semiquant"]["iauc_windows_s"],
        tic=config["tic"],
    script:
        "../scripts/semiquant.py"
