"""Display names and journal-style figures (issue 15).

* the naming layer (:mod:`dce.cohort.display`): every statistic column of the scheme gets a
  label with its unit and no raw name, checked against labels written out by hand;
* print formats (:mod:`dce.viz.tables`): minus sign, ranges, p values, no scientific
  notation;
* every figure of :mod:`dce.viz`: no raw column name in any text, fonts >= 7 pt at the
  printed size (89 or 183 mm wide), no text outside the figure (clipped titles), PNG
  written at >= 300 dpi (read back from the file's pHYs chunk by PIL) with a vector PDF;
* parameter maps: the overlay is transparent where the map is NaN or the fit status is
  not shown, so the rendered pixel there is the grey anatomy; coloured elsewhere.

The workflow check (every PNG and table header of a real run) is in test_cohort.py
(``test_workflow_figures_and_tables_are_journal_ready``, on its shared run).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.text import Text
from PIL import Image

from dce.cohort import display
from dce.io.tables import save_figure_formats
from dce.registry import MAPS, STATUS_SHOWN
from dce.roi import shown_map
from dce.viz import cohort as cf
from dce.viz import session as sf
from dce.viz.groups import GroupPanel, groups_figure
from dce.viz.style import MIN_FONT_PT, MM, ONE_COLUMN_MM, TWO_COLUMN_MM
from dce.viz.tables import MINUS, fmt_ci, fmt_num, fmt_p, fmt_range

# --------------------------------------------------------------------------- naming


@pytest.mark.parametrize(("column", "label"), [
    ("vp_mean", "Vp (%)"),
    ("vp_mean_pct_change", "ΔVp from baseline (%)"),
    ("vp_mean_change", "ΔVp from baseline (percentage points)"),
    ("ktrans_per_min_mean", "Ktrans (min⁻¹)"),
    ("ktrans_per_min_max", "Ktrans maximum (min⁻¹)"),
    ("kep_per_min_p95", "kep 95th percentile (min⁻¹)"),
    ("ve_median", "ve median"),
    ("iauc_60s_mean", "iAUC60 (a.u.·s)"),
    ("iauc_90s_p95_pct_change", "ΔiAUC90 95th percentile from baseline (%)"),
    ("wash_in_slope_pct_per_s_mean", "wash-in slope (%/s)"),
    ("peak_enhancement_pct_mean_change", "Δpeak enhancement from baseline (%)"),
    ("tic_type", "TIC type"),
    ("days_from_rt", "days from RT"),
    ("p_holm", "p (Holm)"),
    ("p_bh", "p (Benjamini–Hochberg)"),
    ("vp_n_finite", "voxels with a Vp value"),
])
def test_column_labels(column: str, label: str) -> None:
    assert display.column_label(column) == label


def test_predictor_labels_place_the_session() -> None:
    assert display.predictor_label("vp_mean", "pct_change", "first") == \
        "ΔVp from baseline to first follow-up (%)"
    assert display.predictor_label("kep_per_min_mean", "value", "last") == \
        "kep at last follow-up (min⁻¹)"
    assert display.predictor_label("ktrans_per_min_mean", "change", "fu2") == \
        "ΔKtrans from baseline to session fu2 (min⁻¹)"


def test_every_statistic_column_has_a_clean_label() -> None:
    """Every map x statistic x change of the naming scheme: parsed back, labelled with the
    quantity's unit, no forbidden raw pattern."""
    stats = [s for s in display.STATISTICS if s != "min"]
    for m in MAPS:
        q = display.quantity(m.column)
        assert q is not None, m.column
        for stat in stats:
            for change in ("", "_change", "_pct_change"):
                col = f"{m.column}_{stat}{change}"
                parsed = display.parse_column(col)
                assert parsed == display.ColumnName(m.column, stat, change[1:]), col
                lab = display.column_label(col)
                assert not [p for p in display.FORBIDDEN_RAW if p in lab], (col, lab)
                if q.unit and stat != "n_finite" and not change:
                    assert lab.endswith(f"({q.unit})"), (col, lab)
    assert display.parse_column("subject") is None
    assert display.column_label("some_new_column") == "some new column"


def test_values_in_display_units() -> None:
    assert display.fmt_value("vp_mean", 0.0523) == "5.2"           # fraction -> %
    assert display.fmt_value("ktrans_per_min_mean", -0.01234) == f"{MINUS}0.012"
    assert display.fmt_value("vp_mean_pct_change", -65.24) == f"{MINUS}65.2"
    assert display.fmt_value("iauc_60s_mean", 12234.4) == "12234"
    assert display.display_scale("vp_mean") == 100.0
    assert display.display_scale("vp_mean_pct_change") == 1.0


