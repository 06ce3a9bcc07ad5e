"""Rule cohort_report_tables: the cohort summary, pre/post, ROC, prediction and quality
tables as TSV (summary), Markdown, LaTeX and HTML (dce.tables).

Every table has a footnote with the rows excluded by ``cohort.exclude_flags``; the
summary and quality tables also explain each quality flag code (dce.quality)."""

from _common import job, write_tsv

from dce import cohort as cl
from dce import tables

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = cl.parse_config(sm.params.cohort)
    cohort = cl.read_tsv(sm.input.cohort)
    frame = cl.read_tsv(sm.input.predictors)
    changes = cl.read_tsv(sm.input.changes)
    summary = cl.cohort_summary(cohort, frame, changes, cfg, cfg.prepost_parameters)
    write_tsv(summary, sm.output.summary_tsv)
    qc_legend = cl.quality_note(cohort, changes, cfg, legend=True)
    qc_count = cl.quality_note(cohort, changes, cfg, legend=False)
    log.info("quality: %s", qc_count)
    shown = {
        "summary": (summary, "Cohort summary by endpoint group"),
        "prepost": (cl.display_prepost(cl.read_tsv(sm.input.paired),
                                       cl.read_tsv(sm.input.between)),
                    "Change from baseline by endpoint group: median [IQR] percent change, "
                    "Wilcoxon signed-rank p within groups, Mann-Whitney p between groups"),
        "roc": (cl.display_roc(cl.read_tsv(sm.input.roc)),
                "ROC analysis per endpoint and predictor: AUC with DeLong and bootstrap "
                "95% CIs; sensitivity, specificity, PPV, NPV (Wilson 95% CIs) at the "
                "Youden cut-off chosen on the whole cohort (apparent, optimistic)"),
        "delong": (cl.display_delong(cl.read_tsv(sm.input.delong)),
                   "DeLong test of paired AUCs"),
        "predictions": (cl.display_predictions(cl.read_tsv(sm.input.pred_summary)),
                        "Predictions: fixed rules, leave-one-patient-out Youden cut-offs "
                        "and logistic models (lesion and patient level, Wilson 95% CIs)"),
        "lead_time": (cl.display_lead(cl.read_tsv(sm.input.lead_summary)),
                      "Lead time of the DCE-based call before the event on conventional "
                      "MRI (days)"),
        "quality": (cl.display_quality(cohort, cfg),
                    "Quality per session: T10 source, AIF source and QC, failed fits and "
                    "QC flags of the lesions"),
    }
    for name, (df, caption) in shown.items():
        qc = qc_legend if name in ("summary", "quality") else qc_count
        note = " ".join(n for n in (cl.TABLE_NOTES.get(name), qc) if n)
        cl.write_text(tables.to_markdown(df, caption=caption, note=qc),
                      getattr(sm.output, f"{name}_md"))
        cl.write_text(tables.to_latex(df, caption=caption, label=f"tab:{name}", note=qc),
                      getattr(sm.output, f"{name}_tex"))
        cl.write_text(tables.to_html(df, caption=caption, note=note),
                      getattr(sm.output, f"{name}_html"))
    log.info("tables: %s", ", ".join(shown))
