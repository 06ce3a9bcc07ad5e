"""Rule fit: voxel-wise tracer-kinetic fit (a model of dce.registry.KINETIC_MODELS).

Fits every voxel whose concentration is finite at all phases; other voxels are NaN with
status -1. Writes one NIfTI map per output of the model (names in the rule's outputs;
labels, units and data types from dce.registry).

Delay (``aif.delay: fit``): candidates ``model.delay_grid_s`` (start, stop, step), each
voxel's delay chosen on the mean curve of its ``model.delay_neighbourhood`` box (null or
all ones: the voxel's own curve). Curves that do not enhance (``model.enhancement_z``) get
status 5 with Ktrans = vp = 0; kep at a search limit gets the nested model (status 6, 7).
The policy in force is written to every map's sidecar (``FitPolicy``).
"""

import numpy as np

from dce.fit import fitter_from_config, status_codes, status_counts
from dce.io import derived_sources, read_nifti
from dce.io.jobs import job
from dce.io.maps import write_map
from dce.registry import FIT_STATUS_MAP, output_map

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    p, m = sm.params, sm.params.model
    conc_img = read_nifti(sm.input.conc, require_sidecar=True)
    conc, affine = conc_img.data, conc_img.affine
    t = np.asarray(conc_img.sidecar["VolumeTiming"], dtype=float)
    # columns t_s, cp_mM, ... ("n/a": NaN); numpy's reader, the job needs no pandas
    aif = np.genfromtxt(sm.input.aif, delimiter="\t", names=True, dtype=float, encoding="utf-8")
    if not np.allclose(aif["t_s"], t, atol=1e-3):
        raise ValueError(f"{sm.input.aif}: AIF times differ from the phase times of "
                         f"{sm.input.conc}")
    model = fitter_from_config(t, aif["cp_mM"], m, fit_delay=bool(p.fit_delay),
                               image_ndim=conc.ndim - 1)
    mask = np.all(np.isfinite(conc), axis=-1)
    maps = model.fit(conc, mask=mask).maps()
    counts = status_counts(maps["status"])
    log.info("%s (%s, fit_delay %s) on %d voxels: %s", m["name"], m["method"], p.fit_delay,
             int(mask.sum()), counts)
    side = {"Model": m["name"], "Method": m["method"], "FitDelay": bool(p.fit_delay),
            "AIF": "sub-..._aif.tsv (cp_mM)", "VoxelStatusCounts": counts,
            "FitPolicy": model.policy(),
            "Sources": derived_sources([sm.input.conc, sm.input.aif], sm.config["results"])}
    for name, path in sm.output.items():
        extra = {"Codes": status_codes()} if name == FIT_STATUS_MAP else {}
        write_map(path, name, maps[output_map(name).column], affine, {**side, **extra},
                  significant_bits=p.map_significant_bits)
