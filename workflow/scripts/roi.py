"""Rule roi: lesion and normal-marrow statistics, mean TICs with TIC type, figures.

ROIs are matched to the DCE grid in world coordinates (dce.roi.match_roi); an ROI outside
the field of view, empty, or missing a lesion listed in lesions.tsv stops the job with a
message naming the ROI file.

Quality columns (dce.quality): ``qc_t10_source`` from the T1 map sidecar,
``qc_aif_source`` and ``qc_aif_passed`` from the AIF QC record, and ``qc_flags``
(``t10_fixed``, ``aif_fallback``, ``aif_qc_failed``, ``fit_failed_fraction`` above
``cohort.max_fit_failed_fraction``), so that the quality of a session travels with its
numbers into the cohort tables.
"""

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _common import job, map_info, save_figure, write_tsv

from dce.fit import STATUS_SHOWN, STATUS_USABLE
from dce.io import read_nifti, sidecar_path
from dce.plots import MapPanel, TICCurve, parameter_map_figure, tic_figure
from dce.quality import SessionQuality, add_quality_columns
from dce.roi import match_roi, require_labels, roi_curves, roi_statistics, roi_tic_table
from dce.semiquant import TICRule

sm = snakemake  # type: ignore[name-defined]  # noqa: F821


def load_roi(path: str, shape: tuple[int, ...], affine: np.ndarray,
             log: logging.Logger) -> np.ndarray:
    img = read_nifti(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lab = match_roi(img.data, img.affine, shape, affine, name=str(path))
    for w in caught:
        log.warning("%s", w.message)
    return lab


with job(sm) as log:
    p = sm.params
    subject, session = sm.wildcards.subject, sm.wildcards.session
    dce = read_nifti(sm.input.dce, require_sidecar=True)
    sig, affine = dce.data, dce.affine
    shape = sig.shape[:3]
    t = np.asarray(dce.sidecar["AcquisitionTimes_s"], dtype=float)
    nb = int(p.n_baseline)

    lesions = load_roi(sm.input.lesion_roi, shape, affine, log)
    expected = p.lesions["labels"]
    present = require_labels(lesions, expected, str(sm.input.lesion_roi),
                             expected_from=p.lesions["sheet"])
    extra = sorted(set(present.tolist()) - set(expected))
    if extra:
        log.warning("%s: label(s) %s not listed in %s for subject %s: ignored",
                    sm.input.lesion_roi, extra, p.lesions["sheet"], subject)
        lesions = np.where(np.isin(lesions, expected), lesions, 0)
    levels = dict(zip(expected, p.lesions["levels"], strict=False))
    marrow = None
    if sm.input.marrow_roi:
        marrow = (load_roi(sm.input.marrow_roi[0], shape, affine, log) > 0).astype(np.int32)

    # parameter maps -> statistics per lesion label and for normal marrow
    maps = {}
    for name in p.map_names:
        col = map_info(name)[0]
        maps[col] = read_nifti(getattr(sm.input, name)).data
    status = maps.pop("status").astype(np.int64)
    vox_vol = float(abs(np.linalg.det(affine[:3, :3])))
    parts = [roi_statistics(maps, lesions, status=status, voxel_volume_mm3=vox_vol,
                            usable_status=STATUS_USABLE)
             .assign(roi="lesion")]
    if marrow is not None:
        parts.append(roi_statistics(maps, marrow, status=status, voxel_volume_mm3=vox_vol,
                                    usable_status=STATUS_USABLE)
                     .assign(roi="marrow", label=pd.NA))
    stats = pd.concat(parts, ignore_index=True)
    stats["label"] = stats["label"].astype("Int64")

    # mean time-intensity curves -> TIC metrics, type, RSlope_max
    rule = TICRule(**p.tic)
    tic = roi_tic_table(sig, t, lesions, marrow, n_baseline=nb,
                        iauc_windows_s=[float(w) for w in p.iauc], rule=rule,
                        rslope_from=p.rslope_from)
    tic = tic.drop(columns=["n_voxels"]).rename(
        columns=lambda c: c if c in ("roi", "label") or c.startswith(("tic_", "rslope"))
        or c == "normalized_peak_enhancement" else f"tic_{c}")
    table = stats.merge(tic, on=["roi", "label"], how="left", validate="one_to_one")
    table.insert(0, "subject", subject)
    table.insert(1, "session", session)
    table.insert(2, "days_from_rt", p.days_from_rt)
    table.insert(5, "level", [levels.get(int(lab), "") if pd.notna(lab) else ""
                              for lab in table["label"]])

    # quality of the session (T10 and AIF) and of each ROI's fit
    t1_side_path = sidecar_path(sm.input.t1)
    quality = SessionQuality.from_records(
        json.loads(t1_side_path.read_text(encoding="utf-8")),
        json.loads(Path(sm.input.aif_qc).read_text(encoding="utf-8")),
        name=f"{t1_side_path}, {sm.input.aif_qc}")
    table = add_quality_columns(table, quality,
                                max_fit_failed_fraction=float(p.max_fit_failed_fraction))
    flagged = table[table["qc_flags"] != ""]
    if len(flagged):
        log.warning("quality flags (T10 %s, AIF %s, AIF QC %s): %s", quality.t10_source,
                    quality.aif_source, "passed" if quality.aif_passed else "FAILED",
                    "; ".join(("marrow" if pd.isna(r.label) else f"lesion {int(r.label)}")
                              + f": {r.qc_flags}" for r in flagged.itertuples()))
    write_tsv(table, sm.output.roi)

    # mean curves, long format
    rows = []
    for roi_name, lab_vol in (("lesion", lesions), ("marrow", marrow)):
        if lab_vol is None:
            continue
        cur = roi_curves(sig, lab_vol)
        for k, lab in enumerate(cur.labels):
            s0 = float(np.nanmean(cur.mean[k, :nb]))
            rows.append(pd.DataFrame({
                "subject": subject, "session": session, "roi": roi_name,
                "label": int(lab) if roi_name == "lesion" else pd.NA, "t_s": t,
                "signal_mean": cur.mean[k], "signal_sd": cur.sd[k],
                "enhancement_pct": 100.0 * (cur.mean[k] - s0) / s0 if s0 > 0 else np.nan}))
    curves = pd.concat(rows, ignore_index=True)
    curves["label"] = curves["label"].astype("Int64")
    write_tsv(curves, sm.output.tic)

    # figures (no identifiers)
    tic_by = {(r.roi, r.label if pd.notna(r.label) else None): r for r in tic.itertuples()}
    items = []
    for roi_name, lab_vol in (("lesion", lesions), ("marrow", marrow)):
        if lab_vol is None:
            continue
        cur = roi_curves(sig, lab_vol)
        for k, lab in enumerate(cur.labels):
            key = (roi_name, int(lab) if roi_name == "lesion" else None)
            r = tic_by.get(key)
            lev = levels.get(int(lab), "")
            name = (f"lesion {int(lab)}" + (f" ({lev})" if lev else "")) \
                if roi_name == "lesion" else "normal marrow"
            items.append(TICCurve(name=name, mean=cur.mean[k], sd=cur.sd[k],
                                  tic_type=str(r.tic_type) if r is not None else "",
                                  rslope_max=float(r.rslope_max) if r is not None else None,
                                  reference=roi_name == "marrow"))
    save_figure(tic_figure(t, items, n_baseline=nb, rule_text=rule.describe()),
                sm.output.tic_png)
    anatomy = sig[..., :nb].mean(axis=-1)
    body = anatomy > 0.1 * np.percentile(anatomy, 99)
    panels = []
    for name in p.figure_maps:
        col, title, unit = map_info(name)
        data = maps[col].astype(float)
        if col in ("ktrans_per_min", "kep_per_min", "ve", "vp"):
            data = np.where(np.isin(status, STATUS_SHOWN), data, np.nan)
        panels.append(MapPanel(title=title, unit=unit, data=data))
    names = {int(k): f"lesion {k}" + (f" ({v})" if v else "") for k, v in levels.items()}
    save_figure(parameter_map_figure(anatomy, panels, affine=affine, lesion_labels=lesions,
                                     marrow_mask=marrow, overlay_mask=body,
                                     lesion_names=names), sm.output.maps_png)
    log.info("ROI table: %d lesion(s)%s", int((table["roi"] == "lesion").sum()),
             " + normal marrow" if marrow is not None else "")
