"""Read a session's B1 map (a converted DICOM B1 series or a NIfTI from the sheet) and
bring it onto the DCE grid as a B1 factor (:mod:`dce.b1`).

Sources, in order of precedence:

1. ``sheet``: a NIfTI given in the sessions sheet column ``b1_map`` (any grid);
2. ``dicom``: the ``b1`` entry of the conversion record ``..._convert.json`` (a
   ``..._desc-raw_B1map.nii.gz`` written by the convert step next to the record, on the B1
   series' own grid, sidecar key ``B1Convention``);
3. none.

The unit convention is the sidecar's ``B1Convention`` when it names one and the
configured convention is ``auto``; otherwise the configured one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dce.b1 import CONVENTIONS, b1_factor, resample_to_grid
from dce.io.nifti import read_nifti, write_nifti

__all__ = ["B1_SOURCES", "SessionB1", "read_b1_map", "read_b1_output", "session_b1",
           "write_b1_output"]

#: Values of the ``B1Source`` sidecar key.
B1_SOURCES = {"none": "none", "dicom": "DICOM series", "sheet": "sheet file"}


@dataclass(frozen=True)
class SessionB1:
    """A session's B1 factor on the target grid (``factor`` None when it has no map)."""

    factor: NDArray[np.float64] | None
    source: str = B1_SOURCES["none"]
    convention: str | None = None
    file: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def applied(self, use: bool = True) -> tuple[NDArray[np.float64] | None, dict[str, Any]]:
        """``(factor or None, sidecar keys)`` for a map that uses the B1 correction;
        ``factor`` is None without a B1 map or with ``use`` False (``B1Applied: false``)."""
        have = self.factor is not None and use
        keys = {"B1Source": self.source, "B1Convention": self.convention,
                "B1Median": self.info.get("B1Median"), "B1Applied": bool(have)}
        return (self.factor if have else None), keys

    def sidecar(self) -> dict[str, Any]:
        """Sidecar keys recording the B1 correction (``B1Source``, ``B1Convention``,
        ``B1File`` (file name only), ``B1Median``, ``B1VoxelsOutsideMap``)."""
        out: dict[str, Any] = {"B1Source": self.source, "B1Convention": self.convention}
        if self.factor is not None:
            out["B1File"] = self.file
            out.update(self.info)
        return out


def read_b1_map(path: str | os.PathLike[str], shape: tuple[int, ...],
                affine: NDArray[np.float64], *, convention: str = "auto",
                source: str = B1_SOURCES["sheet"]) -> SessionB1:
    """Read a B1 NIfTI, convert it to the B1 factor and resample it onto a grid.

    Parameters
    ----------
    path : path-like
        B1 map NIfTI (3-D, any grid); its JSON sidecar, if any, may give ``B1Convention``.
    shape, affine
        Target grid (3 spatial axes) and its voxel -> world affine (mm).
    convention : str
        ``auto`` (sidecar's ``B1Convention`` if set, else from the value range),
        ``factor``, ``percent`` or ``siemens_tfl_b1map``.
    source : str
        Value of ``B1Source`` to record.

    Returns
    -------
    SessionB1
        Factor map on the target grid (NaN outside the B1 map).

    Raises
    ------
    ValueError
        Unreadable, non-3-D or implausible map; the message names the file and, for
        units, the hint ("looks like percent").
    """
    path = Path(path)
    img = read_nifti(path)
    side_conv = img.sidecar.get("B1Convention")
    if side_conv is not None and side_conv not in CONVENTIONS:
        raise ValueError(f"{path}: sidecar key B1Convention = {side_conv!r} is not one of "
                         f"{', '.join(CONVENTIONS[1:])}")
    conv = side_conv if (convention == "auto" and side_conv) else convention
    data = np.asarray(img.data, dtype=np.float64)
    factor_src, used = b1_factor(data, conv, name=str(path))
    factor = resample_to_grid(factor_src, img.affine, tuple(shape[:3]), affine,
                              name=str(path))
    finite = np.isfinite(factor)
    if not finite.any():
        raise ValueError(f"{path}: the B1 map does not overlap the DCE grid in world "
                         "coordinates (check the affines / that it is the same session)")
    info = {"B1Median": round(float(np.median(factor[finite])), 4),
            "B1Range": [round(float(np.min(factor[finite])), 4),
                        round(float(np.max(factor[finite])), 4)],
            "B1VoxelsOutsideMap": int(np.count_nonzero(~finite))}
    return SessionB1(factor=factor, source=source, convention=used, file=path.name, info=info)


def session_b1(record_path: str | os.PathLike[str] | None, sheet_path: str | None,
               shape: tuple[int, ...], affine: NDArray[np.float64], *,
               convention: str = "auto") -> SessionB1:
    """The session's B1 factor on a grid: the sheet's ``b1_map`` overrides the converted
    DICOM B1 series (``record["b1"]``); :class:`SessionB1` with ``factor=None`` if neither.

    Parameters
    ----------
    record_path : path-like or None
        Conversion record ``..._convert.json`` (key ``b1``: file name next to it, or null).
    sheet_path : str or None
        The sheet's ``b1_map`` (empty or None: none).
    shape, affine, convention
        As in :func:`read_b1_map`.
    """
    if sheet_path:
        return read_b1_map(sheet_path, shape, affine, convention=convention,
                           source=B1_SOURCES["sheet"])
    if record_path is not None:
        record = json.loads(Path(record_path).read_text(encoding="utf-8"))
        name = record.get("b1")
        if name:
            return read_b1_map(Path(record_path).with_name(name), shape, affine,
                               convention=convention, source=B1_SOURCES["dicom"])
    return SessionB1(factor=None)


def write_b1_output(path: str | os.PathLike[str], b1: SessionB1, shape: tuple[int, ...],
                    affine: NDArray[np.float64]) -> None:
    """Write the session's B1 factor on the DCE grid (float32; all NaN when the session
    has none) with the :meth:`SessionB1.sidecar` keys."""
    data = (np.full(tuple(shape[:3]), np.nan) if b1.factor is None else b1.factor)
    write_nifti(path, data.astype(np.float32), affine, {
        **b1.sidecar(), "Units": "1 (actual / nominal flip angle)",
        "Description": "B1 factor on the DCE grid (matched in world coordinates, "
                       "trilinear); NaN where there is no B1 map"})


def read_b1_output(path: str | os.PathLike[str], *, use: bool = True
                   ) -> tuple[NDArray[np.float64] | None, dict[str, Any]]:
    """Read a map written by :func:`write_b1_output`: ``(factor or None, sidecar keys)``.

    ``factor`` is None when the session has no B1 map or ``use`` is False (the sidecar
    then says ``B1Applied: false``).
    """
    img = read_nifti(path, require_sidecar=True)
    side = img.sidecar
    have = side.get("B1Source") not in (None, B1_SOURCES["none"])
    b1 = SessionB1(factor=np.asarray(img.data, dtype=np.float64) if have else None,
                   source=side.get("B1Source", B1_SOURCES["none"]),
                   convention=side.get("B1Convention"), file=side.get("B1File"),
                   info={"B1Median": side.get("B1Median")})
    return b1.applied(use)
