"""Accuracy of a finished demo run against the phantom's ground truth.

Reads the demo cohort (``demo/``: truth tables, true AIFs; written by
:mod:`dce.phantom`, whose forward model shares no code with the fitter) and the
pipeline's results (``results/``) and prints ``key=value`` lines:

* automatic-AIF peak: median and max |relative error| of the measured blood peak
  (``peak_blood_mM`` of the QC record) against the true blood curve at the acquisition
  times, and the number of sessions whose AIF failed QC;
* lesion-mean Ktrans and vp: median and max |relative error| over all lesions and
  sessions;
* per-lesion dVp (first follow-up vs baseline, %): median and max |error| in percentage
  points;
* lesion-level AUC of dVp for recurrence (Mann-Whitney), measured and true.

``tests/test_workflow.py`` asserts the issue's bounds on the small test cohort with
:func:`demo_accuracy`. Run after ``make demo``:
``python benchmarks/demo_accuracy.py [demo_dir results_dir]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC of ``score`` for ``positive`` (ties count one half)."""
    pos, neg = score[positive], score[~positive]
    if not pos.size or not neg.size:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def lesion_table(demo: Path, results: Path) -> pd.DataFrame:
    """One row per treated lesion (one with a recurrence outcome) and session: measured
    and true Ktrans and vp. The untreated incidental lesions (hemangioma, fracture,
    tuberculosis; Vp of 1-5 %) are not part of these accuracy figures."""
    ids = {"subject": str, "session": str}
    truth = pd.read_csv(demo / "truth" / "lesion_truth.tsv", sep="\t", dtype=ids)
    rows = []
    for r in truth.to_dict("records"):
        subj, ses = str(r["subject"]), str(r["session"])
        stem = f"sub-{subj}_ses-{ses}"
        roi = pd.read_csv(results / f"sub-{subj}" / f"ses-{ses}" / f"{stem}_roi.tsv", sep="\t")
        lab = pd.to_numeric(roi["label"], errors="coerce")
        m = roi[(roi["roi"] == "lesion") & (lab == int(r["lesion"]))]
        if m.empty or pd.isna(r["recurrence"]):   # untreated lesions have no outcome
            continue
        m0 = m.iloc[0]
        rows.append({"subject": subj, "session": ses, "lesion": int(r["lesion"]),
                     "days_from_rt": float(r["days_from_rt"]),
                     "recurrence": int(r["recurrence"]),
                     "ktrans_true": float(r["ktrans_per_min"]), "vp_true": float(r["vp"]),
                     "ktrans": float(m0["ktrans_per_min_mean"]), "vp": float(m0["vp_mean"])})
    return pd.DataFrame(rows)


def demo_accuracy(demo: Path, results: Path) -> dict[str, float]:
    """Errors of the pipeline's AIFs, lesion means, dVp and AUC against the truth."""
    ids = {"subject": str, "session": str}
    sessions = pd.read_csv(demo / "truth" / "sessions_truth.tsv", sep="\t", dtype=ids)
    peak_err = []
    n_failed_qc = 0
    for r in sessions.to_dict("records"):
        subj, ses = str(r["subject"]), str(r["session"])
        stem = f"sub-{subj}_ses-{ses}"
        d = results / f"sub-{subj}" / f"ses-{ses}"
        qc = json.loads((d / f"{stem}_aif.json").read_text())
        n_failed_qc += int(not (qc["source"] == "aorta" and qc["passed"]))
        true_aif = pd.read_csv(demo / subj / ses / "truth" / f"{subj}_{ses}_aif.tsv", sep="\t")
        measured = qc["peak_blood_mM"]
        peak_err.append(np.nan if measured is None
                        else measured / float(true_aif["cb_mM"].max()) - 1)
    les = lesion_table(demo, results)
    kt_err = les["ktrans"] / les["ktrans_true"] - 1
    vp_err = les["vp"] / les["vp_true"] - 1

    # dVp: first follow-up (earliest session after the baseline) vs baseline, per lesion
    dvp, dvp_true, rec = [], [], []
    for (_, _), g in les.groupby(["subject", "lesion"]):
        g = g.sort_values("days_from_rt")
        if len(g) < 2:
            continue
        b, f = g.iloc[0], g.iloc[1]
        dvp.append(100 * (f["vp"] / b["vp"] - 1))
        dvp_true.append(100 * (f["vp_true"] / b["vp_true"] - 1))
        rec.append(bool(f["recurrence"]))
    dvp_a, dvp_t, rec_a = np.array(dvp), np.array(dvp_true), np.array(rec)
    pe = np.abs(np.asarray(peak_err, dtype=float))
    return {
        "n_sessions": float(len(sessions)),
        "n_lesion_sessions": float(len(les)),
        "n_lesions_with_followup": float(dvp_a.size),
        "aif_sessions_failed_qc": float(n_failed_qc),
        "aif_peak_median_abs_rel_error": float(np.nanmedian(pe)),
        "aif_peak_max_abs_rel_error": float(np.nanmax(pe)),
        "ktrans_median_abs_rel_error": float(np.median(np.abs(kt_err))),
        "ktrans_max_abs_rel_error": float(np.max(np.abs(kt_err))),
        "vp_median_abs_rel_error": float(np.median(np.abs(vp_err))),
        "vp_max_abs_rel_error": float(np.max(np.abs(vp_err))),
        "dvp_median_abs_error_pp": float(np.median(np.abs(dvp_a - dvp_t))),
        "dvp_max_abs_error_pp": float(np.max(np.abs(dvp_a - dvp_t))),
        "auc_dvp_measured": auc(dvp_a, rec_a),
        "auc_dvp_true": auc(dvp_t, rec_a),
    }


def main() -> None:
    demo, results = (Path(a) for a in (sys.argv[1:3] if len(sys.argv) > 2
                                       else ("demo", "results")))
    for k, v in demo_accuracy(demo, results).items():
        print(f"{k}={v:.4g}")


if __name__ == "__main__":
    main()