def test_print_formats() -> None:
    assert fmt_num(-1.5) == f"{MINUS}1.5"
    assert fmt_num(12234.5) == "12200" and fmt_num(1.5e-5) == "0.0000150"
    assert "e" not in fmt_num(3.2e7) and "e" not in fmt_num(-4.4e-9)
    assert fmt_num(-0.0001, fixed=2) == "0.00"                 # no negative zero
    assert fmt_range(0.78, 1.0, fixed=2) == "0.78–1.00"
    assert fmt_range(-10, -5) == f"{MINUS}10 to {MINUS}5"     # never "−10–−5"
    assert fmt_ci(-0.1, -0.25, 0.05) == f"{MINUS}0.10 ({MINUS}0.25 to 0.05)"
    assert fmt_p(0.0004) == "< 0.001" and fmt_p(0.0123) == "0.012" and fmt_p(0.5) == "0.50"


# --------------------------------------------------------------------------- figures


def _phantom() -> dict[str, Any]:
    """A 3-D 'spine' (bright block of marrow in a darker body), a lesion, a status map
    with not-enhancing (5) and unfitted (-1) voxels, and a map (Vp, fraction)."""
    shape = (6, 40, 30)
    anat = np.full(shape, 50.0)
    anat[:, 5:35, 8:22] = 200.0
    lesion = np.zeros(shape, np.int64)
    lesion[2:4, 15:22, 10:18] = 1
    marrow = np.zeros(shape, bool)
    marrow[2:4, 26:30, 10:16] = True
    status = np.full(shape, -1, np.int8)
    status[:, 5:35, 8:22] = 5                                  # body: not enhancing
    status[:, 12:25, 9:20] = 0                                 # fitted around the lesion
    vp = np.where(status >= 0, 0.02, np.nan)
    vp[lesion > 0] = np.linspace(0.04, 0.08, int((lesion > 0).sum()))
    return {"anat": anat, "lesion": lesion, "marrow": marrow, "status": status, "vp": vp,
            "affine": np.diag([2.0, 1.0, 1.0, 1.0])}


def _session_figures() -> dict[str, Figure]:
    ph = _phantom()
    t = np.arange(40) * 4.0
    curve = np.where(t > 30, 5.0 * (t - 30) * np.exp(-(t - 30) / 20) / 20, 0.0)
    vox = np.zeros_like(ph["lesion"], bool)
    vox[3, 4, 4] = True
    panels = [sf.MapPanel(**f) for f in
              __import__("dce.roi", fromlist=["x"]).map_panel_fields(
                  {"vp": ph["vp"], "ktrans_per_min": ph["vp"] * 2}, ["vp", "ktrans"],
                  ph["status"])]
    return {
        "session_maps": sf.parameter_map_figure(
            ph["anat"], panels, affine=ph["affine"], lesion_labels=ph["lesion"],
            marrow_mask=ph["marrow"], lesion_names={1: "lesion 1 (L1)"}),
        "session_tic": sf.tic_figure(t, [
            sf.TICCurve("lesion 1 (L1)", 100 + 50 * curve, 5 + 0 * t, "D", 1.4),
            sf.TICCurve("normal marrow", 100 + 20 * curve, 5 + 0 * t, "B", reference=True)],
            n_baseline=5, rule_text="TIC rule " * 40),
        "session_aif": sf.aif_qc_figure(
            t, curve, background=ph["anat"], voxel_mask=vox, affine=ph["affine"],
            qc={"passed": True, "source": "aorta", "peak_blood_mM": 5.0, "arrival_s": 30.0,
                "n_voxels": 1, "n_candidates": 9}),
    }


