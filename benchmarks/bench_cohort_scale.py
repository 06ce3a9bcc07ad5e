"""Wall time and per-session cost of the whole workflow versus cohort size.

For each cohort size (``--patients``: demo patients; 10 -> 25 sessions, 40 -> 101 at
seed 0) the synthetic cohort of ``config/scale/config.yaml`` (32 x 32 x 8 voxels, 30
phases) is generated and processed by the whole workflow (``snakemake --cores N`` with the
workflow profile, cohort analysis included unless ``--no-cohort``) in a fresh work
directory ``<work>/p<N>``. Measured per size:

* ``wall_s``: wall time of the run (demo generation, numba warm-up, every session, the
  cohort analysis); ``run_cpu_s``: CPU seconds of snakemake and all its jobs;
  ``scheduler_cpu_s``: CPU seconds of the snakemake process itself (DAG, scheduling,
  benchmark threads; sampled every 0.2 s).
* ``jobs`` and ``failed_jobs`` from the snakemake log.
* From the per-job benchmark files ``results/scale/benchmarks/sub-*/ses-*/<rule>.tsv``:
  per session the sum over its jobs of ``cpu_time`` and of wall ``s``;
  ``cpu_per_session_s`` and ``s_per_session_s`` are the medians over sessions
  (snakemake samples a job's CPU time about once a second, so for these second-long jobs
  ``cpu_time`` is a lower bound; it is biased the same way at every size).
* ``dag_s``: median wall time of ``snakemake -n`` (``--dry-repeats`` runs) on the generated
  cohort with ``demo.enabled: false`` and an empty results folder, i.e. parsing, sheet
  validation with its path checks and the DAG of every job; ``dag_jobs`` the jobs it
  plans.

Sizes in ``--dry-patients`` (default 160 patients, about 400 sessions) are generated
(target ``demo_cohort``) and dry-run only. ``import_cpu_<rule>_s`` is the CPU time of a
bare Python process doing only the imports of the rule's script and of snakemake's script
preamble: the fixed start-up cost of every job of that rule.

Prints ``key=value`` lines per size, the scaling checks (ratios of the per-session costs
of the largest to the smallest full run) and a table; writes one row per size to ``--out``
(TSV); ``--summary-of TSV`` prints the checks and table of such a file again.

Reading the numbers: on a shared machine the per-job CPU times move together by 10-20 %
from run to run, so compare ``cpu_per_session_s`` over repeated runs. ``scheduler_cpu_s``
is not per-session work of this workflow: snakemake's own CPU per job grows with the
number of jobs (also for trivial ``shell: "sleep"`` jobs, with either ``--scheduler``).

Run (about 50 min on 2 cores):
``python benchmarks/bench_cohort_scale.py --work /tmp/cohort_scale --out scale.tsv``
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
OVERLAY = REPO / "config" / "scale" / "config.yaml"
PROFILE = REPO / "profiles" / "default"
SCRIPTS = REPO / "workflow" / "scripts"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
#: what snakemake's preamble of a ``script:`` job imports (and unpickling needs)
PREAMBLE_IMPORTS = ("import pickle\nimport snakemake.logging\nimport snakemake.iocontainers\n"
                    "import snakemake.io\n")
TABLE_COLUMNS = ("sessions", "mode", "jobs", "failed_jobs", "wall_s", "wall_per_session_s",
                 "dag_s", "dag_per_session_s", "cpu_per_session_s", "s_per_session_s",
                 "run_cpu_per_session_s")


@dataclass
class Measured:
    """A finished subprocess: wall and CPU seconds, return code, output."""

    wall_s: float
    cpu_s: float            # the process and all its (waited-for) descendants
    self_cpu_s: float       # the process alone (last 0.2 s sample before it exited)
    returncode: int
    output: str


def run_measured(cmd: list[str], log: Path | None = None) -> Measured:
    """Run ``cmd``, measuring wall time, total CPU time and the process's own CPU time.

    Parameters
    ----------
    cmd : list of str
        Command line.
    log : Path, optional
        File receiving stdout and stderr (else they are only returned).

    Returns
    -------
    Measured
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = log if log is not None else Path(tmp) / "out.log"
        with path.open("w") as fh:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
            ps = psutil.Process(proc.pid)
            self_cpu = 0.0
            while proc.poll() is None:
                try:
                    ct = ps.cpu_times()
                    self_cpu = ct.user + ct.system
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    pass
                time.sleep(0.2)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = path.read_text()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(wall, cpu, self_cpu, proc.returncode, out)


