"""Rule prm: parametric response maps of a follow-up session against its baseline session
(dce.prm) on the baseline grid: the per-lesion table (PRM+ / PRM0 / PRM- fractions), a
class map per map (dseg + JSON sidecar with the class codes) and the figure
(dce.viz.prm).

Inputs: the baseline maps, fit status, lesion and marrow ROIs and DCE series (anatomy:
the pre-contrast mean), the follow-up maps and fit status resampled onto the baseline grid
by the rule register, its transform and QC record, and the follow-up's own grid (its
native fit status map). Each baseline map is given the smoothing that the follow-up's
trilinear resampling applied to it (dce.prm.match_interpolation_smoothing; only for maps
whose sidecar records linear interpolation) before the change is taken. A registration
that failed its QC is never used: the rows are written with NaN fractions and the reason,
every lesion voxel of the class maps is "excluded", and the log names subject and
session.
"""

import json

import numpy as np

from dce.io.derivatives import derived_sources
from dce.io.jobs import job, save_figure_formats, write_tsv_rows
from dce.io.maps import read_session_rois
from dce.io.nifti import read_nifti, write_nifti
from dce.prm import PRM_CLASSES, ROW_KEYS, match_interpolation_smoothing, parametric_response
from dce.registry import STATUS_USABLE, output_map
from dce.viz.prm import PRMPanel, PRMRow, lesion_crop, prm_figure
from dce.viz.quantities import quantity

sm = snakemake  # type: ignore[name-defined]  # noqa: F821


def usable(status: np.ndarray) -> np.ndarray:
    return np.isin(np.nan_to_num(status, nan=-1.0).astype(np.int64), STATUS_USABLE)


