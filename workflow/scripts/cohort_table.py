"""Rule cohort_table: cohort table (lesion x session), normal marrow, change table and
the per-lesion predictor table (dce.cohort.frames), the map statistics of the cohort and
marrow tables in long format (dce.roi.cohort_long_table), and the exclusions table
(sessions left out after errors, dce.cohort.sessions; header only when none is). The PRM
fractions of the registered follow-ups (rule prm) join the cohort table."""

import pandas as pd

from dce import quality
from dce.cohort.config import parse_config
from dce.cohort.frames import cohort_frames
from dce.cohort.sessions import EXCLUSION_COLUMNS
from dce.io.jobs import job, write_tsv
from dce.io.results import write_results
from dce.io.tables import read_lesion_sheet, read_tsv
from dce.roi import cohort_long_table

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = parse_config(sm.params.cohort)
    excluded = pd.DataFrame(sm.params.exclusions, columns=list(EXCLUSION_COLUMNS))
    roi = [read_tsv(p) for p in sm.input.roi]
    lesions = read_lesion_sheet(sm.input.lesions)
    if len(excluded):    # only the lesions of the subjects analysed
        log.warning("%s", sm.params.sessions["note"])
        lesions = lesions[lesions["subject"].isin({str(s) for t in roi for s in t["subject"]})]
    prm = [read_tsv(p) for p in sm.input.prm]   # PRM of the registered follow-ups
    res = cohort_frames(roi, lesions, cfg, sessions_sheet=sm.params.sessions_sheet,
                        prm_tables=prm)
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
    write_tsv(cohort_long_table(res.cohort, res.marrow), sm.output.roi_long)
    write_tsv(excluded, sm.output.exclusions)
    log.info("cohort: %d lesion(s) of %d patient(s), %d lesion sessions, %d follow-up(s)",
             len(res.predictors), res.predictors["subject"].nunique(), len(res.cohort),
             len(res.changes))