def snakemake_cmd(work: Path, configfiles: list[Path], *extra: str, cores: int = 2,
                  sm_args: tuple[str, ...] = ()) -> list[str]:
    """The snakemake command line of the workflow in ``work`` (workflow profile)."""
    return [str(SNAKEMAKE), *extra, "--snakefile", str(SNAKEFILE), "--directory", str(work),
            "--workflow-profile", str(PROFILE), "--cores", str(cores), *sm_args,
            "--configfile", *(str(c) for c in configfiles)]


def overlay() -> dict[str, Any]:
    """The scale overlay (config/scale/config.yaml)."""
    cfg: dict[str, Any] = yaml.safe_load(OVERLAY.read_text())
    return cfg


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as YAML to ``path``; return ``path``."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def size_config(work: Path, n_patients: int, cohort: bool) -> Path:
    """Overlay of the cohort size (and the cohort switch) in ``work``."""
    return write_yaml(work / "size.yaml", {"demo": {"n_patients": n_patients},
                                           "cohort": {"enabled": cohort}})


def dry_config(work: Path, cohort: bool) -> Path:
    """Overlay for the dry runs: the generated cohort as a real one, empty results."""
    return write_yaml(work / "dry.yaml", {"demo": {"enabled": False},
                                          "results": "results/dryrun",
                                          "cohort": {"enabled": cohort}})


def dry_run(work: Path, configfiles: list[Path], repeats: int, cores: int,
            sm_args: tuple[str, ...] = ()) -> tuple[float, int]:
    """Median wall time of ``snakemake -n`` and the number of jobs it plans."""
    times, n_jobs = [], -1
    for i in range(repeats):
        m = run_measured(snakemake_cmd(work, configfiles, "-n", "--quiet", "rules",
                                       cores=cores, sm_args=sm_args),
                         work / f"dryrun_{i}.log")
        if m.returncode != 0:
            raise RuntimeError(f"dry run failed in {work}:\n{m.output[-3000:]}")
        found = re.findall(r"^total\s+(\d+)\s*$", m.output, flags=re.M)
        n_jobs = int(found[-1]) if found else -1
        times.append(m.wall_s)
    return float(np.median(times)), n_jobs


def read_bench(path: Path) -> dict[str, float]:
    """``s``, ``cpu_time`` and ``max_rss`` of one benchmark file (NaN when "NA")."""
    b = pd.read_csv(path, sep="\t")
    return {k: float(pd.to_numeric(b[k], errors="coerce").iloc[0])
            for k in ("s", "cpu_time", "max_rss")}


def session_benchmarks(results: Path) -> pd.DataFrame:
    """One row per per-session job: subject, session, rule, s, cpu_time, max_rss."""
    rows = []
    for p in sorted((results / "benchmarks").glob("sub-*/ses-*/*.tsv")):
        rows.append({"subject": p.parts[-3].removeprefix("sub-"),
                     "session": p.parts[-2].removeprefix("ses-"), "rule": p.stem,
                     **read_bench(p)})
    return pd.DataFrame(rows, columns=["subject", "session", "rule", "s", "cpu_time",
                                       "max_rss"])


def bench_sum(paths: list[Path]) -> tuple[float, float]:
    """Summed wall and CPU seconds of the benchmark files ``paths``."""
    recs = [read_bench(p) for p in paths]
    return (float(np.nansum([r["s"] for r in recs])),
            float(np.nansum([r["cpu_time"] for r in recs])))


def import_probe(rules: list[str], repeats: int = 3) -> dict[str, float]:
    """CPU seconds of a process doing only a rule script's imports (+ the preamble's)."""
    out: dict[str, float] = {}
    for rule in rules:
        script = SCRIPTS / f"{rule}.py"
        if not script.is_file():
            continue
        tree = ast.parse(script.read_text())
        imports = "\n".join(ast.unparse(n) for n in tree.body
                            if isinstance(n, ast.Import | ast.ImportFrom))
        code = f"import sys\nsys.path.insert(0, {str(SCRIPTS)!r})\n{PREAMBLE_IMPORTS}{imports}\n"
        cpu = []
        for _ in range(repeats):
            m = run_measured([sys.executable, "-c", code])
            if m.returncode != 0:
                raise RuntimeError(f"import probe of {rule} failed:\n{m.output}")
            cpu.append(m.cpu_s)
        out[rule] = float(np.median(cpu))
    return out


