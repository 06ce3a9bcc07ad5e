"""Job CPU, disk footprint and wall time of the whole workflow at the demo and clinical sizes.

For each size the synthetic demo cohort of ``config/config.yaml`` (``demo.enabled``) is
generated and processed by the whole workflow (``snakemake --cores N`` with the workflow
profile) in a fresh work directory ``<work>/<size>``, with the default settings:

* ``demo``: 96 x 96 x 10 voxels, 60 phases (the demo as shipped; ``--demo-patients``,
  default 10 patients = 25 sessions at seed 0, the cohort analysis included);
* ``clinical``: 256 x 256 x 12 voxels, 60 phases, i.e. 720 DCE + 60 VFA = 780 DICOM files
  per session (``--clinical-patients``, default 1 = 2-3 sessions; the cohort analysis is
  disabled, one patient is no cohort).

Prints ``key=value`` lines per size (block ``# size=<name>``; the same keys suffixed
``_<matrix>x<phases>`` in the summary at the end):

* ``job_cpu_per_session_seconds``: median over sessions of the summed ``cpu_time`` of the
  session's jobs (their benchmark files ``results/benchmarks/sub-*/ses-*/<rule>.tsv``;
  Snakemake samples a job's CPU time every 0.5 s, so for second-long jobs this is a lower
  bound); ``job_wall_per_session_seconds`` the same for wall ``s``; ``job_cpu_<rule>_seconds``
  the median per rule;
* ``job_cpu_logged_per_session_seconds``: the summed CPU time each per-session job logs
  at its end (``process CPU <s> s`` in ``results/logs/sub-*/ses-*/<rule>.log``,
  dce.io.jobs.process_cpu_text: interpreter start, imports and work of the job's Python
  process, not sampled; the interpreter's exit and the shell Snakemake starts it from come
  after or outside it, so it can be a little below ``cpu_time``), median over sessions,
  every per-session rule (provenance too); ``job_cpu_logged_chain_per_session_seconds``
  the same over the rules every session runs (``chain_rules``: convert, kinetics, roi,
  provenance) and ``job_cpu_logged_followup_extra_seconds`` what a follow-up session
  adds (registration to its baseline, PRM; median over follow-ups);
  ``job_cpu_logged_<rule>_seconds`` per rule;
* ``results_mb_per_session``: everything the run leaves in ``results/`` (session folders,
  logs, benchmarks, cohort analysis, provenance; apparent file sizes, MB = 10^6 bytes)
  divided by the sessions; ``session_folder_mb_median``: the median session folder alone;
  ``size_<what>_mb``: median size per session of each output kind (``<what>`` of
  ``sub-<s>_ses-<t>_<what>.<ext>``, NIfTI and its JSON sidecar together);
* ``workflow_wall_seconds``: wall time of the whole ``snakemake`` run (demo generation,
  every session, the cohort analysis; no installation), ``sessions``, ``jobs``,
  ``failed_jobs``, ``dicom_files_per_session`` and the load average before the run.

Run (on 2 cores about 20 min idle, an hour under heavy load):
``python benchmarks/bench_workflow.py --work /tmp/bench_workflow``
(``--sizes demo`` or ``--demo-patients 2`` for a quicker check; ``--configfile extra.yaml``
adds a configuration overlay to every run, e.g. ``outputs: {map_significant_bits: 12}``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cohort_scale import (  # a sibling script, not a package
    failed_rules,
    fmt,
    run_measured,
    session_benchmarks,
    snakemake_cmd,
    write_yaml,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dce.io.jobs import PROCESS_CPU_PREFIX  # noqa: E402  (the repository's package)

CONFIG = REPO / "config" / "config.yaml"
#: name -> (matrix, phases, cohort analysis)
SIZES: dict[str, tuple[list[int], int, bool]] = {
    "demo": ([96, 96, 10], 60, True),
    "clinical": ([256, 256, 12], 60, False),
}
_NAME = re.compile(r"^sub-[A-Za-z0-9]+_ses-[A-Za-z0-9]+_(.+?)\.(nii\.gz|nii|json|tsv|png)$")


def tree_bytes(root: Path) -> int:
    """Summed apparent size (bytes) of the files under ``root``."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


_CPU = re.compile(rf": done in [0-9.]+ s \({PROCESS_CPU_PREFIX} ([0-9.]+) s\)")


def logged_cpu(results: Path) -> pd.DataFrame:
    """CPU seconds each per-session job logged at its end: columns subject, session, rule,
    cpu (jobs whose log has no such line, e.g. failed ones, are left out)."""
    rows: list[dict[str, Any]] = []
    for p in sorted((results / "logs").glob("sub-*/ses-*/*.log")):
        m = _CPU.search(p.read_text(encoding="utf-8", errors="replace"))
        if m:
            rows.append({"subject": p.parts[-3].removeprefix("sub-"),
                         "session": p.parts[-2].removeprefix("ses-"), "rule": p.stem,
                         "cpu": float(m.group(1))})
    return pd.DataFrame(rows, columns=["subject", "session", "rule", "cpu"])


