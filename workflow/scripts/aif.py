"""Rule aif: arterial input function of one session, with QC record and QC figure.

``aif.mode: auto`` extracts the blood AIF from the aorta (dce.aif_auto.extract_aif),
optionally restricted to an aorta mask (sessions.tsv column ``aif.mask_column``) and
preferring voxels anterior to the lesion/marrow ROIs (the aorta lies anterior to the
vertebral bodies); when its QC fails, the population AIF ``aif.fallback`` (aligned to
the detected bolus arrival) is used, unless the fallback is ``none``.
``aif.mode: population`` uses the population AIF aligned to the detected bolus arrival.
``aif.delay: phases`` then shifts the AIF by ``aif.delay_phases`` whole phases.
"""

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from _common import job, save_figure, write_json, write_tsv

from dce.aif import population_aif
from dce.aif_auto import AIFCriteria, AIFQCThresholds, extract_aif
from dce.io import read_nifti, write_nifti
from dce.plots import aif_qc_figure
from dce.roi import match_roi

sm = snakemake  # type: ignore[name-defined]  # noqa: F821


def population_aligned(name: str, t: np.ndarray, arrival_s: float, fraction: float
                       ) -> tuple[np.ndarray, float]:
    """Population blood AIF whose ``fraction``-of-peak crossing is at ``arrival_s``."""
    fine = np.arange(0.0, 120.0, 0.05)
    cb = population_aif(name, fine)
    offset = float(fine[np.argmax(cb >= fraction * cb.max())])
    delay = max(0.0, arrival_s - offset)
    return population_aif(name, t, delay_s=delay), delay


def anterior_axis(affine: np.ndarray) -> tuple[int, int]:
    """Image axis closest to the anterior direction, and +1/-1 if anterior = increasing."""
    ax = int(np.argmax(np.abs(affine[1, :3])))
    return ax, (1 if affine[1, ax] > 0 else -1)


with job(sm) as log:
    cfg, p = sm.params.aif, sm.params
    conc_img = read_nifti(sm.input.conc, require_sidecar=True)
    conc, affine = conc_img.data, conc_img.affine
    t = np.asarray(conc_img.sidecar["AcquisitionTimes_s"], dtype=float)
    shape = conc.shape[:3]
    nb, hct = int(p.n_baseline), float(p.hematocrit)

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
    thresholds = AIFQCThresholds(min_voxels=int(q["min_voxels"]),
                                 min_peak_mM=float(q["min_peak_mM"]),
                                 max_noise_ratio=float(q["max_noise_ratio"]),
                                 max_ttp_s=float(q["max_ttp_s"]),
                                 min_washout=float(q["min_washout"]))
    criteria = AIFCriteria(n_voxels=int(cfg["n_voxels"]))
    fallback = None if cfg["mode"] == "population" or cfg["fallback"] == "none" \
        else cfg["fallback"]
    res = extract_aif(conc, t, n_baseline=nb, hematocrit=hct, fallback=fallback,
                      criteria=criteria, thresholds=thresholds, **kwargs)
    qc = res.qc.to_dict()

    if cfg["mode"] == "population":
        if res.qc.arrival_index >= nb and np.isfinite(res.qc.arrival_s):
            arrival, src = res.qc.arrival_s, "aorta"
        elif np.isfinite(res.qc.volume_median_arrival_s):
            arrival, src = res.qc.volume_median_arrival_s, "tissue_median"
        else:
            arrival, src = float(t[nb]), "end_of_baseline"
        cb, delay_s = population_aligned(cfg["population"], t, arrival,
                                         criteria.arrival_fraction)
        res = replace(res, cb_mM=cb, cp_mM=cb / (1.0 - hct))
        qc.update(source=cfg["population"], population_arrival_s=arrival,
                  population_arrival_source=src, population_delay_s=delay_s)
    elif not res.qc.passed and cfg["on_qc_failure"] == "error":
        raise ValueError(f"{sm.input.conc}: the automatic AIF failed QC ({res.qc.reason}) "
                         "and aif.on_qc_failure is error: check the aorta in the field of "
                         "view (or the aorta mask), or allow aif.on_qc_failure: fallback")
    elif not res.qc.passed and fallback is None:
        log.warning("AIF QC failed (%s) and aif.fallback is none: using the measured curve",
                    res.qc.reason)
    elif not res.qc.passed:
        log.warning("AIF QC failed (%s): using the population AIF %s (aif.fallback)",
                    res.qc.reason, fallback)
    if cfg["delay"] == "phases" and int(cfg["delay_phases"]) > 0:
        res = res.delayed(int(cfg["delay_phases"]))
        qc["delay_phases"] = res.qc.delay_phases
    if not np.all(np.isfinite(res.cp_mM)) or not np.any(res.cp_mM > 0):
        raise ValueError(f"{sm.input.conc}: no usable AIF (QC: {res.qc.reason}; "
                         "aif.fallback is none)")
    qc.update(mode=cfg["mode"], delay_mode=cfg["delay"], used_peak_blood_mM=float(
        np.max(res.cb_mM) - np.mean(res.cb_mM[:nb])), n_baseline=nb, hematocrit=hct)
    log.info("AIF: source %s, QC %s (%s); peak %.3g mM blood, arrival %.1f s, %d voxels",
             qc["source"], "pass" if res.qc.passed else "FAIL", res.qc.reason,
             res.qc.peak_blood_mM, res.qc.arrival_s, res.qc.n_voxels)

    vox = np.zeros(shape, dtype=np.uint8)
    if res.voxel_indices.size:
        vox[tuple(res.voxel_indices.T)] = 1
    dce = read_nifti(sm.input.dce).data
    peak_phase = int(np.nanargmax(res.measured_cb_mM)) if np.any(
        np.isfinite(res.measured_cb_mM)) else min(nb + 3, t.size - 1)
    fig = aif_qc_figure(t, res.cb_mM, background=dce[..., peak_phase], voxel_mask=vox,
                        affine=affine, qc=qc, measured_cb_mM=res.measured_cb_mM,
                        cp_mM=res.cp_mM)
    write_tsv(pd.DataFrame(res.to_frame()), sm.output.tsv)
    write_json(qc, sm.output.qc)
    write_nifti(sm.output.voxels, vox, affine,
                {"Description": "voxels averaged into the automatic AIF (1)",
                 "Source": qc["source"]})
    save_figure(fig, sm.output.png)
