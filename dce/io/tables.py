"""Table and figure files of the workflow: TSV readers, atomic text and figure writers.

Used by :mod:`dce.cohort` and the ``cohort_*`` rule scripts (file I/O stays in
:mod:`dce.io`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

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
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_figure_formats(fig: Figure, paths: Sequence[str | os.PathLike[str]],
                        dpi: int = 130) -> None:
    """Save a figure in every format of ``paths`` (by suffix) atomically, then close."""
    try:
        for path in paths:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp{p.suffix}")
            try:
                fig.savefig(tmp, dpi=dpi)
                os.replace(tmp, p)
            finally:
                if tmp.exists():
                    tmp.unlink()
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
