"""Rule cohort_maps: baseline vs follow-up parameter maps of one lesion over the
anatomy (dce.viz.cohort.lesion_maps_figure), PNG and PDF; status masking from
dce.registry, display names, units and decimals from dce.cohort.display."""

import numpy as np

from dce.cohort.display import quantity
from dce.io import read_nifti
from dce.io.jobs import job
from dce.io.maps import read_roi
from dce.io.tables import save_figure_formats
from dce.registry import output_map
from dce.roi import shown_map
from dce.viz import cohort as cl
from dce.viz.cohort import LesionMapCell, LesionMapRow, lesion_maps_figure
from dce.viz.tables import fmt_num

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

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
        labels, notes = read_roi(sm.input.lesion_roi[k], shape, affine, labels=[label],
                                 names={label: p.roi_name})
        for note in notes:
            log.warning("%s", note)
        status = read_nifti(sm.input.fitstatus[k]).data
        maps = {name: shown_map(name, read_nifti(sm.input.maps[k * len(names) + j]).data, status)
                for j, name in enumerate(names)}
        sections.append(cl.lesion_section(anatomy, maps, labels, label, affine))
        titles.append(f"{ses} (day {fmt_num(p.days[k])})")
    crops = cl.crop_sections(sections, margin_mm=float(p.margin_mm))
    rows = []
    for name in names:
        q = quantity(output_map(name).column)       # display name, unit, scale, decimals
        assert q is not None
        cells = []
        for s, t in zip(crops, titles, strict=True):
            vals = s["maps"][name] * q.scale
            inside = vals[s["mask"] & np.isfinite(vals)]
            med = fmt_num(np.median(inside), fixed=q.decimals) if inside.size else ""
            cells.append(LesionMapCell(anatomy=s["anatomy"], values=vals, mask=s["mask"],
                                       title=t, aspect=s["aspect"],
                                       summary=f"median {med}" if med else ""))
        rows.append(LesionMapRow(parameter=q.symbol, unit=q.unit, cells=cells))
    lesion_name = f"lesion {label}" + (f" ({p.level})" if p.level else "")
    fig = lesion_maps_figure(rows, title=lesion_name, outcome=p.outcome)
    save_figure_formats(fig, [sm.output.png, sm.output.pdf])
    log.info("maps of %s over %d session(s)", lesion_name, len(crops))
