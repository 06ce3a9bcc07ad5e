"""Run the whole workflow on the synthetic demo cohort (the ``make demo`` entry point).

Not a rule script: a command-line wrapper around ``snakemake`` in the repository root.
With the default configuration (``config/config.yaml``, ``demo.enabled: true``) the
workflow first writes the demo cohort (DICOM, ROIs, sheets, ground truth) into ``demo/``,
then runs every per-session step; the workflow profile ``profiles/default`` sets the
cores and resources. Re-running does only what is missing or out of date.

Usage::

    python workflow/scripts/demo_fit.py [--out RESULTS_DIR] [snakemake options ...]

``--out`` sets the results folder (config key ``results``, default ``results``); any
other option is passed to snakemake (e.g. ``-n`` for a dry run, ``--cores 4``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, metavar="RESULTS_DIR",
                    help="results folder (default: the config's 'results', i.e. results)")
    args, rest = ap.parse_known_args(argv)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(REPO)]
    if args.out:
        out = Path(args.out)
        rel = out.resolve().relative_to(REPO) if out.resolve().is_relative_to(REPO) else out
        cmd += ["--config", f"results={rel.as_posix()}"]
    cmd += rest
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=REPO)


if __name__ == "__main__":
    sys.exit(main())
