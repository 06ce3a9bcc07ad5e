"""Rules provenance and run_provenance: the provenance record of an output set
(dce.io.provenance): package versions, configuration hash, input file hashes.

The configuration hash is computed here from the job's configuration (snakemake.config),
so the rule files need not import the package at parse time."""

import json

from dce.io.jobs import job, write_json
from dce.io.provenance import provenance_record

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    if sm.rule == "provenance":
        # image roles: "dicom" (a folder), or "dce_nifti", "dce_json", "vfa_nifti_<n>", ...
        inputs = {k: sm.input[k] for k in sm.input.keys()
                  if k not in ("roi", "marrow_roi", "aorta_roi", "b1_map")}
        for role in ("marrow_roi", "aorta_roi", "b1_map"):  # optional: [] or [path]
            inputs[role] = sm.input[role][0] if sm.input[role] else None
        extra = {"subject": sm.wildcards.subject, "session": sm.wildcards.session}
    else:
        inputs = {"sessions_sheet": sm.input.sessions, "lesions_sheet": sm.input.lesions}
        sessions = []
        for path in sm.input.records:
            with open(path, encoding="utf-8") as fh:
                rec = json.load(fh)
            sessions.append({k: rec[k] for k in ("subject", "session", "inputs")})
        extra = {"sessions": sessions}
    record = provenance_record(config=sm.config, inputs=inputs, extra=extra)
    log.info("config sha256 %s; inputs: %s", record["config_sha256"],
             {k: (v["n_files"] if v else 0) for k, v in record["inputs"].items()})
    write_json(record, sm.output[0])
