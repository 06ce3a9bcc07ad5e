"""Table and figure files of the workflow: the session and lesion sheets (one parser for
the workflow and the cohort analysis), TSV readers, atomic text and figure writers.

Used by :mod:`dce.cohort` and the ``cohort_*`` rule scripts (file I/O stays in
:mod:`dce.io`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from dce.io._atomic import atomic_path
from dce.io.jobs import save_figure_formats  # re-exported: its home is dce.io.jobs

__all__ = [
    "SHEET_COLUMNS",
    "SheetError",
    "check_unique",
    "read_lesion_sheet",
    "read_sheet",
    "read_sheets",
    "read_tsv",
    "save_figure_formats",
    "table_text",
    "write_table",
    "write_text",
]


def read_tsv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A TSV written by the workflow (``n/a`` = missing); identifiers as strings."""
    return pd.read_csv(path, sep="\t", dtype={"subject": str, "session": str, "level": str},
                       na_values=["n/a", "NA", ""], keep_default_na=False)


class SheetError(ValueError):
    """A session or lesion sheet that cannot be used; the message starts with its path."""

    def __init__(self, path: str | os.PathLike[str], msg: str) -> None:
        super().__init__(f"{path}: {msg}")


#: Typed columns of each sheet: name -> (integer, required). Every other column stays a
#: stripped string (empty = missing); a typed column, when present, must hold numbers
#: (whole numbers if integer) in every row, or in the filled rows if not required.
SHEET_COLUMNS: dict[str, dict[str, tuple[bool, bool]]] = {
    "sessions": {"days_from_rt": (False, True), "hematocrit": (False, False)},
    "lesions": {"lesion": (True, True), "recurrence": (True, False),
                "recurrence_day": (False, False), "treated": (True, False)},
}
#: Columns identifying a row of each sheet (listed at most once).
SHEET_KEYS: dict[str, tuple[str, str]] = {
    "sessions": ("subject", "session"),
    "lesions": ("subject", "lesion"),
}


