"""Rule demo_cohort: write the synthetic demo cohort (dce.phantom) as DICOM + sheets."""

from dataclasses import replace
from pathlib import Path

from dce.io.dicom_write import write_cohort_dicom
from dce.io.jobs import job
from dce.phantom import Acquisition, make_cohort

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    p = sm.params.demo
    acq = Acquisition()
    fov = [m * v for m, v in zip(acq.matrix, acq.voxel_mm, strict=True)]
    matrix = tuple(int(m) for m in p["matrix"])
    acq = replace(acq, matrix=matrix, n_phases=int(p["n_phases"]),
                  voxel_mm=tuple(round(f / m, 6) for f, m in zip(fov, matrix, strict=True)))
    cohort = make_cohort(int(p["n_patients"]), seed=int(p["seed"]), acquisition=acq)
    out = Path(sm.output.sessions).parent
    log.info("demo cohort: %d patients, %d sessions, matrix %s, %d phases -> %s",
             p["n_patients"], len(cohort), matrix, acq.n_phases, out)
    write_cohort_dicom(out, cohort, vendors=list(p["vendors"]))
    for f in sm.output:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f}: not written by write_cohort_dicom")
