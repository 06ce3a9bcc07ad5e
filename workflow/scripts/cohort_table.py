"""Rule cohort_table: cohort table (lesion x session), normal marrow, change table and
the per-lesion predictor table (dce.cohort.frames)."""

from dce import quality
from dce.cohort.config import parse_config
from dce.cohort.frames import cohort_frames
from dce.io.jobs import job
from dce.io.results import write_results
from dce.io.tables import read_lesion_sheet, read_tsv

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = parse_config(sm.params.cohort)
    res = cohort_frames([read_tsv(p) for p in sm.input.roi],
                        read_lesion_sheet(sm.input.lesions), cfg,
                        sessions_sheet=sm.params.sessions_sheet)
    flagged = {k: v for k, v in quality.flag_counts(res.cohort).items() if v}
    log.info("quality flags of the lesion sessions: %s",
             ", ".join(f"{k} {v}" for k, v in flagged.items()) or "none")
    if cfg.exclude_flags:
        n = quality.exclusion_counts(res.cohort, res.changes, cfg.exclude_flags)
        log.warning("cohort.exclude_flags %s: %d of %d lesion sessions and %d of %d "
                    "follow-up changes (%d lesion(s)) excluded from the predictors, ROC, "
                    "predictions and pre/post statistics", list(cfg.exclude_flags),
                    n["lesion_sessions"], n["n_lesion_sessions"], n["followups"],
                    n["n_followups"], n["lesions"])
    write_results(res, sm.output)
    log.info("cohort: %d lesion(s) of %d patient(s), %d lesion sessions, %d follow-up(s)",
             len(res.predictors), res.predictors["subject"].nunique(), len(res.cohort),
             len(res.changes))
