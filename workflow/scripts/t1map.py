"""Rule t1map: the session's B1 factor on the DCE grid (sheet ``b1_map`` or converted B1
series, dce.io.b1), then T10 and M0 from the VFA series (B1-corrected) or a fixed T10
(``t1.missing_vfa: fixed``; ``error`` fails the job); sidecars record the sources."""

import json
from pathlib import Path

import numpy as np

from dce.io import derived_sources, read_nifti, write_nifti
from dce.io.b1 import session_b1, write_b1_output
from dce.io.jobs import job
from dce.t1 import STATUS_MEANINGS, VFAModel

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg, b1cfg = sm.params.t1, sm.params.b1
    record = json.loads(Path(sm.input.record).read_text(encoding="utf-8"))
    shape, affine = (hdr := read_nifti(sm.input.dce)).data.shape[:3], hdr.affine  # DCE grid
    b1 = session_b1(sm.input.record, sm.input.b1[0] if sm.input.b1 else None, shape, affine,
                    convention=b1cfg["units"])
    log.info("B1: %s", b1.sidecar())  # B1 first: a bad map fails before the fit
    write_b1_output(sm.output.b1, b1, shape, affine)
    b1_map, b1_side = b1.applied(b1cfg["correct"])
    if record.get("vfa"):
        vfa_path = Path(sm.input.record).with_name(record["vfa"])
        vfa = read_nifti(vfa_path, require_sidecar=True)
        if vfa.data.shape[:3] != shape or not np.allclose(vfa.affine, affine, atol=1e-3):
            raise ValueError(f"{vfa_path}: the VFA grid {vfa.data.shape[:3]} differs from the "
                             f"DCE grid {shape} (affines differ); resampling is not supported")
        fas = np.asarray(vfa.sidecar["FlipAngles_deg"], dtype=float)
        tr = float(vfa.sidecar["RepetitionTime"])
        fit = VFAModel(fas, tr, method=cfg["method"], t1_range_s=tuple(cfg["t1_range_s"]),
                       b1=b1_map).fit(vfa.data)
        counts = {STATUS_MEANINGS[int(k)]: int(n)
                  for k, n in zip(*np.unique(fit.status, return_counts=True), strict=True)}
        log.info("VFA fit (%s, %d flip angles, TR %.4g s): %s", cfg["method"], fas.size, tr,
                 counts)
        t1, m0 = fit.t1_s.astype(np.float32), fit.m0.astype(np.float32)
        side = {"Source": "VFA", "Method": cfg["method"], "FlipAngles_deg": fas.tolist(),
                "RepetitionTime": tr, "T1Range_s": list(cfg["t1_range_s"]),
                "VoxelStatusCounts": counts, "Units": "s", **b1_side,
                "Description": "pre-contrast T1 (T10); NaN where the VFA fit failed"}
    else:
        if cfg["missing_vfa"] == "error":
            raise ValueError(f"{sm.input.record}: the session has no VFA series and "
                             "t1.missing_vfa is 'error' (set it to 'fixed' to use "
                             f"t1.fallback_t10_s = {cfg['fallback_t10_s']} s)")
        t10 = float(cfg["fallback_t10_s"])
        log.warning("no VFA series: fixed T10 = %g s in every voxel", t10)
        t1, m0 = np.full(shape, t10, dtype=np.float32), np.full(shape, np.nan, dtype=np.float32)
        side = {"Source": "fixed", "FixedT10_s": t10, "Units": "s", **b1_side,
                "Reason": "no VFA series in the session (t1.missing_vfa: fixed)",
                "Description": "pre-contrast T1 (T10), a configured constant"}
    side["Sources"] = derived_sources([vfa_path if record.get("vfa") else sm.input.dce],
                                      sm.config["results"])
    write_nifti(sm.output.m0, m0, affine, {"Source": side["Source"], "Units": "signal units",
                "Sources": side["Sources"], "Description": "M0 from the VFA fit (NaN: none)"})
    write_nifti(sm.output.t1, t1, affine, side)