def _cohort_figures() -> dict[str, Figure]:
    rng = np.random.default_rng(1)
    fpr = np.array([0, 0, 0.25, 0.5, 1.0])
    tpr = np.array([0, 0.5, 0.75, 1.0, 1.0])
    series = [cf.RocSeries(display.predictor_label(p, "pct_change", "first"), fpr, tpr, 0.81,
                           0.6, 0.95, fpr, np.clip(tpr - 0.2, 0, 1), np.clip(tpr + 0.2, 0, 1),
                           (0.25, 0.75))
              for p in ("vp_mean", "ktrans_per_min_mean", "peak_enhancement_pct_mean")]
    ph = _phantom()
    sec = ph["anat"][3]
    mask = ph["lesion"][3] > 0
    vals = np.where(ph["status"][3] == 0, 100 * ph["vp"][3], np.nan)
    row = cf.LesionMapRow("Vp", "%", [cf.LesionMapCell(sec, vals, mask, f"{s} (day {d})",
                                                        summary="median 8.0")
                                      for s, d in (("pre", -5), ("fu1", 60), ("fu2", 150))])
    return {
        "roc": cf.roc_figure(series, title="ROC: recurrence (lesions; band: bootstrap 95%)",
                             ci_label="DeLong 95% CI"),
        "waterfall": cf.waterfall_figure(
            rng.normal(-20, 30, 25), rng.integers(0, 2, 25), endpoint="recurrence",
            ylabel=display.predictor_label("vp_mean", "pct_change", "first"),
            cutoffs={"ΔVp > −20%": -20.0}, title="Per lesion, by recurrence"),
        "prepost": cf.prepost_figure([cf.PairedPanel(
            display.column_label(c), rng.normal(5, 1, 12), rng.normal(4, 1, 12),
            rng.integers(0, 2, 12), p_values={"recurrence": "p = 0.031",
                                              "no recurrence": "p < 0.001"})
            for c in ("vp_mean", "ktrans_per_min_mean", "kep_per_min_mean", "ve_mean",
                      "iauc_60s_mean")], endpoint="recurrence",
            title="Baseline vs follow-up per lesion (Wilcoxon signed-rank p per group)"),
        "tic_types": cf.tic_types_figure([cf.TICTypeCurve(k, np.arange(20.0),
                                                          np.arange(20.0) * j, None, 3)
                                          for j, k in enumerate("BCDE")],
                                         rule_text="rule " * 60, title="Mean lesion TIC"),
        "lesion_maps": cf.lesion_maps_figure([row, row], title="lesion 1 (T12)",
                                             outcome="recurrence: yes"),
        "message": cf.message_figure("ROC for recurrence undefined: one class only " * 2),
        "groups": groups_figure(
            [GroupPanel(display.predictor_label(p, "pct_change", "first"),
                        rng.normal(-30, 20, 4), rng.normal(-60, 10, 11), p=0.04, p_holm=0.32,
                        rank_biserial=-0.73, cutoffs={"dVp > -20 %": -20.0})
             for p in ("vp_mean", "peak_enhancement_pct_p95", "ktrans_per_min_mean",
                       "kep_per_min_mean")],
            names=("recurrence: yes", "recurrence: no"), title="recurrence"),
    }


def _prm_figures() -> dict[str, Figure]:
    from dce.prm import PRM_DECREASED, PRM_INCREASED, PRM_UNCHANGED
    from dce.viz.prm import PRMPanel, PRMRow, lesion_crop, prm_figure

    ph = _phantom()
    rng = np.random.default_rng(3)
    classes = np.where(ph["lesion"] > 0, PRM_UNCHANGED, 0)
    classes[ph["lesion"] > 0] = rng.choice([PRM_INCREASED, PRM_UNCHANGED, PRM_DECREASED],
                                           int((ph["lesion"] > 0).sum()))
    (anat, cls), aspect = lesion_crop([ph["anat"], classes], ph["lesion"], 1, ph["affine"])
    b = rng.uniform(2, 8, 40)
    panels = [PRMPanel(sym, unit, anat, cls, aspect, b, b + rng.normal(0, 1, 40),
                       rng.choice([1, 2, 3], 40), 1.0, (0.3, 0.5, 0.2))
              for sym, unit in (("Vp", "%"), ("Ktrans", "min⁻¹"))]
    failed = [replace(p, baseline=np.zeros(0), followup=np.zeros(0),
                      voxel_classes=np.zeros(0), fractions=(np.nan,) * 3,
                      note="registration failed its QC: not computed") for p in panels]
    return {"prm": prm_figure([PRMRow("lesion 1 (L1)", panels),
                               PRMRow("lesion 2 (L2)", failed)],
                              title="Parametric response, session fu1 vs baseline")}


ALL_FIGURES = {**_session_figures(), **_cohort_figures(), **_prm_figures()}


def _drawn_texts(fig: Figure) -> list[Text]:
    """The non-empty texts a drawing of ``fig`` shows (tick labels of ticks outside the
    axis range are kept by matplotlib but not drawn)."""
    hidden: set[int] = set()
    for ax in fig.axes:
        axis: Any
        for axis in (ax.xaxis, ax.yaxis):
            shown = ax.axison and ax.get_visible() and axis.get_visible()
            drawn = {id(t) for t in axis._update_ticks()} if shown else set()  # Axis.draw
            for t in axis.get_major_ticks() + axis.get_minor_ticks():
                if id(t) not in drawn:
                    hidden |= {id(t.label1), id(t.label2)}
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
            and id(t) not in hidden and (t.axes is None or t.axes.get_visible())]


