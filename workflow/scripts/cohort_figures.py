"""Rule cohort_figures: ROC curves with bootstrap bands, waterfall, paired pre/post lines
per endpoint, and the mean TIC per type (dce.figures), as PNG and PDF."""

import numpy as np
import pandas as pd
from _common import job

from dce import cohort as cl
from dce import figures, stats
from dce.semiquant import TICRule
from dce.tables import fmt_p

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = cl.parse_config(sm.params.cohort)
    frame = cl.read_tsv(sm.input.predictors)
    cohort = cl.read_tsv(sm.input.cohort)
    changes = cl.read_tsv(sm.input.changes)
    roc = cl.read_tsv(sm.input.roc)
    curves = cl.read_tsv(sm.input.curves)
    out = sm.output
    wf_name = cfg.figures.get("waterfall") or cfg.predictors[0].name
    wf = cfg.predictor(wf_name)
    post_session = str(cfg.figures.get("prepost_session", "last"))
    shown = cfg.figures.get("roc")

    for e in cfg.endpoints:
        # ROC curves with bands
        series = []
        sel = (roc["endpoint"] == e.name) & roc["auc"].notna()
        if shown is not None:
            sel &= roc["predictor"].isin(list(shown)) | (roc["kind"] == "model")
        for r in roc[sel].itertuples():
            c = curves[(curves["endpoint"] == e.name) & (curves["predictor"] == r.predictor)]
            cur, band = c[c["kind"] == "curve"], c[c["kind"] == "band"]
            series.append(figures.RocSeries(
                label=str(r.label), fpr=cur["fpr"], tpr=cur["tpr"], auc=float(r.auc),
                auc_lo=float(r.delong_lo), auc_hi=float(r.delong_hi),
                band_fpr=band["fpr"], band_lo=band["tpr_lo"], band_hi=band["tpr_hi"],
                youden=(1.0 - float(r.specificity), float(r.sensitivity))))
        if series:
            fig = figures.roc_figure(series, title=f"ROC: {e.title} (lesions; band: "
                                                   f"bootstrap 95%)", ci_label="DeLong 95% CI")
        else:
            notes = roc.loc[roc["endpoint"] == e.name, "note"].dropna()
            fig = cl.message_figure(f"ROC for {e.title} undefined: "
                                    f"{notes.iloc[0] if len(notes) else 'no data'}")
        cl.save_figure_formats(fig, [out[f"roc_{e.name}_png"], out[f"roc_{e.name}_pdf"]])

        # waterfall of the configured predictor
        cut = {r.name: r.threshold for r in cfg.rules if r.predictor == wf.name}
        fig = figures.waterfall_figure(frame[wf.name].to_numpy(float),
                                       frame[e.name].to_numpy(object), ylabel=wf.title,
                                       endpoint=e.title, cutoffs=cut,
                                       title=f"{wf.title} per lesion, by {e.title}")
        cl.save_figure_formats(fig, [out[f"waterfall_{e.name}_png"],
                                     out[f"waterfall_{e.name}_pdf"]])

        # paired pre/post lines
        panels = []
        for par in cfg.prepost_parameters:
            pv = cl.paired_values(cohort, changes, frame, par, post_session, e.name,
                                  exclude_flags=cfg.exclude_flags)
            pvals = {}
            for key in (1, 0):
                g = pv[pv["outcome"] == key]
                try:
                    res = cl.quiet(stats.paired_prepost, g["pre"].to_numpy(float),
                                    g["post"].to_numpy(float), name=par)
                    pvals[f"{e.name}={key}"] = f"p={fmt_p(res.p)}"
                except ValueError:
                    pass
            panels.append(figures.PairedPanel(
                title=par, pre=pv["pre"], post=pv["post"], outcome=pv["outcome"].to_numpy(object),
                pre_label="baseline", post_label=f"{post_session} follow-up"
                if post_session in ("first", "last") else post_session, p_values=pvals))
        if panels:
            fig = figures.prepost_figure(panels, endpoint=e.title,
                                         title="Baseline vs follow-up per lesion "
                                               "(Wilcoxon signed-rank p per group)")
        else:
            fig = cl.message_figure("no pre/post parameter configured")
        cl.save_figure_formats(fig, [out[f"prepost_{e.name}_png"], out[f"prepost_{e.name}_pdf"]])

    # mean TIC per type
    tic = pd.concat([cl.read_tsv(p) for p in sm.input.tic], ignore_index=True)
    mean = cl.tic_type_curves(tic, cohort)
    tcurves = [figures.TICTypeCurve(tic_type=str(t), t_s=g["t_s"], mean=g["mean"],
                                    sd=g["sd"], n=int(g["n"].iloc[0]))
               for t, g in mean.groupby("tic_type", sort=False)]
    if tcurves:
        fig = figures.tic_types_figure(tcurves, rule_text=TICRule(**sm.params.tic).describe(),
                                       title="Mean lesion TIC per type (all sessions)")
    else:
        fig = cl.message_figure("no classified TIC")
    cl.save_figure_formats(fig, [out.tic_png, out.tic_pdf])
    log.info("figures: %d endpoint(s), TIC types %s", len(cfg.endpoints),
             ", ".join(np.unique(mean["tic_type"]).tolist()) if len(mean) else "none")
