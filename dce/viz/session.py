"""Figures of one session (the session part of :mod:`dce.viz`; matplotlib, no file I/O).

* :func:`aif_qc_figure` -- the arterial input function with its QC record and the
  voxels it was taken from, drawn on the image;
* :func:`tic_figure` -- mean time-intensity curves (relative enhancement) of the lesions
  and of normal marrow with their TIC types;
* :func:`parameter_map_figure` -- parameter maps over the anatomy with the ROI outlines.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no
global state, no display needed: saving renders with the Agg backend); the caller saves
it with ``fig.savefig``. Figures never carry patient, subject or session identifiers:
titles and legends describe the content only (lesion labels, vertebral levels,
parameter names).

Images are sagittal sections, superior up and anterior left, whatever the voxel
order (:mod:`dce.viz.sections`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from dce.viz.sections import sagittal_section, to_ras
from dce.viz.style import (
    MIN_FONT_PT,
    OKABE_ITO,
    OVERLAY_FLOOR,
    TWO_COLUMN_MM,
    figsize_mm,
    journal,
    overlay_cmap,
)

__all__ = [
    "MapPanel",
    "TICCurve",
    "aif_qc_figure",
    "aif_qc_phase",
    "parameter_map_figure",
    "tic_figure",
]

#: Lesion outlines and curves (Okabe-Ito), normal marrow, the AIF.
_LESION_COLOURS = tuple(OKABE_ITO[k] for k in ("vermillion", "blue", "reddish_purple",
                                                "orange", "sky_blue", "black"))
_MARROW_COLOUR = OKABE_ITO["bluish_green"]
_AIF_COLOUR = OKABE_ITO["vermillion"]
_MAP_CMAP = "viridis"


# --------------------------------------------------------------------------- geometry


def _aspect(zooms: NDArray[np.float64]) -> float:
    return float(zooms[2] / zooms[1])       # rows are z, columns are y


def _best_slice(mask_ras: NDArray[Any] | None, n_x: int) -> int:
    if mask_ras is None or not np.any(mask_ras):
        return n_x // 2
    counts = np.asarray(mask_ras, dtype=bool).reshape(n_x, -1).sum(axis=1)
    return int(np.argmax(counts))


def _robust_range(values: NDArray[Any], lo: float = 2.0, hi: float = 98.0
                  ) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0, 1.0
    a, b = (float(x) for x in np.percentile(v, [lo, hi]))
    if not b > a:
        b = a + (abs(a) if a else 1.0)
    return a, b


def _show_anatomy(ax: Any, section: NDArray[Any], aspect: float) -> None:
    vmin, vmax = _robust_range(section, 1.0, 99.5)
    ax.imshow(section, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _contours(ax: Any, labels_section: NDArray[Any] | None,
              marrow_section: NDArray[Any] | None) -> None:
    if labels_section is not None:
        for n, lab in enumerate(np.unique(labels_section[labels_section > 0])):
            m = (labels_section == lab).astype(float)
            ax.contour(m, levels=[0.5], colors=_LESION_COLOURS[n % len(_LESION_COLOURS)],
                       linewidths=1.0)
    if marrow_section is not None and np.any(marrow_section):
        ax.contour((marrow_section > 0).astype(float), levels=[0.5], colors=_MARROW_COLOUR,
                   linewidths=0.8, linestyles="--")


def _orientation_marks(ax: Any) -> None:
    kw = {"transform": ax.transAxes, "color": "white", "fontsize": MIN_FONT_PT,
          "fontweight": "bold",      # legible on bright anatomy too
          "bbox": {"facecolor": "black", "alpha": 0.5, "lw": 0, "pad": 0.8}}
    ax.text(0.02, 0.5, "A", ha="left", va="center", **kw)
    ax.text(0.98, 0.5, "P", ha="right", va="center", **kw)
    ax.text(0.5, 0.98, "S", ha="center", va="top", **kw)


# --------------------------------------------------------------------------- AIF QC


def aif_qc_phase(measured_cb_mM: ArrayLike, n_baseline: int) -> int:
    """The phase the AIF QC figure shows: the measured aortic curve's peak phase, or
    ``n_baseline + 3`` (at most the last phase) when no curve was measured; the rule of
    :meth:`dce.aif_auto.AIFResult.peak_phase`, from the written AIF table (no scipy).

    Parameters
    ----------
    measured_cb_mM : array_like, shape (n_times,)
        The measured aortic blood curve (mM; all NaN when none was measured).
    n_baseline : int
        Pre-contrast phases.

    Returns
    -------
    int
    """
    m = np.asarray(measured_cb_mM, dtype=np.float64)
    if np.any(np.isfinite(m)):
        return int(np.nanargmax(m))
    return min(int(n_baseline) + 3, m.size - 1)


def _fmt(v: Any, spec: str = ".3g", unit: str = "") -> str:
    if v is None:
        return "n/a"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return "n/a"
    return f"{f:{spec}}{(' ' + unit) if unit else ''}"


@journal
def aif_qc_figure(t_s: ArrayLike, cb_mM: ArrayLike, *, background: ArrayLike,
                  voxel_mask: ArrayLike, affine: ArrayLike, qc: Mapping[str, Any],
                  measured_cb_mM: ArrayLike | None = None,
                  cp_mM: ArrayLike | None = None) -> Figure:
    """AIF quality-control figure: voxel locations on the image, the curves, QC metrics.

    Parameters
    ----------
    t_s : array_like, shape (n_times,)
        Phase times (s).
    cb_mM : array_like, shape (n_times,)
        The AIF used (blood, mM): measured, delayed or the population fallback.
    background : array_like, shape (n_i, n_j, n_k)
        Image to draw the voxels on, e.g. the DCE signal at the AIF peak.
    voxel_mask : array_like of bool, shape (n_i, n_j, n_k)
        The voxels averaged into the AIF (may be empty, e.g. population AIF).
    affine : array_like, shape (4, 4)
        Voxel-to-world affine of ``background``.
    qc : mapping
        QC record (keys of :meth:`dce.aif_auto.AIFQC.to_dict` such as ``passed``,
        ``reason``, ``source``, ``peak_blood_mM``, ``arrival_s``, ``time_to_peak_s``,
        ``n_voxels``, ``noise_ratio``; missing keys are shown as n/a).
    measured_cb_mM : array_like, optional
        The measured aortic curve when it differs from ``cb_mM``.
    cp_mM : array_like, optional
        Plasma AIF, drawn dotted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = np.asarray(t_s, dtype=np.float64)
    bg_ras, zooms = to_ras(np.asarray(background, dtype=np.float64), affine)
    mask_ras, _ = to_ras(np.asarray(voxel_mask, dtype=bool), affine)
    if bg_ras.shape != mask_ras.shape:
        raise ValueError(f"voxel_mask: shape {np.shape(voxel_mask)} differs from background "
                         f"{np.shape(background)}")
    x = _best_slice(mask_ras, bg_ras.shape[0])
    fig = Figure(figsize=figsize_mm(TWO_COLUMN_MM, 100))
    ax_img, ax_c = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.35]})
    _show_anatomy(ax_img, sagittal_section(bg_ras, x), _aspect(zooms))
    in_slice = sagittal_section(mask_ras, x)
    other = sagittal_section(mask_ras.any(axis=0, keepdims=True), 0) & ~in_slice
    for sel, style, lab in ((in_slice, {"marker": "o", "facecolors": "none",
                                        "edgecolors": _AIF_COLOUR}, "in this section"),
                            (other, {"marker": "x", "color": OKABE_ITO["orange"]},
                             "in other sections (projected)")):
        r, c = np.nonzero(sel)
        if r.size:
            ax_img.scatter(c, r, s=12, linewidths=0.8, label=lab, **style)
    n_sel = int(np.count_nonzero(mask_ras))
    ax_img.set_title(f"AIF voxels ({n_sel}), section {x + 1}/{bg_ras.shape[0]}")
    if n_sel:
        ax_img.legend(loc="lower left", framealpha=0.7, frameon=True)
    _orientation_marks(ax_img)

    ax_c.plot(t, np.asarray(cb_mM, dtype=np.float64), color=_AIF_COLOUR, lw=1.4,
              label=f"AIF used (blood), source: {qc.get('source', 'n/a')}")
    if measured_cb_mM is not None:
        m = np.asarray(measured_cb_mM, dtype=np.float64)
        if np.any(np.isfinite(m)) and not np.allclose(m, cb_mM, equal_nan=True):
            ax_c.plot(t, m, color="0.35", lw=0.9, ls="--", label="measured aortic curve")
    if cp_mM is not None:
        ax_c.plot(t, np.asarray(cp_mM, dtype=np.float64), color=_AIF_COLOUR, lw=0.9, ls=":",
                  label="plasma (cb / (1 − Hct))")
    arr = qc.get("arrival_s")
    if arr is not None and np.isfinite(float(arr)):
        ax_c.axvline(float(arr), color=OKABE_ITO["blue"], lw=0.8, ls="--",
                     label="bolus arrival")
    ax_c.set_xlabel("time (s)")
    ax_c.set_ylabel("concentration (mM)")
    ax_c.grid(alpha=0.3)
    ax_c.legend(loc="upper right")
    passed = bool(qc.get("passed", False))
    lines = [
        f"QC: {'PASS' if passed else 'FAIL'}" + ("" if passed else f" ({qc.get('reason')})"),
        f"peak (blood) {_fmt(qc.get('peak_blood_mM'), unit='mM')}, arrival "
        f"{_fmt(qc.get('arrival_s'), '.1f', 's')}, time to peak "
        f"{_fmt(qc.get('time_to_peak_s'), '.1f', 's')}",
        f"voxels {_fmt(qc.get('n_voxels'), '.0f')} of {_fmt(qc.get('n_candidates'), '.0f')} "
        f"candidates, noise/peak "
        f"{_fmt(qc.get('noise_ratio'), '.2g')}, washout {_fmt(qc.get('washout'), '.2f')}, "
        f"FWHM {_fmt(qc.get('fwhm_s'), '.1f', 's')}",
    ]
    if qc.get("blood_t10_s") is not None:
        lines.append(f"blood T10 {_fmt(qc.get('blood_t10_s'), '.3g', 's')} "
                     f"({qc.get('blood_t10_source')}), baseline blood SNR "
                     f"{_fmt(qc.get('voxel_baseline_snr_median'), '.1f')}, peak S/S0 "
                     f"{_fmt(qc.get('peak_enhancement_ratio'), '.3g')} (SPGR limit "
                     f"{_fmt(qc.get('saturation_ratio'), '.3g')})")
    if qc.get("mode") == "population":
        lines.append(f"population AIF ({qc.get('source')}) by configuration, aligned to the "
                     "detected bolus arrival; QC above refers to the measured aortic curve")
    if qc.get("fallback_used"):
        lines.append(f"population fallback used: {qc.get('fallback_reason')}")
    if qc.get("delay_phases"):
        lines.append(f"delayed by {qc.get('delay_phases')} phase(s)")
    wrapped = [_wrap(s, 105) for s in lines]
    n_lines = sum(s.count("\n") + 1 for s in wrapped)
    fig.text(0.01, 0.01, "\n".join(wrapped), fontsize=MIN_FONT_PT, va="bottom", ha="left",
             color="black" if passed else OKABE_ITO["vermillion"], family="monospace")
    fig.subplots_adjust(bottom=0.11 + 0.034 * n_lines, top=0.91, wspace=0.22, left=0.03,
                        right=0.98)
    fig.suptitle("Arterial input function")
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


