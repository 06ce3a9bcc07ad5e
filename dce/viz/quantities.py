"""Display quantities of the map columns (symbol, unit, decimals, scale): how each map's
values are shown in figures and tables.

Without pandas, so that the per-session figure jobs (rule prm) need not import it;
re-exported by :mod:`dce.cohort.display`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["QUANTITIES", "Quantity", "quantity"]


@dataclass(frozen=True)
class Quantity:
    """How one map's values are shown.

    Attributes
    ----------
    symbol : str
        Display name, e.g. ``"Ktrans"``.
    unit : str
        Display unit (``""`` when dimensionless), e.g. ``"min⁻¹"``.
    decimals : int
        Decimals printed (in display units).
    scale : float
        Machine value x ``scale`` = display value (``vp``: fraction -> %).
    change_unit : str or None
        Unit of an absolute change when it differs from ``unit`` (``vp``: percentage
        points).
    """

    symbol: str
    unit: str
    decimals: int
    scale: float = 1.0
    change_unit: str | None = None

    def label(self, unit: str | None = None) -> str:
        """``"Ktrans (min⁻¹)"``; ``unit`` overrides the unit."""
        u = self.unit if unit is None else unit
        return f"{self.symbol} ({u})" if u else self.symbol


#: Display quantity per registry map column (:data:`dce.registry.MAPS`); IAUC columns
#: (``iauc_<w>s``) are made by :func:`quantity`.
QUANTITIES: dict[str, Quantity] = {
    "ktrans_per_min": Quantity("Ktrans", "min⁻¹", 3),
    "kep_per_min": Quantity("kep", "min⁻¹", 2),
    "ve": Quantity("ve", "", 2),
    "vp": Quantity("Vp", "%", 1, scale=100.0, change_unit="percentage points"),
    "r2": Quantity("R²", "", 2),
    "rmse_mM": Quantity("RMSE", "mM", 3),
    "delay_s": Quantity("delay", "s", 1),
    "status": Quantity("fit status", "", 0),
    "peak_enhancement_pct": Quantity("peak enhancement", "%", 0),
    "time_to_peak_s": Quantity("time to peak", "s", 0),
    "wash_in_slope_pct_per_s": Quantity("wash-in slope", "%/s", 2),
    "max_slope_pct_per_s": Quantity("maximum slope", "%/s", 2),
    "washout_pct": Quantity("washout", "%", 1),
    "tic_type_code": Quantity("TIC type", "", 0),
}
_IAUC_COLUMN = re.compile(r"iauc_(\d+(?:\.\d+)?)s")


def quantity(column: str) -> Quantity | None:
    """The display quantity of a map column (``vp``, ``iauc_60s``), or None."""
    if column in QUANTITIES:
        return QUANTITIES[column]
    m = _IAUC_COLUMN.fullmatch(column)
    if m:
        return Quantity(f"iAUC{float(m.group(1)):g}", "a.u.·s", 0)
    return None
