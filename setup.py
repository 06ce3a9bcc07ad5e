"""Build guard only (the project is described in pyproject.toml): dce needs Python >= 3.11
(``requires-python``). Said here first and plainly, because pip 23 (what a Python 3.10
venv brings) otherwise reports an unsatisfiable dependency instead (snakemake>=8.0)."""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 (the guard of the floor itself)
    sys.exit(
        f"dce needs Python >= 3.11 (as Snakemake 8+ does); this is Python "
        f"{sys.version.split()[0]} ({sys.executable}). Install with python3.11 or newer, "
        "e.g. `make PY=python3.11`."
    )

from setuptools import setup

setup()
