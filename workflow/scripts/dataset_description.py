"""Rule dataset_description: dataset_description.json and .bidsignore at the results root
(dce.io.derivatives), so the results folder is a BIDS derivatives dataset. Deterministic:
the package version, no dates."""

from pathlib import Path

from dce.io.derivatives import write_dataset_description
from dce.io.jobs import job

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    desc, ignore = write_dataset_description(Path(sm.output.description).parent)
    log.info("wrote %s and %s", desc, ignore)
