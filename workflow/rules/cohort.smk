# Cohort analysis over every session: cohort and change tables, predictions (fixed rules,
# LOPO cut-offs, LOPO logistic models), ROC per endpoint x predictor, pre/post statistics,
# figures and tables, and the Snakemake report (`snakemake --report report.html`).
# Endpoints, predictors and rules come from config["cohort"] (config/README.md).


include: "cohort_common.smk"


wildcard_constraints:
    lesion="[0-9]+",


rule cohort_table:
    input:
        roi=all_roi_tables,
        prm=all_prm_tables,  # prm.smk (empty when prm or registration is disabled)
        lesions=config["lesions"],
    output:
        **cohort_outputs_of(COHORT_FRAMES),
        roi_long=ROI_LONG,
        exclusions=report(
            EXCLUSIONS,
            caption="../report/exclusions.rst",
            category="6. Data",
        ),
    log:
        cohort_log("cohort_table"),
    benchmark:
        cohort_bench("cohort_table")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        cohort=COHORT_CFG,
        sessions_sheet=config["sessions"],
        exclusions=cohort_exclusions,
        sessions=cohort_sessions,
    script:
        "../scripts/cohort_table.py"


rule cohort_predictions:
    input:
        **cohort_inputs_of(COHORT_FRAMES),
    output:
        **cohort_outputs_of(PREDICTION_RESULTS),
    log:
        cohort_log("cohort_predictions"),
    benchmark:
        cohort_bench("cohort_predictions")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        cohort=COHORT_CFG,
    script:
        "../scripts/cohort_predictions.py"


rule cohort_roc:
    input:
        **cohort_inputs_of(COHORT_FRAMES, PREDICTION_RESULTS),
    output:
        **cohort_outputs_of(ROC_RESULTS),
    log:
        cohort_log("cohort_roc"),
    benchmark:
        cohort_bench("cohort_roc")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        cohort=COHORT_CFG,
    script:
        "../scripts/cohort_roc.py"


rule cohort_prepost:
    input:
        **cohort_inputs_of(COHORT_FRAMES),
    output:
        **cohort_outputs_of(PREPOST_RESULTS),
    log:
        cohort_log("cohort_prepost"),
    benchmark:
        cohort_bench("cohort_prepost")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        cohort=COHORT_CFG,
    script:
        "../scripts/cohort_prepost.py"


rule cohort_diagnostic:
    input:
        **cohort_inputs_of(COHORT_FRAMES),
    output:
        **_diagnostic_outputs(),
    log:
        cohort_log("cohort_diagnostic"),
    benchmark:
        cohort_bench("cohort_diagnostic")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        cohort=COHORT_CFG,
        sessions=cohort_sessions,
    script:
        "../scripts/cohort_diagnostic.py"


rule cohort_report_tables:
    input:
        **cohort_inputs_of(COHORT_FRAMES, PREPOST_RESULTS, ROC_RESULTS, PREDICTION_RESULTS),
        sessions_sheet=config["sessions"],  # the params read the sheets (demo: demo_cohort writes it)
    output:
        **_table_outputs(),
        summary_tsv=f"{COHORT}/tables/summary.tsv",
    log:
        cohort_log("cohort_report_tables"),
    benchmark:
        cohort_bench("cohort_report_tables")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        cohort=COHORT_CFG,
        sessions=cohort_sessions,
    script:
        "../scripts/cohort_report_tables.py"


rule cohort_figures:
    input:
        **cohort_inputs_of(COHORT_FRAMES, ROC_RESULTS),
        tic=all_tic_tables,
    output:
        **_figure_outputs(),
    log:
        cohort_log("cohort_figures"),
    benchmark:
        cohort_bench("cohort_figures")
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1500,
        runtime=15,
    params:
        cohort=COHORT_CFG,
        tic_rule=TICRule(**config["tic"]).describe(),  # for the report caption
    script:
        "../scripts/cohort_figures.py"


rule cohort_maps:
    input:
        unpack(_lesion_maps_inputs),
    output:
        png=report(
            f"{COHORT}/maps/sub-{{subject}}_lesion-{{lesion}}_maps.png",
            caption="../report/lesion_maps.rst",
            category="7. Lesion maps",
            labels={"lesion": "{subject} / {lesion}"},
        ),
        pdf=f"{COHORT}/maps/sub-{{subject}}_lesion-{{lesion}}_maps.pdf",
    log:
        f"{RESULTS}/logs/{COHORT_ID}/cohort_maps/sub-{{subject}}_lesion-{{lesion}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{COHORT_ID}/cohort_maps/sub-{{subject}}_lesion-{{lesion}}.tsv"
    conda:
        "../envs/dce.yaml"
    resources:
        mem_mb=1500,
        runtime=15,
    params:
        sessions=lambda wc: _subject_sessions(wc.subject)[0],
        days=lambda wc: _subject_sessions(wc.subject)[1],
        maps=COHORT_CFG["figures"]["maps"],
        margin_mm=COHORT_CFG["figures"]["margin_mm"],
        n_baseline=config["acquisition"]["n_baseline"],
        level=lambda wc: str(_lesion_row(wc).get("level", "")),
        roi_name=lambda wc: str(_lesion_row(wc).get("roi_name", "")),  # dce.io.rois
        outcome=_lesion_outcome,
    script:
        "../scripts/cohort_maps.py"