def failed_rules(log: str) -> list[str]:
    """Rules of the failed jobs in a snakemake log (one entry per failed job)."""
    return re.findall(r"^Error in rule (\S+):", log, flags=re.M)


def measure_size(n_patients: int, work: Path, *, full: bool, cohort: bool, cores: int,
                 dry_repeats: int, sm_args: tuple[str, ...] = ()
                 ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Generate (and with ``full`` process) one cohort size; its row and job benchmarks."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cfg = overlay()
    results = work / cfg["results"]
    sessions_tsv = work / cfg["sessions"]
    configs = [OVERLAY, size_config(work, n_patients, cohort)]
    row: dict[str, Any] = {"patients": n_patients, "mode": "run" if full else "dry-run",
                           "load_before": round(os.getloadavg()[0], 2)}
    m = run_measured(snakemake_cmd(work, configs, *([] if full else ["demo_cohort"]),
                                   cores=cores, sm_args=sm_args), work / "snakemake.log")
    failed = failed_rules(m.output)
    steps = re.findall(r"(\d+) of (\d+) steps", m.output)
    if not sessions_tsv.is_file():
        raise RuntimeError(f"no cohort generated in {work}:\n{m.output[-3000:]}")
    n_ses = len(pd.read_csv(sessions_tsv, sep="\t"))
    n_les = len(pd.read_csv(work / cfg["lesions"], sep="\t"))
    demo_s, _ = bench_sum([results / "benchmarks" / "demo_cohort.tsv"])
    row.update(sessions=n_ses, lesions=n_les, returncode=m.returncode,
               failed_jobs=len(failed), failed_rules=",".join(sorted(set(failed))),
               demo_s=demo_s)
    if full:
        row.update(jobs=int(steps[-1][1]) if steps else 0,
                   jobs_done=int(steps[-1][0]) if steps else 0)
    long = session_benchmarks(results)
    if full:
        per = long.groupby(["subject", "session"]).agg(cpu=("cpu_time", "sum"),
                                                       s=("s", "sum"))
        cohort_files = sorted((results / "benchmarks" / "cohort").rglob("*.tsv"))
        cohort_s, cohort_cpu = bench_sum(cohort_files)
        row.update(
            wall_s=m.wall_s, wall_per_session_s=m.wall_s / n_ses, run_cpu_s=m.cpu_s,
            run_cpu_per_session_s=m.cpu_s / n_ses, scheduler_cpu_s=m.self_cpu_s,
            scheduler_cpu_per_session_s=m.self_cpu_s / n_ses,
            sessions_benchmarked=len(per), cpu_time_na=int(long["cpu_time"].isna().sum()),
            cpu_per_session_s=float(per["cpu"].median()),
            cpu_per_session_p90_s=float(per["cpu"].quantile(0.9)),
            s_per_session_s=float(per["s"].median()),
            session_jobs_s=float(long["s"].sum()), session_jobs_cpu_s=float(per["cpu"].sum()),
            max_rss_mb=float(long["max_rss"].max()),
            cohort_jobs=len(cohort_files), cohort_s=cohort_s, cohort_cpu_s=cohort_cpu)
        for rule, g in long.groupby("rule"):
            row[f"cpu_{rule}_s"] = float(g["cpu_time"].median())
            row[f"s_{rule}_s"] = float(g["s"].median())
    dag_s, dag_jobs = dry_run(work, [*configs, dry_config(work, cohort)], dry_repeats, cores,
                              sm_args)
    row.update(dag_s=dag_s, dag_jobs=dag_jobs, dag_per_session_s=dag_s / n_ses)
    return row, long


def fmt(v: Any) -> str:
    """A table cell: floats to 4 significant digits."""
    if isinstance(v, float):
        return "nan" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def summarize(table: pd.DataFrame) -> None:
    """Print the scaling checks (``key=value``) and the table of the measured sizes.

    Parameters
    ----------
    table : DataFrame
        One row per cohort size, as written to ``--out``.
    """
    imports = [c for c in table.columns if c.startswith("import_cpu_")]
    import_sum = float(table[imports].iloc[0].sum()) if imports else float("nan")
    print(f"import_cpu_per_session_s={import_sum:.3g}")
    runs = table[table["mode"] == "run"].sort_values("sessions")
    if len(runs) >= 2:
        lo, hi = runs.iloc[0], runs.iloc[-1]
        ratio = hi["cpu_per_session_s"] / lo["cpu_per_session_s"]
        print(f"cpu_per_session_ratio_{hi['sessions']}_vs_{lo['sessions']}={ratio:.3f}")
        print(f"cpu_per_session_within_20pct={abs(ratio - 1) <= 0.2}")
        print(f"cpu_per_session_growth_le_20pct={ratio <= 1.2}")
        sched = hi["scheduler_cpu_per_session_s"] / lo["scheduler_cpu_per_session_s"]
        print(f"scheduler_cpu_per_session_ratio_{hi['sessions']}_vs_{lo['sessions']}="
              f"{sched:.3f}")
        run_cpu = hi["run_cpu_per_session_s"] / lo["run_cpu_per_session_s"]
        print(f"run_cpu_per_session_ratio_{hi['sessions']}_vs_{lo['sessions']}={run_cpu:.3f}")
        s_ratio = hi["s_per_session_s"] / lo["s_per_session_s"]
        print(f"s_per_session_ratio_{hi['sessions']}_vs_{lo['sessions']}={s_ratio:.3f}")
        w_ratio = hi["wall_per_session_s"] / lo["wall_per_session_s"]
        print(f"wall_per_session_ratio_{hi['sessions']}_vs_{lo['sessions']}={w_ratio:.3f}")
    if len(runs):
        print(f"import_share_of_session_cpu="
              f"{import_sum / float(runs['cpu_per_session_s'].median()):.3f}")
    dag = table.sort_values("sessions")
    if len(dag) >= 2:
        slope = np.polyfit(dag["sessions"], dag["dag_s"], 1)
        print(f"dag_marginal_per_session_s={slope[0]:.4g}")
        print(f"dag_fixed_s={slope[1]:.3g}")
        print(f"dag_per_session_ratio_{dag.iloc[-1]['sessions']}_vs_{dag.iloc[0]['sessions']}="
              f"{dag.iloc[-1]['dag_per_session_s'] / dag.iloc[0]['dag_per_session_s']:.3f}")
    print(f"any_failed_jobs={int(table['failed_jobs'].sum()) > 0}")

    print()
    cols = [c for c in TABLE_COLUMNS if c in table.columns]
    shown = table[cols].astype(object).map(fmt)
    widths = {c: max(len(c), *(len(v) for v in shown[c])) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for _, r in shown.iterrows():
        print("  ".join(str(r[c]).rjust(widths[c]) for c in cols))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, nargs="*", default=[10, 40],
                    help="demo patients of the full runs (default 10 40: 25, 101 sessions)")
    ap.add_argument("--dry-patients", type=int, nargs="*", default=[160],
                    help="demo patients generated and dry-run only (default 160)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/dce_cohort_scale"),
                    help="scratch folder; <work>/p<N> is emptied and reused")
    ap.add_argument("--out", type=Path, default=Path("cohort_scale.tsv"))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--dry-repeats", type=int, default=3)
    ap.add_argument("--no-cohort", action="store_true", help="disable the cohort analysis")
    ap.add_argument("--snakemake-args", default="",
                    help='extra snakemake options, e.g. "--scheduler greedy"')
    ap.add_argument("--summary-of", type=Path, metavar="TSV",
                    help="only print the checks and table of a TSV written by --out")
    args = ap.parse_args()
    if args.summary_of is not None:
        summarize(pd.read_csv(args.summary_of, sep="\t"))
        return
    cohort = not args.no_cohort
    sm_args = tuple(shlex.split(args.snakemake_args))

    rows: list[dict[str, Any]] = []
    rules: set[str] = set()
    plan = [(n, True) for n in args.patients] + [(n, False) for n in args.dry_patients]
    for n, full in plan:
        row, long = measure_size(n, args.work / f"p{n}", full=full, cohort=cohort,
                                 cores=args.cores, dry_repeats=args.dry_repeats,
                                 sm_args=sm_args)
        rules |= set(long["rule"])
        row["snakemake_args"] = " ".join(sm_args)
        rows.append(row)
        print(f"# patients={n} ({row['mode']}, {args.work / f'p{n}'})")
        for k, v in row.items():
            print(f"{k}={fmt(v)}")
        sys.stdout.flush()

    probe = import_probe(sorted(rules))
    print("# start-up: CPU s of a process doing only a rule script's imports")
    for rule, cpu in probe.items():
        print(f"import_cpu_{rule}_s={cpu:.3g}")
    table = pd.DataFrame(rows)
    for rule, cpu in probe.items():
        table[f"import_cpu_{rule}_s"] = cpu
    summarize(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, sep="\t", index=False, float_format="%.4g")
    print(f"\nwritten={args.out}")


if __name__ == "__main__":
    main()
