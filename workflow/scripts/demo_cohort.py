"""Rule demo_cohort: write the synthetic demo cohort (dce.phantom) as DICOM + sheets."""

from pathlib import Path

from dce.io.dicom_write import write_cohort_dicom
from dce.io.jobs import job
from dce.phantom import demo_cohort

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    p = sm.params.demo
    cohort = demo_cohort(p["n_patients"], p["seed"], matrix=p["matrix"],
                         n_phases=p["n_phases"])
    out = Path(sm.output.sessions).parent
    log.info("demo cohort: %d patients, %d sessions, matrix %s, %d phases -> %s",
             p["n_patients"], len(cohort), p["matrix"], p["n_phases"], out)
    write_cohort_dicom(out, cohort, vendors=list(p["vendors"]))
    for f in sm.output:
        if not Path(f).exists():
            raise FileNotFoundError(f"{f}: not written by write_cohort_dicom")
