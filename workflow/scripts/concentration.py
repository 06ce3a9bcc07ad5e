"""Rule concentration: DCE signal + T10 (+ M0) -> contrast agent concentration (mM).

Voxels whose conversion failed (dce.signal.STATUS_CONC) are NaN at every phase; the
status map says why. A session in which fewer than 1 % of the voxels convert (a blank
baseline, a broken export) is refused with the counts.
"""

import numpy as np
from _common import job

from dce.io import read_nifti, write_nifti
from dce.signal import STATUS_CONC, signal_to_concentration

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

#: Below this fraction of voxels with a valid concentration the session is refused (a
#: blank baseline or broken export, not anatomy: background air is well below 99 %).
MIN_VALID_FRACTION = 0.01

with job(sm) as log:
    p = sm.params
    dce = read_nifti(sm.input.dce, require_sidecar=True)
    t1 = read_nifti(sm.input.t1, require_sidecar=True)
    for name, img in (("T1 map", t1),):
        if img.data.shape != dce.data.shape[:3] or not np.allclose(img.affine, dce.affine,
                                                                    atol=1e-3):
            raise ValueError(f"{sm.input.t1}: {name} grid differs from {sm.input.dce}")
    meta = dce.sidecar
    try:
        fa, tr = float(meta["FlipAngle_deg"]), float(meta["RepetitionTime_s"])
        t_s = np.asarray(meta["AcquisitionTimes_s"], dtype=float)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{sm.input.dce}: sidecar lacks {exc} (FlipAngle_deg, "
                         "RepetitionTime_s, AcquisitionTimes_s)") from None
    m0_source = p.m0
    m0 = None
    if m0_source == "vfa":
        if t1.sidecar.get("Source") != "VFA":
            log.warning("concentration.m0 = vfa but the session has no VFA fit: M0 from "
                        "the baseline phases instead")
            m0_source = "baseline"
        else:
            m0 = read_nifti(sm.input.m0).data
    res = signal_to_concentration(dce.data, t10_s=t1.data, tr_s=tr, flip_angle_deg=fa,
                                  r1_per_mM_per_s=p.r1, m0=m0,
                                  baseline=int(p.n_baseline) if m0 is None else None)
    ok = res.status == 0
    conc = np.where(ok[..., None], res.conc_mM, np.nan).astype(np.float32)
    counts = {STATUS_CONC[int(k)]: int(n)
              for k, n in zip(*np.unique(res.status, return_counts=True), strict=True)}
    log.info("concentration: FA %g deg, TR %.4g s, r1 %g /mM/s, M0 from %s; voxels: %s",
             fa, tr, p.r1, m0_source, counts)
    no_base = int(np.count_nonzero(res.status == 1))
    if ok.mean() < MIN_VALID_FRACTION:
        raise ValueError(
            f"{sm.input.dce}: only {int(ok.sum())} of {ok.size} voxels give a concentration "
            f"({no_base} have a zero or non-finite baseline signal in the first "
            f"{int(p.n_baseline)} phases (acquisition.n_baseline); status counts {counts}): "
            "check the export (blank or missing first phases?) and acquisition.n_baseline")
    if no_base > ok.size // 2:
        log.warning("%d of %d voxels have a zero or non-finite baseline signal (NaN "
                    "concentration there)", no_base, ok.size)
    write_nifti(sm.output.status, res.status.astype(np.int8), dce.affine,
                {"Description": "voxel status of the signal-to-concentration conversion",
                 "Codes": {str(k): v for k, v in STATUS_CONC.items()}})
    write_nifti(sm.output.conc, conc, dce.affine, {
        "Units": "mM", "Quantity": "contrast agent concentration (OSIPI: C)",
        "AcquisitionTimes_s": t_s.tolist(), "FlipAngle_deg": fa, "RepetitionTime_s": tr,
        "Relaxivity_per_mM_per_s": float(p.r1), "M0Source": m0_source,
        "BaselinePhases": int(p.n_baseline), "T10Source": t1.sidecar.get("Source"),
        "VoxelStatusCounts": counts,
        "Description": "NaN in voxels whose conversion failed (see the _concstatus map)"})
