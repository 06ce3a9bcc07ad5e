"""Registry of the pipeline's output maps, their parameters and the kinetic models.

One home for the names the rest of the package, the workflow's rules and scripts, the
sidecars, tables and figures share: each output map's short name (used in file names,
``sub-01_ses-1_ktrans.nii.gz``), its table column (``ktrans_per_min``), display label and
unit, OSIPI lexicon term, data type, whether figures mask it by fit status and which
stage writes it; the TIC type codes of the ``tictype`` map; and every kinetic model's
parameters, outputs and implementation.

Standard library only, so that Snakemake can import it when it parses the rules
(:func:`fit_map_names`, :func:`semiquant_map_names`, :func:`roi_map_names`,
:func:`figure_map_names`, :func:`model_names`).

Adding a kinetic model
----------------------
A model is one library module and one registry entry. A two-compartment exchange model
(2CXM) would touch:

* ``dce/two_cxm.py`` (new): the forward model (``two_cxm(t_s, cp_mM, *, fp_per_min,
  ps_per_min, ve, vp, t_aif_s=None, delay_s=0.0, interpolation="linear")``) and a
  fitter class with the interface of :class:`dce.fit.TracerKineticModel` (constructed
  with ``(t_s, cp_mM, *, model, method, fit_delay, delay_grid_s, delay_neighbourhood,
  enhancement_z, bounds, aif_interpolation)``;
  ``.fit(conc_mM, mask=...)`` returns an object whose ``.maps()`` is keyed by the
  registry's columns; ``.policy()`` gives the sidecar's ``FitPolicy``);
* ``dce/registry.py``: one :class:`KineticModel` entry in :data:`KINETIC_MODELS` (with
  ``forward="dce.two_cxm:two_cxm"``, ``fitter="dce.two_cxm:TwoCompartmentExchangeModel"``)
  and an :class:`OutputMap` entry in :data:`MAPS` for each new parameter (``fp``, ``ps``);
* ``workflow/schemas/config.schema.yaml``: the ``model.name`` enum (and the figure-map
  enums, to draw the new maps), which ``tests/test_registry.py`` checks against this
  registry;
* ``tests/test_two_cxm.py`` (new): the model's own tests; ``tests/test_registry.py``
  checks, without changes, that the new entry's maps are produced, written with their
  sidecar fields and labelled in figures.

Nothing else changes: the rules take their map names from :func:`fit_map_names` and
:func:`semiquant_map_names`, the ``fit`` script gets the fitter from the registry
(:func:`dce.fit.fitter_from_config`), maps are written with their registry sidecar fields
and data type (:func:`dce.io.maps.write_map`), and ROI tables and figures take columns,
labels, units and status masking from :func:`output_map` (:mod:`dce.roi`). The compiled
kernels of :mod:`dce.fit` derive their model flag from an entry's ``efflux`` and
``plasma_term``; a model they cannot fit names another ``fitter``.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field

# Fit status codes live here (not in dce.fit) so that readers of maps need not import the
# compiled fit code; dce.fit re-exports them.
#: Per-voxel status codes of :class:`dce.fit.TracerKineticFit`. Precedence when several apply:
#: 1 > 5 > 3 > 6/7 > 2 > 0. Codes 5-7 carry the values of a nested (simpler) model, never
#: those of the degenerate full fit, so that maps show no false uptake.
STATUS_FIT = {
    0: "ok",
    1: "curve has NaN or infinite samples: not fitted, parameters NaN",
    2: "ve, vp (or Patlak Ktrans) stopped at its upper bound: values at the bound (unreliable)",
    3: "no uptake (Ktrans = 0): vp from the vp-only fit, kep and ve undefined (NaN)",
    4: "linear least squares singular or gave a non-physical value (llsq only)",
    5: "not enhancing (post-arrival mean enhancement below z_min standard errors): "
       "not fitted, Ktrans = vp = 0, kep, ve, delay and R2 NaN",
    6: "kep at the upper limit of its search range or Ktrans at its upper bound (fast "
       "exchange: the curve is a scaled input): nested vp-only model, vp = amplitude, "
       "Ktrans = 0, kep and ve NaN (Tofts: ve = amplitude, Ktrans and kep NaN)",
    7: "kep at the lower limit of its search range (no measurable efflux): nested Patlak "
       "model, Ktrans and vp from Patlak, kep and ve NaN",
}

#: Meaning of status -1 (a voxel outside the fitted mask) in maps and sidecars.
STATUS_OUTSIDE_MASK = "not fitted (outside mask)"

#: Status codes whose parameter values are meaningful (counted as fitted in ROI statistics;
#: the others -- -1 outside the mask, 1, 2 at a bound, 4 -- count as failed fits).
STATUS_USABLE: tuple[int, ...] = (0, 3, 5, 6, 7)
#: Status codes drawn in parameter-map figures (not enhancing, 5, is transparent).
STATUS_SHOWN: tuple[int, ...] = (0, 3, 6, 7)


__all__ = [
    "FIT_STATUS_MAP",
    "KINETIC_MODELS",
    "MAPS",
    "STATUS_FIT",
    "STATUS_OUTSIDE_MASK",
    "STATUS_SHOWN",
    "STATUS_USABLE",
    "TIC_CODES",
    "TIC_TYPE_MAP",
    "KineticModel",
    "OutputMap",
    "figure_map_names",
    "fit_map_names",
    "kinetic_model",
    "map_by_column",
    "model_names",
    "output_map",
    "resolve",
    "roi_map_names",
    "semiquant_map_names",
    "sidecar_fields",
    "tic_code_names",
]


@dataclass(frozen=True)
class OutputMap:
    """One output map (a NIfTI image per session) and its column in the tables.

    Attributes
    ----------
    name : str
        Short name in file names (``ktrans`` -> ``sub-01_ses-1_ktrans.nii.gz``).
    column : str
        Column name (with units) in tables and in the library's result dictionaries.
    label : str
        Display label of figures and sidecars (``Quantity``).
    unit : str
        Display unit (``""`` when dimensionless).
    osipi : str or None
        OSIPI lexicon (CAPLEX) quantity, where one exists.
    dtype : str
        NumPy data type of the image (``"float32"`` or ``"int8"``).
    masked_by_status : bool
        Figures show the map only in voxels whose fit status is in
        :data:`dce.fit.STATUS_SHOWN` (the kinetic parameters).
    stage : {"fit", "semiquant"}
        Stage (rule) that writes the map.
    figure : bool
        Offered as a figure map (the ``figure_maps`` enums of the configuration schema).
    roi_statistics : bool
        Summarised per ROI (mean, percentiles, ...) in the ROI tables (not the coded
        ``tictype`` map).
    """

    name: str
    column: str
    label: str
    unit: str
    osipi: str | None = None
    dtype: str = "float32"
    masked_by_status: bool = False
    stage: str = "fit"
    figure: bool = True
    roi_statistics: bool = True


#: Name of the fit-status map (codes: :func:`dce.fit.status_codes`).
FIT_STATUS_MAP = "fitstatus"
#: Name of the TIC-type map (codes: :data:`TIC_CODES`).
TIC_TYPE_MAP = "tictype"

#: Every fixed-name output map, in output order (IAUC maps, ``iauc<seconds>``, are made
#: by :func:`output_map` for each configured window).
MAPS: tuple[OutputMap, ...] = (
    OutputMap("ktrans", "ktrans_per_min", "Ktrans", "/min",
              osipi="Volume transfer constant (Ktrans)", masked_by_status=True),
    OutputMap("kep", "kep_per_min", "kep", "/min",
              osipi="Efflux rate constant (kep)", masked_by_status=True),
    OutputMap("ve", "ve", "ve", "",
              osipi="Extravascular extracellular volume fraction (ve)", masked_by_status=True),
    OutputMap("vp", "vp", "vp", "", osipi="Plasma volume fraction (vp)",
              masked_by_status=True),
    OutputMap("r2", "r2", "R²", ""),
    OutputMap("rmse", "rmse_mM", "RMSE", "mM", figure=False),
    OutputMap("delay", "delay_s", "delay", "s"),
    OutputMap(FIT_STATUS_MAP, "status", "fit status", "", dtype="int8", figure=False),
    OutputMap("peakenh", "peak_enhancement_pct", "peak enhancement", "%",
              stage="semiquant"),
    OutputMap("ttp", "time_to_peak_s", "time to peak", "s", stage="semiquant"),
    OutputMap("washin", "wash_in_slope_pct_per_s", "wash-in slope", "%/s",
              stage="semiquant"),
    OutputMap("maxslope", "max_slope_pct_per_s", "max slope", "%/s", stage="semiquant"),
    OutputMap("washout", "washout_pct", "washout", "%", stage="semiquant"),
    OutputMap(TIC_TYPE_MAP, "tic_type_code", "TIC type", "0 none, 1-5 = A-E", dtype="int8",
              stage="semiquant", figure=False, roi_statistics=False),
)

_BY_NAME = {m.name: m for m in MAPS}
_IAUC = re.compile(r"iauc(\d+)")

#: TIC type letters (Chen et al. 2002, :data:`dce.semiquant.TIC_TYPES`) and their codes in
#: the ``tictype`` map; ``""`` (not classifiable) is 0.
TIC_CODES: dict[str, int] = {"": 0, "A": 1, "B": 2, "C": 3, "D": 4, "E": 5}


def tic_code_names() -> dict[str, str]:
    """Sidecar ``Codes`` of the ``tictype`` map: ``{"0": "not classifiable", "1": "A", ...}``."""
    return {str(v): (k or "not classifiable") for k, v in TIC_CODES.items()}


def output_map(name: str) -> OutputMap:
    """The registry entry of a map name, including ``iauc<seconds>`` (e.g. ``iauc60``).

    Raises
    ------
    KeyError
        Unknown map name.
    """
    if name in _BY_NAME:
        return _BY_NAME[name]
    m = _IAUC.fullmatch(name)
    if m:
        w = m.group(1)
        return OutputMap(name, f"iauc_{w}s", f"IAUC {w} s", "a.u. s", stage="semiquant",
                         figure=False)
    raise KeyError(f"unknown map name {name!r}")


def map_by_column(column: str) -> OutputMap:
    """The fixed-name registry entry whose table column is ``column``."""
    for m in MAPS:
        if m.column == column:
            return m
    raise KeyError(f"no output map has the column {column!r}")


def sidecar_fields(name: str) -> dict[str, str]:
    """``Quantity``, ``Column`` and ``Units`` of a map's JSON sidecar."""
    m = output_map(name)
    return {"Quantity": m.label, "Column": m.column, "Units": m.unit}


