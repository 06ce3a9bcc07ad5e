"""CPU and wall time of the rule prm per follow-up session at the demo size.

Inputs of one follow-up (demo cohort, seed 0, ``--matrix`` 96 x 96 x 10, ``--phases``
60; default subject P08, session fu1: two treated lesions, one with a recurrent rim)
are written as the workflow writes them, into a temporary folder: the baseline maps
(vp, ktrans, fitstatus), the baseline DCE series (4-D, float32), lesion and marrow ROIs,
the follow-up maps on the baseline grid, the follow-up's own grid (fit status), the
transform (a motion by a fraction of a voxel) and the registration QC record. The maps are the
phantom's truth (dce.phantom.prm_truth) with fit-like noise; no fit is run.

Measured:

* ``body_cpu_s`` / ``body_wall_s``: the rule's script (workflow/scripts/prm.py) run in this
  process with a stand-in ``snakemake`` object, after one warm-up run (imports done):
  read the inputs, PRM, table, class maps, figure (PNG + PDF). Minimum of ``--repeats``.
* ``import_cpu_s``: CPU of a fresh Python process importing what the script imports (the
  fixed start-up cost of each job; Snakemake's own preamble not included). Minimum of
  ``--repeats``.
* ``job_cpu_s``: their sum, the CPU one prm job adds per follow-up session.

On a shared machine take the minimum of several repeats and compare runs made under the
same load. Run: ``python benchmarks/bench_prm.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "workflow" / "scripts" / "prm.py"
IMPORTS = ("import json, numpy, pandas; import dce.cohort.display, dce.io.derivatives, "
           "dce.io.jobs, dce.io.maps, dce.io.nifti, dce.io.tables, dce.prm, dce.registry, "
           "dce.viz.prm")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def write_inputs(folder: Path, subject: str, session: str, matrix: list[int],
                 phases: int) -> SimpleNamespace:
    """The rule's inputs of one follow-up, as NIfTI/JSON files; returns the snakemake
    stand-in's ``input``, ``output`` and ``params``."""
    from dce.io.nifti import write_nifti
    from dce.phantom import demo_cohort, prm_truth

    c = demo_cohort(10, 0, matrix=matrix, n_phases=phases)
    t = prm_truth(c, subject, session)
    rng = np.random.default_rng(0)
    aff = t["affine"]
    ins: dict[str, Any] = {}
    sigma = {"vp": 0.0015, "ktrans_per_min": 0.003}
    valid = np.isfinite(t["vp_baseline"])
    for name, m in (("vp", "vp"), ("ktrans_per_min", "ktrans")):
        for tag, key in (("baseline", "base"), ("followup", "fu")):
            arr = np.where(valid, t[f"{name}_{tag}"], 0.0) + rng.normal(0, sigma[name],
                                                                      valid.shape)
            p = folder / f"{key}_{m}.nii.gz"
            write_nifti(p, arr.astype(np.float32), aff,
                        {"Interpolation": "linear"} if key == "fu" else None)
            ins[f"{key}_{m}"] = str(p)
    status = np.where(valid, 0, -1).astype(np.int8)
    for key in ("base", "fu"):
        p = folder / f"{key}_fitstatus.nii.gz"
        write_nifti(p, status, aff)
        ins[f"{key}_fitstatus"] = str(p)
    dce = rng.normal(100.0, 5.0, (*valid.shape, phases)).astype(np.float32)
    write_nifti(folder / "dce.nii.gz", dce, aff)
    ins["base_dce"] = str(folder / "dce.nii.gz")
    write_nifti(folder / "lesions.nii.gz", t["lesion"], aff)
    write_nifti(folder / "marrow.nii.gz", t["marrow"].astype(np.uint8), aff)
    ins["base_lesion_roi"] = str(folder / "lesions.nii.gz")
    ins["base_marrow_roi"] = [str(folder / "marrow.nii.gz")]
    (folder / "qc.json").write_text(json.dumps({"passed": True, "reasons": []}))
    ins["qc"] = str(folder / "qc.json")
    # a motion by a fraction of a voxel: the baseline matched to the follow-up's
    # interpolation smoothing does its whole work (the maps themselves stay the truth's)
    shift = np.eye(4)
    shift[:3, 3] = aff[:3, :3] @ [0.3, 0.4, 0.5]
    (folder / "xfm.json").write_text(json.dumps({"matrix_ras": shift.tolist()}))
    ins["xfm"] = str(folder / "xfm.json")
    write_nifti(folder / "fu_grid.nii.gz", status, aff)
    ins["fu_grid"] = str(folder / "fu_grid.nii.gz")
    labels = [int(v) for v in np.unique(t["lesion"][t["lesion"] > 0])]
    outs = {"tsv": str(folder / "out_prm.tsv"), "png": str(folder / "out_prm.png"),
            "pdf": str(folder / "out_prm.pdf")}
    for m in ("vp", "ktrans"):
        outs[f"dseg_{m}"] = str(folder / f"out_desc-prm{m}_dseg.nii.gz")
    prm_cfg = {"enabled": True, "maps": ["vp", "ktrans"],
               "thresholds": {"vp": 0.02, "ktrans": 0.05},
               "marrow_coverage": 0.95, "min_marrow_voxels": 50,
               "fallback_thresholds": {"vp": 0.02, "ktrans": 0.05}, "margin_mm": 10.0}
    params = SimpleNamespace(prm=prm_cfg, baseline_session="pre", n_baseline=5, lesions={
        "labels": labels, "levels": ["" for _ in labels], "sheet": "lesions.tsv",
        "names": {}})
    return SimpleNamespace(input=SimpleNamespace(**ins), output=SimpleNamespace(**outs),
                           params=params, n_lesions=len(labels))


