"""Figures of the cohort analysis (the cohort part of :mod:`dce.viz`; matplotlib, no
file I/O).

* :func:`roc_figure` -- empirical ROC curves of several predictors with pointwise
  bootstrap confidence bands and the AUC (95% CI) in the legend;
* :func:`waterfall_figure` -- one bar per lesion (e.g. percent change of Vp), sorted,
  coloured by outcome, with optional cut-off lines;
* :func:`prepost_figure` -- paired baseline / follow-up values per lesion, one line per
  lesion coloured by outcome, group medians bold;
* :func:`tic_types_figure` -- mean (+- SD) enhancement curve per TIC type;
* :func:`lesion_maps_figure` -- baseline vs follow-up parameter maps of one lesion over
  the anatomy, cropped around it (the style of the review's Fig 4/5;
  :func:`lesion_section` and :func:`crop_sections` cut the sections);
* :func:`message_figure` -- a small figure carrying only a message;
* :func:`cohort_figures` -- every figure of the ``cohort_figures`` rule from the cohort
  frames and ROC results.

Every figure is a :class:`matplotlib.figure.Figure` built without pyplot (no global
state; saving renders with the Agg backend); the drawing functions take plain arrays,
:func:`cohort_figures` the result objects of :mod:`dce.cohort`. Figures never
carry patient, subject or session identifiers: lesions are anonymous bars/lines or are
named by label and vertebral level only, sessions by name (``pre``, ``fu1``) or day.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from numpy.typing import ArrayLike, NDArray

from dce import stats
from dce.cohort.analysis import RocResults, quiet
from dce.cohort.config import CohortConfig, Endpoint
from dce.cohort.display import column_label, display_scale
from dce.cohort.frames import CohortFrames, paired_values, tic_type_curves
from dce.viz.sections import sagittal_section, to_ras
from dce.viz.style import (
    OKABE_ITO,
    ONE_COLUMN_MM,
    OVERLAY_FLOOR,
    TWO_COLUMN_MM,
    figsize_mm,
    journal,
    overlay_cmap,
)
from dce.viz.tables import fmt_p_eq, fmt_range

__all__ = [
    "OUTCOME_COLOURS",
    "LesionMapCell",
    "LesionMapRow",
    "PairedPanel",
    "RocSeries",
    "TICTypeCurve",
    "cohort_figures",
    "crop_sections",
    "lesion_maps_figure",
    "lesion_section",
    "message_figure",
    "prepost_figure",
    "roc_figure",
    "tic_types_figure",
    "waterfall_figure",
]

#: Outcome colours (Okabe-Ito): positive (e.g. recurrence), negative (control), unknown.
OUTCOME_COLOURS = {1: OKABE_ITO["vermillion"], 0: OKABE_ITO["blue"], None: OKABE_ITO["grey"]}
_SERIES_COLOURS = tuple(OKABE_ITO[k] for k in (
    "blue", "vermillion", "bluish_green", "reddish_purple", "orange", "sky_blue", "black",
    "grey"))
_TIC_COLOURS = {"A": OKABE_ITO["grey"], "B": OKABE_ITO["sky_blue"],
                "C": OKABE_ITO["bluish_green"], "D": OKABE_ITO["orange"],
                "E": OKABE_ITO["vermillion"], "marrow": OKABE_ITO["black"]}
#: Colour of the lesion outline over the anatomy and the (viridis) parameter map.
LESION_OUTLINE = "#FF2A00"
#: Colour map of parameter maps (perceptually uniform, colour-blind safe); NaN transparent.
MAP_CMAP = "viridis"


def _print_minus(text: str) -> str:
    """A configured name for print: a hyphen before a digit (``-20``) as a minus sign."""
    return re.sub(r"(?<![\w.])-(?=\d)", "\u2212", text)


def _wrap_title(text: str, width_mm: float, pt: float = 8.0) -> str:
    """Wrap a title to the figure width (about 0.5 em per character)."""
    chars = max(int(width_mm / (pt * 0.5 * 0.3528)), 20)
    return "\n".join(textwrap.wrap(text, chars)) or text


def _f64(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _outcome_key(v: Any) -> int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if np.isnan(f):
        return None
    return 1 if f == 1 else 0


def _outcome_handles(names: Mapping[int | None, str], present: set[int | None]) -> list[Any]:
    return [Patch(color=OUTCOME_COLOURS[k], label=names.get(k, str(k)))
            for k in (1, 0, None) if k in present]


def _default_names(endpoint: str) -> dict[int | None, str]:
    return {1: endpoint, 0: f"no {endpoint}", None: f"{endpoint} unknown"}


# --------------------------------------------------------------------------- ROC


@dataclass(frozen=True)
class RocSeries:
    """One predictor's ROC curve.

    ``fpr``/``tpr``: the empirical curve (e.g. :func:`dce.stats.roc_curve`);
    ``band_fpr``, ``band_lo``, ``band_hi``: a pointwise confidence band of the TPR
    (optional); ``auc``, ``auc_lo``, ``auc_hi``: shown in the legend.
    """

    label: str
    fpr: ArrayLike
    tpr: ArrayLike
    auc: float
    auc_lo: float | None = None
    auc_hi: float | None = None
    band_fpr: ArrayLike | None = None
    band_lo: ArrayLike | None = None
    band_hi: ArrayLike | None = None
    youden: tuple[float, float] | None = None     # (fpr, tpr) of the Youden cut-off


@journal
def roc_figure(series: Sequence[RocSeries], *, title: str = "",
               ci_label: str = "95% CI") -> Figure:
    """ROC curves with confidence bands (module notes), one column wide; the legend
    (one entry per series) is under the axes. Up to 8 series; with more than two, only
    the first series' band is drawn (overlapping bands hide each other)."""
    if not series:
        raise ValueError("roc_figure: no ROC series")
    fig = Figure(figsize=figsize_mm(ONE_COLUMN_MM, 84 + 7.5 * len(series)),
                 layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls=":", color="#888888", lw=0.8)
    for k, s in enumerate(series):
        c = _SERIES_COLOURS[k % len(_SERIES_COLOURS)]
        # overlapping bands of many series mix into an unreadable tint: the first only
        band = k == 0 or len(series) <= 2
        if band and s.band_fpr is not None and s.band_lo is not None \
                and s.band_hi is not None:
            ax.fill_between(_f64(s.band_fpr), _f64(s.band_lo), _f64(s.band_hi), color=c,
                            alpha=0.12, step="post", lw=0)
        lab = f"{s.label}\nAUC {s.auc:.2f}"
        if s.auc_lo is not None and s.auc_hi is not None and np.isfinite(s.auc_lo) \
                and np.isfinite(s.auc_hi):
            lab += f" ({fmt_range(s.auc_lo, s.auc_hi, fixed=2)})"
        # earlier series drawn wider, so that identical curves stay visible
        lw = 1.0 + 1.6 * (len(series) - 1 - k) / max(len(series) - 1, 1)
        ax.plot(_f64(s.fpr), _f64(s.tpr), color=c, lw=lw, label=lab, alpha=0.9)
        if s.youden is not None:
            ax.plot([s.youden[0]], [s.youden[1]], marker="o", ms=4, mfc="white", mec=c,
                    mew=1.0)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity")
    ax.set_ylabel("sensitivity")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=1, alignment="left",
               title=f"AUC ({ci_label}); circle: Youden cut-off")
    if title:
        ax.set_title(_wrap_title(title, ONE_COLUMN_MM))
    return fig


