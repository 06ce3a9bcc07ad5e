"""Rule fit: voxel-wise tracer-kinetic fit (Tofts / extended Tofts / Patlak).

Fits every voxel whose concentration is finite at all phases; other voxels are NaN with
status -1. Writes one NIfTI map per parameter (names in the rule's outputs).

Delay (``aif.delay: fit``): candidates ``model.delay_grid_s`` (start, stop, step), each
voxel's delay chosen on the mean curve of its ``model.delay_neighbourhood`` box (null or
all ones: the voxel's own curve). Curves that do not enhance (``model.enhancement_z``) get
status 5 with Ktrans = vp = 0; kep at a search limit gets the nested model (status 6, 7).
The policy in force is written to every map's sidecar (``FitPolicy``).
"""

import numpy as np
import pandas as pd
from _common import job, map_info

from dce.fit import DEFAULT_ENHANCEMENT_Z, STATUS_FIT, FitBounds, TracerKineticModel
from dce.io import read_nifti, write_nifti

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    p, m = sm.params, sm.params.model
    conc_img = read_nifti(sm.input.conc, require_sidecar=True)
    conc, affine = conc_img.data, conc_img.affine
    t = np.asarray(conc_img.sidecar["AcquisitionTimes_s"], dtype=float)
    aif = pd.read_csv(sm.input.aif, sep="\t")
    if not np.allclose(aif["t_s"].to_numpy(), t, atol=1e-3):
        raise ValueError(f"{sm.input.aif}: AIF times differ from the phase times of "
                         f"{sm.input.conc}")
    b = m["bounds"]
    bounds = FitBounds(kep_per_min=tuple(b["kep_per_min"]),
                       ktrans_max_per_min=b["ktrans_max_per_min"], ve_max=b["ve_max"],
                       vp_max=b["vp_max"])
    start, stop, step = m["delay_grid_s"]
    nbhd = m.get("delay_neighbourhood", [3, 3, 1])
    if nbhd is not None and len(nbhd) != conc.ndim - 1:
        raise ValueError(f"model.delay_neighbourhood: {len(nbhd)} sizes for a "
                         f"{conc.ndim - 1}-D image")
    model = TracerKineticModel(t, aif["cp_mM"].to_numpy(), model=m["name"],
                               method=m["method"], fit_delay=bool(p.fit_delay),
                               delay_grid_s=np.arange(start, stop + 1e-9, step),
                               delay_neighbourhood=nbhd,
                               enhancement_z=m.get("enhancement_z", DEFAULT_ENHANCEMENT_Z),
                               bounds=bounds)
    mask = np.all(np.isfinite(conc), axis=-1)
    fit = model.fit(conc, mask=mask)
    maps = fit.maps()
    status = maps["status"]
    counts = {("not fitted (outside mask)" if k == -1 else STATUS_FIT[int(k)]): int(n)
              for k, n in zip(*np.unique(status, return_counts=True), strict=True)}
    log.info("%s (%s, fit_delay %s) on %d voxels: %s", m["name"], m["method"], p.fit_delay,
             int(mask.sum()), counts)
    side = {"Model": m["name"], "Method": m["method"], "FitDelay": bool(p.fit_delay),
            "AIF": "sub-..._aif.tsv (cp_mM)", "VoxelStatusCounts": counts,
            "FitPolicy": model.policy()}
    for name, path in sm.output.items():
        col, title, unit = map_info(name)
        arr = maps[col]
        data = arr.astype(np.int8) if col == "status" else arr.astype(np.float32)
        extra = {"Codes": {"-1": "not fitted (outside mask)",
                           **{str(k): v for k, v in STATUS_FIT.items()}}} \
            if col == "status" else {}
        write_nifti(path, data, affine, {"Quantity": title, "Column": col, "Units": unit,
                                         **side, **extra})