def run_script(io: SimpleNamespace, folder: Path, subject: str, session: str) -> None:
    wc = SimpleNamespace(subject=subject, session=session,
                         keys=lambda: ["subject", "session"])
    sm = SimpleNamespace(input=io.input, output=io.output, params=io.params, wildcards=wc,
                         log=[str(folder / "prm.log")], threads=1, rule="prm",
                         config={"results": str(folder)})
    runpy.run_path(str(SCRIPT), init_globals={"snakemake": sm})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--matrix", type=int, nargs=3, default=[96, 96, 10])
    ap.add_argument("--phases", type=int, default=60)
    ap.add_argument("--subject", default="P08")
    ap.add_argument("--session", default="fu1")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        io = write_inputs(folder, a.subject, a.session, a.matrix, a.phases)
        run_script(io, folder, a.subject, a.session)      # warm-up (imports, font cache)
        cpu, wall = [], []
        for _ in range(a.repeats):
            c0, w0 = _cpu(), time.perf_counter()
            run_script(io, folder, a.subject, a.session)
            cpu.append(_cpu() - c0)
            wall.append(time.perf_counter() - w0)
    imp = []
    for _ in range(a.repeats):
        done = subprocess.run([sys.executable, "-c", IMPORTS + "\nimport resource\n"
                               "r = resource.getrusage(resource.RUSAGE_SELF)\n"
                               "print(r.ru_utime + r.ru_stime)"],
                              capture_output=True, text=True, check=True,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        imp.append(float(done.stdout.strip().splitlines()[-1]))
    print(f"matrix={'x'.join(map(str, a.matrix))} phases={a.phases} "
          f"subject={a.subject} session={a.session} lesions={io.n_lesions}")
    print(f"body_cpu_s={min(cpu):.2f} body_wall_s={min(wall):.2f}")
    print(f"import_cpu_s={min(imp):.2f}")
    print(f"job_cpu_s={min(cpu) + min(imp):.2f}")


if __name__ == "__main__":
    main()
