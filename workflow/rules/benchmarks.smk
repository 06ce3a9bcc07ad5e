# Wall time and memory of every per-session job (the rules' benchmark files), one table.


rule benchmark_summary:
    input:
        all_benchmarks,
    output:
        f"{RESULTS}/benchmarks/summary.tsv",
    log:
        f"{RESULTS}/logs/benchmark_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/benchmark_summary.tsv"
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=500,
        runtime=10,
    script:
        "../scripts/benchmark_summary.py"
