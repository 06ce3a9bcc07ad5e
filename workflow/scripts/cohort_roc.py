"""Rule cohort_roc: ROC of every endpoint x predictor (and the LOPO logistic models'
out-of-fold probabilities), DeLong comparisons."""

from _common import job, write_tsv

from dce import cohort as cl

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = cl.parse_config(sm.params.cohort)
    frame = cl.read_tsv(sm.input.predictors)
    extra = cl.model_scores(cl.read_tsv(sm.input.pred_lesions))
    roc, curves, delong = cl.roc_analysis(frame, cfg, extra=extra)
    write_tsv(roc, sm.output.roc)
    write_tsv(curves, sm.output.curves)
    write_tsv(delong, sm.output.delong)
    for r in roc.itertuples():
        note = r.note if isinstance(r.note, str) else ""
        (log.warning if note else log.info)("ROC %s ~ %s: AUC %s %s", r.endpoint,
                                            r.predictor, r.auc, note)
