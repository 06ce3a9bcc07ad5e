"""Atomic file replacement shared by every writer in :mod:`dce.io` and the workflow, and the
figure metadata that makes saved figures byte-reproducible."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["FIGURE_DPI", "atomic_path", "reproducible_metadata", "save_figure_atomic"]

#: Resolution of the PNG figures (dpi; journals ask for 300 at the printed size).
FIGURE_DPI = 300


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary name keeps the final suffix (writers such as matplotlib choose the
    format from it). The parent folder is created. On any error the temporary file is
    removed and ``path`` is left as it was, so no partial output is ever visible.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{p.suffix}")
    try:
        yield tmp
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def reproducible_metadata(path: str | os.PathLike[str]) -> dict[str, None] | None:
    """``savefig`` metadata without the creation date for PDF, so that the same figure gives
    the same bytes on every run (PNG carries no date); None for other formats."""
    return {"CreationDate": None} if Path(path).suffix.lower() == ".pdf" else None


def save_figure_atomic(fig: Any, path: str | os.PathLike[str], dpi: int = FIGURE_DPI) -> None:
    """Save a matplotlib figure atomically (the format from the suffix): PNG at ``dpi``
    (recorded in the file's pHYs chunk), PDF as vector graphics with TrueType fonts
    (``pdf.fonttype`` 42: editable, searchable text) and no creation date."""
    import matplotlib as mpl

    with atomic_path(path) as tmp, mpl.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        fig.savefig(tmp, dpi=dpi, metadata=reproducible_metadata(path))
