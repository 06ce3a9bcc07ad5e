# Pre-contrast T1 (T10) and M0 maps from the VFA series (or the fixed fallback T10), and the
# session's B1 factor on the DCE grid (sessions.tsv `b1_map` or the converted B1 series).


rule t1map:
    input:
        dce=ses("dce", "nii.gz"),
        record=ses("convert", "json"),
        b1=optional_session_path("b1_map"),
    output:
        t1=ses("T1map", "nii.gz"),
        m0=ses("M0map", "nii.gz"),
        b1=ses("B1map", "nii.gz"),
    log:
        ses_log("t1map"),
    benchmark:
        ses_bench("t1map")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1500,
        runtime=15,
    params:
        t1=config["t1"],
        b1=config["b1"],
    script:
        "../scripts/t1map.py"
