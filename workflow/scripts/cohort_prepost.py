"""Rule cohort_prepost: paired pre/post statistics by outcome group (Wilcoxon) and
between groups (Mann-Whitney)."""

from _common import job, write_tsv

from dce import cohort as cl

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = cl.parse_config(sm.params.cohort)
    changes = cl.read_tsv(sm.input.changes)
    paired, between = cl.prepost(changes, cfg, cfg.prepost_parameters)
    write_tsv(paired, sm.output.paired)
    write_tsv(between, sm.output.between)
    log.info("pre/post: %d paired and %d between-group comparisons", len(paired),
             len(between))
