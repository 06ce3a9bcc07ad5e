"""Rule cohort_maps: baseline vs follow-up parameter maps of one lesion over the
anatomy (dce.figures.lesion_maps_figure), PNG and PDF."""

import warnings

import numpy as np
from _common import job, map_info

from dce.fit import STATUS_SHOWN
from dce.io import read_nifti
from dce.io.tables import save_figure_formats
from dce.roi import match_roi
from dce.viz import cohort as cl
from dce.viz.cohort import LesionMapCell, LesionMapRow, lesion_maps_figure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

FIT_COLS = ("ktrans_per_min", "kep_per_min", "ve", "vp")

with job(sm) as log:
    p = sm.params
    label = int(sm.wildcards.lesion)
    names = list(p.maps)
    sections, titles = [], []
    for k, ses in enumerate(p.sessions):
        dce = read_nifti(sm.input.dce[k])
        nb = int(p.n_baseline)
        anatomy = dce.data[..., :nb].mean(axis=-1)
        shape, affine = anatomy.shape, dce.affine
        roi = read_nifti(sm.input.lesion_roi[k])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            labels = match_roi(roi.data, roi.affine, shape, affine,
                               name=str(sm.input.lesion_roi[k]))
        for w in caught:
            log.warning("%s", w.message)
        status = read_nifti(sm.input.fitstatus[k]).data
        maps = {}
        for j, name in enumerate(names):
            col = map_info(name)[0]
            data = read_nifti(sm.input.maps[k * len(names) + j]).data.astype(float)
            if col in FIT_COLS:
                data = np.where(np.isin(status, STATUS_SHOWN), data, np.nan)
            maps[name] = data
        sections.append(cl.lesion_section(anatomy, maps, labels, label, affine))
        titles.append(f"{ses} (day {p.days[k]:g})")
    crops = cl.crop_sections(sections, margin_mm=float(p.margin_mm))
    rows = []
    for name in names:
        _, title, unit = map_info(name)
        cells = []
        for s, t in zip(crops, titles, strict=True):
            vals = s["maps"][name]
            inside = vals[s["mask"] & np.isfinite(vals)]
            cells.append(LesionMapCell(anatomy=s["anatomy"], values=vals, mask=s["mask"],
                                       title=t, aspect=s["aspect"],
                                       summary=f"median {np.median(inside):.3g}"
                                       if inside.size else ""))
        rows.append(LesionMapRow(parameter=title, unit=unit, cells=cells))
    lesion_name = f"lesion {label}" + (f" ({p.level})" if p.level else "")
    fig = lesion_maps_figure(rows, title=lesion_name, outcome=p.outcome)
    save_figure_formats(fig, [sm.output.png, sm.output.pdf])
    log.info("maps of %s over %d session(s)", lesion_name, len(crops))
