# Voxel-wise tracer-kinetic fit (AIF-dependent). The fit kernels are compiled on first
# use and cached (dce.fit).


rule fit:
    input:
        conc=CONC,
        aif=ses("aif", "tsv"),
    output:
        **map_outputs(FIT_MAPS),
    log:
        ses_log("fit"),
    benchmark:
        ses_bench("fit")
    conda:
        "../envs/dce.yaml"
    threads: 2  # threads of the fit kernels (dce._threads); on SLURM the job CPUs
    resources:
        # delay fit: + ~2x the float32 volume (neighbourhood curves, result rows)
        mem_mb=2000,
        runtime=30,
    params:
        # the whole model section, defaults filled in from the schema by the validation
        model=config["model"],
        fit_delay=config["aif"]["delay"] == "fit",
        map_significant_bits=config["outputs"]["map_significant_bits"],
    script:
        "../scripts/fit.py"
