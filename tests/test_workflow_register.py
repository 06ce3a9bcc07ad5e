"""The rule register on the shared test run (issue 16 part 1): every follow-up session has
its transform, QC record and resampled maps, passes its QC, and the transform agrees with
the phantom's true motion (the demo cohort's truth/motion_truth.tsv)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from wfutil import DEMO, RESULTS, sessions_sheet

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP via snakemake

MAPS = ("ktrans", "vp", "fitstatus", "lesions")   # registration.maps default


@pytest.mark.workflow
def test_every_followup_is_registered_and_passes_qc(run: Path) -> None:
    sessions = sessions_sheet(run)
    truth = pd.read_csv(run / DEMO / "truth" / "motion_truth.tsv", sep="\t",
                        dtype={"subject": str, "session": str, "baseline_session": str})
    followups = [(s, t) for s, t in zip(sessions["subject"], sessions["session"], strict=True)
                 if t != "pre"]                                  # cohort.baseline_session
    assert len(followups) >= 3
    for subj, ses in followups:
        d = run / RESULTS / f"sub-{subj}" / f"ses-{ses}"
        stem = f"sub-{subj}_ses-{ses}"
        qc = json.loads((d / f"{stem}_desc-registration_qc.json").read_text())
        assert qc["passed"] is True, (subj, ses, qc["reasons"])
        assert qc["baseline_session"] == "pre" and qc["ncc_after"] > qc["ncc_before"]
        assert min(qc["dice"].values()) > 0.6
        xfm = json.loads((d / f"{stem}_desc-tobaseline_xfm.json").read_text())
        assert "baseline" in xfm["direction"]
        assert (d / f"{stem}_desc-tobaseline_xfm.tfm").read_text().startswith("#Insight")
        m = np.asarray(xfm["matrix_ras"])
        row = truth[(truth["subject"] == subj) & (truth["session"] == ses)].iloc[0]
        true = np.eye(4)
        true[:3, :] = [[row[f"m{r}{c}"] for c in range(4)] for r in range(3)]
        base = d.parent / "ses-pre"
        base_img: Any = nib.load(base / f"sub-{subj}_ses-pre_dce.nii.gz")
        les_img: Any = nib.load(run / DEMO / subj / "pre" / "roi" / f"{subj}_pre_lesions.nii.gz")
        lesions = np.asarray(les_img.dataobj)
        for lab in np.unique(lesions[lesions > 0]):
            c = np.append(base_img.affine[:3, :3] @ np.argwhere(lesions == lab).mean(axis=0)
                          + base_img.affine[:3, 3], 1.0)
            tre = float(np.linalg.norm((m @ c - true @ c)[:3]))
            assert tre < 1.5, (subj, ses, int(lab), tre)     # coarse test grid: 2.7 x 6.25 mm
        for name in MAPS:
            img: Any = nib.load(d / f"{stem}_space-baseline_{name}.nii.gz")
            assert img.shape == base_img.shape[:3], name
            assert np.allclose(img.affine, base_img.affine), name
            side = json.loads((d / f"{stem}_space-baseline_{name}.json").read_text())
            assert side["RegistrationPassed"] is True and side["Sources"], name
    # the baseline sessions are not registered
    for subj in set(sessions["subject"]):
        d = run / RESULTS / f"sub-{subj}" / "ses-pre"
        assert not list(d.glob("*_desc-registration_qc.json"))
