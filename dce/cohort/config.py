"""Configuration of the cohort analysis: the ``cohort`` section as typed objects.

:func:`parse_config` turns the section (validated and filled with defaults by the
schema, config/README.md) into a :class:`CohortConfig` of :class:`Endpoint`,
:class:`Predictor`, :class:`Rule` and :class:`Logistic` entries and checks the
cross-references between them (rules, cut-offs, models and comparisons name configured
predictors).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dce import quality

__all__ = ["CohortConfig", "Endpoint", "Logistic", "Predictor", "Rule", "Study",
           "parse_config"]


@dataclass(frozen=True)
class Endpoint:
    """A binary 0/1 column ``name`` of the lesion sheet, optionally with the column of
    the event day (days from radiotherapy) for lead times.

    Or, with ``column``, a contrast of groups of a categorical column of the lesion
    sheet (e.g. ``lesion_class``): 1 where the column is one of ``positive``, 0 where
    it is one of ``negative`` (every other value when ``negative`` is empty), missing
    otherwise (the lesion is left out of this endpoint)."""

    name: str
    day_column: str | None = None
    label: str = ""
    column: str | None = None
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Predictor:
    """The ROI statistic ``parameter`` (e.g. ``vp_mean``) as measured (``kind``
    ``value``) or its absolute (``change``) or percent (``pct_change``) change from
    baseline, at ``session`` (a session name, ``baseline``, ``first`` or ``last``)."""

    name: str
    parameter: str
    kind: str = "pct_change"          # value | change | pct_change
    session: str = "first"            # session name | baseline | first | last
    direction: str = "auto"           # higher | lower | auto
    label: str = ""

    @property
    def column(self) -> str:
        suffix = {"value": "", "change": "_change", "pct_change": "_pct_change"}[self.kind]
        return f"{self.parameter}{suffix}"

    @property
    def title(self) -> str:
        """The configured ``label``, else the display label of the column
        (:func:`dce.cohort.display.predictor_label`, e.g. "ΔVp from baseline to first
        follow-up (%)")."""
        if self.label:
            return self.label
        from dce.cohort.display import predictor_label  # display imports this module

        return predictor_label(self.parameter, self.kind, self.session)


@dataclass(frozen=True)
class Rule:
    """A fixed cut-off on a predictor: positive where the value is ``direction``
    (``higher`` / ``lower``) than ``threshold`` (or equal, unless ``strict``)."""

    name: str
    predictor: str
    direction: str
    threshold: float
    strict: bool = False
    #: where the cut-off was published (citation), empty for a cohort's own rule
    source: str = ""
    #: the published performance as reported (free text), e.g. "sensitivity 93.8 %"
    published: str = ""


@dataclass(frozen=True)
class Logistic:
    """A multivariable logistic model of predictors (leave-one-patient-out); ``fit``
    ``auto`` / ``mle`` / ``firth``; positive where the probability >= ``threshold``."""

    name: str
    predictors: tuple[str, ...]
    fit: str = "auto"
    threshold: float = 0.5


@dataclass(frozen=True)
class Study:
    """The study a configuration reproduces (``cohort.study``, a preset of
    config/studies/): its outputs go to ``results/studies/<name>/``."""

    name: str
    title: str = ""
    design: str = "longitudinal"      # longitudinal | diagnostic
    source: str = ""
    notes: str = ""


@dataclass(frozen=True)
class CohortConfig:
    """The ``cohort`` section of the configuration (config/README.md)."""

    endpoints: tuple[Endpoint, ...]
    predictors: tuple[Predictor, ...]
    rules: tuple[Rule, ...] = ()
    cv_cutoff: tuple[str, ...] = ()
    logistic: tuple[Logistic, ...] = ()
    delong: tuple[tuple[str, str], ...] = ()
    baseline_session: str | None = "pre"
    aggregate: str = "any"
    alpha: float = 0.05
    n_boot: int = 2000
    seed: int = 0
    prepost_parameters: tuple[str, ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)
    #: quality flag codes (dce.quality.FLAG_CODES) whose rows are not analysed
    exclude_flags: tuple[str, ...] = ()
    #: threshold of the fit_failed_fraction code (applied by the roi rule)
    max_fit_failed_fraction: float = quality.MAX_FIT_FAILED_FRACTION
    #: the study preset, if any
    study: Study | None = None
    #: predictors compared between the endpoint groups (diagnostic tables); empty = all
    group_predictors: tuple[str, ...] = ()

    def predictor(self, name: str) -> Predictor:
        for p in self.predictors:
            if p.name == name:
                return p
        raise KeyError(f"cohort: no predictor named {name!r} (configured: "
                       f"{', '.join(p.name for p in self.predictors)})")


def parse_config(cfg: Mapping[str, Any]) -> CohortConfig:
    """The ``cohort`` section (already validated and filled with defaults by the
    schema) as a :class:`CohortConfig`; cross-references are checked here."""
    endpoints = tuple(Endpoint(name=str(e["name"]), day_column=e.get("day_column") or None,
                               label=str(e.get("label") or ""),
                               column=e.get("column") or None,
                               positive=tuple(str(v) for v in e.get("positive") or ()),
                               negative=tuple(str(v) for v in e.get("negative") or ()))
                      for e in cfg["endpoints"])
    for e in endpoints:
        if e.column and not e.positive:
            raise ValueError(f"cohort.endpoints: {e.name} (column {e.column!r}) needs "
                             f"`positive` values")
        if (e.positive or e.negative) and not e.column:
            raise ValueError(f"cohort.endpoints: {e.name} has positive/negative values but "
                             f"no `column`")
        both = sorted(set(e.positive) & set(e.negative))
        if both:
            raise ValueError(f"cohort.endpoints: {e.name}: {', '.join(both)} both positive "
                             f"and negative")
    predictors = tuple(Predictor(name=str(p["name"]), parameter=str(p["parameter"]),
                                 kind=str(p.get("kind", "pct_change")),
                                 session=str(p.get("session", "first")),
                                 direction=str(p.get("direction", "auto")),
                                 label=str(p.get("label") or ""))
                       for p in cfg["predictors"])
    names = [p.name for p in predictors]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"cohort.predictors: duplicate name(s) {', '.join(dup)}")
    ep_names = [e.name for e in endpoints]
    clash = sorted(set(names) & set(ep_names))
    if clash:
        raise ValueError(f"cohort: name(s) {', '.join(clash)} used for an endpoint and a "
                         f"predictor")
    rules = tuple(Rule(name=str(r["name"]), predictor=str(r["predictor"]),
                       direction=str(r["direction"]), threshold=float(r["threshold"]),
                       strict=bool(r.get("strict", False)),
                       source=str(r.get("source") or ""),
                       published=str(r.get("published") or ""))
                  for r in cfg.get("rules", []))
    cv = cfg.get("cv_cutoff")
    cv_names = tuple(names if cv is None else (str(c) for c in cv))
    logistic = tuple(Logistic(name=str(m["name"]),
                              predictors=tuple(str(x) for x in m["predictors"]),
                              fit=str(m.get("fit", "auto")),
                              threshold=float(m.get("threshold", 0.5)))
                     for m in cfg.get("logistic", []))
    delong = tuple((str(a), str(b)) for a, b in cfg.get("delong", []))
    boot = cfg.get("bootstrap", {}) or {}
    st = cfg.get("study") or None
    study = (Study(name=str(st["name"]), title=str(st.get("title") or ""),
                   design=str(st.get("design") or "longitudinal"),
                   source=str(st.get("source") or ""), notes=str(st.get("notes") or ""))
             if st else None)
    out = CohortConfig(
        endpoints=endpoints, predictors=predictors, rules=rules, cv_cutoff=cv_names,
        logistic=logistic, delong=delong,
        baseline_session=cfg.get("baseline_session", "pre"),
        aggregate=str(cfg.get("aggregate", "any")), alpha=float(cfg.get("alpha", 0.05)),
        n_boot=int(boot.get("n", 2000)), seed=int(boot.get("seed", 0)),
        prepost_parameters=tuple(cfg.get("prepost_parameters", ())),
        figures=dict(cfg.get("figures", {}) or {}),
        exclude_flags=quality.check_codes(cfg.get("exclude_flags") or (),
                                          "cohort.exclude_flags"),
        max_fit_failed_fraction=float(cfg.get("max_fit_failed_fraction",
                                              quality.MAX_FIT_FAILED_FRACTION)),
        study=study, group_predictors=tuple(str(x) for x in cfg.get("group_predictors")
                                            or ()))
    for where, refs in (("rules", [r.predictor for r in rules]), ("cv_cutoff", cv_names),
                        ("group_predictors", out.group_predictors),
                        ("logistic", [x for m in logistic for x in m.predictors]),
                        ("delong", [x for pair in delong for x in pair])):
        for ref in refs:
            if ref not in names:
                raise ValueError(f"cohort.{where}: unknown predictor {ref!r} (configured: "
                                 f"{', '.join(names)})")
    wf = out.figures.get("waterfall")
    if wf and wf not in names:
        raise ValueError(f"cohort.figures.waterfall: unknown predictor {wf!r}")
    return out
