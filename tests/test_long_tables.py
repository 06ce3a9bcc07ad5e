"""The long-format ROI tables (dce.roi.long_roi_table, cohort_long_table): one row per
ROI, map and statistic (subject, session, roi, label, map, statistic, value, unit).

Unit layer: a hand-written wide table and its expected rows; a table with every map and
statistic round-trips (pivot equals wide). Workflow layer: the files the roi rule and the
cohort_table rule write next to the wide tables round-trip exactly, as read from disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from wfutil import RESULTS, sessions_sheet

from dce.io.tables import read_tsv
from dce.registry import FIT_STATUS_MAP, output_map, roi_map_names
from dce.roi import (
    LONG_COLUMNS,
    MAP_STATISTICS,
    cohort_long_table,
    long_roi_table,
    map_statistic_columns,
)

KEYS = ["subject", "session", "roi", "label"]


def pivot_to_wide(long: pd.DataFrame) -> pd.DataFrame:
    """The wide map-statistic columns rebuilt from the long table (rows in first-seen
    order, marrow's missing label as -1)."""
    df = long.assign(label=long["label"].astype("Int64").fillna(-1),
                     column=[f"{output_map(m).column}_{s}"
                             for m, s in zip(long["map"], long["statistic"], strict=True)])
    wide = df.pivot(index=KEYS, columns="column", values="value")
    order = list(dict.fromkeys(map(tuple, df[KEYS].to_numpy().tolist())))
    return wide.loc[order, list(dict.fromkeys(df["column"]))].reset_index()


def assert_round_trip(wide: pd.DataFrame, long: pd.DataFrame) -> int:
    assert list(long.columns) == list(LONG_COLUMNS)
    cols = [c for c, _, _ in map_statistic_columns(wide.columns)]
    back = pivot_to_wide(long)
    expected = wide[KEYS + cols].assign(label=wide["label"].astype("Int64").fillna(-1))
    pd.testing.assert_frame_equal(back[KEYS + cols].reset_index(drop=True),
                                  expected.reset_index(drop=True), check_dtype=False,
                                  check_exact=True, check_names=False)
    assert len(long) == len(wide) * len(cols)
    return len(cols)


def test_hand_written_table() -> None:
    wide = pd.DataFrame({
        "subject": ["P01", "P01"], "session": ["pre", "pre"], "roi": ["lesion", "marrow"],
        "label": pd.array([2, pd.NA], dtype="Int64"), "n_voxels": [10, 50],
        "ktrans_per_min_mean": [0.12, 0.01], "ktrans_per_min_n_finite": [9, 50],
        "vp_p95": [0.08, np.nan], "iauc_60s_max": [310.0, 40.0],
        "rslope_max": [1.9, np.nan], "tic_iauc_60s": [100.0, 20.0],
        "fit_failed_fraction": [0.1, 0.0], "normalized_peak_enhancement": [2.0, 1.0]})
    long = long_roi_table(wide)
    rows = [tuple(r) for r in long.astype(object).where(long.notna(), None).to_numpy()]
    assert rows == [
        ("P01", "pre", "lesion", 2, "ktrans", "mean", 0.12, "/min"),
        ("P01", "pre", "lesion", 2, "ktrans", "n_finite", 9.0, "voxels"),
        ("P01", "pre", "lesion", 2, "vp", "p95", 0.08, ""),
        ("P01", "pre", "lesion", 2, "iauc60", "max", 310.0, "a.u. s"),
        ("P01", "pre", "marrow", None, "ktrans", "mean", 0.01, "/min"),
        ("P01", "pre", "marrow", None, "ktrans", "n_finite", 50.0, "voxels"),
        ("P01", "pre", "marrow", None, "vp", "p95", None, ""),
        ("P01", "pre", "marrow", None, "iauc60", "max", 40.0, "a.u. s"),
    ]


def test_every_map_and_statistic_round_trips() -> None:
    rng = np.random.default_rng(5)
    names = roi_map_names([60, 90])
    cols = [f"{output_map(n).column}_{s}" for n in names for s in MAP_STATISTICS]
    values = rng.normal(size=(3, len(cols)))
    values[1, ::7] = np.nan
    wide = pd.concat([pd.DataFrame({
        "subject": ["P01"] * 3, "session": ["pre", "pre", "fu1"],
        "roi": ["lesion", "marrow", "lesion"], "label": pd.array([1, pd.NA, 1], dtype="Int64"),
        "n_voxels": [5, 9, 6]}), pd.DataFrame(values, columns=cols)], axis=1)
    long = long_roi_table(wide)
    assert assert_round_trip(wide, long) == len(names) * len(MAP_STATISTICS) == len(cols)
    assert set(long["map"]) == set(names)
    units = long.drop_duplicates(["map", "statistic"]).set_index(["map", "statistic"])["unit"]
    for n in names:
        assert units[(n, "mean")] == output_map(n).unit
        assert units[(n, "n_finite")] == "voxels"


def test_cohort_tables() -> None:
    cohort = pd.DataFrame({"subject": ["P01", "P02"], "lesion": [1, 3], "level": ["L1", "T9"],
                           "session": ["pre", "fu1"], "vp_mean": [0.05, 0.02],
                           "kep_per_min_median": [0.4, np.nan]})
    marrow = pd.DataFrame({"subject": ["P01"], "session": ["pre"], "vp_mean": [0.01],
                           "kep_per_min_median": [0.2]})
    long = cohort_long_table(cohort, marrow)
    assert long["roi"].tolist() == ["lesion"] * 4 + ["marrow"] * 2
    assert long["label"].tolist()[:4] == [1, 1, 3, 3] and long["label"].isna().sum() == 2
    assert long["value"].tolist()[:2] == [0.05, 0.4]
    assert long["map"].tolist() == ["vp", "kep"] * 3


def test_bad_tables() -> None:
    with pytest.raises(ValueError, match="lacks the column"):
        long_roi_table(pd.DataFrame({"subject": ["P"], "session": ["s"], "vp_mean": [1.0]}))
    with pytest.raises(ValueError, match="no map statistic column"):
        long_roi_table(pd.DataFrame({"subject": ["P"], "session": ["s"], "roi": ["lesion"],
                                     "label": [1], "rslope_max": [1.0]}))


@pytest.mark.workflow
def test_written_long_tables_round_trip(run: Path) -> None:
    """Per session (the roi rule) and cohort-wide (cohort_table), as read from disk."""
    n_sessions = 0
    for r in sessions_sheet(run).itertuples():
        stem = run / RESULTS / f"sub-{r.subject}" / f"ses-{r.session}" / \
            f"sub-{r.subject}_ses-{r.session}"
        wide, long = read_tsv(f"{stem}_roi.tsv"), read_tsv(f"{stem}_desc-long_roi.tsv")
        n_cols = assert_round_trip(wide, long)
        # every map summarised per ROI (the fit status only counts failed fits)
        maps = [n for n in roi_map_names([60, 90]) if n != FIT_STATUS_MAP]
        assert n_cols == len(maps) * len(MAP_STATISTICS)
        assert list(dict.fromkeys(long["map"])) == maps
        n_sessions += 1
    assert n_sessions >= 5
    cohort_dir = run / RESULTS / "cohort"
    long = read_tsv(cohort_dir / "roi_long.tsv")
    lesions = read_tsv(cohort_dir / "cohort.tsv").copy()     # copy: one block (no pandas
    marrow = read_tsv(cohort_dir / "marrow.tsv").copy()      # fragmentation warning)
    assert_round_trip(lesions.rename(columns={"lesion": "label"}).assign(roi="lesion"),
                      long[long["roi"] == "lesion"])
    no_label = pd.array([pd.NA] * len(marrow), dtype="Int64")
    assert_round_trip(marrow.assign(roi="marrow", label=no_label), long[long["roi"] == "marrow"])