def semiquant_map_names(iauc_windows_s: list[float] | tuple[float, ...] = ()) -> list[str]:
    """Names of the semi-quantitative maps, then ``iauc<w>`` for each window (s)."""
    return [m.name for m in MAPS if m.stage == "semiquant"] + \
        [f"iauc{w}" for w in iauc_windows_s]


def roi_map_names(iauc_windows_s: list[float] | tuple[float, ...] = (),
                  model: str | None = None) -> list[str]:
    """Maps read by the ROI statistics: :func:`fit_map_names` (``fitstatus`` included: it
    counts the failed fits) and :func:`semiquant_map_names`, except the coded ones."""
    names = fit_map_names(model) + semiquant_map_names(iauc_windows_s)
    return [n for n in names if output_map(n).roi_statistics]


def figure_map_names() -> list[str]:
    """Fixed-name maps that may be drawn in figures (the schema's figure-map enums)."""
    return [m.name for m in MAPS if m.figure]


# ------------------------------------------------------------------------ kinetic models

@dataclass(frozen=True)
class KineticModel:
    """A tracer-kinetic model and where it is implemented.

    Attributes
    ----------
    name : str
        Configuration name (``model.name``).
    label : str
        Display name.
    parameters : tuple of str
        Map names of the model's free parameters (units, OSIPI terms: :data:`MAPS`).
    efflux : bool
        The model has an efflux rate constant kep (False for Patlak: irreversible).
    plasma_term : bool
        The model has a plasma volume term ``vp * cp``.
    linear_given_kep : bool
        Linear in its other parameters once kep is fixed (variable projection applies).
    forward : str
        ``"module:function"`` of the forward model (tissue concentration, mM), called
        with the tissue times, the input and the parameters as keywords (their columns).
    fitter : str
        ``"module:class"`` of the fitter (the interface of
        :class:`dce.fit.TracerKineticModel`).
    outputs : tuple of str
        Map names the fit writes (parameters the model lacks are NaN or 0 in them).
    """

    name: str
    label: str
    parameters: tuple[str, ...]
    efflux: bool
    plasma_term: bool
    linear_given_kep: bool
    forward: str
    fitter: str = "dce.fit:TracerKineticModel"
    outputs: tuple[str, ...] = field(default=(
        "ktrans", "kep", "ve", "vp", "r2", "rmse", "delay", "fitstatus"))

    def parameter_columns(self) -> tuple[str, ...]:
        """Columns (keywords of :attr:`forward`) of the free parameters."""
        return tuple(output_map(p).column for p in self.parameters)


