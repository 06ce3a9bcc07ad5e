"""Import a package while one of its optional dependencies is hidden (:func:`hidden`).

Used where a dependency imports a heavy optional package eagerly that :mod:`dce` never uses
through it (:mod:`dce.io._nibabel`, :mod:`dce.io._pydicom`): the job then does not pay its
import.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hidden(module: str, importer: str) -> Iterator[None]:
    """Make ``import <module>`` fail inside the block (``sys.modules[module] = None``,
    which the importer handles as "not installed"), then unhide it, so that ``import
    <module>`` later in the process works as usual. Only when neither ``module`` nor
    ``importer`` is loaded yet; otherwise the block runs as it is."""
    hide = module not in sys.modules and importer not in sys.modules
    if hide:
        sys.modules[module] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if hide:
            del sys.modules[module]