# --------------------------------------------------------------------------- waterfall


@journal
def waterfall_figure(values: ArrayLike, outcome: ArrayLike, *, ylabel: str,
                     title: str = "", endpoint: str = "outcome",
                     outcome_names: Mapping[int | None, str] | None = None,
                     cutoffs: Mapping[str, float] | None = None,
                     bar_labels: Sequence[str] | None = None) -> Figure:
    """Waterfall plot: one bar per lesion, sorted from the largest value down, coloured
    by outcome (Okabe-Ito: 1 vermillion, 0 blue, unknown grey); one column wide up to
    30 lesions, else two. Lesions without a value are left out (their number is noted).
    ``cutoffs``: name -> value drawn as dashed lines (display units, like ``values``).
    ``bar_labels``: optional tick labels (e.g. vertebral levels; never identifiers)."""
    v = _f64(values)
    y = np.asarray(outcome, dtype=object).reshape(-1)
    if y.size != v.size:
        raise ValueError(f"waterfall_figure: {v.size} values but {y.size} outcomes")
    keep = np.isfinite(v)
    order = np.argsort(-v[keep], kind="mergesort")
    vals = v[keep][order]
    outs = [_outcome_key(o) for o in y[keep][order]]
    names = {**_default_names(endpoint), **(outcome_names or {})}
    width = ONE_COLUMN_MM if vals.size <= 30 else TWO_COLUMN_MM
    fig = Figure(figsize=figsize_mm(width, 75), layout="constrained")
    ax = fig.subplots()
    x = np.arange(vals.size)
    ax.bar(x, vals, color=[OUTCOME_COLOURS[o] for o in outs], width=0.8,
           edgecolor="white", lw=0.3)
    ax.axhline(0.0, color="black", lw=0.6)
    for k, (name, c) in enumerate((cutoffs or {}).items()):
        ax.axhline(float(c), color="#444444", ls=("--", "-.", ":")[k % 3], lw=0.8,
                   label=name)
    if bar_labels is not None:
        labs = np.asarray(list(bar_labels), dtype=object)
        if labs.size != v.size:
            raise ValueError("waterfall_figure: bar_labels must match values")
        ax.set_xticks(x, [str(s) for s in labs[keep][order]], rotation=90)
    else:
        ax.set_xticks([])
    ax.set_xlabel(f"lesions, sorted (n = {vals.size})")
    ax.set_ylabel(ylabel)
    handles = _outcome_handles(names, set(outs))
    line_handles, _ = ax.get_legend_handles_labels()
    n_leg = len(handles) + len(line_handles)
    fig.legend(handles=handles + line_handles, loc="outside lower center",
               ncol=n_leg if width > ONE_COLUMN_MM else min(n_leg, 2))
    ax.grid(axis="y", alpha=0.3)
    n_missing = int((~keep).sum())
    if title or n_missing:
        ax.set_title(_wrap_title(title + (f" ({n_missing} lesion(s) without a value)"
                                          if n_missing else ""), width))
    return fig


