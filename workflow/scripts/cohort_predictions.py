"""Rule cohort_predictions: fixed cut-off rules, LOPO Youden cut-offs and LOPO logistic
models per endpoint (lesion and patient level), lead times."""

import pandas as pd
from _common import job, write_tsv

from dce import cohort as cl

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = cl.parse_config(sm.params.cohort)
    frame = cl.read_tsv(sm.input.predictors)
    cohort = cl.read_tsv(sm.input.cohort)
    changes = cl.read_tsv(sm.input.changes)
    res = cl.predictions(frame, cohort, changes, cfg, log=log)

    def cat(parts: list[pd.DataFrame]) -> pd.DataFrame:
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["endpoint", "method", "model"])

    lead = cat(res.lead)
    write_tsv(cat(res.lesions), sm.output.lesions)
    write_tsv(cat(res.patients), sm.output.patients)
    write_tsv(cat(res.folds), sm.output.folds)
    write_tsv(pd.DataFrame(res.summary).reindex(columns=cl.SUMMARY_COLS), sm.output.summary)
    write_tsv(lead, sm.output.lead)
    write_tsv(cl.lead_summary(lead), sm.output.lead_summary)
    log.info("predictions: %d model(s) x endpoint", len(res.summary) // 2)
