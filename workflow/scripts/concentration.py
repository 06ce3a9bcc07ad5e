"""Rule concentration: DCE signal + T10 (+ M0, + B1 factor) -> concentration (mM).

Voxels whose conversion failed (dce.signal.STATUS_CONC) are NaN at every phase; the status
map says why. A session where fewer than 1 % of the voxels convert (MIN_CONVERTED_FRACTION:
a blank baseline, a broken export) is refused with the counts."""

import numpy as np

from dce.io import derived_sources
from dce.io.b1 import read_b1_output
from dce.io.jobs import job
from dce.io.nifti import read_dynamic, read_nifti, write_nifti
from dce.signal import MIN_CONVERTED_FRACTION, STATUS_CONC, signal_to_concentration

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    p, nb = sm.params, int(sm.params.n_baseline)
    dce = read_dynamic(sm.input.dce)
    t1 = read_nifti(sm.input.t1, require_sidecar=True)
    if t1.data.shape != dce.data.shape[:3] or not np.allclose(t1.affine, dce.affine, atol=1e-3):
        raise ValueError(f"{sm.input.t1}: T1 map grid differs from {sm.input.dce}")
    m0_source, m0 = p.m0, None
    if m0_source == "vfa" and t1.sidecar.get("Source") != "VFA":
        log.warning("concentration.m0 = vfa but the session has no VFA fit: M0 from the "
                    "baseline phases instead")
        m0_source = "baseline"
    elif m0_source == "vfa":
        m0 = read_nifti(sm.input.m0).data
    b1, b1_side = read_b1_output(sm.input.b1, use=p.b1["correct"])  # on the DCE grid
    src = derived_sources([sm.input.dce, sm.input.t1] + ([sm.input.m0] if m0 is not None else [])
                          + ([sm.input.b1] if b1 is not None else []), sm.config["results"])
    res = signal_to_concentration(dce.data, t10_s=t1.data, tr_s=dce.tr_s,
                                  flip_angle_deg=dce.flip_angle_deg, r1_per_mM_per_s=p.r1,
                                  m0=m0, baseline=nb if m0 is None else None, b1=b1)
    ok, counts = res.status == 0, res.status_counts()
    log.info("conversion: FA %g deg, TR %.4g s, r1 %g /mM/s, M0 %s, B1 %s; voxels: %s",
             dce.flip_angle_deg, dce.tr_s, p.r1, m0_source, b1_side, counts)
    no_base = int(np.count_nonzero(res.status == 1))
    if ok.mean() < MIN_CONVERTED_FRACTION:
        raise ValueError(
            f"{sm.input.dce}: only {int(ok.sum())} of {ok.size} voxels give a concentration "
            f"({no_base} have a zero or non-finite baseline signal in the first {nb} phases "
            f"(acquisition.n_baseline); status counts {counts}): check the export (blank or "
            "missing first phases?) and acquisition.n_baseline")
    if no_base > ok.size // 2:
        log.warning("%d of %d voxels have a zero or non-finite baseline signal (NaN "
                    "concentration there)", no_base, ok.size)
    write_nifti(sm.output.status, res.status.astype(np.int8), dce.affine,
                {"Description": "voxel status of the signal-to-concentration conversion",
                 "Codes": {str(k): v for k, v in STATUS_CONC.items()}, "Sources": src})
    conc = np.where(ok[..., None], res.conc_mM, np.nan).astype(np.float32)
    write_nifti(sm.output.conc, conc, dce.affine, {
        "Units": "mM", "Quantity": "contrast agent concentration (OSIPI: C)",
        "VolumeTiming": dce.t_s.tolist(), "FlipAngle": dce.flip_angle_deg,
        "RepetitionTime": dce.tr_s, "Relaxivity_per_mM_per_s": float(p.r1),
        "M0Source": m0_source, "BaselinePhases": nb, "T10Source": t1.sidecar.get("Source"),
        "VoxelStatusCounts": counts, **b1_side, "Sources": src,
        "Description": "NaN in voxels whose conversion failed (see the _concstatus map)"})