# --------------------------------------------------------------------------- pre/post


@dataclass(frozen=True)
class PairedPanel:
    """Paired values of one parameter: ``pre[i]``, ``post[i]`` for lesion ``i``."""

    title: str
    pre: ArrayLike
    post: ArrayLike
    outcome: ArrayLike
    unit: str = ""
    pre_label: str = "baseline"
    post_label: str = "follow-up"
    p_values: Mapping[str, str] = field(default_factory=dict)  # group -> "p = 0.01"


@journal
def prepost_figure(panels: Sequence[PairedPanel], *, endpoint: str = "outcome",
                   outcome_names: Mapping[int | None, str] | None = None,
                   title: str = "") -> Figure:
    """Paired baseline / follow-up lines per lesion (module notes), one panel per
    parameter, two columns wide with at most 3 panels per row. Thick lines: the median
    of each outcome group. The panel's ``title`` (and ``unit``) label its y axis, its
    ``p_values`` are written above it."""
    if not panels:
        raise ValueError("prepost_figure: no panel")
    n = len(panels)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    width = TWO_COLUMN_MM if n > 1 else ONE_COLUMN_MM
    fig = Figure(figsize=figsize_mm(width, 58 * nrow + 16), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).reshape(-1)
    names = {**_default_names(endpoint), **(outcome_names or {})}
    present: set[int | None] = set()
    for ax, p in zip(axes, panels, strict=False):
        a, b = _f64(p.pre), _f64(p.post)
        y = [_outcome_key(o) for o in np.asarray(p.outcome, dtype=object).reshape(-1)]
        if not a.size == b.size == len(y):
            raise ValueError(f"prepost_figure: panel {p.title!r}: pre, post and outcome "
                             f"lengths differ")
        for k in range(a.size):
            if np.isfinite(a[k]) and np.isfinite(b[k]):
                ax.plot([0, 1], [a[k], b[k]], color=OUTCOME_COLOURS[y[k]], alpha=0.45,
                        lw=0.7, marker="o", ms=2.5)
                present.add(y[k])
        for key in (1, 0):
            sel = np.array([o == key for o in y]) & np.isfinite(a) & np.isfinite(b)
            if sel.any():
                ax.plot([0, 1], [np.median(a[sel]), np.median(b[sel])],
                        color=OUTCOME_COLOURS[key], lw=2.4, solid_capstyle="round")
        ax.set_xticks([0, 1], [p.pre_label, p.post_label])
        ax.set_xlim(-0.4, 1.4)
        ax.set_ylabel(p.title + (f" ({p.unit})" if p.unit else ""))
        if p.p_values:       # the parameter is named on the y axis
            ax.set_title("\n".join(f"{g}: {v}" for g, v in p.p_values.items()),
                         fontsize=7.5)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.legend(handles=[*_outcome_handles(names, present),
                        Line2D([], [], color="black", lw=2.4, label="group median")],
               loc="outside lower center", ncol=4)
    if title:
        fig.suptitle(_wrap_title(title, width, 8.5))
    return fig


