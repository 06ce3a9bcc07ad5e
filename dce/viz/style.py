"""Journal style shared by every figure of :mod:`dce.viz` (no file I/O).

Figures are built at their final printed size -- one column (89 mm) or two columns
(183 mm), the widths of most radiology journals (AJNR, Radiology, European Radiology) --
so that the font sizes set here are the printed sizes: text >= :data:`MIN_FONT_PT`
(7 pt). Colours are colour-blind safe: the Okabe-Ito palette for categories
(:data:`OKABE_ITO`) and the perceptually uniform ``viridis`` for parameter maps. PNGs
are written at :data:`PNG_DPI` (300 dpi) with vector PDFs next to them
(:func:`dce.io.tables.save_figure_formats`), fonts embedded as TrueType (``pdf.fonttype``
42) so that the text stays editable and searchable.

:func:`journal` wraps a figure-building function: it builds the figure under
:data:`JOURNAL_RC` and fixes the tick label size of every axes (ticks made later, at
drawing time, would otherwise take the global default).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.rcsetup import cycler

__all__ = [
    "JOURNAL_RC",
    "MIN_FONT_PT",
    "MM",
    "OKABE_ITO",
    "ONE_COLUMN_MM",
    "OVERLAY_FLOOR",
    "PNG_DPI",
    "SAVE_RC",
    "TWO_COLUMN_MM",
    "figsize_mm",
    "journal",
    "overlay_cmap",
]

#: Inches per millimetre.
MM = 1.0 / 25.4
#: Single- and double-column figure widths (mm).
ONE_COLUMN_MM = 89.0
TWO_COLUMN_MM = 183.0
#: Smallest font size (pt) of any text at the printed size.
MIN_FONT_PT = 7.0
#: Resolution of the PNG figures (dpi).
PNG_DPI = 300

#: Parameter maps of non-negative quantities are coloured from this fraction of the top of
#: their colour scale up; weaker voxels are transparent (the anatomy shows), as in the
#: overlay threshold of clinical DCE viewers -- otherwise fitted noise in barely enhancing
#: marrow reads as a checkerboard.
OVERLAY_FLOOR = 0.2

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9",
    "bluish_green": "#009E73", "yellow": "#F0E442", "blue": "#0072B2",
    "vermillion": "#D55E00", "reddish_purple": "#CC79A7", "grey": "#999999",
}

#: rcParams of the journal figures (final-size fonts, thin lines, colour-blind-safe cycle).
JOURNAL_RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.size": 7.5,
    "axes.titlesize": 8.0,
    "axes.labelsize": 7.5,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": 8.5,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "grid.linewidth": 0.4,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
    "axes.prop_cycle": cycler(color=[OKABE_ITO[k] for k in (
        "blue", "vermillion", "bluish_green", "reddish_purple", "orange", "sky_blue",
        "black", "yellow")]),
}

#: rcParams at saving time: TrueType fonts in PDF (editable, searchable text).
SAVE_RC: dict[str, Any] = {"pdf.fonttype": 42, "ps.fonttype": 42}


def figsize_mm(width_mm: float, height_mm: float) -> tuple[float, float]:
    """A figure size (inches) from millimetres."""
    return width_mm * MM, height_mm * MM


P = ParamSpec("P")


def journal(build: Callable[P, Figure]) -> Callable[P, Figure]:
    """Build the figure under :data:`JOURNAL_RC` (module notes)."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with mpl.rc_context(JOURNAL_RC):  # type: ignore[arg-type]  # rc keys as plain str
            fig = build(*args, **kwargs)
        for ax in fig.axes:
            ax.tick_params(labelsize=MIN_FONT_PT)
        return fig

    return wrapper


def overlay_cmap(name: str = "viridis") -> Any:
    """A colour map for map overlays: NaN / masked ("bad") and values below the colour
    range ("under") fully transparent."""
    return mpl.colormaps[name].with_extremes(bad=(0.0, 0.0, 0.0, 0.0),
                                             under=(0.0, 0.0, 0.0, 0.0))
