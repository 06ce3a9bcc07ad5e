"""File input and output: DICOM series discovery and stacking, NIfTI + JSON sidecars,
sheets, tables, figures and the workflow's job plumbing.

The only place in :mod:`dce` that touches files.  See :mod:`dce.io.dicom` for the axis and
timing conventions, :mod:`dce.io.nifti` for the atomic writer, :mod:`dce.io.convert` for
one visit -> NIfTI, :mod:`dce.io.nifti_input` for a NIfTI + JSON (dcm2niix/BIDS) session ->
the same files, :mod:`dce.io.dicom_write` for the synthetic DICOM writer,
:mod:`dce.io.maps` for the registry-labelled output maps and a session's ROIs,
:mod:`dce.io.rois` for ROI files (NIfTI, DICOM RTSTRUCT and SEG, NRRD) on the DCE grid,
:mod:`dce.io.tables` for the session/lesion sheets, text tables and figure files,
:mod:`dce.io.results` for the cohort's result objects (one file per field),
:mod:`dce.io.jobs` for the rule scripts' logging, cleanup and atomic writers, and
:mod:`dce.io.provenance` for the provenance records (versions, config and input hashes),
and :mod:`dce.io.derivatives` for the results as a BIDS derivatives dataset.

The names below are loaded on first use (PEP 562): ``import dce.io.nifti`` in a rule job
does not import pydicom, and ``from dce.io import read_nifti`` imports only
:mod:`dce.io.nifti`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dce.io.derivatives import derived_sources
    from dce.io.dicom import (
        DEFAULT_EXCLUDE_PATTERN,
        DEFAULT_VFA_EXCLUDE_PATTERN,
        DicomError,
        DynamicSeries,
        SeriesInfo,
        SeriesRoles,
        VFASeries,
        classify_series,
        discover_series,
        load_dce,
        load_dce_series,
        load_vfa,
        load_vfa_series,
        select_series,
    )
    from dce.io.nifti import NiftiContents, read_nifti, sidecar_path, write_nifti

#: public name -> the submodule defining it
_SOURCES = {
    "derived_sources": "dce.io.derivatives",
    **dict.fromkeys(
        ("DEFAULT_EXCLUDE_PATTERN", "DEFAULT_VFA_EXCLUDE_PATTERN", "DicomError",
         "DynamicSeries", "SeriesInfo", "SeriesRoles", "VFASeries", "classify_series",
         "discover_series", "load_dce", "load_dce_series", "load_vfa", "load_vfa_series",
         "select_series"),
        "dce.io.dicom"),
    **dict.fromkeys(("NiftiContents", "read_nifti", "sidecar_path", "write_nifti"),
                    "dce.io.nifti"),
}


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first access (then cached in the module)."""
    try:
        module = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module 'dce.io' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "DEFAULT_EXCLUDE_PATTERN",
    "DEFAULT_VFA_EXCLUDE_PATTERN",
    "DicomError",
    "DynamicSeries",
    "NiftiContents",
    "SeriesInfo",
    "SeriesRoles",
    "VFASeries",
    "classify_series",
    "derived_sources",
    "discover_series",
    "load_dce",
    "load_dce_series",
    "load_vfa",
    "load_vfa_series",
    "read_nifti",
    "select_series",
    "sidecar_path",
    "write_nifti",
]