# --------------------------------------------------------------------------- TIC


@dataclass(frozen=True)
class TICCurve:
    """One mean time-intensity curve for :func:`tic_figure`.

    Attributes
    ----------
    name : str
        Legend name, e.g. ``"lesion 1 (L1)"`` or ``"normal marrow"`` (no identifiers).
    mean, sd : array_like, shape (n_times,)
        Mean and SD of the signal over the ROI's voxels (signal units).
    tic_type : str
        ``"A"`` .. ``"E"`` or ``""``.
    rslope_max : float, optional
        RSlope_max against normal marrow (lesions only).
    reference : bool
        Draw as the reference (normal marrow) curve.
    """

    name: str
    mean: ArrayLike
    sd: ArrayLike
    tic_type: str = ""
    rslope_max: float | None = None
    reference: bool = False


@journal
def tic_figure(t_s: ArrayLike, curves: Sequence[TICCurve], *, n_baseline: int,
               rule_text: str | None = None) -> Figure:
    """Mean time-intensity curves as relative enhancement (%), with TIC type and RSlope_max.

    Parameters
    ----------
    t_s : array_like, shape (n_times,)
        Phase times (s).
    curves : sequence of TICCurve
    n_baseline : int
        Leading pre-contrast phases; S0 = mean of each curve over them.
    rule_text : str, optional
        The TIC rule (e.g. :meth:`dce.semiquant.TICRule.describe`), printed small.

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = np.asarray(t_s, dtype=np.float64)
    fig = Figure(figsize=figsize_mm(TWO_COLUMN_MM, 95 if rule_text else 80),
                 layout="constrained")
    if rule_text:
        ax, note = fig.subplots(2, 1, height_ratios=[5, 1])
        note.axis("off")
        note.text(0.0, 1.0, _wrap(rule_text, 140), fontsize=MIN_FONT_PT, va="top",
                  color="0.3", transform=note.transAxes)
    else:
        ax = fig.subplots()
    n_les = 0
    for c in curves:
        m = np.asarray(c.mean, dtype=np.float64)
        sd = np.asarray(c.sd, dtype=np.float64)
        s0 = float(np.nanmean(m[:n_baseline]))
        if not s0 > 0:
            continue
        rel = 100.0 * (m - s0) / s0
        band = 100.0 * sd / s0
        if c.reference:
            colour, ls = _MARROW_COLOUR, "--"
        else:
            colour, ls = _LESION_COLOURS[n_les % len(_LESION_COLOURS)], "-"
            n_les += 1
        extra = f", type {c.tic_type}" if c.tic_type else ", type n/a"
        if c.rslope_max is not None and np.isfinite(c.rslope_max) and not c.reference:
            extra += f", RSlope max {c.rslope_max:.2f}"
        ax.plot(t, rel, color=colour, ls=ls, lw=1.3, label=f"{c.name}{extra}")
        ax.fill_between(t, rel - band, rel + band, color=colour, alpha=0.12, lw=0)
    ax.axvspan(t[0], t[n_baseline - 1], color="0.85", alpha=0.5, lw=0, label="baseline")
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("relative enhancement (S − S0) / S0 (%)")
    ax.set_title("Mean time-intensity curves (band: voxel SD)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


# --------------------------------------------------------------------------- maps


@dataclass(frozen=True)
class MapPanel:
    """One parameter map for :func:`parameter_map_figure`.

    Attributes
    ----------
    title : str
        Parameter name, e.g. ``"Ktrans"``.
    unit : str
        Unit for the colour bar, e.g. ``"/min"`` (empty for fractions).
    data : array_like, shape (n_i, n_j, n_k)
    vmin, vmax : float, optional
        Colour range (values below ``vmin`` transparent); default the 2nd-98th
        percentile over the lesion and marrow ROIs (over the overlay mask without ROIs),
        from :data:`dce.viz.style.OVERLAY_FLOOR` x ``vmax`` for non-negative maps.
    cmap : str
    """

    title: str
    unit: str
    data: ArrayLike
    vmin: float | None = None
    vmax: float | None = None
    cmap: str = _MAP_CMAP


@journal
def parameter_map_figure(anatomy: ArrayLike, panels: Sequence[MapPanel], *,
                         affine: ArrayLike, lesion_labels: ArrayLike | None = None,
                         marrow_mask: ArrayLike | None = None,
                         overlay_mask: ArrayLike | None = None,
                         lesion_names: Mapping[int, str] | None = None) -> Figure:
    """Parameter maps over the anatomy on the sagittal section with the most lesion voxels.

    Parameters
    ----------
    anatomy : array_like, shape (n_i, n_j, n_k)
        Grey-scale background (e.g. the mean pre-contrast signal).
    panels : sequence of MapPanel
        Maps drawn semi-transparently over the anatomy.
    affine : array_like, shape (4, 4)
        Voxel-to-world affine shared by every volume.
    lesion_labels : array_like of int, optional
        Lesion labels on the same grid (outlined; also choose the section).
    marrow_mask : array_like, optional
        Normal-marrow ROI (outlined, dashed).
    overlay_mask : array_like of bool, optional
        Where maps are drawn (e.g. body voxels with a successful fit); default where the
        map is finite.
    lesion_names : mapping, optional
        Label -> legend name, e.g. ``{1: "lesion 1 (L1)"}``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    anat_ras, zooms = to_ras(np.asarray(anatomy, dtype=np.float64), affine)
    shape = anat_ras.shape

    def ras(v: ArrayLike | None, dtype: Any) -> NDArray[Any] | None:
        if v is None:
            return None
        out, _ = to_ras(np.asarray(v, dtype=dtype), affine)
        if out.shape != shape:
            raise ValueError(f"volume of shape {np.shape(v)} differs from the anatomy "
                             f"{np.shape(anatomy)}")
        return out

    les = ras(lesion_labels, np.int64)
    mar = ras(marrow_mask, bool)
    ovl = ras(overlay_mask, bool)
    x = _best_slice(les, shape[0]) if les is not None and np.any(les) else \
        _best_slice(mar, shape[0])
    aspect = _aspect(zooms)
    les_s = sagittal_section(les, x) if les is not None else None
    mar_s = sagittal_section(mar, x) if mar is not None else None
    n = len(panels) + 1
    sec0 = sagittal_section(anat_ras, x)
    panel_w = (TWO_COLUMN_MM - 4.0) / n - 9.0           # colour bars take about 9 mm
    height = panel_w * sec0.shape[0] * aspect / max(sec0.shape[1], 1) + 16.0
    fig = Figure(figsize=figsize_mm(TWO_COLUMN_MM, height), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)
    ax0 = axes[0, 0]
    _show_anatomy(ax0, sagittal_section(anat_ras, x), aspect)
    _contours(ax0, les_s, mar_s)
    ax0.set_title(f"anatomy, section {x + 1}/{shape[0]}")
    _orientation_marks(ax0)
    handles = []
    if les_s is not None:
        from matplotlib.lines import Line2D

        for k, lab in enumerate(np.unique(les_s[les_s > 0])):
            name = (lesion_names or {}).get(int(lab), f"lesion {int(lab)}")
            handles.append(Line2D([], [], color=_LESION_COLOURS[k % len(_LESION_COLOURS)],
                                  label=name))
        if mar_s is not None and np.any(mar_s):
            handles.append(Line2D([], [], color=_MARROW_COLOUR, ls="--",
                                  label="normal marrow"))
    if handles:
        fig.legend(handles=handles, loc="outside lower left", ncol=len(handles))
    base = sagittal_section(anat_ras, x)
    # colour range from the ROIs (the lesions are what the figure is about), else the overlay
    scale_mask = np.zeros(shape, dtype=bool)
    if les is not None:
        scale_mask |= les > 0
    if mar is not None:
        scale_mask |= mar
    if not scale_mask.any():
        scale_mask = ovl if ovl is not None else np.ones(shape, dtype=bool)
    for ax, p in zip(axes[0, 1:], panels, strict=True):
        vol = ras(p.data, np.float64)
        assert vol is not None
        sec = sagittal_section(vol, x)
        show = np.isfinite(sec)
        if ovl is not None:
            show &= sagittal_section(ovl, x)
        ref = vol[np.isfinite(vol) & scale_mask]
        lo, hi = _robust_range(ref)
        vmax = p.vmax if p.vmax is not None else hi
        if ref.size and float(np.min(ref)) >= 0:      # transparent below the floor
            lo = OVERLAY_FLOOR * vmax
        vmin = p.vmin if p.vmin is not None else lo
        _show_anatomy(ax, base, aspect)
        cmap = overlay_cmap(p.cmap)
        im = ax.imshow(np.ma.masked_where(~show, sec), cmap=cmap, vmin=vmin, vmax=vmax,
                       alpha=0.9, aspect=aspect, interpolation="nearest")
        _contours(ax, les_s, mar_s)
        ax.set_title(p.title)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        cb.set_label(f"{p.title} ({p.unit})" if p.unit else p.title)
    return fig
