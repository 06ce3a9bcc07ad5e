"""Result objects as TSV files: one file per field, written once and read back whole.

A result object is a dataclass whose fields are tables (e.g.
:class:`dce.cohort.frames.CohortFrames`, :class:`dce.cohort.analysis.RocResults`); the
workflow rule that computes it names one output per field, and a later rule that needs
it names the same files as inputs. :func:`write_results` writes every field,
:func:`read_results` builds the same object from the files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from dce.io.jobs import write_tsv
from dce.io.tables import read_tsv

__all__ = ["read_results", "write_results"]

_R = TypeVar("_R")
_Path = str | os.PathLike[str]


def write_results(results: Any, paths: Mapping[str, _Path]) -> None:
    """Write every table field of the dataclass ``results`` to ``paths[field name]``.

    Parameters
    ----------
    results : dataclass instance
        Every field a :class:`pandas.DataFrame`.
    paths : mapping
        Field name -> file (e.g. a rule's named outputs); every field must have one.
    """
    for f in dataclasses.fields(results):
        write_tsv(getattr(results, f.name), paths[f.name])   # n/a, %.6g, no index


def read_results(cls: type[_R], paths: Mapping[str, _Path]) -> _R:
    """The result object of type ``cls`` from the files :func:`write_results` wrote.

    Parameters
    ----------
    cls : dataclass type
        Every field a :class:`pandas.DataFrame`.
    paths : mapping
        Field name -> file (e.g. a rule's named inputs).

    Returns
    -------
    cls
        Each table read with :func:`dce.io.tables.read_tsv`.
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return cls(**{f.name: read_tsv(paths[f.name]) for f in fields})
