"""Atomic file replacement shared by every writer in :mod:`dce.io` and the workflow, and the
figure metadata that makes saved figures byte-reproducible."""

from __future__ import annotations

import io
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
    (recorded in the file's pHYs chunk; :func:`_save_png`), PDF as vector graphics with
    TrueType fonts (``pdf.fonttype`` 42: editable, searchable text) and no creation date."""
    import matplotlib as mpl

    with atomic_path(path) as tmp, mpl.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        if Path(path).suffix.lower() == ".png":
            _save_png(fig, tmp, dpi)
        else:
            fig.savefig(tmp, dpi=dpi, metadata=reproducible_metadata(path))


def _save_png(fig: Any, path: Path, dpi: int) -> None:
    """The figure's Agg rendering at ``dpi`` as PNG: RGB when every pixel is opaque (the
    journal figures' white background), else RGBA.

    matplotlib's own PNG writer always stores the alpha channel; for an opaque figure it is
    255 everywhere, and dropping it leaves every pixel's colour as it was while the file is
    about 10 % smaller and faster to write (measured on the session and cohort figures).
    The PNG carries the dpi (pHYs) and matplotlib's ``Software`` text, as matplotlib's
    writer does, and no date (same figure, same bytes).
    """
    import matplotlib as mpl
    import numpy as np
    from PIL import Image, PngImagePlugin  # Pillow: a requirement of matplotlib itself

    buf = io.BytesIO()
    fig.savefig(buf, format="rgba", dpi=dpi)
    raw = buf.getbuffer()
    # the canvas size of matplotlib's Agg renderer: int() of the size in pixels
    width, height = int(fig.get_figwidth() * dpi), int(fig.get_figheight() * dpi)
    if width * height * 4 != raw.nbytes:     # not the expected canvas: matplotlib's writer
        del raw
        fig.savefig(path, format="png", dpi=dpi)
        return
    rgba = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 4)
    opaque = bool(np.all(rgba[..., 3] == 255))
    image = Image.fromarray(np.ascontiguousarray(rgba[..., :3]) if opaque else rgba,
                            "RGB" if opaque else "RGBA")
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", f"Matplotlib version{mpl.__version__}, https://matplotlib.org/")
    image.save(path, format="png", dpi=(dpi, dpi), pnginfo=info)