def output_sizes(results: Path) -> pd.DataFrame:
    """Bytes per session and output kind: columns subject, session, what, bytes."""
    rows: list[dict[str, Any]] = []
    for ses_dir in sorted(results.glob("sub-*/ses-*")):
        per: dict[str, int] = defaultdict(int)
        for p in ses_dir.iterdir():
            m = _NAME.match(p.name)
            per[m.group(1) if m else p.name] += p.stat().st_size
        for what, n in per.items():
            rows.append({"subject": ses_dir.parent.name[4:], "session": ses_dir.name[4:],
                         "what": what, "bytes": n})
    return pd.DataFrame(rows, columns=["subject", "session", "what", "bytes"])


def measure(name: str, work: Path, n_patients: int, cores: int,
            extra_config: list[Path] | None = None) -> dict[str, Any]:
    """Generate and process the demo cohort at size ``name``; its key=value row."""
    matrix, phases, cohort = SIZES[name]
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    overlay = write_yaml(work / "size.yaml", {
        "demo": {"enabled": True, "n_patients": n_patients, "matrix": matrix,
                 "n_phases": phases},
        "cohort": {"enabled": cohort}})
    row: dict[str, Any] = {"size": f"{'x'.join(map(str, matrix))}x{phases}",
                           "patients": n_patients, "cohort_analysis": cohort,
                           "load_before": round(os.getloadavg()[0], 2)}
    m = run_measured(snakemake_cmd(work, [CONFIG, overlay, *(extra_config or [])],
                                   cores=cores),
                     work / "snakemake.log")
    steps = re.findall(r"(\d+) of (\d+) steps", m.output)
    results = work / "results"
    sessions = pd.read_csv(work / "demo" / "sessions.tsv", sep="\t")
    long = session_benchmarks(results)
    per = long.groupby(["subject", "session"]).agg(cpu=("cpu_time", "sum"), s=("s", "sum"))
    sizes = output_sizes(results)
    folder = sizes.groupby(["subject", "session"])["bytes"].sum()
    dicom = [sum(1 for p in (work / "demo" / str(d)).rglob("*") if p.is_file())
             for d in sessions["dicom_dir"]]
    n_ses = len(sessions)
    row.update(
        sessions=n_ses, returncode=m.returncode, failed_jobs=len(failed_rules(m.output)),
        jobs=int(steps[-1][1]) if steps else 0,
        dicom_files_per_session=int(np.median(dicom)),
        workflow_wall_seconds=m.wall_s, run_cpu_seconds=m.cpu_s,
        sessions_benchmarked=len(per),
        job_cpu_per_session_seconds=float(per["cpu"].median()),
        job_wall_per_session_seconds=float(per["s"].median()),
        results_mb_per_session=tree_bytes(results) / 1e6 / n_ses,
        session_folder_mb_median=float(folder.median()) / 1e6,
        load_after=round(os.getloadavg()[0], 2))
    for rule, g in long.groupby("rule"):
        row[f"job_cpu_{rule}_seconds"] = float(g["cpu_time"].median())
    logged = logged_cpu(results)
    per_ses = logged.groupby(["subject", "session"])
    row["job_cpu_logged_per_session_seconds"] = (
        float(per_ses["cpu"].sum().median()) if len(logged) else float("nan"))
    # the chain every session runs vs what a follow-up adds (registration, PRM)
    rules = per_ses["rule"].agg(frozenset)
    common = frozenset.intersection(*rules) if len(rules) else frozenset()
    chain = logged[logged["rule"].isin(common)]
    extra = logged[~logged["rule"].isin(common)]
    row["chain_rules"] = "+".join(sorted(common))
    row["job_cpu_logged_chain_per_session_seconds"] = (
        float(chain.groupby(["subject", "session"])["cpu"].sum().median()) if len(chain)
        else float("nan"))
    row["job_cpu_logged_followup_extra_seconds"] = (
        float(extra.groupby(["subject", "session"])["cpu"].sum().median()) if len(extra)
        else float("nan"))
    for rule, g in logged.groupby("rule"):
        row[f"job_cpu_logged_{rule}_seconds"] = float(g["cpu"].median())
    med = sizes.groupby("what")["bytes"].median().sort_values(ascending=False) / 1e6
    for what, mb in med.items():
        row[f"size_{what}_mb"] = float(mb)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--demo-patients", type=int, default=10)
    ap.add_argument("--clinical-patients", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/dce_bench_workflow"),
                    help="scratch folder; <work>/<size> is emptied and reused")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--configfile", type=Path, nargs="*", default=[],
                    help="further configuration overlays (after the size overlay)")
    args = ap.parse_args()
    patients = {"demo": args.demo_patients, "clinical": args.clinical_patients}
    summary: list[tuple[str, Any]] = []
    for name in args.sizes:
        row = measure(name, args.work / name, patients[name], args.cores,
                      [p.resolve() for p in args.configfile])
        print(f"# size={name} ({args.work / name})")
        for k, v in row.items():
            print(f"{k}={fmt(v)}")
        sys.stdout.flush()
        for key in ("job_cpu_per_session_seconds", "job_cpu_logged_per_session_seconds",
                    "job_cpu_logged_chain_per_session_seconds",
                    "job_cpu_logged_followup_extra_seconds",
                    "results_mb_per_session",
                    "workflow_wall_seconds", "sessions", "failed_jobs"):
            summary.append((f"{key}_{row['size']}", row[key]))
    print("# summary")
    for k, v in summary:
        print(f"{k}={fmt(v)}")


if __name__ == "__main__":
    main()
