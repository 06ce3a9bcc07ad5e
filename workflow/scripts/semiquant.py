"""Rule semiquant: voxel-wise semi-quantitative maps from the DCE signal.

Peak enhancement (%), time to peak (s), wash-in slope (%/s), maximum slope (%/s),
washout (%), IAUC over the configured windows and the TIC type (coded 1-5 = A-E,
0 = not classifiable). Model-free: independent of the AIF.
"""

import numpy as np
from _common import TIC_CODES, job, map_info

from dce.io import read_nifti, write_nifti
from dce.semiquant import TICRule, classify_tic, tic_metrics

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    p = sm.params
    dce = read_nifti(sm.input.dce, require_sidecar=True)
    t = np.asarray(dce.sidecar["AcquisitionTimes_s"], dtype=float)
    sig = dce.data
    rule = TICRule(**p.tic)
    nb = int(p.n_baseline)
    met = tic_metrics(sig, t, n_baseline=nb, iauc_windows_s=[float(w) for w in p.iauc],
                      allow_nan=True).as_dict()
    types = classify_tic(sig, t, n_baseline=nb, rule=rule, allow_nan=True)
    codes = np.zeros(types.shape, dtype=np.int8)
    for letter, code in TIC_CODES.items():
        codes[types == letter] = code
    met["tic_type_code"] = codes
    log.info("TIC types over %d voxels: %s", codes.size,
             {k or "none": int((codes == v).sum()) for k, v in TIC_CODES.items()})
    for name, path in sm.output.items():
        col, title, unit = map_info(name)
        arr = met[col]
        data = arr if col == "tic_type_code" else np.asarray(arr, dtype=np.float32)
        side = {"Quantity": title, "Column": col, "Units": unit, "BaselinePhases": nb,
                "Source": "DCE signal (model-free)"}
        if col == "tic_type_code":
            side.update(Codes={str(v): (k or "not classifiable") for k, v in TIC_CODES.items()},
                        Rule=rule.describe())
        write_nifti(path, data, dce.affine, side)
