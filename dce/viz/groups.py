"""Figure of the diagnostic group comparison (:mod:`dce.cohort.diagnostic`): per
predictor, the values of the two groups of an endpoint as box plots with every lesion as
a point, the fixed cut-offs as dashed lines, and the Mann-Whitney p-values (raw and
Holm-adjusted) with the rank-biserial r in the panel title.

Returns matplotlib figures; saving is :func:`dce.io.tables.save_figure_formats`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from dce.viz.style import ONE_COLUMN_MM, TWO_COLUMN_MM, figsize_mm, journal
from dce.viz.tables import fmt_num, fmt_p

__all__ = ["GroupPanel", "groups_figure"]

#: Colours of the positive / negative group (colour-blind-safe pair, Okabe-Ito).
GROUP_COLOURS = ("#D55E00", "#0072B2")


@dataclass(frozen=True)
class GroupPanel:
    """Values of one predictor in the positive (``pos``) and negative (``neg``) group."""

    title: str
    pos: ArrayLike
    neg: ArrayLike
    p: float = float("nan")
    p_holm: float = float("nan")
    rank_biserial: float = float("nan")
    cutoffs: Mapping[str, float] = field(default_factory=dict)


def _eq(p: float) -> str:
    """``"= 0.012"`` or ``"< 0.001"``."""
    text = fmt_p(p)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"


def _jitter(n: int) -> np.ndarray:
    """Deterministic horizontal offsets in [-0.15, 0.15] (no random state)."""
    if n <= 1:
        return np.zeros(n)
    return np.linspace(-0.15, 0.15, n)


@journal
def groups_figure(panels: Sequence[GroupPanel], *, names: tuple[str, str],
                  title: str = "") -> Figure:
    """One panel per predictor: box plots of the two groups with each lesion as a dot.

    Parameters
    ----------
    panels : sequence of GroupPanel
    names : (str, str)
        Names of the positive and negative group (x tick labels).
    title : str
        Figure title (e.g. the endpoint).

    Returns
    -------
    Figure
        One column wide (89 mm) for a single predictor, else two columns (183 mm) with
        up to three panels per row.
    """
    n = max(len(panels), 1)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    width_mm = ONE_COLUMN_MM if ncol == 1 else TWO_COLUMN_MM
    fig = Figure(figsize=figsize_mm(width_mm, 66.0 * nrow + 12.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    for ax, pan in zip(axes, panels, strict=False):
        data = []
        for vals in (pan.pos, pan.neg):
            v = np.asarray(vals, dtype=np.float64).reshape(-1)
            data.append(np.sort(v[np.isfinite(v)]))
        shown = [d if d.size else np.array([np.nan]) for d in data]
        ax.boxplot(shown, positions=[0, 1], widths=0.5, showfliers=False,
                   medianprops={"color": "black"})
        for k, d in enumerate(data):
            ax.scatter(k + _jitter(d.size), d, s=14, color=GROUP_COLOURS[k], zorder=3,
                       edgecolors="white", linewidths=0.4)
        for j, (cname, c) in enumerate(pan.cutoffs.items()):
            ax.axhline(float(c), color="#444444", ls=("--", "-.", ":")[j % 3], lw=0.9,
                       label=re.sub(r"(?<![\w.])-(?=\d)", "\u2212", cname))
        ax.set_xticks([0, 1], [f"{names[0]}\n(n = {data[0].size})",
                               f"{names[1]}\n(n = {data[1].size})"], fontsize=7)
        stat = (f"p {_eq(pan.p)}, Holm p {_eq(pan.p_holm)}\n"
                f"r = {fmt_num(pan.rank_biserial, fixed=2).replace('-', '−')}")
        # long labels ("Δpeak enhancement from baseline to first follow-up (%)") wrapped to
        # the panel width (about 30 characters at 8 pt in a third of 183 mm)
        ax.set_title(f"{textwrap.fill(pan.title, 30)}\n{stat}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        if pan.cutoffs:
            ax.legend(fontsize=7, loc="best", frameon=True, framealpha=0.9)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
