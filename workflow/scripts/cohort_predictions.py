"""Rule cohort_predictions: fixed cut-off rules, LOPO Youden cut-offs and LOPO logistic
models per endpoint (lesion and patient level), lead times (dce.cohort.analysis)."""

from dce.cohort.analysis import predictions
from dce.cohort.config import parse_config
from dce.cohort.frames import CohortFrames
from dce.io.jobs import job
from dce.io.results import read_results, write_results

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = parse_config(sm.params.cohort)
    res = predictions(read_results(CohortFrames, sm.input), cfg, log=log)
    write_results(res, sm.output)
    log.info("predictions: %d model(s) x endpoint", len(res.summary) // 2)
