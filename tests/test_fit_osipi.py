"""Kinetic fits against the OSIPI DCE reference data (tests/data/osipi, Apache-2.0).

Tolerances are OSIPI's (DCE-DSC-MRI_CodeCollection, test/DCEmodels): Ktrans atol 0.005 /min
+ rtol 0.1; ve atol 0.05; vp atol 0.025. Delay variants shift the tissue curve right by
10 (Tofts) or 5 (extended Tofts) samples with zeros in front and expect the delay t[shift]
within 1 s; the delay candidates (0.25 to 9.25 s every 1 s) do not include the true
delay (5 s), as on a scanner, where the arrival falls between any grid's points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dce.fit import TracerKineticModel

DATA = Path(__file__).parent / "data" / "osipi"
CASES = {
    "tofts": ("dce_DRO_data_tofts.csv", 10),
    "extended_tofts": ("dce_DRO_data_extended_tofts.csv", 5),
}
DELAY_GRID_S = np.arange(0.25, 10.0, 1.0)


def _arr(cell: str) -> np.ndarray:
    return np.array(cell.split(), dtype=float)


def _load(model: str) -> pd.DataFrame:
    return pd.read_csv(DATA / CASES[model][0])


def _fit_all(model: str, delayed: bool) -> dict[str, dict[str, float]]:
    """Fit every case; cases sharing an input function are fitted together (vectorised)."""
    df = _load(model)
    shift = CASES[model][1]
    groups: dict[bytes, list[Any]] = {}
    for row in df.itertuples():
        key = _arr(str(row.ca)).tobytes() + _arr(str(row.ta)).tobytes()
        groups.setdefault(key, []).append(row)
    out: dict[str, dict[str, float]] = {}
    for rows in groups.values():
        r0 = rows[0]
        t = _arr(r0.t)
        conc = np.stack([_arr(r.C) for r in rows])
        if delayed:
            conc = np.concatenate([np.zeros((len(rows), shift)), conc[:, :-shift]], axis=1)
        fit = TracerKineticModel(t, _arr(r0.ca), t_aif_s=_arr(r0.ta), model=model,
                                 fit_delay=delayed, delay_grid_s=DELAY_GRID_S).fit(conc)
        for i, r in enumerate(rows):
            out[r.label] = {k: float(v[i]) for k, v in fit.maps().items()}
            out[r.label]["t_shift"] = float(t[shift])
    return out


@pytest.fixture(scope="module")
def fits() -> dict[tuple[str, bool], dict[str, dict[str, float]]]:
    return {(m, d): _fit_all(m, d) for m in CASES for d in (False, True)}


def _cases() -> list[Any]:
    params = []
    for model in CASES:
        for row in _load(model).itertuples():
            for delayed in (False, True):
                tag = "delay" if delayed else "nodelay"
                params.append(pytest.param(model, delayed, row, id=f"{model}-{row.label}-{tag}"))
    return params


@pytest.mark.parametrize(("model", "delayed", "row"), _cases())
def test_osipi_dro(fits: dict[tuple[str, bool], dict[str, dict[str, float]]], model: str,
                   delayed: bool, row: Any) -> None:
    got = fits[(model, delayed)][row.label]
    assert got["status"] == 0
    assert abs(got["ktrans_per_min"] - row.Ktrans) <= 0.005 + 0.1 * row.Ktrans
    assert abs(got["ve"] - row.ve) <= 0.05
    if model == "extended_tofts":
        assert abs(got["vp"] - row.vp) <= 0.025
    else:
        assert got["vp"] == 0.0
    if delayed:
        assert abs(got["delay_s"] - got["t_shift"]) <= 1.0
    else:
        assert got["delay_s"] == 0.0


def test_osipi_case_count() -> None:
    """The vendored files hold the 25 Tofts and 15 extended Tofts OSIPI cases."""
    assert len(_load("tofts")) == 25
    assert len(_load("extended_tofts")) == 15
