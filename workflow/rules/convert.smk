# Image input of a session -> DCE (and VFA, B1 map) NIfTI + JSON sidecars: a DICOM
# folder (dicom_dir) or NIfTI + JSON sidecars (dce_nifti, vfa_nifti, dce_times_s; dcm2niix/BIDS).


rule convert:
    input:
        unpack(session_images),
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
        source=session_image_source,
        dce_pattern=config["convert"]["dce_pattern"],
        vfa_pattern=config["convert"]["vfa_pattern"],
        b1_pattern=config["convert"]["b1_pattern"],
    script:
        "../scripts/convert.py"
