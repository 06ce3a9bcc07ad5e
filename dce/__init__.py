"""dce: DCE-MRI analysis for spinal bone lesions treated with radiation.

Pure numerics live in the submodules (``signal``, ``t1``, ``aif``, ``models``, ``fit``,
``semiquant``); file input and output only in :mod:`dce.io`.
"""

import sys

# a checkout used without install (PYTHONPATH) skips pip's requires-python check
if sys.version_info < (3, 11):  # noqa: UP036 (the guard of the floor itself)
    raise ImportError(
        f"dce needs Python >= 3.11 (pyproject.toml requires-python; Snakemake 8+ needs it "
        f"too); this is Python {sys.version.split()[0]} ({sys.executable})"
    )

__version__ = "0.1.0"
