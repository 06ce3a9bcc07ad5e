"""Table and figure files of the workflow: TSV readers, atomic text and figure writers.

Used by :mod:`dce.cohort` and the ``cohort_*`` rule scripts (file I/O stays in
:mod:`dce.io`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from dce.io._atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["read_lesion_sheet", "read_tsv", "save_figure_formats", "write_text"]


def read_tsv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A TSV written by the workflow (``n/a`` = missing); identifiers as strings."""
    return pd.read_csv(path, sep="\t", dtype={"subject": str, "session": str, "level": str},
                       na_values=["n/a", "NA", ""], keep_default_na=False)


def read_lesion_sheet(path: str | os.PathLike[str]) -> pd.DataFrame:
    """lesions.tsv with ``subject`` as string, ``lesion`` as int and every other column
    numeric where it parses as numbers (empty = missing)."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.strip() for c in df.columns]
    df = df.apply(lambda c: c.str.strip())
    df["lesion"] = pd.to_numeric(df["lesion"]).astype("int64")
    for c in df.columns:
        if c in ("subject", "lesion", "level"):
            continue
        vals = df[c].replace({"": None, "n/a": None, "NA": None})
        num = pd.to_numeric(vals, errors="coerce")
        if (num.notna() | vals.isna()).all():
            df[c] = num.astype("float64")
    return df


def write_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write text atomically (temporary name in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure_formats(fig: Figure, paths: Sequence[str | os.PathLike[str]],
                        dpi: int = 130) -> None:
    """Save a figure in every format of ``paths`` (by suffix) atomically, then close."""
    try:
        for path in paths:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=dpi)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
