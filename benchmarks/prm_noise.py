"""Voxel-wise error of the pipeline's PRM change (follow-up registered to the baseline
minus baseline) against the demo phantom's true change, in lesions and normal marrow.

Run on a finished workflow run (up to the prm outputs) and its demo folder::

    python benchmarks/prm_noise.py RESULTS DEMO [SUBJECT ...]

Prints per subject, follow-up, lesion and map: valid voxels, true and measured mean
change (follow-up registered to the baseline grid minus the baseline map given the
follow-up's interpolation smoothing, as the rule prm does:
dce.prm.match_interpolation_smoothing), bias and SD of (measured - true) and the 95th
percentile of |measured - true|
(the threshold that keeps an unchanged lesion unchanged in 95 % of its voxels); per
marrow ROI the same bias and SD and the 95th percentile of |measured change| (the marrow
threshold of dce.prm). Units: vp volume fraction, ktrans /min. Then per lesion and map
the pipeline's PRM fractions (``_prm.tsv``) against the truth's classes at the same
threshold (true change map of the demo's ``truth/``), in percent, and how many rows have
all three fractions within 5 percentage points.

Then, without noise (``resampling`` lines): the follow-up's *true* maps (volume averages on
its own grid, ``truth/``) carried to the baseline grid by the pipeline's transform
(trilinear, dce.register.resample_to_baseline) minus the baseline's true maps, plain
(``linear``) and with the baseline given the follow-up's interpolation smoothing
(``matched``, as the rule prm): per lesion the bias against the true change and the
largest error of the three fractions (percentage points). This isolates what resampling
does to the change from the fit's noise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dce.prm import DEFAULT_FALLBACK_THRESHOLDS, match_interpolation_smoothing
from dce.register import resample_to_baseline

MAPS = {"vp": "vp", "ktrans": "ktrans_per_min"}


def _load(p: Path) -> NDArray[np.float64]:
    img: Any = nib.load(str(p))
    return np.asarray(img.dataobj, dtype=np.float64)


def _affine(p: Path) -> NDArray[np.float64]:
    img: Any = nib.load(str(p))
    return np.asarray(img.affine, dtype=np.float64)


def _line(tag: str, meas: NDArray[np.float64], err: NDArray[np.float64]) -> str:
    if meas.size == 0:
        return f"{tag} n=  0"
    return (f"{tag} n={meas.size:3d} true={np.mean(meas - err):+.4f} "
            f"meas={np.mean(meas):+.4f} bias={np.mean(err):+.4f} sd={np.std(err):.4f} "
            f"p95|err|={np.quantile(np.abs(err), 0.95):.4f} "
            f"p95|meas|={np.quantile(np.abs(meas), 0.95):.4f}")


def report(res: Path, demo: Path, subj: str) -> None:
    """Print the lines of one subject (module notes)."""
    roi = demo / subj / "pre" / "roi"
    les = _load(roi / f"{subj}_pre_lesions.nii.gz")
    marrow = _load(roi / f"{subj}_pre_marrow.nii.gz") > 0
    base = res / f"sub-{subj}" / "ses-pre"
    ok0 = _load(base / f"sub-{subj}_ses-pre_fitstatus.nii.gz") == 0
    for sd in sorted((res / f"sub-{subj}").glob("ses-*")):
        ses = sd.name[4:]
        p = f"sub-{subj}_ses-{ses}"
        if not (sd / f"{p}_space-baseline_fitstatus.nii.gz").exists():
            continue
        ok = ok0 & (_load(sd / f"{p}_space-baseline_fitstatus.nii.gz") == 0)
        xfm = json.loads((sd / f"{p}_desc-tobaseline_xfm.json").read_text())
        a_b = _affine(base / f"sub-{subj}_ses-pre_fitstatus.nii.gz")
        a_f = _affine(sd / f"{p}_fitstatus.nii.gz")
        for m, tname in MAPS.items():
            b = match_interpolation_smoothing(_load(base / f"sub-{subj}_ses-pre_{m}.nii.gz"),
                                              a_b, a_f, np.asarray(xfm["matrix_ras"]))
            meas = _load(sd / f"{p}_space-baseline_{m}.nii.gz") - b
            true = _load(demo / subj / ses / "truth" / f"{subj}_{ses}_prm_{tname}_change.nii.gz")
            err = meas - true
            for lab in [int(v) for v in np.unique(les[les > 0])]:
                s = (les == lab) & ok & np.isfinite(err)
                print(_line(f"{subj} {ses} L{lab} {m:6s}", meas[s], err[s]))
            s = marrow & ok & np.isfinite(err)
            print(_line(f"{subj} {ses} marrow {m:6s}", meas[s], err[s]))


def compare(res: Path, demo: Path, subj: str) -> list[float]:
    """Print the pipeline's PRM fractions against the truth's classes; return the largest
    error (percentage points) of each row."""
    les = _load(demo / subj / "pre" / "roi" / f"{subj}_pre_lesions.nii.gz")
    worst = []
    for f in sorted((res / f"sub-{subj}").glob("ses-*/*_prm.tsv")):
        t = pd.read_csv(f, sep="\t")
        for r in t.to_dict("records"):
            ses, m, lab = str(r["session"]), str(r["map"]), int(r["label"])
            true = _load(demo / subj / ses / "truth" / f"{subj}_{ses}_prm_{MAPS[m]}_change.nii.gz")
            d = true[les == lab]
            thr = float(r["threshold"])
            truth = (np.mean(d > thr), np.mean(np.abs(d) <= thr), np.mean(d < -thr))
            meas = (r["prm_pos_fraction"], r["prm_zero_fraction"], r["prm_neg_fraction"])
            err = 100 * max(abs(float(a) - b) for a, b in zip(meas, truth, strict=True))
            worst.append(err)
            print(f"{subj} {ses} L{lab} {m:6s} thr={thr:.3g} PRM+/0/- measured "
                  + "/".join(f"{100 * float(v):.1f}" for v in meas) + " truth "
                  + "/".join(f"{100 * v:.1f}" for v in truth)
                  + f" mean change {float(r['mean_change']):+.4f} (true {np.mean(d):+.4f})"
                  + f" max err {err:.1f} pp")
    return worst


def resampling(res: Path, demo: Path, subj: str) -> None:
    """Print the noise-free resampling lines of one subject (module notes)."""
    les = _load(demo / subj / "pre" / "roi" / f"{subj}_pre_lesions.nii.gz")
    a_b = _affine(demo / subj / "pre" / "truth" / f"{subj}_pre_vp.nii.gz")
    for sd in sorted((res / f"sub-{subj}").glob("ses-*")):
        ses, p = sd.name[4:], f"sub-{subj}_ses-{sd.name[4:]}"
        if not (sd / f"{p}_desc-tobaseline_xfm.json").exists():
            continue
        m_ras = np.asarray(json.loads((sd / f"{p}_desc-tobaseline_xfm.json").read_text())[
            "matrix_ras"])
        truth = demo / subj / ses / "truth"
        a_f = _affine(truth / f"{subj}_{ses}_vp.nii.gz")
        for m, tname in MAPS.items():
            thr = DEFAULT_FALLBACK_THRESHOLDS[m]   # the workflow's default thresholds
            base = _load(demo / subj / "pre" / "truth" / f"{subj}_pre_{tname}.nii.gz")
            fu = resample_to_baseline(_load(truth / f"{subj}_{ses}_{tname}.nii.gz"), a_f,
                                      base.shape, a_b, m_ras)
            true = _load(truth / f"{subj}_{ses}_prm_{tname}_change.nii.gz")
            variants = {"linear": fu - base,
                        "matched": fu - match_interpolation_smoothing(base, a_b, a_f, m_ras)}
            for lab in [int(v) for v in np.unique(les[les > 0])]:
                out = []
                for name, d in variants.items():
                    s = (les == lab) & np.isfinite(d)
                    fr = [(np.mean(x > thr), np.mean(np.abs(x) <= thr), np.mean(x < -thr))
                          for x in (d[s], true[s])]
                    err = 100 * max(abs(a - b) for a, b in zip(*fr, strict=True))
                    out.append(f"{name} bias={np.mean(d[s] - true[s]):+.4f} "
                               f"max err {err:4.1f} pp")
                print(f"resampling {subj} {ses} L{lab} {m:6s} " + " | ".join(out))


def main() -> None:
    res, demo = Path(sys.argv[1]), Path(sys.argv[2])
    worst: list[float] = []
    for subj in sys.argv[3:] or sorted(p.name[4:] for p in res.glob("sub-*")):
        report(res, demo, subj)
        worst += compare(res, demo, subj)
    print(f"rows within 5 pp: {sum(w <= 5.0 for w in worst)} of {len(worst)}")
    for subj in sys.argv[3:] or sorted(p.name[4:] for p in res.glob("sub-*")):
        resampling(res, demo, subj)


if __name__ == "__main__":
    main()
