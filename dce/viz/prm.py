"""Figure of the parametric response maps (PRM) of one follow-up session (journal style).

Per lesion, one row; per map, two panels: the PRM class map over the baseline anatomy
(sagittal section through the lesion: increased red, unchanged green, decreased blue,
excluded grey; Okabe-Ito hues), and the scatter of the lesion voxels' follow-up against
baseline values with the unchanged band (``|follow-up - baseline| <= threshold``).
No file I/O (the caller saves with :func:`dce.io.tables.save_figure_formats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from numpy.typing import ArrayLike, NDArray

from dce.prm import PRM_DECREASED, PRM_EXCLUDED, PRM_INCREASED, PRM_UNCHANGED
from dce.viz.sections import sagittal_section, to_ras
from dce.viz.style import OKABE_ITO, TWO_COLUMN_MM, figsize_mm, journal
from dce.viz.tables import MINUS

__all__ = ["PRM_COLOURS", "PRMPanel", "PRMRow", "lesion_crop", "prm_figure"]

#: Colour of each class code (Okabe-Ito: vermillion, bluish green, blue, grey).
PRM_COLOURS: dict[int, str] = {
    PRM_INCREASED: OKABE_ITO["vermillion"], PRM_UNCHANGED: OKABE_ITO["bluish_green"],
    PRM_DECREASED: OKABE_ITO["blue"], PRM_EXCLUDED: OKABE_ITO["grey"]}
_NAMES = {PRM_INCREASED: "increased (PRM+)", PRM_UNCHANGED: "unchanged (PRM0)",
          PRM_DECREASED: f"decreased (PRM{MINUS})", PRM_EXCLUDED: "not fitted"}


@dataclass(frozen=True)
class PRMPanel:
    """One map of one lesion.

    Attributes
    ----------
    symbol, unit : str
        Display name and unit of the map (e.g. ``"Vp"``, ``"%"``).
    anatomy, classes : ndarray, 2-D
        Cropped section of the baseline anatomy and of the class map (codes of
        :mod:`dce.prm`; 0 outside the lesion).
    aspect : float
        Display aspect (row / column voxel size).
    baseline, followup : ndarray, 1-D
        The lesion's valid voxels at both visits, in display units.
    voxel_classes : ndarray, 1-D
        Their class codes.
    threshold : float
        Threshold in display units (NaN: none).
    fractions : tuple of float
        PRM+, PRM0, PRM- (0-1; NaN when not computed).
    note : str
        Shown instead of the scatter when there is nothing to plot (e.g. failed QC).
    """

    symbol: str
    unit: str
    anatomy: NDArray[Any]
    classes: NDArray[Any]
    aspect: float
    baseline: NDArray[Any]
    followup: NDArray[Any]
    voxel_classes: NDArray[Any]
    threshold: float
    fractions: tuple[float, float, float]
    note: str = ""


@dataclass(frozen=True)
class PRMRow:
    """One lesion: ``title`` (e.g. ``"lesion 2 (L1)"``) and a panel per map."""

    title: str
    panels: Sequence[PRMPanel] = field(default_factory=tuple)


def lesion_crop(volumes: Sequence[ArrayLike], labels: ArrayLike, label: int,
                affine: ArrayLike, margin_mm: float = 10.0
                ) -> tuple[list[NDArray[Any]], float]:
    """The sagittal section through a lesion (the one with most of its voxels), cropped
    to the lesion plus ``margin_mm``: one 2-D array per volume, and the display aspect.
    """
    lab_ras, zooms = to_ras(np.asarray(labels) == label, affine)
    if not lab_ras.any():
        raise ValueError(f"lesion {label}: no voxel in the lesion ROI")
    x = int(np.argmax(lab_ras.reshape(lab_ras.shape[0], -1).sum(axis=1)))
    rr, cc = np.nonzero(sagittal_section(lab_ras, x))
    mr = int(np.ceil(margin_mm / float(zooms[2])))
    mc = int(np.ceil(margin_mm / float(zooms[1])))
    out = []
    for v in volumes:
        sec = sagittal_section(to_ras(np.asarray(v, dtype=np.float64), affine)[0], x)
        r0, c0 = max(rr.min() - mr, 0), max(cc.min() - mc, 0)
        out.append(sec[r0:rr.max() + mr + 1, c0:cc.max() + mc + 1])
    return out, float(zooms[2] / zooms[1])


def _pct(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{100 * v:.0f}%"


def _overlay(ax: Any, p: PRMPanel) -> None:
    anat = np.asarray(p.anatomy, dtype=np.float64)
    fin = anat[np.isfinite(anat)]
    lo, hi = np.percentile(fin, [1.0, 99.5]) if fin.size else (0.0, 1.0)
    ax.imshow(anat, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-9), aspect=p.aspect,
              interpolation="nearest")
    codes = (PRM_INCREASED, PRM_UNCHANGED, PRM_DECREASED, PRM_EXCLUDED)
    cls = np.asarray(p.classes, dtype=np.float64)
    shown = np.where(np.isin(cls, codes), cls, np.nan)
    cmap = ListedColormap([PRM_COLOURS[c] for c in codes]).with_extremes(
        bad=(0.0, 0.0, 0.0, 0.0))
    ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=0.5, vmax=4.5, alpha=0.85,
              aspect=p.aspect, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{p.symbol} PRM")


def _scatter(ax: Any, p: PRMPanel) -> None:
    unit = f" ({p.unit})" if p.unit else ""
    ax.set_xlabel(f"{p.symbol} baseline{unit}")
    ax.set_ylabel(f"{p.symbol} follow-up{unit}")
    b, f = np.asarray(p.baseline, float), np.asarray(p.followup, float)
    if not b.size:
        ax.text(0.5, 0.5, p.note or "no valid voxel", transform=ax.transAxes, ha="center",
                va="center", fontsize=7, wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    lo = float(min(b.min(), f.min(), 0.0))
    hi = float(max(b.max(), f.max()))
    hi = hi if hi > lo else lo + 1.0
    pad = 0.05 * (hi - lo)
    xs = np.array([lo - pad, hi + pad])
    if np.isfinite(p.threshold):
        ax.fill_between(xs, xs - p.threshold, xs + p.threshold, color=OKABE_ITO["grey"],
                        alpha=0.25, lw=0)
    ax.plot(xs, xs, color="black", lw=0.6)
    cls = np.asarray(p.voxel_classes)
    for code in (PRM_UNCHANGED, PRM_DECREASED, PRM_INCREASED):
        s = cls == code
        if s.any():
            ax.scatter(b[s], f[s], s=3, color=PRM_COLOURS[code], lw=0, alpha=0.8)
    ax.set_xlim(*xs)
    ax.set_ylim(*xs)
    pos, zero, neg = p.fractions
    ax.text(0.03, 0.97, f"PRM+ {_pct(pos)}\nPRM0 {_pct(zero)}\nPRM{MINUS} {_pct(neg)}",
            transform=ax.transAxes, ha="left", va="top", fontsize=7)
    ax.set_aspect("equal", adjustable="box")
    ax.locator_params(nbins=4)


@journal
def prm_figure(rows: Sequence[PRMRow], *, title: str = "") -> Figure:
    """PRM of one follow-up: a row per lesion, per map the class map over the baseline
    anatomy and the follow-up vs baseline scatter of the lesion voxels (with the PRM+,
    PRM0, PRM- fractions) with the unchanged band (grey) and the identity line; two columns
    wide; one class legend at the bottom. ``title`` must carry no identifier."""
    if not rows or not rows[0].panels:
        raise ValueError("prm_figure: no lesion")
    ncol = 2 * max(len(r.panels) for r in rows)
    fig = Figure(figsize=figsize_mm(TWO_COLUMN_MM, 48.0 * len(rows) + 22.0),
                 layout="constrained")
    sub = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    for r, sf in zip(rows, sub, strict=True):
        axes = sf.subplots(1, ncol, squeeze=False)[0]
        for j, p in enumerate(r.panels):
            _overlay(axes[2 * j], p)
            _scatter(axes[2 * j + 1], p)
        for ax in axes[2 * len(r.panels):]:
            ax.set_visible(False)
        sf.suptitle(r.title, fontsize=8)
    handles = [Patch(facecolor=PRM_COLOURS[c], label=_NAMES[c]) for c in _NAMES]
    handles.append(Patch(facecolor=OKABE_ITO["grey"], alpha=0.25,
                         label="unchanged band (threshold)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    if title:
        fig.suptitle(title)
    return fig
