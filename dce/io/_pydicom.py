"""pydicom, imported without ``requests`` when neither is loaded yet.

``pydicom.pixels`` imports ``pydicom.data.download``, which imports ``requests`` (about
0.07-0.09 s of CPU, measured with ``python -X importtime``) only to download pydicom's
own test files; without it that module falls back to :mod:`urllib` (pydicom's supported
"requests not installed" path). :mod:`dce` never downloads anything, so the conversion job
should not pay for it: the import below hides ``requests`` (``sys.modules["requests"] =
None`` makes its import fail) while pydicom is imported, then unhides it, so ``import
requests`` later in the process works as usual (as :mod:`dce.io._nibabel` does for
nibabel's pydicom import). Once pydicom is loaded, this is a plain import.
"""

from __future__ import annotations

from dce.io._hide import hidden

with hidden("requests", importer="pydicom"):
    import pydicom
    import pydicom.pixels  # imports pydicom.data.download

__all__ = ["pydicom"]
