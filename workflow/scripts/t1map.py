"""Rule t1map: pre-contrast T1 (T10) and M0 maps from the VFA series, or a fixed T10.

Without VFA data the T10 map is ``t1.fallback_t10_s`` everywhere (``t1.missing_vfa:
fixed``) or the job fails (``error``); the sidecar records the source either way."""

import json
from pathlib import Path

import numpy as np

from dce.io import derived_sources, read_nifti, write_nifti
from dce.io.jobs import job
from dce.t1 import STATUS_MEANINGS, VFAModel

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    cfg = sm.params.t1
    record = json.loads(Path(sm.input.record).read_text(encoding="utf-8"))
    dce_hdr = read_nifti(sm.input.dce)            # grid of the DCE series
    shape, affine = dce_hdr.data.shape[:3], dce_hdr.affine
    del dce_hdr
    if record.get("vfa"):
        vfa_path = Path(sm.input.record).with_name(record["vfa"])
        vfa = read_nifti(vfa_path, require_sidecar=True)
        if vfa.data.shape[:3] != shape or not np.allclose(vfa.affine, affine, atol=1e-3):
            raise ValueError(f"{vfa_path}: the VFA grid {vfa.data.shape[:3]} differs from the "
                             f"DCE grid {shape} (affines differ); resampling is not supported")
        fas = np.asarray(vfa.sidecar["FlipAngles_deg"], dtype=float)
        tr = float(vfa.sidecar["RepetitionTime"])
        model = VFAModel(fas, tr, method=cfg["method"], t1_range_s=tuple(cfg["t1_range_s"]))
        fit = model.fit(vfa.data)
        counts = {STATUS_MEANINGS[int(k)]: int(n)
                  for k, n in zip(*np.unique(fit.status, return_counts=True), strict=True)}
        log.info("VFA fit (%s, %d flip angles, TR %.4g s): %s", cfg["method"], fas.size, tr,
                 counts)
        t1 = fit.t1_s.astype(np.float32)
        m0 = fit.m0.astype(np.float32)
        side = {"Source": "VFA", "Method": cfg["method"], "FlipAngles_deg": fas.tolist(),
                "RepetitionTime": tr, "T1Range_s": list(cfg["t1_range_s"]),
                "VoxelStatusCounts": counts, "Units": "s",
                "Description": "pre-contrast T1 (T10); NaN where the VFA fit failed"}
    else:
        if cfg["missing_vfa"] == "error":
            raise ValueError(f"{sm.input.record}: the session has no VFA series and "
                             "t1.missing_vfa is 'error' (set it to 'fixed' to use "
                             f"t1.fallback_t10_s = {cfg['fallback_t10_s']} s)")
        t10 = float(cfg["fallback_t10_s"])
        log.warning("no VFA series: fixed T10 = %g s in every voxel", t10)
        t1 = np.full(shape, t10, dtype=np.float32)
        m0 = np.full(shape, np.nan, dtype=np.float32)
        side = {"Source": "fixed", "FixedT10_s": t10, "Units": "s",
                "Reason": "no VFA series in the session (t1.missing_vfa: fixed)",
                "Description": "pre-contrast T1 (T10), a configured constant"}
    side["Sources"] = derived_sources([vfa_path if record.get("vfa") else sm.input.dce],
                                      sm.config["results"])
    write_nifti(sm.output.m0, m0, affine,
                {"Source": side["Source"], "Units": "signal units", "Sources": side["Sources"],
                 "Description": "equilibrium magnetisation from the VFA fit (NaN: none)"})
    write_nifti(sm.output.t1, t1, affine, side)
