"""Rule semiquant: voxel-wise semi-quantitative maps from the DCE signal.

Peak enhancement (%), time to peak (s), wash-in slope (%/s), maximum slope (%/s),
washout (%), IAUC over the configured windows and the TIC type (coded 1-5 = A-E,
0 = not classifiable; dce.registry.TIC_CODES). Model-free: independent of the AIF.
"""

import numpy as np

from dce.io import derived_sources, read_nifti
from dce.io.jobs import job
from dce.io.maps import write_map
from dce.registry import TIC_CODES, TIC_TYPE_MAP, output_map, tic_code_names
from dce.semiquant import TICRule, semiquant_maps

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    p = sm.params
    dce = read_nifti(sm.input.dce, require_sidecar=True)
    t = np.asarray(dce.sidecar["VolumeTiming"], dtype=float)
    rule, nb = TICRule(**p.tic), int(p.n_baseline)
    met = semiquant_maps(dce.data, t, n_baseline=nb, iauc_windows_s=[float(w) for w in p.iauc],
                         rule=rule)
    codes = met["tic_type_code"]
    log.info("TIC types over %d voxels: %s", codes.size,
             {k or "none": int((codes == v).sum()) for k, v in TIC_CODES.items()})
    for name, path in sm.output.items():
        side = {"BaselinePhases": nb, "Source": "DCE signal (model-free)",
                "Sources": derived_sources([sm.input.dce], sm.config["results"])}
        if name == TIC_TYPE_MAP:
            side.update(Codes=tic_code_names(), Rule=rule.describe())
        write_map(path, name, met[output_map(name).column], dce.affine, side)
