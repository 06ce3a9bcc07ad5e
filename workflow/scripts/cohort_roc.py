"""Rule cohort_roc: ROC of every endpoint x predictor (and the LOPO logistic models'
out-of-fold probabilities), DeLong comparisons (dce.cohort.analysis)."""

from dce.cohort.analysis import PredictionResults, model_scores, roc_analysis
from dce.cohort.config import parse_config
from dce.cohort.frames import CohortFrames
from dce.io.jobs import job
from dce.io.results import read_results, write_results

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = parse_config(sm.params.cohort)
    frames = read_results(CohortFrames, sm.input)
    extra = model_scores(read_results(PredictionResults, sm.input).lesions)
    res = roc_analysis(frames.predictors, cfg, extra=extra)
    write_results(res, sm.output)
    for r in res.roc.itertuples():
        note = r.note if isinstance(r.note, str) else ""
        (log.warning if note else log.info)("ROC %s ~ %s: AUC %s %s", r.endpoint,
                                            r.predictor, r.auc, note)
