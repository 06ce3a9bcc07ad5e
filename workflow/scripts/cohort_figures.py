"""Rule cohort_figures: ROC curves with bootstrap bands, waterfall, paired pre/post lines
per endpoint, and the mean TIC per type (dce.viz.cohort), as PNG (300 dpi) and vector
PDF; the TIC rule is in the figure's report caption (params.tic_rule)."""

import pandas as pd

from dce.cohort.analysis import RocResults
from dce.cohort.config import parse_config
from dce.cohort.frames import CohortFrames
from dce.io.jobs import job
from dce.io.results import read_results
from dce.io.tables import read_tsv, save_figure_formats
from dce.viz.cohort import cohort_figures

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = parse_config(sm.params.cohort)
    tic = pd.concat([read_tsv(p) for p in sm.input.tic], ignore_index=True)
    figures = cohort_figures(read_results(CohortFrames, sm.input),
                             read_results(RocResults, sm.input), tic, cfg)
    for name, fig in figures:
        save_figure_formats(fig, [sm.output[f"{name}_png"], sm.output[f"{name}_pdf"]])
        log.info("figure %s", name)
