"""Rule register: rigid registration of a follow-up session to its baseline session
(dce.register), the transform (JSON 4x4 in RAS world mm, ITK .tfm), the QC record and the
follow-up maps resampled onto the baseline grid.

Images: the pre-contrast mean (first ``acquisition.n_baseline`` phases) of each session's
DCE series; ROIs: each session's lesion ROI on its own DCE grid. A registration that fails
its QC is written with ``passed: false`` and logged as a warning naming subject, session
and the problem (the job succeeds, so the other subjects finish).
"""

import numpy as np

from dce.io.derivatives import derived_sources
from dce.io.jobs import job, write_json
from dce.io.maps import read_session_rois
from dce.io.nifti import read_nifti, write_nifti
from dce.register import RegistrationSettings, register_rigid, resample_to_baseline
from dce.registry import output_map, sidecar_fields

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

LESIONS = "lesions"


def precontrast(path: str, n_baseline: int) -> tuple[np.ndarray, np.ndarray]:
    # the first phases only (a 3-D image fails there, naming the file and its shape)
    img = read_nifti(path, require_sidecar=True, volumes=n_baseline + 1)
    if img.data.shape[-1] <= n_baseline:
        raise ValueError(f"{path}: need a 4-D DCE image with more than {n_baseline} phases, "
                         f"got shape {img.data.shape}")
    return np.asarray(img.data[..., :n_baseline], dtype=np.float64).mean(axis=-1), img.affine


def lesion_labels(path: str, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    p, wc = sm.params, sm.wildcards
    labels, _, notes = read_session_rois(
        path, None, shape, affine, expected=p.lesions["labels"],
        expected_from=p.lesions["sheet"], subject=wc.subject, names=p.lesions["names"])
    for note in notes:
        log.warning("%s", note)
    return np.asarray(labels)


with job(sm) as log:
    p, wc, out = sm.params, sm.wildcards, sm.output
    nb, base = int(p.n_baseline), str(p.baseline_session)
    settings = RegistrationSettings.from_config(dict(p.registration))
    fix, a_b = precontrast(sm.input.baseline_dce, nb)
    mov, a_f = precontrast(sm.input.dce, nb)
    les_b = lesion_labels(sm.input.baseline_lesion_roi, fix.shape, a_b)
    les_f = lesion_labels(sm.input.lesion_roi, mov.shape, a_f)
    reg = register_rigid(fix, a_b, les_b, mov, a_f, les_f, settings)
    results = sm.config["results"]
    sources = derived_sources([sm.input.baseline_dce, sm.input.dce], results)
    write_json({**reg.record(), "subject": wc.subject, "session": wc.session,
                "baseline_session": base, "Sources": sources}, out.xfm_json)
    reg.transform.WriteTransform(out.xfm_tfm)  # ITK text transform (LPS)
    q = reg.qc_record()
    write_json({"passed": q.pop("passed"), "reasons": q.pop("reasons"),
                "subject": wc.subject, "session": wc.session, "baseline_session": base,
                **q, "settings": dict(p.registration), "Sources": sources}, out.qc)
    for name in p.registration["maps"]:
        integer = name == LESIONS or np.issubdtype(np.dtype(output_map(name).dtype),
                                                   np.integer)
        kind = "nearest" if integer else "linear"
        if name == LESIONS:
            # the ROI file's own path may hold identifiers (not recorded; its hash is in
            # the provenance record)
            data, side = les_f, {"Labels": {str(k): "lesion" for k in p.lesions["labels"]},
                                 "Source": "the session's lesion ROI (sessions sheet)"}
            src = [sm.input.dce]
        else:
            img = read_nifti(getattr(sm.input, name), require_sidecar=True)
            data, src = img.data, [getattr(sm.input, name)]
            side = {**sidecar_fields(name),
                    **{k: img.sidecar[k] for k in ("Codes",) if k in img.sidecar}}
        res = resample_to_baseline(data, a_f, fix.shape, a_b, reg.matrix_ras, kind=kind)
        write_nifti(getattr(out, f"map_{name}"), res.astype(np.float32), a_b,
                    {**side, "Interpolation": kind, "OutsideFieldOfView": "NaN",
                     "Space": f"baseline session {base}", "RegistrationPassed": reg.qc.passed,
                     "Sources": derived_sources([*src, out.xfm_json], results)})
    d = reg.centre_displacement_mm
    log.info("%s/%s -> baseline %s: rotation %s deg, displacement at the lesion centroid "
             "%s mm, NCC %.3f -> %.3f, Dice %s, %d iterations (%s)", wc.subject, wc.session,
             base, np.round(reg.rotation_deg, 2).tolist(), np.round(d, 2).tolist(),
             reg.qc.ncc_before, reg.qc.ncc_after, reg.qc.dice, reg.iterations, reg.stop)
    if not reg.qc.passed:
        log.warning("registration QC FAILED: subject %s, session %s to baseline session %s: "
                    "%s; outputs written with passed: false, do not use them", wc.subject,
                    wc.session, base, "; ".join(reg.qc.reasons))
