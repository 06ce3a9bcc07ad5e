"""Rule cohort_diagnostic: group summaries, Mann-Whitney U with rank-biserial r and
Holm/BH adjusted p, fixed (published) cut-off performance with Wilson CIs
(dce.cohort.diagnostic), as TSV, Markdown, LaTeX and HTML tables, and the group figure per
endpoint (dce.viz.groups)."""

import numpy as np

from dce.cohort.config import parse_config
from dce.cohort.diagnostic import (
    CAPTIONS,
    NOTES,
    diagnostic,
    display_groups,
    display_rules,
    group_names,
)
from dce.cohort.frames import CohortFrames
from dce.io.jobs import job
from dce.io.results import read_results, write_results
from dce.io.tables import save_figure_formats, write_text
from dce.viz.groups import GroupPanel, groups_figure
from dce.viz.tables import to_html, to_latex, to_markdown

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = parse_config(sm.params.cohort)
    frame = read_results(CohortFrames, sm.input).predictors
    res = diagnostic(frame, cfg)
    write_results(res, {k: sm.output[k] for k in ("groups", "rules")})
    title = cfg.study.title if cfg.study else ""
    sessions_note = sm.params.sessions["note"]
    for name, df in (("groups", display_groups(res.groups)),
                     ("rules", display_rules(res.rules))):
        caption = f"{title}: {CAPTIONS[name]}" if title else CAPTIONS[name]
        note = " ".join(n for n in (NOTES[name], sessions_note) if n)
        write_text(to_markdown(df, caption=caption, note=note), sm.output[f"{name}_md"])
        write_text(to_latex(df, caption=caption, label=f"tab:{name}", note=note),
                   sm.output[f"{name}_tex"])
        write_text(to_html(df, caption=caption, note=note), sm.output[f"{name}_html"])
    for e in cfg.endpoints:
        y = frame[e.name].to_numpy(dtype=float)
        g = res.groups[res.groups["endpoint"] == e.name]
        panels = []
        for r in g.itertuples():
            x = frame[r.predictor].to_numpy(dtype=float)
            cuts = {rule.name: rule.threshold for rule in cfg.rules
                    if rule.predictor == r.predictor}
            panels.append(GroupPanel(title=str(r.label), pos=x[y == 1], neg=x[y == 0],
                                     p=float(r.p), p_holm=float(r.p_holm),
                                     rank_biserial=float(r.rank_biserial), cutoffs=cuts))
        fig = groups_figure(panels, names=group_names(e), title=e.title)
        save_figure_formats(fig, [sm.output[f"groups_{e.name}_png"],
                                  sm.output[f"groups_{e.name}_pdf"]])
        n_sig = int(np.nansum(g["p_holm"].to_numpy(dtype=float) < cfg.alpha))
        log.info("groups %s: %d predictors, %d with Holm p < %s", e.name, len(g), n_sig,
                 cfg.alpha)
    for r in res.rules.itertuples():
        log.info("rule %s (%s): sensitivity %s, specificity %s", r.rule, r.endpoint,
                 r.sensitivity, r.specificity)
