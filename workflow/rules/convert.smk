# DICOM -> NIfTI: the DCE series and, when the session has them, the VFA series and a B1 map.


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
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1500,
        runtime=15,
    params:
        dce_pattern=config["convert"]["dce_pattern"],
        vfa_pattern=config["convert"]["vfa_pattern"],
        b1_pattern=config["convert"]["b1_pattern"],
    script:
        "../scripts/convert.py"
