"""Readable, compact JSON text for the records and sidecars :mod:`dce.io` writes.

Objects are indented by 2 like ``json.dumps(obj, indent=2)``, but a list of scalars is
written on one line and a list of such lists one inner list per line: a list of 1,775
voxel indices takes 1,775 lines instead of 8,875 (the AIF QC record: 75 KB -> 27 KB),
and a delay grid one line instead of 25. The values are exactly those of
:func:`json.dumps` (``json.loads`` of either text gives the same object).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps"]

_SCALAR = (str, int, float, bool, type(None))


def _is_scalar_list(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(v, _SCALAR) for v in x)


def dumps(obj: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """JSON text of ``obj`` (NaN and infinity refused), no trailing newline.

    Parameters
    ----------
    obj : JSON-serialisable
    default : callable, optional
        As in :func:`json.dumps` (converts objects JSON cannot serialise).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        NaN or infinite numbers.
    TypeError
        An object that is not serialisable (and ``default`` does not convert).
    """
    def one(x: Any) -> str:
        return json.dumps(x, allow_nan=False, default=default)

    def enc(x: Any, pad: str) -> str:
        if default is not None and not isinstance(x, (*_SCALAR, dict, list, tuple)):
            x = default(x)
        inner = pad + "  "
        if isinstance(x, dict):
            if not x:
                return "{}"
            items = [f"{inner}{json.dumps(k if isinstance(k, str) else one(k))}: "
                     f"{enc(v, inner)}" for k, v in x.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(x, (list, tuple)):
            if default is not None:
                x = [v if isinstance(v, (*_SCALAR, dict, list, tuple)) else default(v)
                     for v in x]
            if _is_scalar_list(x):
                return one(list(x))
            if all(_is_scalar_list(v) for v in x):
                return "[\n" + ",\n".join(inner + one(list(v)) for v in x) + f"\n{pad}]"
            return "[\n" + ",\n".join(inner + enc(v, inner) for v in x) + f"\n{pad}]"
        return one(x)

    return enc(obj, "")
