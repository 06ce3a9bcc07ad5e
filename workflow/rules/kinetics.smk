# The converted DCE -> T1 maps, concentration, arterial input function, tracer-kinetic fit,
# in one job (workflow/scripts/kinetics.py):
#   1. the session's B1 factor on the DCE grid (sessions.tsv `b1_map` or the converted B1
#      series), pre-contrast T1 (T10) and M0 maps from the VFA series (or the fixed
#      fallback T10), and signal -> contrast agent concentration (SPGR signal equation);
#   2. the automatic aortic AIF with QC, population fallback, delay (aif.tsv/json, the
#      voxel mask; the QC figure aif.png is drawn by the rule roi, with the other figures);
#   3. the voxel-wise fit of the configured model (the parameter maps).
# Why one job: every step needs the one before it, and the 4-D concentration between them
# is a pure intermediate. Separate jobs recomputed it on any rerun of the fit anyway (it
# was a temp() file), so merging costs nothing in rerun granularity (a change of the AIF
# or model settings reruns the T1 and concentration steps, as before: a fraction of a
# second), and it saves two process starts with their imports, two reads of the DCE image
# and the write and read of the 4-D concentration (seconds of CPU per session at the
# clinical size). The concentration is held in memory; its sidecar `_conc.json` is written
# as the record, the volume itself only with outputs.keep_intermediates (`_conc.nii.gz`).
# The steps use the values a rerun of a separate step would read (the written T1 maps and
# AIF table), so the outputs are the same as from separate jobs.
# The conversion stays a job of its own (reading the DICOM is the slow, rarely rerun step);
# so does the rule roi (its settings, the ROIs and figures, change more often than the fit).
# The rule roi draws all three session figures, the AIF QC figure too (from aif.tsv/json
# and the voxel mask): the only job importing matplotlib (about 0.5 s CPU per import).


rule kinetics:
    input:
        dce=ses("dce", "nii.gz"),
        record=ses("convert", "json"),
        b1=optional_session_path("b1_map"),
        lesion_roi=session_path("lesion_roi"),
        marrow_roi=optional_session_path("marrow_roi"),
        aorta=optional_session_path(config["aif"]["mask_column"]),
    output:
        **map_outputs(FIT_MAPS),  # the fit's maps
        # the 4-D concentration, only if kept (otherwise held in memory)
        **({"conc": CONC} if config["outputs"]["keep_intermediates"] else {}),
        t1=ses("T1map", "nii.gz"),
        m0=ses("M0map", "nii.gz"),
        b1=ses("B1map", "nii.gz"),
        status=ses("concstatus", "nii.gz"),
        aif_tsv=ses("aif", "tsv"),
        aif_qc=ses("aif", "json"),
        aif_voxels=ses("aifvoxels", "nii.gz"),
    log:
        ses_log("kinetics"),
    benchmark:
        ses_bench("kinetics")
    conda:
        "../envs/dce.yaml"
    threads: 2  # the fit kernels (dce._threads; BLAS on one, kinetics.py); on SLURM the job CPUs
    resources:
        # delay fit: + ~2x the float32 volume (neighbourhood curves, result rows); the
        # concentration (float32, 4-D) is held in memory
        mem_mb=2000,
        runtime=45,
    params:
        # T1 and concentration
        t1=config["t1"],
        b1=config["b1"],
        r1=config["acquisition"]["r1_per_mM_per_s"],
        n_baseline=config["acquisition"]["n_baseline"],
        m0=config["concentration"]["m0"],
        conc=CONC,  # the concentration's path (its sidecar; the volume if kept)
        # AIF
        aif=config["aif"],
        hematocrit=session_hematocrit,
        lesions=expected_lesions,  # labels and ROI names of the spine prior's lesion ROI
        # fit: the whole model section, defaults filled in from the schema by the validation
        model=config["model"],
        fit_delay=config["aif"]["delay"] == "fit",
        fit_maps=FIT_MAPS,
        map_significant_bits=config["outputs"]["map_significant_bits"],
    script:
        "../scripts/kinetics.py"