# --------------------------------------------------------------------------- TIC types


@dataclass(frozen=True)
class TICTypeCurve:
    """Mean enhancement curve (%, vs time in s) of one TIC type over ``n`` curves."""

    tic_type: str
    t_s: ArrayLike
    mean: ArrayLike
    sd: ArrayLike | None
    n: int


@journal
def tic_types_figure(curves: Sequence[TICTypeCurve], *, title: str = "",
                     rule_text: str = "") -> Figure:
    """Mean (+- SD band) relative enhancement per TIC type, one axis; normal marrow (type
    ``"marrow"``) dashed. One column wide; ``rule_text`` (the TIC rule) makes it two
    columns wide with the rule written beside the axis."""
    if not curves:
        raise ValueError("tic_types_figure: no curve")
    if rule_text:
        fig = Figure(figsize=figsize_mm(TWO_COLUMN_MM, 80), layout="constrained")
        ax, note = fig.subplots(1, 2, width_ratios=[1.1, 1])
        note.axis("off")
        note.text(0.0, 1.0, textwrap.fill(rule_text, 62), fontsize=7, color="#333333",
                  va="top", ha="left", transform=note.transAxes, linespacing=1.25)
    else:
        fig = Figure(figsize=figsize_mm(ONE_COLUMN_MM, 72), layout="constrained")
        ax = fig.subplots()
    for k, c in enumerate(curves):
        colour = _TIC_COLOURS.get(c.tic_type, _SERIES_COLOURS[k % len(_SERIES_COLOURS)])
        t, m = _f64(c.t_s), _f64(c.mean)
        marrow = c.tic_type == "marrow"
        name = "normal marrow" if marrow else f"type {c.tic_type}"
        ax.plot(t, m, color=colour, lw=1.4, ls="--" if marrow else "-",
                label=f"{name} (n = {c.n})")
        if c.sd is not None and c.n > 1:
            sd = _f64(c.sd)
            ax.fill_between(t, m - sd, m + sd, color=colour, alpha=0.12, lw=0)
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("relative enhancement (%)")
    ax.grid(alpha=0.3)
    ax.legend(title="mean ± SD")
    if title:
        ax.set_title(_wrap_title(title, ONE_COLUMN_MM))
    return fig


# --------------------------------------------------------------------------- lesion maps


@dataclass(frozen=True)
class LesionMapCell:
    """One session of one parameter: 2-D display arrays (rows superior to inferior,
    columns anterior to posterior; see :func:`dce.viz.sections.sagittal_section`)."""

    anatomy: ArrayLike
    values: ArrayLike              # parameter map (NaN where not shown)
    mask: ArrayLike                # lesion outline
    title: str                     # e.g. "pre (day -5)"
    aspect: float = 1.0
    summary: str = ""              # e.g. "median 0.061"


@dataclass(frozen=True)
class LesionMapRow:
    """A parameter across sessions (shared colour scale)."""

    parameter: str
    unit: str
    cells: Sequence[LesionMapCell]
    vmin: float | None = None
    vmax: float | None = None
    cmap: str = MAP_CMAP


