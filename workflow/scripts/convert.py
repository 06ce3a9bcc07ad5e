"""Rule convert: DICOM folder of one session -> DCE (and VFA, B1) NIfTI + JSON sidecars.

Besides the declared outputs, a VFA image ``sub-<s>_ses-<t>_vfa.nii.gz`` and a raw B1
map ``sub-<s>_ses-<t>_B1map_raw.nii.gz`` (+ .json) are written when the session has
them; the conversion record ``..._convert.json`` says whether they were ("vfa", "b1").
"""

from pathlib import Path

from dce.io.convert import convert_visit, output_paths
from dce.io.jobs import job, write_json

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    subject, session = sm.wildcards.subject, sm.wildcards.session
    out_dir = Path(sm.output.dce).parent
    stale = output_paths(out_dir, subject, session)
    for key in ("vfa", "vfa_json", "b1", "b1_json"):  # a previous run's must not survive
        stale[key].unlink(missing_ok=True)
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        warn = line.lstrip().startswith("WARNING") or (
            line.lstrip().startswith("note:") and ("gap" in line or "disagree" in line))
        (log.warning if warn else log.info)("%s", line)

    written = convert_visit(sm.input.dicom, out_dir, subject=subject, session=session,
                            dce_pattern=sm.params.dce_pattern,
                            vfa_pattern=sm.params.vfa_pattern,
                            b1_pattern=sm.params.b1_pattern, require_vfa=False,
                            report=report)
    # the summary holds series descriptions, sizes and relative times only (no identifiers);
    # output paths are stored relative to the record
    record = {
        "dce": written["dce"].name,
        "vfa": written["vfa"].name if "vfa" in written else None,
        "b1": written["b1"].name if "b1" in written else None,
        "summary": [ln for ln in lines if not ln.startswith("wrote ")
                    and "WARNING (timing)" not in ln],  # names files: log only
    }
    write_json(record, sm.output.record)
