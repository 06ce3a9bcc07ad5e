"""Rule aif: arterial input function of one session, with QC record and QC figure.

The choice (aortic AIF with QC, population fallback or error, population mode, blood T10,
delay by phases) is dce.aif_auto.AIFPolicy from the ``aif`` configuration; this script
reads the images (aorta mask from the sessions.tsv column ``aif.mask_column``, the
lesion/marrow ROIs for the anterior prior) and writes the results."""

import numpy as np
import pandas as pd

from dce.aif_auto import AIFPolicy
from dce.io import derived_sources
from dce.io.jobs import job, save_figure, write_json, write_tsv
from dce.io.maps import read_roi
from dce.io.nifti import read_dynamic, read_nifti, write_nifti
from dce.viz.session import aif_qc_figure

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    policy = AIFPolicy.from_config(sm.params.aif)
    img = read_dynamic(sm.input.dce)
    shape = img.data.shape[:3]
    t1 = read_nifti(sm.input.t1, require_sidecar=True) if policy.blood_t10_s == "vfa" else None
    mask = spine = None
    if sm.input.aorta:                          # any ROI format (dce.io.rois): union
        aorta, notes = read_roi(sm.input.aorta[0], shape, img.affine)
        mask = aorta > 0
        for note in notes:
            log.warning("%s", note)
        log.info("aorta mask %s: %d voxels", sm.input.aorta[0], int(mask.sum()))
    if policy.anterior_prior:
        spine = np.zeros(shape, dtype=bool)
        les = sm.params.lesions                 # ROI notes are logged by rule roi
        for path, sel in [(sm.input.lesion_roi, {"labels": les["labels"], "names": les["names"]}),
                          *[(m, {}) for m in sm.input.marrow_roi]]:
            spine |= read_roi(path, shape, img.affine, **sel)[0] > 0
    try:
        choice = policy.select(
            img.data, img.t_s, tr_s=img.tr_s, flip_angle_deg=img.flip_angle_deg,
            r1_per_mM_per_s=float(sm.params.r1), n_baseline=int(sm.params.n_baseline),
            hematocrit=float(sm.params.hematocrit),
            field_strength_t=img.sidecar.get("MagneticFieldStrength"),
            vfa_t10_s=t1.data if t1 is not None and t1.sidecar.get("Source") == "VFA" else None,
            mask=mask, spine_mask=spine, affine=img.affine)
    except ValueError as exc:                  # name the image the policy was applied to
        raise ValueError(f"{sm.input.dce}: {exc}") from None
    res, qc = choice.result, choice.qc
    src = derived_sources([sm.input.dce] + ([sm.input.t1] if t1 else []), sm.config["results"])
    vox = res.voxel_mask(shape)
    fig = aif_qc_figure(res.t_s, res.cb_mM, background=img.data[..., res.peak_phase()],
                        voxel_mask=vox, affine=img.affine, qc=qc,
                        measured_cb_mM=res.measured_cb_mM, cp_mM=res.cp_mM)
    write_tsv(pd.DataFrame(res.to_frame()), sm.output.tsv)
    write_json({**qc, "Sources": src}, sm.output.qc)
    write_nifti(sm.output.voxels, vox, img.affine,
                {"Description": "voxels averaged into the automatic AIF (1)",
                 "Source": qc["source"], "Sources": src})
    save_figure(fig, sm.output.png)
