# Semi-quantitative (model-free) maps from the signal (enhancement, slopes, IAUC, TIC
# type), then lesion and normal-marrow statistics, mean TICs, and the session's figures
# (TIC, parameter maps, and the AIF QC figure from the kinetics job's AIF files: drawn here,
# the one job that imports matplotlib). One job: the ROI
# statistics read the semi-quantitative maps, and computing them takes a fraction of a
# second, so a separate job would only add a process start and a second read of the DCE
# image (a change of the fit now rewrites the semi-quantitative maps too, same values).

ROI_MAPS = roi_map_names(config["semiquant"]["iauc_windows_s"])  # dce.registry


rule roi:
    input:
        **map_outputs([name for name in ROI_MAPS if name not in SEMIQUANT_MAPS]),
        dce=ses("dce", "nii.gz"),
        t1=ses("T1map", "nii.gz"),  # its JSON sidecar gives qc_t10_source
        aif_qc=ses("aif", "json"),  # qc_aif_source, qc_aif_passed; the AIF QC figure
        aif_tsv=ses("aif", "tsv"),  # the AIF QC figure
        aif_voxels=ses("aifvoxels", "nii.gz"),  # the AIF QC figure
        lesion_roi=session_path("lesion_roi"),
        marrow_roi=optional_session_path("marrow_roi"),
    output:
        **map_outputs(SEMIQUANT_MAPS),
        roi=ses("roi", "tsv"),
        roi_long=ses("desc-long_roi", "tsv"),  # the map statistics of roi.tsv, long format
        tic=ses("tic", "tsv"),
        tic_png=report(
            ses("tic", "png"),
            caption="../report/session_tic.rst",
            category="8. Sessions",
            subcategory="Time-intensity curves",
            labels={"session": "{subject} / {session}", "figure": "TIC"},
        ),
        aif_png=report(
            ses("aif", "png"),
            caption="../report/session_aif.rst",
            category="8. Sessions",
            subcategory="AIF QC",
            labels={"session": "{subject} / {session}", "figure": "AIF"},
        ),
        maps_png=report(
            ses("maps", "png"),
            caption="../report/session_maps.rst",
            category="8. Sessions",
            subcategory="Parameter maps",
            labels={"session": "{subject} / {session}", "figure": "maps"},
        ),
    log:
        ses_log("roi"),
    benchmark:
        ses_bench("roi")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        lesions=expected_lesions,
        days_from_rt=lambda wc: float(session_row(wc)["days_from_rt"]),
        map_names=ROI_MAPS,
        semiquant_maps=SEMIQUANT_MAPS,
        n_baseline=config["acquisition"]["n_baseline"],
        iauc=config["semiquant"]["iauc_windows_s"],
        tic=config["tic"],
        rslope_from=config["roi"]["rslope_from"],
        figure_maps=config["roi"]["figure_maps"],
        max_fit_failed_fraction=config["cohort"]["max_fit_failed_fraction"],
        map_significant_bits=config["outputs"]["map_significant_bits"],
    script:
        "../scripts/roi.py"
