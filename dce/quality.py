"""Quality flags that travel with the numbers: per ROI row, per change row, per cohort.

A number measured on a session whose pre-contrast T1 (T10) is the configured constant,
whose arterial input function is a population curve instead of the measured aorta, or
on a lesion where many voxel fits failed, is less trustworthy than the others. The roi
rule marks such rows of ``sub-<s>_ses-<t>_roi.tsv`` with the columns

``qc_t10_source``
    ``vfa`` (fitted from the variable-flip-angle series) or ``fixed`` (the constant
    ``t1.fallback_t10_s``), from the ``Source`` of the ``_T1map.json`` sidecar;
``qc_aif_source``
    ``source`` of the AIF QC record ``_aif.json``: ``aorta`` (measured) or the
    population curve used instead (``parker``, ``georgiou``, ...);
``qc_aif_passed``
    ``passed`` of the AIF QC record: whether the measured aortic AIF passed its QC;
``qc_flags``
    the codes of :data:`FLAG_CODES` that apply, separated by ``;`` (empty: none).

The cohort analysis carries ``qc_flags`` into the cohort table (per lesion session) and
the change table (the union of the baseline's and the follow-up's flags), and leaves out
the rows carrying any code listed in ``cohort.exclude_flags`` from the predictors, ROC,
predictions and pre/post statistics (:func:`excluded`, :func:`exclusion_counts`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = [
    "FLAG_CODES",
    "MAX_FIT_FAILED_FRACTION",
    "QC_COLUMNS",
    "SessionQuality",
    "add_quality_columns",
    "check_codes",
    "excluded",
    "exclusion_counts",
    "flag_counts",
    "flags_footnote",
    "join_flags",
    "roi_flags",
    "split_flags",
    "union_flags",
]

#: Default threshold of the ``fit_failed_fraction`` code: a ROI is flagged when more
#: than this fraction of its voxels failed the tracer-kinetic fit (status not in
#: dce.fit.STATUS_USABLE: outside the mask, NaN curve, a parameter at its bound).
MAX_FIT_FAILED_FRACTION = 0.25

#: Flag codes (in the order they are written) and what each means.
FLAG_CODES: dict[str, str] = {
    "t10_fixed": "T10 is the fixed constant t1.fallback_t10_s (no VFA series), not a "
                 "measured T1 map",
    "aif_fallback": "the AIF is a population curve (aif.fallback after a failed QC, or "
                    "aif.mode: population), not the measured aorta",
    "aif_qc_failed": "the automatic aortic AIF failed its QC (aif.qc thresholds)",
    "fit_failed_fraction": "more than the threshold fraction (cohort."
                           "max_fit_failed_fraction, default 0.25) of the ROI's voxels "
                           "failed the tracer-kinetic fit",
}

#: Columns added to the per-session ROI tables.
QC_COLUMNS = ("qc_t10_source", "qc_aif_source", "qc_aif_passed", "qc_flags")

_SEP = ";"


# --------------------------------------------------------------------------- codes


def check_codes(codes: Iterable[str], what: str = "flags") -> tuple[str, ...]:
    """The codes as a tuple; a code not in :data:`FLAG_CODES` raises ValueError."""
    out = tuple(str(c) for c in codes)
    bad = [c for c in out if c not in FLAG_CODES]
    if bad:
        raise ValueError(f"{what}: unknown quality flag(s) {', '.join(bad)} (known: "
                         f"{', '.join(FLAG_CODES)})")
    return out


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    try:
        return isinstance(v, float) and math.isnan(v)
    except TypeError:  # pragma: no cover
        return False


def split_flags(value: Any) -> list[str]:
    """The codes of a ``qc_flags`` cell (``""``, NaN and None: none)."""
    if _missing(value):
        return []
    return [c.strip() for c in str(value).split(_SEP) if c.strip()]


def join_flags(codes: Iterable[str]) -> str:
    """A ``qc_flags`` cell: the distinct codes in the order of :data:`FLAG_CODES`
    (unknown codes after them, sorted), joined by ``;``; ``""`` for none."""
    uniq = set(codes)
    known = [c for c in FLAG_CODES if c in uniq]
    return _SEP.join(known + sorted(uniq - set(known)))


def union_flags(*values: Any) -> str:
    """The union of several ``qc_flags`` cells (e.g. a baseline's and a follow-up's)."""
    return join_flags(c for v in values for c in split_flags(v))


# --------------------------------------------------------------------------- per session / ROI


@dataclass(frozen=True)
class SessionQuality:
    """What a session's T10 map and AIF were made from (see the module notes)."""

    t10_source: str
    aif_source: str
    aif_passed: bool
    aif_fallback_used: bool = False

    @classmethod
    def from_records(cls, t1_sidecar: Mapping[str, Any], aif_qc: Mapping[str, Any],
                     name: str = "") -> SessionQuality:
        """From the ``_T1map.json`` sidecar and the AIF QC record ``_aif.json``
        (``name``: for messages)."""
        where = f"{name}: " if name else ""
        src = t1_sidecar.get("Source")
        if not src:
            raise ValueError(f"{where}the T1 map sidecar has no 'Source' (VFA or fixed)")
        for key in ("source", "passed"):
            if key not in aif_qc:
                raise ValueError(f"{where}the AIF QC record has no {key!r}")
        return cls(t10_source=str(src).strip().lower(),
                   aif_source=str(aif_qc["source"]).strip().lower(),
                   aif_passed=bool(aif_qc["passed"]),
                   aif_fallback_used=bool(aif_qc.get("fallback_used", False)))

    def flags(self) -> list[str]:
        """The session-level codes: ``t10_fixed``, ``aif_fallback``, ``aif_qc_failed``."""
        out = []
        if self.t10_source != "vfa":
            out.append("t10_fixed")
        if self.aif_source != "aorta" or self.aif_fallback_used:
            out.append("aif_fallback")
        if not self.aif_passed:
            out.append("aif_qc_failed")
        return out


