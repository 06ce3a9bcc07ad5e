# Voxel-wise tracer-kinetic fit (AIF-dependent) and semi-quantitative maps (not).


rule fit:
    input:
        conc=ses("conc", "nii.gz"),
        aif=ses("aif", "tsv"),
        warmup=ancient(WARMUP),
    output:
        **map_outputs(FIT_MAPS),
    log:
        ses_log("fit"),
    benchmark:
        ses_bench("fit")
    params:
        # model.delay_neighbourhood / model.enhancement_z are read by the script (defaults
        # [3, 3, 1] and dce.fit.DEFAULT_ENHANCEMENT_Z when absent)
        model=config["model"],
        fit_delay=config["aif"]["delay"] == "fit",
    threads: 2
    resources:
        # delay fit: + ~2x the float32 volume (neighbourhood curves, result rows)
        mem_mb=2000,
    conda:
        "../envs/dce.yaml"
    script:
        "../scripts/fit.py"


rule semiquant:
    input:
        dce=ses("dce", "nii.gz"),
    output:
        **map_outputs(SEMIQUANT_MAPS),
    log:
        ses_log("semiquant"),
    benchmark:
        ses_bench("semiquant")
    params:
        n_baseline=config["acquisition"]["n_baseline"],
        iauc=config["semiquant"]["iauc_windows_s"],
        tic=config["tic"],
    resources:
        mem_mb=2000,
    conda:
        "../envs/dce.yaml"
    script:
        "../scripts/semiquant.py"
