# Voxel-wise tracer-kinetic fit (AIF-dependent), and the one-off numba compilation of its
# kernels that every fit job waits for.


rule numba_warmup:
    output:
        WARMUP,
    log:
        f"{RESULTS}/logs/numba_warmup.log",
    benchmark:
        f"{RESULTS}/benchmarks/numba_warmup.tsv"
    priority: 100
    resources:
        mem_mb=1000,
        runtime=20,
    conda:
        "../envs/dce.yaml"
    script:
        "../scripts/numba_warmup.py"


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
    threads: 2  # numba-parallel kernels; on SLURM also the job's CPUs (--cpus-per-task)
    resources:
        # delay fit: + ~2x the float32 volume (neighbourhood curves, result rows)
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/dce.yaml"
    script:
        "../scripts/fit.py"
