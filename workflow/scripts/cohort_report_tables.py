"""Rule cohort_report_tables: the cohort summary, pre/post, ROC, prediction and quality
tables as TSV (summary), Markdown, LaTeX and HTML (dce.cohort.display).

Every table has a footnote with the rows excluded by ``cohort.exclude_flags``; the
summary and quality tables also explain each quality flag code (dce.quality)."""

from dce.cohort.analysis import PredictionResults, PrePostResults, RocResults
from dce.cohort.config import parse_config
from dce.cohort.display import render_report_tables, report_tables
from dce.cohort.frames import CohortFrames
from dce.io.jobs import job, write_tsv
from dce.io.results import read_results
from dce.io.tables import write_text

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = parse_config(sm.params.cohort)
    frames = read_results(CohortFrames, sm.input)
    shown = report_tables(frames, read_results(PrePostResults, sm.input),
                          read_results(RocResults, sm.input),
                          read_results(PredictionResults, sm.input), cfg)
    write_tsv(shown["summary"][0], sm.output.summary_tsv)
    note = sm.params.sessions["note"]    # sessions excluded after errors (or "")
    for name, text in render_report_tables(shown, frames, cfg, sessions_note=note).items():
        write_text(text, sm.output[name])
    log.info("tables: %s", ", ".join(shown))
