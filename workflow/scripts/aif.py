"""Rule aif: arterial input function of one session, with QC record and QC figure.

``aif.mode: auto`` extracts the blood AIF from the aorta in the signal domain
(dce.aif_auto.extract_aif: voxels chosen on signal features, their mean signal converted
with the blood T10 of ``aif.blood_t10_s``), optionally restricted to an aorta mask
(sessions.tsv column ``aif.mask_column``) and preferring voxels anterior to the
lesion/marrow ROIs; when its physiological QC fails, the population AIF ``aif.fallback``
(aligned to the detected bolus arrival) is used, unless the fallback is ``none`` or
``aif.on_qc_failure`` is ``error``. ``aif.mode: population`` uses the population AIF
aligned to the detected arrival. ``aif.delay: phases`` then shifts the AIF by
``aif.delay_phases`` whole phases.
"""

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from _common import job, save_figure, write_json, write_tsv

from dce.aif_auto import (
    AIFCriteria,
    AIFQCThresholds,
    blood_t10_literature,
    extract_aif,
    population_aligned,
)
from dce.io import read_nifti, write_nifti
from dce.plots import aif_qc_figure
from dce.roi import match_roi

sm = snakemake  # type: ignore[name-defined]  # noqa: F821


def anterior_axis(affine: np.ndarray) -> tuple[int, int]:
    """Image axis closest to the anterior direction, and +1/-1 if anterior = increasing."""
    ax = int(np.argmax(np.abs(affine[1, :3])))
    return ax, (1 if affine[1, ax] > 0 else -1)