def table_text(df: pd.DataFrame) -> str:
    """The TSV text of a table as the package writes it: a header row, no index, floats
    with 6 significant digits (``%.6g``), missing values as empty cells."""
    return df.to_csv(sep="\t", index=False, na_rep="", float_format="%.6g")


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write :func:`table_text` of ``df`` atomically (e.g. a session or lesion sheet)."""
    write_text(table_text(df), path)


def _read_strings(path: str | os.PathLike[str], text: str | None = None) -> pd.DataFrame:
    if text is None and not os.path.exists(path):
        raise SheetError(path, "sheet not found (config: sessions/lesions)")
    try:
        df = pd.read_csv(path if text is None else io.StringIO(text), sep="\t", dtype=str,
                         keep_default_na=False)
    except Exception as exc:  # any parse error, reported with the file name
        raise SheetError(path, f"cannot read as a tab-separated table ({exc})") from None
    df.columns = [c.strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())


def _coerce_numeric(df: pd.DataFrame, col: str, path: str | os.PathLike[str],
                    integer: bool, required: bool) -> None:
    raw = df[col]
    empty = raw == ""
    num = pd.to_numeric(raw.where(~empty), errors="coerce")
    bad = num.isna() & ~empty
    if bad.any() or (required and empty.any()):
        row = int((bad | (empty if required else False)).to_numpy().nonzero()[0][0])
        raise SheetError(
            path, f"row {row + 2}: column {col!r} must be a number, got {raw.iloc[row]!r}")
    if integer:
        whole = num.dropna() == num.dropna().round()
        if not whole.all():
            raise SheetError(path, f"column {col!r} must hold whole numbers")
        df[col] = num.astype("Int64")
    else:
        df[col] = num


def read_sheet(path: str | os.PathLike[str], kind: str, text: str | None = None
               ) -> pd.DataFrame:
    """A session (``kind="sessions"``) or lesion (``"lesions"``) sheet: a tab-separated
    table with a header row; column names and cells stripped of surrounding blanks.

    The columns of :data:`SHEET_COLUMNS` (when present) are numbers: ``days_from_rt``
    (days), ``hematocrit`` (fraction), ``recurrence_day`` (days) as float64, ``lesion``
    (ROI label), ``recurrence`` and ``treated`` (0/1) as nullable Int64; empty = missing where the
    column is optional. Every other column is a string. Raises :class:`SheetError` naming
    the file (and the row and column) when the file is missing, is not a table, or holds
    a non-number in a numeric column. ``text``: the sheet's contents, read instead of the
    file (``path`` then only names it in messages).
    """
    df = _read_strings(path, text)
    for col, (integer, required) in SHEET_COLUMNS[kind].items():
        if col in df.columns:
            _coerce_numeric(df, col, path, integer, required)
    return df


def check_unique(df: pd.DataFrame, kind: str, path: str | os.PathLike[str]) -> None:
    """Raise :class:`SheetError` if a session (subject, session) or a lesion (subject,
    lesion) is listed more than once."""
    dup = df.duplicated(list(SHEET_KEYS[kind]))
    if dup.any():
        r = df[dup].iloc[0]
        what = (f"session {r.subject}/{r.session} is listed more than once"
                if kind == "sessions" else
                f"lesion {r.lesion} of subject {r.subject} is listed twice")
        raise SheetError(path, what)


def read_sheets(sessions_path: str | os.PathLike[str], lesions_path: str | os.PathLike[str],
                *, path_columns: Sequence[str] = (),
                validate: Callable[[pd.DataFrame, str, str | os.PathLike[str]], None]
                | None = None,
                design: tuple[pd.DataFrame, pd.DataFrame] | None = None,
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The session and lesion sheets of a cohort, read (:func:`read_sheet`) and checked.

    Parameters
    ----------
    sessions_path, lesions_path : path-like
        The two sheets.
    path_columns : sequence of str
        Session-sheet columns holding paths; present ones are resolved against the
        session sheet's folder (normalised; empty cells stay empty).
    validate : callable, optional
        ``validate(df, kind, path)``, called on each sheet after reading and before the
        uniqueness check (e.g. a JSON-schema validation that fills defaults in place).
    design : (sessions, lesions) DataFrames, optional
        The sheets' contents before they are written (e.g. the demo cohort,
        :func:`dce.phantom.cohort_sheets`): read as if :func:`write_table` had written
        them to the two paths (the same rounding and types), without touching the files.

    Returns
    -------
    sessions, lesions : pandas.DataFrame
        Sessions indexed by (subject, session), the columns kept; lesions in file order.

    Raises
    ------
    SheetError
        A sheet cannot be read or a numeric column holds text (:func:`read_sheet`), a row
        is listed twice, or a subject of the session sheet has no lesion.
    """
    texts = (None, None) if design is None else (table_text(design[0]), table_text(design[1]))
    ses_df = read_sheet(sessions_path, "sessions", texts[0])
    if validate is not None:
        validate(ses_df, "sessions", sessions_path)
    check_unique(ses_df, "sessions", sessions_path)
    les_df = read_sheet(lesions_path, "lesions", texts[1])
    if validate is not None:
        validate(les_df, "lesions", lesions_path)
    check_unique(les_df, "lesions", lesions_path)
    missing = sorted(set(ses_df["subject"]) - set(les_df["subject"]))
    if missing:
        raise SheetError(lesions_path, f"no lesion listed for subject(s) "
                                       f"{', '.join(missing)} of {sessions_path}")
    base = Path(sessions_path).parent
    for col in path_columns:
        if col in ses_df.columns:
            ses_df[col] = ["" if v == "" else os.path.normpath(base / v) for v in ses_df[col]]
    return ses_df.set_index(["subject", "session"], drop=False), les_df


def read_lesion_sheet(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The lesion sheet for the cohort analysis (:func:`read_sheet`, then every column
    but ``subject``, ``lesion`` and ``level`` as float64 where all its filled cells are
    numbers, e.g. endpoint columns 0/1; ``lesion`` as int64; ``n/a``, ``NA`` and empty =
    missing in the untyped columns)."""
    df = read_sheet(path, "lesions")
    df["lesion"] = df["lesion"].astype("int64")
    for c in df.columns:
        if c in ("subject", "lesion", "level"):
            continue
        if c in SHEET_COLUMNS["lesions"]:
            df[c] = df[c].astype("float64")
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
