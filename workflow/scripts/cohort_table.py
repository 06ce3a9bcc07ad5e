"""Rule cohort_table: cohort table (lesion x session), normal marrow, change table and
the per-lesion predictor table (dce/cohort.py)."""

from _common import job, write_tsv

from dce import cohort as cl
from dce import quality

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = cl.parse_config(sm.params.cohort)
    lesions = cl.read_lesion_sheet(sm.input.lesions)
    cohort, marrow = cl.cohort_tables([cl.read_tsv(p) for p in sm.input.roi], lesions)
    try:
        changes = cl.changes(cohort, cfg, lesions)
    except ValueError as exc:
        if "no baseline session" not in str(exc):
            raise
        raise ValueError(f"{exc}: add the baseline session of each lesion to "
                         f"{sm.params.sessions_sheet} (or set cohort.baseline_session: null "
                         "to use each lesion's earliest session)") from None
    frame = cl.predictor_frame(cohort, changes, lesions, cfg)
    flagged = {k: v for k, v in quality.flag_counts(cohort).items() if v}
    log.info("quality flags of the lesion sessions: %s",
             ", ".join(f"{k} {v}" for k, v in flagged.items()) or "none")
    if cfg.exclude_flags:
        n = quality.exclusion_counts(cohort, changes, cfg.exclude_flags)
        log.warning("cohort.exclude_flags %s: %d of %d lesion sessions and %d of %d "
                    "follow-up changes (%d lesion(s)) excluded from the predictors, ROC, "
                    "predictions and pre/post statistics", list(cfg.exclude_flags),
                    n["lesion_sessions"], n["n_lesion_sessions"], n["followups"],
                    n["n_followups"], n["lesions"])
    write_tsv(cohort, sm.output.cohort)
    write_tsv(marrow, sm.output.marrow)
    write_tsv(changes, sm.output.changes)
    write_tsv(frame, sm.output.predictors)
    log.info("cohort: %d lesion(s) of %d patient(s), %d lesion sessions, %d follow-up(s)",
             len(frame), frame["subject"].nunique(), len(cohort), len(changes))
