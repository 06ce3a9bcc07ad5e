"""Re-exports for the rule scripts not yet importing from the package (not a rule script).

The job plumbing lives in :mod:`dce.io.jobs`.
"""

from __future__ import annotations

import re

from dce.io.jobs import job, save_figure, write_json, write_tsv

__all__ = ["MAPS", "TIC_CODES", "job", "map_info", "save_figure", "write_json", "write_tsv"]

#: Map name in the file names -> (column name with units, display label, display unit).
MAPS: dict[str, tuple[str, str, str]] = {
    "ktrans": ("ktrans_per_min", "Ktrans", "/min"),
    "kep": ("kep_per_min", "kep", "/min"),
    "ve": ("ve", "ve", ""),
    "vp": ("vp", "vp", ""),
    "r2": ("r2", "R²", ""),
    "rmse": ("rmse_mM", "RMSE", "mM"),
    "delay": ("delay_s", "delay", "s"),
    "fitstatus": ("status", "fit status", ""),
    "peakenh": ("peak_enhancement_pct", "peak enhancement", "%"),
    "ttp": ("time_to_peak_s", "time to peak", "s"),
    "washin": ("wash_in_slope_pct_per_s", "wash-in slope", "%/s"),
    "maxslope": ("max_slope_pct_per_s", "max slope", "%/s"),
    "washout": ("washout_pct", "washout", "%"),
    "tictype": ("tic_type_code", "TIC type", "0 none, 1-5 = A-E"),
}


def map_info(name: str) -> tuple[str, str, str]:
    """(column, label, unit) of a map name, including ``iauc<seconds>``."""
    if name in MAPS:
        return MAPS[name]
    m = re.fullmatch(r"iauc(\d+)", name)
    if m:
        return (f"iauc_{m.group(1)}s", f"IAUC {m.group(1)} s", "a.u. s")
    raise KeyError(f"unknown map name {name!r}")

#: TIC type letters and their codes in the ``tictype`` map.
TIC_CODES = {"": 0, "A": 1, "B": 2, "C": 3, "D": 4, "E": 5}
