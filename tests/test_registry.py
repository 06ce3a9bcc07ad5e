"""The registry of output maps and kinetic models (dce.registry) and its reach: every entry
is complete, the configuration schema's enums equal it, and every map name reaches the
library's outputs, the sidecars and the figure labels. No Snakemake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from dce import registry
from dce.cohort import display
from dce.fit import STATUS_SHOWN, TracerKineticModel, kinetic_fitter
from dce.io.maps import read_maps, write_map
from dce.models import tissue_concentration
from dce.registry import (
    KINETIC_MODELS,
    MAPS,
    TIC_CODES,
    fit_map_names,
    kinetic_model,
    output_map,
    semiquant_map_names,
)
from dce.roi import map_panel_fields, shown_map
from dce.semiquant import TIC_TYPES, TICRule, semiquant_maps, tic_type_codes

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
IAUC = (60, 90)
ALL_NAMES = fit_map_names() + semiquant_map_names(IAUC)


# ----------------------------------------------------------------------- the entries

def test_every_map_has_column_label_unit_dtype_stage() -> None:
    for m in MAPS:
        assert m.name and m.column and m.label, m
        assert isinstance(m.unit, str), m
        assert np.dtype(m.dtype) in (np.dtype(np.float32), np.dtype(np.int8)), m
        assert m.stage in ("fit", "semiquant"), m
        assert output_map(m.name) is m


def test_names_and_columns_are_unique() -> None:
    entries = [output_map(n) for n in ALL_NAMES]
    assert len({m.name for m in entries}) == len(entries)
    assert len({m.column for m in entries}) == len(entries)


def test_iauc_maps_and_unknown_names() -> None:
    m = output_map("iauc60")
    assert (m.column, m.label, m.unit, m.stage) == ("iauc_60s", "IAUC 60 s", "a.u. s",
                                                     "semiquant")
    assert semiquant_map_names([30])[-1] == "iauc30"
    with pytest.raises(KeyError, match="unknown map name 'ktrns'"):
        output_map("ktrns")
    assert registry.map_by_column("ktrans_per_min").name == "ktrans"


def test_rule_map_lists() -> None:
    """The lists the rules take (formerly hard-coded in workflow/rules/common.smk, roi.smk)."""
    fit = ["ktrans", "kep", "ve", "vp", "r2", "rmse", "delay", "fitstatus"]
    semi = ["peakenh", "ttp", "washin", "maxslope", "washout", "tictype", "iauc60", "iauc90"]
    assert fit_map_names() == fit
    assert all(fit_map_names(m) == fit for m in registry.model_names())
    assert semiquant_map_names(IAUC) == semi
    assert registry.roi_map_names(IAUC) == [n for n in fit + semi if n != "tictype"]


def test_kinetic_parameters_carry_osipi_terms_and_are_masked_by_status() -> None:
    for name in ("ktrans", "kep", "ve", "vp"):
        m = output_map(name)
        assert m.osipi and m.masked_by_status and m.stage == "fit"
    assert not any(m.masked_by_status for m in MAPS if m.stage == "semiquant")


def test_tic_codes_cover_the_tic_types() -> None:
    assert set(TIC_CODES) == {"", *TIC_TYPES}
    assert sorted(TIC_CODES.values()) == list(range(len(TIC_CODES)))
    codes = tic_type_codes(np.array(["", "A", "E", "C"]))
    assert codes.dtype == np.int8 and codes.tolist() == [0, 1, 5, 3]
    assert registry.tic_code_names()["0"] == "not classifiable"


def test_kinetic_models_are_complete() -> None:
    for spec in KINETIC_MODELS:
        assert kinetic_model(spec.name) is spec
        assert set(spec.parameters) <= set(spec.outputs)
        assert all(output_map(n).stage == "fit" for n in spec.outputs)
        assert callable(registry.resolve(spec.forward))
        assert isinstance(registry.resolve(spec.fitter), type)
        assert spec.efflux == ("kep" in spec.outputs and "ve" in spec.parameters)
        assert spec.plasma_term == ("vp" in spec.parameters)
    assert [m.linear_given_kep for m in KINETIC_MODELS] == [True, True, True]
    with pytest.raises(ValueError, match="model: unknown model 'toft'"):
        kinetic_model("toft")


def test_registry_imports_no_numerics() -> None:
    """Snakemake imports it when parsing the rules: standard library only."""
    code = ("import sys, dce.registry as r; r.fit_map_names(); r.semiquant_map_names([60]); "
            "print(sorted(m for m in ('numpy', 'numba', 'pandas', 'matplotlib', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------- the schema

def _enums(node: Any, path: str = "") -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "enum" and isinstance(v, list):
                out[path] = v
            else:
                out.update(_enums(v, f"{path}/{k}"))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.update(_enums(v, f"{path}/{i}"))
    return out


def test_schema_enums_equal_the_registry() -> None:
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    assert schema["properties"]["model"]["properties"]["name"]["enum"] == registry.model_names()
    map_enums = {p: e for p, e in _enums(schema).items() if "ktrans" in e}
    assert map_enums, "no map-name enum found in the schema"
    for path, enum in map_enums.items():
        assert enum == registry.figure_map_names(), path


# ----------------------------------------------------------------------- reach: outputs

def _synthetic() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(0.0, 300.0, 5.0)
    cp = 5.0 * (t / 30.0) * np.exp(1.0 - t / 30.0) * (t > 0) + 0.5 * (t > 30)
    conc = tissue_concentration("extended_tofts", t, cp,
                                ktrans_per_min=np.array([[0.1, 0.3], [0.05, 0.2]]),
                                ve=np.array([[0.3, 0.4], [0.2, 0.5]]),
                                vp=np.array([[0.02, 0.05], [0.01, 0.1]]))
    return t, cp, conc


@pytest.mark.parametrize("model", [m.name for m in KINETIC_MODELS])
def test_every_fit_map_is_produced(model: str) -> None:
    t, cp, conc = _synthetic()
    fit = kinetic_fitter(t, cp, model=model).fit(conc)
    maps = fit.maps()
    assert list(maps) == [output_map(n).column for n in fit_map_names(model)]
    assert all(v.shape == (2, 2) for v in maps.values())
    assert fit.model == model


def test_fitter_honours_the_registry() -> None:
    t, cp, _ = _synthetic()
    for spec in KINETIC_MODELS:
        fitter = kinetic_fitter(t, cp, model=spec.name)
        assert isinstance(fitter, registry.resolve(spec.fitter))  # type: ignore[arg-type]
        kw = {c: 0.1 for c in spec.parameter_columns()}
        direct = registry.resolve(spec.forward)(t, cp, **kw)  # type: ignore[operator]
        np.testing.assert_array_equal(fitter.predict(**{"ve": None, **kw}), direct)
    with pytest.raises(ValueError, match="ve: required for the Tofts model"):
        TracerKineticModel(t, cp, model="tofts").predict(ktrans_per_min=0.1)


def test_every_semiquant_map_is_produced() -> None:
    t, _, conc = _synthetic()
    sig = 100.0 * (1.0 + conc)
    met = semiquant_maps(sig, t, n_baseline=3, iauc_windows_s=[float(w) for w in IAUC],
                         rule=TICRule())
    for name in semiquant_map_names(IAUC):
        assert met[output_map(name).column].shape == (2, 2), name


# ----------------------------------------------------------------------- reach: sidecars

@pytest.mark.parametrize("name", ALL_NAMES)
def test_sidecar_and_dtype_come_from_the_registry(tmp_path: Path, name: str) -> None:
    m = output_map(name)
    path = tmp_path / f"sub-01_ses-1_{name}.nii.gz"
    write_map(path, name, np.ones((2, 2, 1)), np.eye(4), {"Source": "test"})
    side = json.loads(path.with_name(path.name[:-7] + ".json").read_text(encoding="utf-8"))
    assert side == {"Quantity": m.label, "Column": m.column, "Units": m.unit, "Source": "test"}
    data = read_maps({name: path})
    assert list(data) == [m.column]
    assert data[m.column].dtype == np.dtype(m.dtype)


# ----------------------------------------------------------------------- reach: figures

def test_figure_labels_and_masks_come_from_the_registry() -> None:
    names = registry.figure_map_names()
    status = np.array([[0, 1], [5, 3]], dtype=np.int8)
    maps = {output_map(n).column: np.full((2, 2), 2.0) for n in names}
    panels = map_panel_fields(maps, names, status)
    # every figure map has a display quantity (name, unit, scale) in the naming layer
    quantities = [display.quantity(output_map(n).column) for n in names]
    assert all(q is not None for q in quantities)
    assert [(f["title"], f["unit"]) for f in panels] == \
        [(q.symbol, q.unit) for q in quantities if q is not None]
    shown = np.isin(status, STATUS_SHOWN)
    enhancing = np.array([[True, False], [False, True]])     # status 1 and 5 hidden
    for n, f, q in zip(names, panels, quantities, strict=True):
        assert q is not None
        expect = np.where(shown if output_map(n).masked_by_status else enhancing, 2.0, np.nan)
        np.testing.assert_array_equal(f["data"], expect * q.scale)
        np.testing.assert_array_equal(shown_map(n, maps[output_map(n).column], status), expect)
