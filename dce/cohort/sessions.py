"""Which sessions the cohort analysis uses: the sheets checked against the cohort
configuration before any per-session work, and the sessions left out after failures.

:func:`check_sheets` is run by the workflow when it reads the sheets (parse time), so a
``cohort.baseline_session`` that no session has, an endpoint or event-day column missing
from the lesion sheet, or a predictor measured at a session nobody has fails in seconds
with what to change, not after the per-session work.

:func:`session_exclusions` decides, after a run in which some sessions failed, which
sessions the cohort analysis still uses: those that completed without an error, minus
the sessions of a subject whose baseline session is excluded (no change from baseline can
be computed for them); every other session is listed with its reason (the error message
of the failed job: rule, file and problem).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from dce.cohort.config import CohortConfig

__all__ = ["EXCLUSION_COLUMNS", "analysed_note", "check_sheets", "session_exclusions"]

#: Columns of the exclusions table (``cohort/exclusions.tsv``).
EXCLUSION_COLUMNS = ("subject", "session", "rule", "reason")

#: Reason of a session that did not complete and left no error record.
NOT_COMPLETED = ("did not complete and left no error record (the job was stopped, or "
                 "Snakemake failed it before it started): see the Snakemake log")


#: Cells read as "unknown" in an endpoint column (dce.io.tables.read_lesion_sheet).
_EMPTY = ("", "n/a", "NA", "<NA>", "nan")


def _names(values: Iterable[Any]) -> str:
    return ", ".join(sorted({str(v) for v in values}))


def check_sheets(cfg: CohortConfig, sessions: pd.DataFrame, lesions: pd.DataFrame, *,
                 sessions_path: str = "the sessions sheet",
                 lesions_path: str = "the lesion sheet") -> None:
    """Check the sheets against the cohort configuration (no ROI data needed).

    Parameters
    ----------
    cfg : CohortConfig
    sessions : DataFrame
        The session sheet (``subject``, ``session``, ...).
    lesions : DataFrame
        The lesion sheet (``subject``, ``lesion``, endpoint columns, ...).
    sessions_path, lesions_path : str
        Named in the messages.

    Raises
    ------
    ValueError
        Naming the configuration key, the sheet, the column or value, what is
        available, and what to change.
    """
    names = [str(s) for s in sessions["session"]]
    base = cfg.baseline_session
    if base is not None and str(base) not in names:
        raise ValueError(
            f"cohort.baseline_session is {base!r}, but no session of {sessions_path} has "
            f"that name (sessions: {_names(names)}): set cohort.baseline_session to one of "
            "them, or to null to use each lesion's earliest session")
    for e in cfg.endpoints:
        if e.column:   # a contrast of groups of a categorical column
            if e.column not in lesions.columns:
                raise ValueError(
                    f"cohort.endpoints: endpoint {e.name!r} contrasts groups of column "
                    f"{e.column!r}, but {lesions_path} has no such column (columns: "
                    f"{', '.join(map(str, lesions.columns))}): add it or change "
                    "cohort.endpoints")
            values = set(lesions[e.column].astype(str).str.strip())
            absent = [v for v in (*e.positive, *e.negative) if v not in values]
            if len(absent) == len(e.positive) + len(e.negative):
                raise ValueError(
                    f"cohort.endpoints: endpoint {e.name!r}: none of the values "
                    f"{_names(absent)} occurs in column {e.column!r} of {lesions_path} "
                    f"(values: {_names(sorted(values))})")
            continue
        if e.name not in lesions.columns:
            raise ValueError(
                f"cohort.endpoints: no column {e.name!r} in {lesions_path} (columns: "
                f"{', '.join(map(str, lesions.columns))}): add it (1 = event, 0 = none, "
                "empty = unknown, per lesion) or change cohort.endpoints")
        raw = lesions[e.name]
        empty = raw.isna() | raw.astype(str).str.strip().isin(_EMPTY)
        y = pd.to_numeric(raw.where(~empty), errors="coerce")
        bad = ~empty & ~y.isin([0, 1])
        if bad.any():
            raise ValueError(
                f"cohort.endpoints: column {e.name!r} of {lesions_path} must be 0 or 1 "
                f"(empty = unknown); found {_names(raw[bad])}")
        if e.day_column and e.day_column not in lesions.columns:
            raise ValueError(
                f"cohort.endpoints: endpoint {e.name!r} has day_column {e.day_column!r}, "
                f"but {lesions_path} has no such column (columns: "
                f"{', '.join(map(str, lesions.columns))}): add it (days from radiotherapy "
                "of the event) or remove day_column")
    for p in cfg.predictors:
        if p.session in ("first", "last", "baseline"):
            if p.session == "baseline" and p.kind != "value":
                raise ValueError(
                    f"cohort.predictors: predictor {p.name!r} is a {p.kind} at session "
                    "'baseline', which has no change from baseline: use kind value or a "
                    "follow-up session (first, last or a session name)")
            continue
        if p.session not in names:
            raise ValueError(
                f"cohort.predictors: predictor {p.name!r} is measured at session "
                f"{p.session!r}, but no session of {sessions_path} has that name "
                f"(sessions: {_names(names)}): use one of them, or first / last / baseline")


def session_exclusions(sessions: pd.DataFrame, completed: Iterable[tuple[str, str]],
                       records: Sequence[Mapping[str, Any]], baseline_session: str | None
                       ) -> tuple[list[tuple[str, str]], pd.DataFrame]:
    """The sessions the cohort analysis uses, and the exclusions table of the others.

    Parameters
    ----------
    sessions : DataFrame
        The session sheet: ``subject``, ``session``, ``days_from_rt`` (days).
    completed : iterable of (subject, session)
        Sessions whose outputs all exist.
    records : sequence of mapping
        Error records of failed jobs (``subject``, ``session``, ``rule``, ``error``;
        :func:`dce.io.jobs.read_error_records`); records without a session are ignored.
    baseline_session : str or None
        ``cohort.baseline_session``; None: each subject's earliest session.

    Returns
    -------
    analysed : list of (subject, session)
        In the order of the sheet: completed, no error record, and the subject's
        baseline session analysed too.
    exclusions : DataFrame
        :data:`EXCLUSION_COLUMNS`, one row per error record of a session (a session
        that failed twice, e.g. in an earlier run, has two), one row per session that
        did not complete without a record, and one per session left out because its
        subject's baseline is excluded; sorted by subject, session and rule (empty rule
        last).
    """
    keys = [(str(s), str(t)) for s, t in zip(sessions["subject"], sessions["session"],
                                              strict=True)]
    done = {(str(s), str(t)) for s, t in completed}
    rows: list[dict[str, str]] = []
    failed: set[tuple[str, str]] = set()
    known = set(keys)
    for r in records:
        if r.get("subject") is None or r.get("session") is None:
            continue
        key = (str(r["subject"]), str(r["session"]))
        if key in known:
            failed.add(key)
            rows.append({"subject": key[0], "session": key[1], "rule": str(r["rule"]),
                         "reason": str(r["error"])})
    for key in keys:
        if key not in done and key not in failed:
            failed.add(key)
            rows.append({"subject": key[0], "session": key[1], "rule": "",
                         "reason": NOT_COMPLETED})
    days = dict(zip(keys, pd.to_numeric(sessions["days_from_rt"]), strict=True))
    for subject in dict.fromkeys(s for s, _ in keys):
        own = [k for k in keys if k[0] == subject]
        if baseline_session is not None:
            base = [k for k in own if k[1] == str(baseline_session)]
        else:
            base = [min(own, key=lambda k: days[k])]
        if not base or base[0] not in failed:
            continue
        for key in own:
            if key not in failed:
                rows.append({"subject": key[0], "session": key[1], "rule": "",
                             "reason": f"the baseline session {base[0][1]} of subject "
                                       f"{subject} is excluded: no change from baseline"})
        failed.update(own)
    analysed = [k for k in keys if k not in failed]
    table = pd.DataFrame(rows, columns=list(EXCLUSION_COLUMNS))
    if len(table):
        table = table.assign(_last=table["rule"] == "").sort_values(
            ["subject", "session", "_last", "rule"], kind="mergesort").drop(columns="_last")
    return analysed, table.reset_index(drop=True)


def analysed_note(n_analysed: int, n_sessions: int, exclusions: pd.DataFrame) -> str:
    """One sentence for the tables and the report: ``"Sessions analysed: 7 of 9; excluded
    after errors: sub-01 ses-pre (rule convert), ... (cohort/exclusions.tsv)."``; empty
    when nothing is excluded."""
    if exclusions.empty:
        return ""
    seen = dict.fromkeys(
        f"sub-{s} ses-{t}" + (f" (rule {r})" if r else "")
        for s, t, r in zip(exclusions["subject"].astype(str), exclusions["session"].astype(str),
                           exclusions["rule"].astype(str), strict=True))
    return (f"Sessions analysed: {n_analysed} of {n_sessions}; excluded after errors: "
            f"{', '.join(seen)} (reasons in cohort/exclusions.tsv).")