with job(sm) as log:
    cfg, p = sm.params.aif, sm.params
    dce_img = read_nifti(sm.input.dce, require_sidecar=True)
    sig, affine, meta = dce_img.data, dce_img.affine, dce_img.sidecar
    try:
        t = np.asarray(meta["AcquisitionTimes_s"], dtype=float)
        fa, tr = float(meta["FlipAngle_deg"]), float(meta["RepetitionTime_s"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{sm.input.dce}: sidecar lacks {exc} (AcquisitionTimes_s, "
                         "FlipAngle_deg, RepetitionTime_s)") from None
    shape = sig.shape[:3]
    nb, hct = int(p.n_baseline), float(p.hematocrit)
    s0 = sig[..., :nb].mean(axis=-1)
    n_ok = int(np.count_nonzero(np.isfinite(s0) & (s0 > 0)))
    if n_ok < 0.01 * s0.size:
        raise ValueError(f"{sm.input.dce}: only {n_ok} of {s0.size} voxels have a positive "
                         f"baseline signal in the first {nb} phases (acquisition.n_baseline): "
                         "check the export (blank or missing first phases?)")

    setting = cfg["blood_t10_s"]
    if setting == "literature":
        b0 = meta.get("MagneticFieldStrength_T")
        if b0 is None:
            raise ValueError(f"{sm.input.dce}: the DICOM header gives no field strength, so "
                             "aif.blood_t10_s: literature cannot choose the 1.5 T or 3 T "
                             "value; set aif.blood_t10_s to a number (s)")
        blood_t10 = blood_t10_literature(float(b0))
        t10_source = f"literature at {float(b0):g} T, Zhang et al. MRM 2013"
    elif setting == "vfa":
        t1 = read_nifti(sm.input.t1, require_sidecar=True)
        if t1.sidecar.get("Source") != "VFA":
            raise ValueError(f"{sm.input.t1}: aif.blood_t10_s is vfa but the session has no "
                             "VFA T10 map (Source: fixed); use literature or a number")
        blood_t10 = t1.data
        t10_source = "VFA T10 map, mean over the AIF voxels"
    else:
        blood_t10 = float(setting)
        t10_source = "configured (aif.blood_t10_s)"

    kwargs: dict = {}
    if sm.input.aorta:
        a = read_nifti(sm.input.aorta[0])
        kwargs["mask"] = match_roi(a.data, a.affine, shape, affine,
                                   name=str(sm.input.aorta[0])) > 0
        log.info("aorta mask %s: %d voxels", sm.input.aorta[0], int(kwargs["mask"].sum()))
    if cfg["anterior_prior"]:
        spine = np.zeros(shape, dtype=bool)
        for path in [sm.input.lesion_roi, *sm.input.marrow_roi]:
            r = read_nifti(path)
            with warnings.catch_warnings():      # ROI problems are reported by rule roi
                warnings.simplefilter("ignore")
                spine |= match_roi(r.data, r.affine, shape, affine, name=str(path)) > 0
        axis, direction = anterior_axis(affine)
        kwargs.update(spine_mask=spine, anterior_axis=axis, anterior_direction=direction)
        log.info("anterior prior: image axis %d, anterior towards %s index", axis,
                 "increasing" if direction > 0 else "decreasing")

    q = cfg["qc"]
    thresholds = AIFQCThresholds(
        min_voxels=int(q["min_voxels"]),
        peak_blood_range_mM=tuple(float(x) for x in q["peak_blood_range_mM"]),
        max_noise_ratio=float(q["max_noise_ratio"]),
        max_baseline_drift=float(q["max_baseline_drift"]), max_ttp_s=float(q["max_ttp_s"]),
        max_fwhm_s=float(q["max_fwhm_s"]),
        area_60s_range_mM_s=tuple(float(x) for x in q["area_60s_range_mM_s"]),
        min_washout=float(q["min_washout"]))
    sel = cfg["selection"]
    criteria = AIFCriteria(
        min_cnr=float(sel["min_cnr"]), max_ttp_s=float(sel["max_ttp_s"]),
        min_washout=float(sel["min_washout"]), n_reference=int(sel["n_reference"]),
        peak_fraction=float(sel["peak_fraction"]), erode=int(sel["erode"]),
        re_fraction=float(sel["re_fraction"]),
        shape_tolerance=float(sel["shape_tolerance"]), max_voxels=int(sel["max_voxels"]))
    fallback = None if cfg["mode"] == "population" or cfg["fallback"] == "none" \
        else cfg["fallback"]
    res = extract_aif(sig, t, tr_s=tr, flip_angle_deg=fa, r1_per_mM_per_s=float(p.r1),
                      n_baseline=nb, hematocrit=hct, blood_t10_s=blood_t10,
                      blood_t10_source=t10_source, fallback=fallback, criteria=criteria,
                      thresholds=thresholds, **kwargs)
    qc = res.qc.to_dict()

    if cfg["mode"] == "population":
        arrival, src = res.detected_arrival()
        cb, delay_s = population_aligned(cfg["population"], t, arrival,
                                         arrival_fraction=criteria.arrival_fraction)
        res = replace(res, cb_mM=cb, cp_mM=cb / (1.0 - hct))
        qc.update(source=cfg["population"], population_arrival_s=arrival,
                  population_arrival_source=src, population_delay_s=delay_s)
    elif not res.qc.passed and cfg["on_qc_failure"] == "error":
        raise ValueError(f"{sm.input.dce}: the automatic AIF failed QC ({res.qc.reason}) "
                         "and aif.on_qc_failure is error: check the aorta in the field of "
                         "view (or the aorta mask), the blood T10 (aif.blood_t10_s) and the "
                         "QC ranges (aif.qc), or allow aif.on_qc_failure: fallback")
    elif not res.qc.passed and fallback is None:
        log.warning("AIF QC failed (%s) and aif.fallback is none: using the measured curve",
                    res.qc.reason)
    elif not res.qc.passed:
        log.warning("AIF QC failed (%s): using the population AIF %s (aif.fallback); "
                    "this session's Ktrans/vp rest on a population curve", res.qc.reason,
                    fallback)
    if cfg["delay"] == "phases" and int(cfg["delay_phases"]) > 0:
        res = res.delayed(int(cfg["delay_phases"]))
        qc["delay_phases"] = res.qc.delay_phases
    if not np.all(np.isfinite(res.cp_mM)) or not np.any(res.cp_mM > 0):
        raise ValueError(f"{sm.input.dce}: no usable AIF (QC: {res.qc.reason}; "
                         "aif.fallback is none)")
    qc.update(mode=cfg["mode"], delay_mode=cfg["delay"], used_peak_blood_mM=float(
        np.max(res.cb_mM) - np.mean(res.cb_mM[:nb])), n_baseline=nb, hematocrit=hct)
    log.info("AIF: source %s, QC %s (%s); peak %.3g mM blood, arrival %.1f s, %d voxels "
             "(blood SNR %.3g, T10 %.3g s: %s)", qc["source"],
             "pass" if res.qc.passed else "FAIL", res.qc.reason, res.qc.peak_blood_mM,
             res.qc.arrival_s, res.qc.n_voxels, res.qc.voxel_baseline_snr_median,
             res.qc.blood_t10_s, t10_source)

    vox = np.zeros(shape, dtype=np.uint8)
    if res.voxel_indices.size:
        vox[tuple(res.voxel_indices.T)] = 1
    peak_phase = int(np.nanargmax(res.measured_cb_mM)) if np.any(
        np.isfinite(res.measured_cb_mM)) else min(nb + 3, t.size - 1)
    fig = aif_qc_figure(t, res.cb_mM, background=sig[..., peak_phase], voxel_mask=vox,
                        affine=affine, qc=qc, measured_cb_mM=res.measured_cb_mM,
                        cp_mM=res.cp_mM)
    write_tsv(pd.DataFrame(res.to_frame()), sm.output.tsv)
    write_json(qc, sm.output.qc)
    write_nifti(sm.output.voxels, vox, affine,
                {"Description": "voxels averaged into the automatic AIF (1)",
                 "Source": qc["source"]})
    save_figure(fig, sm.output.png)