def _range(rows_cells: Sequence[LesionMapCell]) -> tuple[float, float]:
    vals = []
    for c in rows_cells:
        v = np.asarray(c.values, dtype=np.float64)
        m = np.asarray(c.mask, dtype=bool)
        sel = v[m & np.isfinite(v)] if m.shape == v.shape else v[np.isfinite(v)]
        vals.append(sel)
    allv = np.concatenate(vals) if vals else np.empty(0)
    if allv.size == 0:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(allv, [2.0, 98.0]))
    if lo >= 0 or np.min(allv) >= 0:
        lo = 0.0
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


@journal
def lesion_maps_figure(rows: Sequence[LesionMapRow], *, title: str = "",
                       outcome: str = "") -> Figure:
    """Baseline vs follow-up maps of one lesion: one row per parameter, one column per
    session, two columns wide (one for a single session). The parameter is drawn over the
    grey anatomy, transparent where it is NaN (not fitted, not enhancing: the caller
    blanks those voxels, :func:`dce.roi.shown_map`), the lesion outlined; one colour
    scale per row (up to the 98th percentile of the lesion voxels over the sessions
    unless given; from :data:`dce.viz.style.OVERLAY_FLOOR` of it for non-negative maps,
    weaker voxels transparent) with a colour bar labelled with the unit. ``title`` e.g.
    "lesion 1 (T12)";
    ``outcome`` a short note (e.g. "recurrence: yes"); neither may carry identifiers."""
    if not rows or not rows[0].cells:
        raise ValueError("lesion_maps_figure: no map")
    ncol = max(len(r.cells) for r in rows)
    nrow = len(rows)
    width = TWO_COLUMN_MM if ncol > 1 else ONE_COLUMN_MM
    panel_w = (width - 22.0) / ncol
    c0 = rows[0].cells[0]
    ratio = np.shape(c0.anatomy)[0] * c0.aspect / max(np.shape(c0.anatomy)[1], 1)
    fig = Figure(figsize=figsize_mm(width, nrow * (panel_w * ratio + 8) + 10),
                 layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for i, r in enumerate(rows):
        lo, hi = _range(r.cells)
        vmax = r.vmax if r.vmax is not None else hi
        # non-negative maps: transparent below OVERLAY_FLOOR of the scale (style notes)
        vmin = r.vmin if r.vmin is not None else (OVERLAY_FLOOR * vmax if lo == 0 else lo)
        im = None
        for j in range(ncol):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(r.cells):
                ax.set_visible(False)
                continue
            c = r.cells[j]
            anat = np.asarray(c.anatomy, dtype=np.float64)
            fin = anat[np.isfinite(anat)]
            a_lo, a_hi = (np.percentile(fin, [1.0, 99.5]) if fin.size else (0.0, 1.0))
            ax.imshow(anat, cmap="gray", vmin=a_lo, vmax=max(a_hi, a_lo + 1e-9),
                      aspect=c.aspect, interpolation="nearest")
            vals = np.asarray(c.values, dtype=np.float64)
            im = ax.imshow(np.ma.masked_invalid(vals), cmap=overlay_cmap(r.cmap), vmin=vmin,
                           vmax=vmax, alpha=0.9, aspect=c.aspect, interpolation="nearest")
            m = np.asarray(c.mask, dtype=float)
            if np.any(m > 0):
                ax.contour(m, levels=[0.5], colors=LESION_OUTLINE, linewidths=1.0)
            if i == 0:
                ax.set_title(c.title)
            if c.summary:
                ax.text(0.03, 0.03, c.summary, transform=ax.transAxes, fontsize=7,
                        color="white", va="bottom",
                        bbox={"facecolor": "black", "alpha": 0.6, "lw": 0, "pad": 1.2})
            if j == 0:
                ax.set_ylabel(r.parameter)
        if im is not None:
            cb = fig.colorbar(im, ax=axes[i, :].tolist(), fraction=0.05, pad=0.02,
                              aspect=15)
            cb.set_label(r.parameter + (f" ({r.unit})" if r.unit else ""))
    head = title + (f" — {outcome}" if outcome else "")
    if head:
        fig.suptitle(_wrap_title(head, width, 8.5))
    return fig


# --------------------------------------------------------------------------- sections


def lesion_section(anatomy: np.ndarray, maps: Mapping[str, np.ndarray], labels: np.ndarray,
                   label: int, affine: np.ndarray) -> dict[str, Any]:
    """The sagittal section through a lesion (the one with most of its voxels): 2-D
    display arrays of the anatomy, each map and the lesion mask, the lesion's centre
    and half extent (rows, columns, in voxels) and the display aspect ratio."""
    lab_ras, zooms = to_ras(np.asarray(labels) == label, affine)
    if not lab_ras.any():
        raise ValueError(f"lesion {label}: no voxel in the lesion ROI")
    x = int(np.argmax(lab_ras.reshape(lab_ras.shape[0], -1).sum(axis=1)))
    mask = sagittal_section(lab_ras, x).astype(bool)
    rr, cc = np.nonzero(mask)
    anat = sagittal_section(to_ras(np.asarray(anatomy, float), affine)[0], x)
    secs = {k: sagittal_section(to_ras(np.asarray(v, float), affine)[0], x)
            for k, v in maps.items()}
    return {"anatomy": anat, "maps": secs, "mask": mask,
            "centre": (float(rr.mean()), float(cc.mean())),
            "half": (float(rr.max() - rr.min()) / 2 + 1, float(cc.max() - cc.min()) / 2 + 1),
            "aspect": float(zooms[2] / zooms[1]), "zooms": zooms}


def crop_sections(sections: Sequence[dict[str, Any]], margin_mm: float = 10.0
                  ) -> list[dict[str, Any]]:
    """Crop sections to windows of one size (the largest lesion extent plus
    ``margin_mm`` on each side) centred on each session's lesion."""
    if not sections:
        return []
    z = sections[0]["zooms"]
    half_r = max(s["half"][0] for s in sections) + margin_mm / float(z[2])
    half_c = max(s["half"][1] for s in sections) + margin_mm / float(z[1])
    hr, hc = int(np.ceil(half_r)), int(np.ceil(half_c))
    out = []
    for s in sections:
        r0 = round(s["centre"][0]) - hr
        c0 = round(s["centre"][1]) - hc

        def cut(a: np.ndarray, fill: float = np.nan, r0: int = r0, c0: int = c0
                ) -> np.ndarray:
            res = np.full((2 * hr + 1, 2 * hc + 1), fill, dtype=float)
            rs, cs = max(r0, 0), max(c0, 0)
            re_, ce = min(r0 + 2 * hr + 1, a.shape[0]), min(c0 + 2 * hc + 1, a.shape[1])
            if re_ > rs and ce > cs:
                res[rs - r0:re_ - r0, cs - c0:ce - c0] = a[rs:re_, cs:ce]
            return res

        out.append({**s, "anatomy": cut(s["anatomy"]), "mask": cut(s["mask"], 0.0) > 0,
                    "maps": {k: cut(v) for k, v in s["maps"].items()}})
    return out


@journal
def message_figure(text: str) -> Figure:
    """A small figure carrying only a message (an analysis that could not be done)."""
    fig = Figure(figsize=figsize_mm(ONE_COLUMN_MM, 40))
    fig.text(0.5, 0.5, _wrap_title(text, ONE_COLUMN_MM - 6, 8), ha="center", va="center",
             fontsize=8)
    return fig


# --------------------------------------------------------------------------- the rule's figures


def _roc_for(e: Endpoint, roc: RocResults, shown: Sequence[str] | None) -> Figure:
    """ROC curves (bands: bootstrap) of the predictors of ``shown`` (default all) and
    the models, or a message when the ROC is undefined."""
    tab, curves = roc.roc, roc.curves
    series = []
    sel = (tab["endpoint"] == e.name) & tab["auc"].notna()
    if shown is not None:
        sel &= tab["predictor"].isin(list(shown)) | (tab["kind"] == "model")
    shown_rows: list[Any] = list(tab[sel].itertuples())
    for r in shown_rows:
        c = curves[(curves["endpoint"] == e.name) & (curves["predictor"] == r.predictor)]
        cur, band = c[c["kind"] == "curve"], c[c["kind"] == "band"]
        series.append(RocSeries(
            label=str(r.label), fpr=cur["fpr"], tpr=cur["tpr"], auc=float(r.auc),
            auc_lo=float(r.delong_lo), auc_hi=float(r.delong_hi),
            band_fpr=band["fpr"], band_lo=band["tpr_lo"], band_hi=band["tpr_hi"],
            youden=(1.0 - float(r.specificity), float(r.sensitivity))))
    if series:
        return roc_figure(series, title=f"ROC: {e.title} (lesions; band: bootstrap 95%)",
                          ci_label="DeLong 95% CI")
    notes = tab.loc[tab["endpoint"] == e.name, "note"].dropna()
    return message_figure(f"ROC for {e.title} undefined: "
                          f"{notes.iloc[0] if len(notes) else 'no data'}")


def _prepost_for(e: Endpoint, frames: CohortFrames, cfg: CohortConfig,
                 post_session: str) -> Figure:
    """Paired baseline / follow-up lines of each ``cfg.prepost_parameters`` with the
    Wilcoxon p per endpoint group."""
    panels = []
    for par in cfg.prepost_parameters:
        pv = paired_values(frames.cohort, frames.changes, frames.predictors, par,
                           post_session, e.name, exclude_flags=cfg.exclude_flags)
        pvals = {}
        names = _default_names(e.title)
        for key in (1, 0):
            g = pv[pv["outcome"] == key]
            try:
                res = quiet(stats.paired_prepost, g["pre"].to_numpy(float),
                            g["post"].to_numpy(float), name=par)
                pvals[names[key]] = fmt_p_eq(res.p)
            except ValueError:
                pass
        scale = display_scale(par)
        panels.append(PairedPanel(
            title=column_label(par), pre=pv["pre"].to_numpy(float) * scale,
            post=pv["post"].to_numpy(float) * scale, outcome=pv["outcome"].to_numpy(object),
            pre_label="baseline", post_label=f"{post_session} follow-up"
            if post_session in ("first", "last") else post_session, p_values=pvals))
    if not panels:
        return message_figure("no pre/post parameter configured")
    return prepost_figure(panels, endpoint=e.title,
                          title="Baseline vs follow-up per lesion "
                                "(Wilcoxon signed-rank p per group)")


def cohort_figures(frames: CohortFrames, roc: RocResults, tic: pd.DataFrame,
                   cfg: CohortConfig) -> Iterator[tuple[str, Figure]]:
    """Every figure of the cohort analysis, one at a time.

    Parameters
    ----------
    frames : CohortFrames
    roc : RocResults
    tic : DataFrame
        The per-session TIC tables concatenated (``subject, session, roi, label, t_s,
        enhancement_pct``).
    cfg : CohortConfig
        ``cfg.figures`` chooses the waterfall predictor (default the first), the ROC
        predictors shown and the follow-up of the pre/post figure (default ``last``).

    Yields
    ------
    name : str
        ``roc_<endpoint>``, ``waterfall_<endpoint>``, ``prepost_<endpoint>`` per
        endpoint, then ``tic``.
    figure : matplotlib.figure.Figure
    """
    wf = cfg.predictor(cfg.figures.get("waterfall") or cfg.predictors[0].name)
    post_session = str(cfg.figures.get("prepost_session", "last"))
    frame = frames.predictors
    for e in cfg.endpoints:
        yield f"roc_{e.name}", _roc_for(e, roc, cfg.figures.get("roc"))
        scale = display_scale(wf.column)
        cut = {_print_minus(r.name): r.threshold * scale for r in cfg.rules
               if r.predictor == wf.name}
        yield f"waterfall_{e.name}", waterfall_figure(
            frame[wf.name].to_numpy(float) * scale, frame[e.name].to_numpy(object),
            ylabel=wf.title, endpoint=e.title, cutoffs=cut, title=f"Per lesion, by {e.title}")
        yield f"prepost_{e.name}", _prepost_for(e, frames, cfg, post_session)
    mean = tic_type_curves(tic, frames.cohort)
    curves = [TICTypeCurve(tic_type=str(t), t_s=g["t_s"], mean=g["mean"], sd=g["sd"],
                           n=int(g["n"].iloc[0]))
              for t, g in mean.groupby("tic_type", sort=False)]
    yield "tic", (tic_types_figure(curves, title="Mean lesion TIC per type (all sessions)")
                  if curves else message_figure("no classified TIC"))