with job(sm) as log:
    p, wc, inp, out = sm.params, sm.wildcards, sm.input, sm.output
    cfg = dict(p.prm)
    names = list(cfg["maps"])
    base_status = read_nifti(inp.base_fitstatus)
    shape, affine = base_status.data.shape, base_status.affine
    lesions, marrow, notes = read_session_rois(
        inp.base_lesion_roi, inp.base_marrow_roi[0] if inp.base_marrow_roi else None, shape,
        affine, expected=p.lesions["labels"], expected_from=p.lesions["sheet"],
        subject=wc.subject, names=p.lesions["names"])
    for note in notes:
        log.warning("%s", note)
    with open(inp.qc, encoding="utf-8") as fh:
        qc = json.load(fh)
    passed = bool(qc.get("passed", False))
    reasons = qc.get("reasons") or []
    reason = "; ".join(reasons) if isinstance(reasons, list) else str(reasons)
    base = {n: read_nifti(getattr(inp, f"base_{n}")).data for n in names}
    fu_imgs = {n: read_nifti(getattr(inp, f"fu_{n}"), require_sidecar=True) for n in names}
    fu = {n: img.data for n, img in fu_imgs.items()}
    if passed:  # both visits alike: the baseline smoothed as the follow-up's resampling
        with open(inp.xfm, encoding="utf-8") as fh:
            matrix_ras = np.asarray(json.load(fh)["matrix_ras"], dtype=np.float64)
        fu_affine = read_nifti(inp.fu_grid).affine
        for n in names:
            if fu_imgs[n].sidecar.get("Interpolation") == "linear":
                base[n] = match_interpolation_smoothing(base[n], affine, fu_affine, matrix_ras)
    fu_status = read_nifti(inp.fu_fitstatus).data
    res = parametric_response(
        base, fu, lesions, usable(base_status.data), usable(fu_status),
        lesions=p.lesions["labels"], marrow=None if marrow is None else marrow > 0,
        thresholds={n: (cfg.get("thresholds") or {}).get(n) for n in names},
        fallback=cfg["fallback_thresholds"], coverage=cfg["marrow_coverage"],
        min_marrow_voxels=cfg["min_marrow_voxels"], registration_passed=passed,
        registration_reason=reason)
    if not passed:
        log.warning("registration QC FAILED: subject %s, session %s (baseline %s): %s; PRM "
                    "not computed (NaN fractions)", wc.subject, wc.session,
                    p.baseline_session, reason or "no reason given")
    # the table without pandas (write_tsv_rows: the text pandas writes)
    columns = ["subject", "session", "baseline_session",
               *("label" if k == "lesion" else k for k in ROW_KEYS)]
    write_tsv_rows([{"subject": wc.subject, "session": wc.session,
                     "baseline_session": p.baseline_session,
                     **{("label" if k == "lesion" else k): r[k] for k in ROW_KEYS}}
                    for r in res.rows], columns, out.tsv)
    results = sm.config["results"]
    sources = derived_sources([*(getattr(inp, f"base_{n}") for n in names),
                               *(getattr(inp, f"fu_{n}") for n in names), inp.qc, inp.xfm],
                              results)
    for n in names:
        thr = res.thresholds[n]
        write_nifti(getattr(out, f"dseg_{n}"), res.class_maps[n], affine, {
            "Labels": {str(k): v for k, v in PRM_CLASSES.items()},
            "Description": f"parametric response map of {n}: follow-up session "
                           f"{wc.session} vs baseline session {p.baseline_session} on the "
                           "baseline grid (dce.prm)",
            "Threshold": thr.value if np.isfinite(thr.value) else None,
            "ThresholdSource": thr.source,
            "ThresholdUnits": output_map(n).unit or "volume fraction",
            "RegistrationPassed": passed, "Reason": "" if passed else reason,
            "Sources": sources})
        log.info("%s: threshold %.4g (%s, %d marrow voxels)", n, thr.value, thr.source,
                 thr.n_marrow)
    # figure: baseline anatomy (pre-contrast mean of the baseline DCE series)
    dce = read_nifti(inp.base_dce, volumes=int(p.n_baseline)).data  # those phases only
    anatomy = np.asarray(dce, dtype=np.float64).mean(axis=-1)
    valid = usable(base_status.data) & usable(fu_status)
    rows = []
    for lab in p.lesions["labels"]:
        if not np.any(lesions == lab):
            continue
        panels = []
        for n in names:
            q = quantity(output_map(n).column)
            assert q is not None
            r = next(r for r in res.rows if r["lesion"] == lab and r["map"] == n)
            (anat, cls), aspect = lesion_crop([anatomy, res.class_maps[n]], lesions, lab,
                                              affine, margin_mm=float(cfg["margin_mm"]))
            sel = (lesions == lab) & valid & np.isfinite(base[n]) & np.isfinite(fu[n])
            if not passed:
                sel = np.zeros_like(sel)
            panels.append(PRMPanel(
                symbol=q.symbol, unit=q.unit, anatomy=anat, classes=cls, aspect=aspect,
                baseline=base[n][sel] * q.scale, followup=fu[n][sel] * q.scale,
                voxel_classes=res.class_maps[n][sel], threshold=res.thresholds[n].value
                * q.scale, fractions=(r["prm_pos_fraction"], r["prm_zero_fraction"],
                                      r["prm_neg_fraction"]),
                note="" if passed else "registration failed its QC: not computed"))
        level = dict(zip(p.lesions["labels"], p.lesions["levels"], strict=False)).get(lab, "")
        rows.append(PRMRow(f"lesion {lab}" + (f" ({level})" if level else ""), panels))
    title = f"Parametric response, session {wc.session} vs baseline"
    save_figure_formats(prm_figure(rows, title=title), [out.png, out.pdf])
    for r in res.rows:
        log.info("lesion %s %s: PRM+ %.3f PRM0 %.3f PRM- %.3f (%d valid, %d excluded)",
                 r["lesion"], r["map"], r["prm_pos_fraction"], r["prm_zero_fraction"],
                 r["prm_neg_fraction"], r["n_valid"], r["n_excluded"])
