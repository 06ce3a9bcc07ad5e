"""Atomic file replacement shared by every writer in :mod:`dce.io` and the workflow, and the
figure metadata that makes saved figures byte-reproducible."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "reproducible_metadata"]


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
