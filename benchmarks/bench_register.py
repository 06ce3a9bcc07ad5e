"""CPU time added per follow-up session by the rule ``register`` at the demo size.

The demo cohort (:func:`dce.phantom.demo_cohort`, 10 patients, seed 0, 96 x 96 x 10
voxels, 60 phases; its follow-ups move by up to 20 mm and 10 deg, ``DEMO_MOTION``):
for each follow-up of the first ``--pairs`` patients, the pre-contrast means of the
baseline and the follow-up are registered (:func:`dce.register.register_rigid`: two
registrations and the receive-field fit, one ITK thread) and six maps are resampled onto
the baseline grid (:func:`dce.register.resample_to_baseline`, four linear, two nearest).
Rendering is not timed.

Prints ``key=value`` lines: ``import_seconds`` (SimpleITK + scipy.ndimage, once per job),
``register_seconds`` and ``resample_seconds`` per follow-up (the minimum of ``--repeats``
runs of each, then the median over the follow-ups; process CPU time, one thread),
``tre_mm_max`` and ``rotation_error_deg_max`` against the phantom's truth, and
``n_followups``. The job also reads two DCE series and writes the outputs (the rule's
benchmark file, ``results/benchmarks/sub-*/ses-*/register.tsv``, has the whole job).

Run: ``python benchmarks/bench_register.py`` (``--pairs 2 --repeats 1`` for a quick check).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np


def _import_seconds() -> float:
    code = ("import time; t = time.process_time(); import SimpleITK, scipy.ndimage; "
            "print(time.process_time() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10, help="patients (all follow-ups)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from dce.phantom import demo_cohort, world_motion
    from dce.register import register_rigid, resample_to_baseline

    cohort = demo_cohort(10, 0)
    nb = 4
    reg_s, res_s, tres, angs = [], [], [], []
    subjects = list(dict.fromkeys(cohort.sessions["subject"]))[:args.pairs]
    for subj in subjects:
        sessions = list(cohort.sessions.loc[cohort.sessions["subject"] == subj, "session"])
        base = cohort.session(subj, sessions[0])
        fix = base.signal[..., :nb].mean(axis=-1)
        for ses in sessions[1:]:
            fu = cohort.session(subj, ses)
            mov = fu.signal[..., :nb].mean(axis=-1)
            times, reg = [], None
            for _ in range(args.repeats):
                t0 = time.process_time()
                reg = register_rigid(fix, base.affine, base.lesion_labels, mov, fu.affine,
                                     fu.lesion_labels)
                times.append(time.process_time() - t0)
            assert reg is not None
            reg_s.append(min(times))
            maps = [fu.truth["ktrans_per_min"], fu.truth["kep_per_min"], fu.truth["ve"],
                    fu.truth["vp"]]
            times = []
            for _ in range(args.repeats):
                t0 = time.process_time()
                for m in maps:
                    resample_to_baseline(m, fu.affine, fix.shape, base.affine, reg.matrix_ras)
                for lab in (fu.lesion_labels, fu.tissue_labels):
                    resample_to_baseline(lab, fu.affine, fix.shape, base.affine,
                                         reg.matrix_ras, kind="nearest")
                times.append(time.process_time() - t0)
            res_s.append(min(times))
            truth = world_motion(base.spec, fu.spec)
            pair: list[float] = []
            for lab in np.unique(base.lesion_labels[base.lesion_labels > 0]):
                c = np.append(base.affine[:3, :3] @ np.argwhere(base.lesion_labels == lab)
                              .mean(axis=0) + base.affine[:3, 3], 1.0)
                pair.append(float(np.linalg.norm((reg.matrix_ras @ c - truth @ c)[:3])))
            tres += pair
            rel = reg.matrix_ras[:3, :3] @ truth[:3, :3].T
            angs.append(float(np.degrees(np.arccos(np.clip((np.trace(rel) - 1) / 2, -1, 1)))))
            print(f"# {subj}/{ses}: {reg_s[-1]:.2f} s, TRE max {max(pair):.2f} mm, "
                  f"rotation error {angs[-1]:.2f} deg, QC passed {reg.qc.passed}",
                  flush=True)
    print(f"import_seconds={_import_seconds():.2f}")
    print(f"register_seconds={statistics.median(reg_s):.2f}")
    print(f"register_seconds_max={max(reg_s):.2f}")
    print(f"resample_seconds={statistics.median(res_s):.3f}")
    print(f"tre_mm_max={max(tres):.2f}")
    print(f"rotation_error_deg_max={max(angs):.2f}")
    print(f"n_followups={len(reg_s)}")


if __name__ == "__main__":
    main()
