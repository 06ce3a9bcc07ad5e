"""Rule convert: the images of one session -> DCE (and VFA, B1) NIfTI + JSON sidecars.

The source is a DICOM folder (dce.io.convert) or NIfTI + JSON sidecars (dcm2niix/BIDS,
dce.io.nifti_input); the outputs are the same either way. Besides the declared outputs, a
VFA image ``sub-<s>_ses-<t>_vfa.nii.gz`` and a raw B1 map ``..._desc-raw_B1map.nii.gz`` (+ .json)
are written when the session has them; the record ``..._convert.json`` says whether they
were ("vfa", "b1") and the source; the rule kinetics reads it.
"""

from pathlib import Path

from dce.io.convert import convert_visit, output_paths
from dce.io.jobs import job, write_json
from dce.io.nifti_input import convert_nifti_session

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    subject, session = sm.wildcards.subject, sm.wildcards.session
    src = sm.params.source
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

    if src["kind"] == "dicom":
        written = convert_visit(src["dicom_dir"], out_dir, subject=subject, session=session,
                                dce_pattern=sm.params.dce_pattern,
                                vfa_pattern=sm.params.vfa_pattern,
                                b1_pattern=sm.params.b1_pattern, require_vfa=False,
                                report=report)
    else:
        written = convert_nifti_session(src["dce_nifti"], out_dir, subject=subject,
                                        session=session, vfa_nifti=src["vfa_nifti"],
                                        times=src["dce_times_s"], report=report)
    # the summary holds series descriptions, sizes and relative times only (no identifiers);
    # output paths are stored relative to the record
    record = {
        "source": src["kind"],
        "dce": written["dce"].name,
        "vfa": written["vfa"].name if "vfa" in written else None,
        "b1": written["b1"].name if "b1" in written else None,
        "summary": [ln for ln in lines if not ln.startswith("wrote ")
                    and "WARNING (timing)" not in ln],  # names files: log only
    }
    write_json(record, sm.output.record)
