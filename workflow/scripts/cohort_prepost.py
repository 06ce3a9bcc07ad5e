"""Rule cohort_prepost: paired pre/post statistics by outcome group (Wilcoxon) and
between groups (Mann-Whitney) (dce.cohort.analysis)."""

from dce.cohort.analysis import prepost
from dce.cohort.config import parse_config
from dce.cohort.frames import CohortFrames
from dce.io.jobs import job
from dce.io.results import read_results, write_results

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = parse_config(sm.params.cohort)
    res = prepost(read_results(CohortFrames, sm.input).changes, cfg, cfg.prepost_parameters)
    write_results(res, sm.output)
    log.info("pre/post: %d paired and %d between-group comparisons", len(res.paired),
             len(res.between))