def roi_flags(fit_failed_fraction: Any,
              max_fit_failed_fraction: float = MAX_FIT_FAILED_FRACTION) -> list[str]:
    """``["fit_failed_fraction"]`` when the ROI's failed-fit fraction exceeds the
    threshold (strictly), else ``[]`` (also for a missing fraction)."""
    if _missing(fit_failed_fraction):
        return []
    return ["fit_failed_fraction"] if float(fit_failed_fraction) > max_fit_failed_fraction \
        else []


def add_quality_columns(table: pd.DataFrame, quality: SessionQuality, *,
                        max_fit_failed_fraction: float = MAX_FIT_FAILED_FRACTION
                        ) -> pd.DataFrame:
    """A copy of a per-session ROI table with :data:`QC_COLUMNS` appended; the
    ``fit_failed_fraction`` code comes from the table's ``fit_failed_fraction`` column
    (absent: never set)."""
    if not 0.0 <= max_fit_failed_fraction <= 1.0:
        raise ValueError(f"max_fit_failed_fraction must be in [0, 1], got "
                         f"{max_fit_failed_fraction}")
    out = table.copy()
    session = quality.flags()
    frac = out["fit_failed_fraction"] if "fit_failed_fraction" in out else \
        pd.Series([float("nan")] * len(out), index=out.index)
    out["qc_t10_source"] = quality.t10_source
    out["qc_aif_source"] = quality.aif_source
    out["qc_aif_passed"] = bool(quality.aif_passed)
    out["qc_flags"] = [join_flags(session + roi_flags(f, max_fit_failed_fraction))
                       for f in frac]
    return out


# --------------------------------------------------------------------------- cohort


def excluded(df: pd.DataFrame, exclude_flags: Iterable[str],
             column: str = "qc_flags") -> pd.Series:
    """Boolean mask of the rows carrying any of ``exclude_flags`` (all False when the
    list is empty or the table has no ``column``)."""
    codes = set(exclude_flags)
    if not codes or column not in df.columns:
        return pd.Series(False, index=df.index, dtype=bool)
    return df[column].map(lambda v: bool(codes & set(split_flags(v)))).astype(bool)


def flag_counts(df: pd.DataFrame, column: str = "qc_flags") -> dict[str, int]:
    """Rows carrying each code (every code of :data:`FLAG_CODES`, 0 if none)."""
    out = dict.fromkeys(FLAG_CODES, 0)
    if column in df.columns:
        for v in df[column]:
            for c in split_flags(v):
                out[c] = out.get(c, 0) + 1
    return out


def exclusion_counts(cohort: pd.DataFrame, changes: pd.DataFrame,
                     exclude_flags: Iterable[str]) -> dict[str, int]:
    """How many rows ``exclude_flags`` removes: ``lesion_sessions`` (of
    ``n_lesion_sessions``, cohort table), ``followups`` (of ``n_followups``, change
    table) and ``lesions`` (lesions with at least one excluded session)."""
    codes = tuple(exclude_flags)
    m_c = excluded(cohort, codes)
    m_f = excluded(changes, codes)
    les = set()
    for df, m in ((cohort, m_c), (changes, m_f)):
        if {"subject", "lesion"} <= set(df.columns) and m.any():
            les |= set(zip(df.loc[m, "subject"].astype(str), df.loc[m, "lesion"],
                           strict=True))
    return {"lesion_sessions": int(m_c.sum()), "n_lesion_sessions": len(cohort),
            "followups": int(m_f.sum()), "n_followups": len(changes), "lesions": len(les)}


def flags_footnote(exclude_flags: Iterable[str] = (), counts: Mapping[str, int] | None = None,
                   *, legend: bool = True,
                   max_fit_failed_fraction: float = MAX_FIT_FAILED_FRACTION) -> str:
    """The footnote of the cohort tables: what each code means (``legend``) and what
    ``cohort.exclude_flags`` left out (``counts`` from :func:`exclusion_counts`)."""
    parts = []
    if legend:
        items = []
        for code, text in FLAG_CODES.items():
            if code == "fit_failed_fraction":
                text = (f"more than {max_fit_failed_fraction:g} of the ROI's voxels failed "
                        f"the tracer-kinetic fit (cohort.max_fit_failed_fraction)")
            items.append(f"{code} = {text}")
        parts.append("QC flags: " + "; ".join(items) + ".")
    codes = tuple(exclude_flags)
    if not codes:
        parts.append("cohort.exclude_flags is empty: no row was excluded.")
    else:
        c = dict(counts or {})
        parts.append(
            f"Excluded by cohort.exclude_flags ({', '.join(codes)}): "
            f"{c.get('lesion_sessions', 0)} of {c.get('n_lesion_sessions', 0)} lesion "
            f"sessions and {c.get('followups', 0)} of {c.get('n_followups', 0)} follow-up "
            f"changes ({c.get('lesions', 0)} lesion(s) affected); they are kept in the "
            f"cohort and change tables but not used by the predictors, ROC, predictions "
            f"and pre/post statistics.")
    return " ".join(parts)
