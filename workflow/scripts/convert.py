"""Rule convert: DICOM folder of one session -> DCE (and VFA) NIfTI + JSON sidecars.

Besides the declared outputs, a VFA image ``sub-<s>_ses-<t>_vfa.nii.gz`` (+ .json) is
written when the session has VFA series; the conversion record ``..._convert.json``
says whether it was, and the rule t1map reads it from there.
"""

from pathlib import Path

from dce.io.convert import convert_visit, output_paths
from dce.io.jobs import job, write_json

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    subject, session = sm.wildcards.subject, sm.wildcards.session
    out_dir = Path(sm.output.dce).parent
    stale = output_paths(out_dir, subject, session)
    for key in ("vfa", "vfa_json"):          # a previous run's VFA must not survive
        stale[key].unlink(missing_ok=True)
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        warn = line.lstrip().startswith("note:") and ("gap" in line or "disagree" in line)
        (log.warning if warn else log.info)("%s", line)

    written = convert_visit(sm.input.dicom, out_dir, subject=subject, session=session,
                            dce_pattern=sm.params.dce_pattern,
                            vfa_pattern=sm.params.vfa_pattern, require_vfa=False,
                            report=report)
    # the summary holds series descriptions, sizes and relative times only (no identifiers);
    # output paths are stored relative to the record
    record = {
        "dce": written["dce"].name,
        "vfa": written["vfa"].name if "vfa" in written else None,
        "summary": [ln for ln in lines if not ln.startswith("wrote ")],
    }
    write_json(record, sm.output.record)
