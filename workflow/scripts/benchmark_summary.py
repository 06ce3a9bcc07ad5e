"""Rule benchmark_summary: per-session wall time and peak memory from the benchmark files.

One row per session: the sum of the wall-clock seconds of its jobs (``wall_s``, i.e. the
time one core spends on the session), the largest resident memory of any of its jobs
(``max_rss_mb``), and the seconds of each rule (``<rule>_s``).
"""

from pathlib import Path

import pandas as pd

from dce.io.jobs import job, write_tsv

sm = snakemake  # type: ignore[name-defined]  # noqa: F821

with job(sm) as log:
    rows = []
    for path in sm.input:
        p = Path(path)
        b = pd.read_csv(p, sep="\t")
        rows.append({"subject": p.parts[-3].removeprefix("sub-"),
                     "session": p.parts[-2].removeprefix("ses-"), "rule": p.stem,
                     "s": float(b["s"].iloc[0]), "max_rss_mb": float(b["max_rss"].iloc[0])})
    long = pd.DataFrame(rows)
    per = long.pivot_table(index=["subject", "session"], columns="rule", values="s",
                           aggfunc="first")
    per.columns = [f"{c}_s" for c in per.columns]
    summary = long.groupby(["subject", "session"], sort=False).agg(
        wall_s=("s", "sum"), max_rss_mb=("max_rss_mb", "max")).join(per).reset_index()
    write_tsv(summary, sm.output[0])
    log.info("sessions: %d; wall time per session median %.1f s (max %.1f s); peak memory "
             "median %.0f MB (max %.0f MB)", len(summary), summary["wall_s"].median(),
             summary["wall_s"].max(), summary["max_rss_mb"].median(),
             summary["max_rss_mb"].max())
