# DICOM -> NIfTI (DCE, and VFA when the session has it), T1 map, concentration.


rule convert:
    input:
        dicom=session_path("dicom_dir"),
    output:
        dce=ses("dce", "nii.gz"),
        dce_json=ses("dce", "json"),
        record=ses("convert", "json"),
    log:
        ses_log("convert"),
    benchmark:
        ses_bench("convert")
    params:
        dce_pattern=config["convert"]["dce_pattern"],
        vfa_pattern=config["convert"]["vfa_pattern"],
    resources:
        mem_mb=1500,
    conda:
        "../envs/dce.yaml"
    script:
        "../scripts/convert.py"


rule t1map:
    input:
        dce=ses("dce", "nii.gz"),
        record=ses("convert", "json"),
    output:
        t1=ses("T1map", "nii.gz"),
        m0=ses("M0map", "nii.gz"),
    log:
        ses_log("t1map"),
    benchmark:
        ses_bench("t1map")
    params:
        t1=config["t1"],
    resources:
        mem_mb=1500,
    conda:
        "../envs/dce.yaml"
    script:
        "../scripts/t1map.py"


rule concentration:
    input:
        dce=ses("dce", "nii.gz"),
        t1=ses("T1map", "nii.gz"),
        m0=ses("M0map", "nii.gz"),
    output:
        conc=ses("conc", "nii.gz"),
        status=ses("concstatus", "nii.gz"),
    log:
        ses_log("concentration"),
    benchmark:
        ses_bench("concentration")
    params:
        r1=config["acquisition"]["r1_per_mM_per_s"],
        n_baseline=config["acquisition"]["n_baseline"],
        m0=config["concentration"]["m0"],
    resources:
        mem_mb=1500,
    conda:
        "../envs/dce.yaml"
    script:
        "../scripts/concentration.py"