#: The kinetic models, the configuration's default first.
KINETIC_MODELS: tuple[KineticModel, ...] = (
    KineticModel("extended_tofts", "extended Tofts", ("ktrans", "ve", "vp"), efflux=True,
                 plasma_term=True, linear_given_kep=True,
                 forward="dce.models:extended_tofts"),
    KineticModel("tofts", "Tofts", ("ktrans", "ve"), efflux=True, plasma_term=False,
                 linear_given_kep=True, forward="dce.models:tofts"),
    KineticModel("patlak", "Patlak", ("ktrans", "vp"), efflux=False, plasma_term=True,
                 linear_given_kep=True, forward="dce.models:patlak"),
)


def model_names() -> list[str]:
    """Names of the kinetic models (the ``model.name`` enum of the schema)."""
    return [m.name for m in KINETIC_MODELS]


def kinetic_model(name: str) -> KineticModel:
    """The registry entry of a kinetic model.

    Raises
    ------
    ValueError
        Unknown model (the message lists the known ones).
    """
    for m in KINETIC_MODELS:
        if m.name == name:
            return m
    raise ValueError(f"model: unknown model {name!r}; choose one of {tuple(model_names())}")


def fit_map_names(model: str | None = None) -> list[str]:
    """Names of the maps the fit writes: of ``model``, or of any model (registry order)."""
    models = KINETIC_MODELS if model is None else (kinetic_model(model),)
    wanted = {n for m in models for n in m.outputs}
    return [m.name for m in MAPS if m.name in wanted]


def resolve(ref: str) -> object:
    """The object named by a ``"module:attribute"`` reference (imports the module)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
