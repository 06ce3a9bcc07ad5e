"""Rule numba_warmup: compile (and cache) the fit kernels once before the fit jobs run.

Numba caches the compiled kernels next to the source (``dce/__pycache__``); without this
job every fit job started before the first one finished would compile them again.
"""

import time

import numpy as np

from dce.aif import parker_aif
from dce.fit import TracerKineticModel
from dce.io.jobs import job, write_json

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    t = np.arange(24) * 5.0
    cp = parker_aif(t, delay_s=20.0) / 0.55
    conc = np.tile(np.float32(0.1) * cp.astype(np.float32), (8, 1))
    t0 = time.perf_counter()
    for method in ("nlls", "llsq"):
        TracerKineticModel(t, cp, method=method).fit(conc)
    dt = time.perf_counter() - t0
    log.info("fit kernels ready in %.1f s", dt)
    write_json({"seconds": round(dt, 3)}, sm.output[0])