@pytest.mark.parametrize("name", list(ALL_FIGURES))
def test_figure_text_sizes_and_no_raw_names(name: str) -> None:
    fig = ALL_FIGURES[name]
    width_mm = fig.get_figwidth() / MM
    assert min(abs(width_mm - ONE_COLUMN_MM), abs(width_mm - TWO_COLUMN_MM)) < 0.5, width_mm
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    texts = _drawn_texts(fig)
    assert texts
    for t in texts:
        s = t.get_text()
        assert not [p for p in display.FORBIDDEN_RAW if p in s], (name, s)
        assert float(t.get_fontsize()) >= MIN_FONT_PT, (name, s, t.get_fontsize())
        ext = t.get_window_extent(renderer)
        assert _inside(ext, box), (name, s, ext)                # not clipped
    for leg in fig.findobj(Legend):                             # legend boxes too
        assert _inside(leg.get_window_extent(renderer), box), name


def _inside(ext: Any, box: Any) -> bool:
    return bool(ext.x0 >= box.x0 - 0.5 and ext.x1 <= box.x1 + 0.5 and ext.y0 >= box.y0 - 0.5
                and ext.y1 <= box.y1 + 0.5)


def test_saved_png_is_300_dpi_with_a_vector_pdf(tmp_path: Path) -> None:
    fig = _cohort_figures()["roc"]
    png, pdf = tmp_path / "roc.png", tmp_path / "roc.pdf"
    save_figure_formats(fig, [png, pdf])
    with Image.open(png) as im:
        dpi = im.info["dpi"]
        assert min(dpi) >= 299.5, dpi
        assert im.size[0] == pytest.approx(ONE_COLUMN_MM / 25.4 * 300, abs=2)
    head = pdf.read_bytes()
    assert head.startswith(b"%PDF") and b"/FontFile2" in head     # TrueType, vector text
    assert not re.search(rb"/Subtype\s*/Image", head)               # no raster in the ROC


def test_saving_closes_pyplot_figures_without_importing_pyplot(tmp_path: Path) -> None:
    """A figure made without pyplot is saved in a process that never imports pyplot; one
    made by pyplot is closed (pyplot forgets it) after saving."""
    import subprocess
    import sys

    code = ("import sys; from matplotlib.figure import Figure; "
            "from dce.io.tables import save_figure_formats; fig = Figure(); fig.add_subplot(); "
            f"save_figure_formats(fig, [{str(tmp_path / 'a.png')!r}]); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False" and (tmp_path / "a.png").is_file()
    import matplotlib.pyplot as plt

    fig = plt.figure()
    assert plt.fignum_exists(fig.number)
    save_figure_formats(fig, [tmp_path / "b.png"])
    assert not plt.fignum_exists(fig.number) and (tmp_path / "b.png").is_file()


def _pixel(fig: Figure, ax: Any, rgba: np.ndarray, row: int, col: int) -> np.ndarray:
    """The rendered RGB at the centre of data cell (row, col) of ``ax``."""
    x, y = ax.transData.transform((col, row))
    h = rgba.shape[0]
    return rgba[round(h - y), round(x), :3].astype(int)


@pytest.mark.parametrize("kind", ["session", "cohort"])
def test_map_overlay_is_transparent_where_not_fitted(kind: str) -> None:
    ph = _phantom()
    x = 3
    if kind == "session":
        panels = [sf.MapPanel("Vp", "%", shown_map("vp", ph["vp"], ph["status"]) * 100)]
        fig = sf.parameter_map_figure(ph["anat"], panels, affine=ph["affine"],
                                      lesion_labels=ph["lesion"])
        ax = fig.axes[1]
        # display array of the section (rows superior->inferior, cols anterior->posterior)
        status = ph["status"][x, ::-1, ::-1].T
    else:
        fig = _cohort_figures()["lesion_maps"]
        ax = fig.axes[0]
        status = ph["status"][3]
    images = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    grey, overlay = images[0], images[1]
    assert grey.get_cmap().name == "gray"
    data = overlay.get_array()
    assert data is not None
    rgba = overlay.to_rgba(data)
    hidden = ~np.isin(status, STATUS_SHOWN)
    # coloured: fitted voxels with a value at or above the bottom of the colour scale
    coloured = ~hidden & (np.ma.filled(data, np.nan) >= overlay.norm.vmin)
    assert hidden.any() and coloured.any()
    assert np.all(rgba[..., 3][hidden] == 0)              # transparent where not shown
    assert np.all(rgba[..., 3][coloured] > 0)
    anat = np.asarray(grey.get_array())
    assert np.all(np.isfinite(anat[hidden]))              # the anatomy is there underneath
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    img = np.asarray(canvas.buffer_rgba())
    # a not-enhancing voxel inside the body (status 5) renders grey, a fitted one coloured
    rr, cc = np.nonzero(status == 5)
    px = _pixel(fig, ax, img, rr[len(rr) // 2], cc[len(cc) // 2])
    assert np.ptp(px) <= 2 and px[0] > 60, px              # grey level of the body
    rr, cc = np.nonzero(status == 0)
    px = _pixel(fig, ax, img, rr[0] + 1, cc[0] + 1)
    assert np.ptp(px) > 30, px                             # viridis colour
