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
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1000,
        runtime=20,
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
    conda:
        "../envs/dce.yaml"
    threads: 2  # numba-parallel kernels; on SLURM also the job's CPUs (--cpus-per-task)
    resources:
        # delay fit: + ~2x the float32 volume (neighbourhood curves, result rows)
        mem_mb=2000,
        runtime=30,
    params:
        # the whole model section, defaults filled in from the schema by the validation
        model=config["model"],
        fit_delay=config["aif"]["delay"] == "fit",
    script:
        "../scripts/fit.py"
