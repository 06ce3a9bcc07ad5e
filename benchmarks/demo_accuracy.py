"""Accuracy of a finished demo run against the phantom's ground truth.

Reads the demo cohort (``demo/``: truth tables, true AIFs) and the pipeline's results
(``results/``) and prints ``key=value`` lines: the median absolute relative error of the
lesion-mean Ktrans and vp over all lesions and sessions, and the worst automatic-AIF peak
error and arrival error (in phases). ``tests/test_workflow.py`` asserts the same numbers
on the small test cohort.

Run after ``make demo``: ``python benchmarks/demo_accuracy.py [demo_dir results_dir]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def demo_accuracy(demo: Path, results: Path) -> dict[str, float]:
    """Errors of the pipeline's lesion means and AIFs against the phantom's truth."""
    ids = {"subject": str, "session": str}
    truth = pd.read_csv(demo / "truth" / "lesion_truth.tsv", sep="\t", dtype=ids)
    sessions = pd.read_csv(demo / "truth" / "sessions_truth.tsv", sep="\t", dtype=ids)
    kt_err, vp_err, peak_err, arrival_err = [], [], [], []
    n_failed_qc = 0
    for r in sessions.to_dict("records"):
        subj, ses = str(r["subject"]), str(r["session"])
        stem = f"sub-{subj}_ses-{ses}"
        d = results / f"sub-{subj}" / f"ses-{ses}"
        qc = json.loads((d / f"{stem}_aif.json").read_text())
        n_failed_qc += int(not (qc["source"] == "aorta" and qc["passed"]))
        true_aif = pd.read_csv(demo / subj / ses / "truth" / f"{subj}_{ses}_aif.tsv", sep="\t")
        dt = float(np.median(np.diff(true_aif["t_s"])))
        peak_err.append(qc["peak_blood_mM"] / true_aif["cb_mM"].max() - 1)
        arrival_err.append((qc["arrival_s"] - r["bolus_arrival_s"]) / dt)
        roi = pd.read_csv(d / f"{stem}_roi.tsv", sep="\t")
        for les in roi[roi["roi"] == "lesion"].to_dict("records"):
            t = truth[(truth.subject == subj) & (truth.session == ses)
                      & (truth.lesion == int(les["label"]))].iloc[0]
            kt_err.append(les["ktrans_per_min_mean"] / t["ktrans_per_min"] - 1)
            vp_err.append(les["vp_mean"] / t["vp"] - 1)
    return {
        "n_sessions": float(len(sessions)),
        "n_lesion_sessions": float(len(kt_err)),
        "ktrans_median_abs_rel_error": float(np.median(np.abs(kt_err))),
        "vp_median_abs_rel_error": float(np.median(np.abs(vp_err))),
        "aif_peak_max_abs_rel_error": float(np.max(np.abs(peak_err))),
        "aif_arrival_max_abs_error_phases": float(np.max(np.abs(arrival_err))),
        "aif_sessions_failed_qc": float(n_failed_qc),
    }


def main() -> None:
    demo, results = (Path(a) for a in (sys.argv[1:3] if len(sys.argv) > 2
                                       else ("demo", "results")))
    for k, v in demo_accuracy(demo, results).items():
        print(f"{k}={v:.4g}")


if __name__ == "__main__":
    main()
