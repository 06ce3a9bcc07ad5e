"""Rule roi: voxel-wise semi-quantitative maps from the DCE signal, then lesion and
normal-marrow statistics, mean TICs with TIC type, figures (TIC, parameter maps, and the
AIF QC figure from the AIF table, QC record and voxel mask of the rule kinetics).

Semi-quantitative maps (model-free, independent of the AIF): peak enhancement (%), time to
peak (s), wash-in slope (%/s), maximum slope (%/s), washout (%), IAUC over the configured
windows and the TIC type (coded 1-5 = A-E, 0 = not classifiable; dce.registry.TIC_CODES).

ROIs (NIfTI labels, DICOM RTSTRUCT, DICOM-SEG, NRRD; lesions by label or by the lesion
sheet's roi_name) are put on the DCE grid in world coordinates (dce.io.maps.read_session_rois,
dce.io.rois); an ROI outside the field of view, empty, or missing a lesion listed in
lesions.tsv stops the job with a message naming the ROI file. Tables: dce.roi.session_roi_table
(and its map statistics in long format, dce.roi.long_roi_table) and roi_curve_table;
quality columns (T10 and AIF source, AIF QC, failed-fit fraction):
dce.quality.add_quality_columns. The statistics read the maps as written (fit and
semi-quantitative), the values a rerun would read.
"""

import json
from logging import Logger
from pathlib import Path

import numpy as np

from dce import roi
from dce.io.derivatives import derived_sources
from dce.io.jobs import job, save_figure, write_tsv
from dce.io.maps import read_maps, read_session_quality, read_session_rois, write_map
from dce.io.nifti import NiftiContents, read_nifti
from dce.quality import add_quality_columns
from dce.registry import TIC_CODES, TIC_TYPE_MAP, output_map, tic_code_names
from dce.semiquant import TICRule, semiquant_maps
from dce.viz.session import (
    MapPanel,
    TICCurve,
    aif_qc_figure,
    aif_qc_phase,
    parameter_map_figure,
    tic_figure,
)

sm = snakemake  # type: ignore[name-defined]  # noqa: F821


def write_semiquant_maps(dce: NiftiContents, t: np.ndarray, log: Logger) -> None:
    """Write the semi-quantitative maps (outputs named by ``params.semiquant_maps``)."""
    p = sm.params
    rule, nb = TICRule(**p.tic), int(p.n_baseline)
    met = semiquant_maps(dce.data, t, n_baseline=nb, iauc_windows_s=[float(w) for w in p.iauc],
                         rule=rule)
    codes = met["tic_type_code"]
    log.info("TIC types over %d voxels: %s", codes.size,
             {k or "none": int((codes == v).sum()) for k, v in TIC_CODES.items()})
    for name in p.semiquant_maps:
        side = {"BaselinePhases": nb, "Source": "DCE signal (model-free)",
                "Sources": derived_sources([sm.input.dce], sm.config["results"])}
        if name == TIC_TYPE_MAP:
            side.update(Codes=tic_code_names(), Rule=rule.describe())
        write_map(getattr(sm.output, name), name, met[output_map(name).column], dce.affine,
                  side, significant_bits=p.map_significant_bits)


def roi_tables_and_figures(dce: NiftiContents, t: np.ndarray, anatomy: np.ndarray,
                           log: Logger) -> None:
    """Write the ROI and TIC tables and the TIC and parameter-map figures (``anatomy``:
    the mean baseline image)."""
    p, wc = sm.params, sm.wildcards
    sig, affine, nb = dce.data, dce.affine, int(p.n_baseline)
    lesions, marrow, notes = read_session_rois(
        sm.input.lesion_roi, sm.input.marrow_roi[0] if sm.input.marrow_roi else None,
        sig.shape[:3], affine, expected=p.lesions["labels"], expected_from=p.lesions["sheet"],
        subject=wc.subject, names=p.lesions["names"])
    for note in notes:
        log.warning("%s", note)
    levels = dict(zip(p.lesions["labels"], p.lesions["levels"], strict=False))
    maps = read_maps({name: getattr(sm.output if name in p.semiquant_maps else sm.input, name)
                      for name in p.map_names})
    rule = TICRule(**p.tic)
    table, tic = roi.session_roi_table(
        maps, sig, t, lesions, marrow, voxel_volume_mm3=float(abs(np.linalg.det(affine[:3, :3]))),
        n_baseline=nb, iauc_windows_s=[float(w) for w in p.iauc], rule=rule,
        rslope_from=p.rslope_from, levels=levels,
        index={"subject": wc.subject, "session": wc.session, "days_from_rt": p.days_from_rt})
    q = read_session_quality(sm.input.t1, sm.input.aif_qc)
    table = add_quality_columns(table, q, max_fit_failed_fraction=float(p.max_fit_failed_fraction))
    if flags := roi.flag_summary(table):
        log.warning("quality flags (T10 %s, AIF %s, AIF QC %s): %s", q.t10_source,
                    q.aif_source, "passed" if q.aif_passed else "FAILED", flags)
    write_tsv(table, sm.output.roi)
    write_tsv(roi.long_roi_table(table), sm.output.roi_long)
    curves, by_roi = roi.roi_curve_table(sig, t, lesions, marrow, n_baseline=nb,
                                         index={"subject": wc.subject, "session": wc.session})
    write_tsv(curves, sm.output.tic)
    items = [TICCurve(**c) for c in roi.tic_curve_fields(by_roi, tic, levels)]
    save_figure(tic_figure(t, items, n_baseline=nb, rule_text=rule.describe()), sm.output.tic_png)
    panels = [MapPanel(**f) for f in roi.map_panel_fields(maps, p.figure_maps, maps["status"])]
    save_figure(parameter_map_figure(
        anatomy, panels, affine=affine, lesion_labels=lesions, marrow_mask=marrow,
        overlay_mask=anatomy > 0.1 * np.percentile(anatomy, 99),
        lesion_names=roi.lesion_names(levels)), sm.output.maps_png)
    log.info("ROI table: %d lesion(s)%s", int((table["roi"] == "lesion").sum()),
             " + normal marrow" if marrow is not None else "")


def aif_figure(dce: NiftiContents) -> None:
    """Draw the AIF QC figure (output aif_png) from the AIF files as written: the curves,
    the QC record, the voxels on the image at the measured curve's peak phase."""
    aif = np.genfromtxt(sm.input.aif_tsv, delimiter="\t", names=True, dtype=float,
                        encoding="utf-8")
    qc = json.loads(Path(sm.input.aif_qc).read_text(encoding="utf-8"))
    qc.pop("Sources", None)
    phase = aif_qc_phase(aif["measured_cb_mM"], int(qc["n_baseline"]))
    save_figure(aif_qc_figure(
        aif["t_s"], aif["cb_mM"], background=dce.data[..., phase],
        voxel_mask=read_nifti(sm.input.aif_voxels).data, affine=dce.affine, qc=qc,
        measured_cb_mM=aif["measured_cb_mM"], cp_mM=aif["cp_mM"]), sm.output.aif_png)


with job(sm) as log:
    image = read_nifti(sm.input.dce, require_sidecar=True)
    times = np.asarray(image.sidecar["VolumeTiming"], dtype=float)
    # figure background, from the image as read (Fortran order, as nibabel returns it)
    base_mean = image.data[..., :int(sm.params.n_baseline)].mean(axis=-1)
    # the semi-quantitative maps and the ROI curves work in the image's own (Fortran)
    # voxel order, block by block: no whole-volume copy
    write_semiquant_maps(image, times, log)
    roi_tables_and_figures(image, times, base_mean, log)
    aif_figure(image)
