"""The locked environment: constraints.txt pins every requirement of pyproject.toml within
its bounds, workflow/envs/dce.yaml pins the same versions, and the Python floor (3.11) is
the same everywhere and refused clearly below it (pip install, import of a checkout)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCK = REPO / "constraints.txt"
FLOOR = (3, 11)


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line.strip())
        assert m, f"constraints.txt: not a pin: {line!r}"
        name = canonicalize_name(m[1])
        assert name not in pins, f"constraints.txt: {name} pinned twice"
        pins[name] = Version(m[2])
    return pins


def _requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in ("dev", "slurm"):
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_lock_pins_every_requirement_within_its_bounds() -> None:
    pins = _lock()
    assert "dce" not in pins                              # the package itself is not pinned
    assert len(pins) > 50                                 # the transitive closure, not a stub
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt: no pin of {req.name}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt: {name}=={pins[name]} outside pyproject.toml's {req}")


def test_conda_env_pins_the_locked_versions() -> None:
    env = yaml.safe_load((REPO / "workflow" / "envs" / "dce.yaml").read_text())
    pins = _lock()
    conda: dict[str, str] = {}
    pip: list[str] = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
            continue
        name, _, spec = dep.partition(" ")
        conda[name] = spec.strip()
    assert pip == ["-c ../../constraints.txt", "-e ../.."]
    locked_python = re.search(r"generated with Python (\d+)\.(\d+)", LOCK.read_text())
    assert locked_python, "constraints.txt: no 'generated with Python' line"
    assert conda.pop("python") == f"={locked_python[1]}.{locked_python[2]}"
    assert conda.pop("pip") == ""
    aliases = {"matplotlib-base": "matplotlib"}
    for name, spec in conda.items():
        pypi = canonicalize_name(aliases.get(name, name))
        assert spec == f"=={pins[pypi]}", f"dce.yaml: {name} {spec}, constraints.txt {pins[pypi]}"
    # every runtime requirement available on conda-forge comes from conda, not pip
    runtime = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    from_conda = {canonicalize_name(aliases.get(n, n)) for n in conda}
    assert runtime - from_conda == {"snakemake", "highdicom", "pynrrd"}


def test_python_floor_is_stated_alike_everywhere() -> None:
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py311"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == "3.11"
    for path in ("setup.py", "dce/__init__.py", "Makefile"):
        assert "sys.version_info < (3, 11)" in (REPO / path).read_text() or \
            "sys.version_info >= (3, 11)" in (REPO / path).read_text(), path


def test_checkout_import_below_the_floor_fails_clearly() -> None:
    """A checkout on PYTHONPATH (no pip check) imported by Python 3.10: ImportError."""
    code = "import sys; sys.version_info = (3, 10, 13, 'final', 0); import dce"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 1
    assert "ImportError: dce needs Python >= 3.11" in done.stderr


def _python310() -> str | None:
    candidates = [shutil.which("python3.10"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python")))]
    for exe in filter(None, candidates):
        done = subprocess.run([exe, "-c", "import sys, setuptools; print(sys.version_info[:2])"],
                              capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == "(3, 10)":
            return exe
    return None


def test_pip_install_on_python_310_fails_clearly(tmp_path: Path) -> None:
    """``pip install -e .`` with a Python 3.10 (offline: no index, no build isolation, the
    interpreter's own setuptools) stops at setup.py's message, whatever the pip version
    (pip 23, as a 3.10 venv brings it, would otherwise report snakemake>=8 as missing)."""
    exe = _python310()
    if exe is None:
        pytest.skip("no Python 3.10 with setuptools on this machine")
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    done = subprocess.run(
        [exe, "-m", "pip", "install", "--isolated", "--dry-run", "--no-index",
         "--no-build-isolation", "--no-deps", "-e", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode != 0
    assert "dce needs Python >= 3.11" in done.stdout + done.stderr, done.stderr[-2000:]
