"""Provenance records: package versions, a configuration hash and input file hashes.

Every output set of the workflow (each session folder, and the run as a whole) carries a
``provenance.json`` built by :func:`provenance_record`, so a table found on a shared drive
can be traced to the software, the configuration and the exact input bytes that made it.

The record is deterministic (no clock times, no host names): two runs of the same inputs
with the same configuration and software write identical records.  It holds no paths or
file names of the inputs (export folder and file names can carry patient names): a folder
is summarised by its file count, byte count and one SHA-256 over the sorted
``(relative name, file SHA-256)`` pairs, which changes when any file is added, removed,
renamed or altered.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions are recorded (those that shape the numbers or the files).
PACKAGES = ("dce", "numpy", "scipy", "pandas", "nibabel", "statsmodels", "matplotlib",
            "numba", "pydicom", "highdicom", "pynrrd", "snakemake")

#: Configuration keys left out of the hash: they name where outputs go, not what they are.
OUTPUT_ONLY_KEYS = ("results",)

_CHUNK = 1 << 20


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """``{distribution: version}`` of the installed packages (``"not installed"`` if
    absent), plus ``python``."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def config_sha256(config: Mapping[str, Any],
                  exclude: Iterable[str] = OUTPUT_ONLY_KEYS) -> str:
    """SHA-256 (hex) of the configuration as canonical JSON (sorted keys), without the
    top-level keys in ``exclude``."""
    skip = set(exclude)
    body = {k: v for k, v in config.items() if k not in skip}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"kind", "n_files", "n_bytes", "sha256"}`` of a file or of every file under a
    folder (names are hashed, not stored).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (naming it).
    """
    p = Path(path)
    if p.is_file():
        return {"kind": "file", "n_files": 1, "n_bytes": p.stat().st_size,
                "sha256": file_sha256(p)}
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such file or folder (provenance input)")
    files = sorted((f for f in p.rglob("*") if f.is_file()),
                   key=lambda f: f.relative_to(p).as_posix())
    h = hashlib.sha256()
    n_bytes = 0
    for f in files:
        h.update(f.relative_to(p).as_posix().encode("utf-8") + b"\0")
        h.update(file_sha256(f).encode("ascii") + b"\n")
        n_bytes += f.stat().st_size
    return {"kind": "folder", "n_files": len(files), "n_bytes": n_bytes,
            "sha256": h.hexdigest()}


def provenance_record(*, config: Mapping[str, Any],
                      inputs: Mapping[str, str | os.PathLike[str] | None],
                      extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The provenance record of one output set.

    Parameters
    ----------
    config : the workflow configuration (hashed with :func:`config_sha256`).
    inputs : ``{role: path}`` of the inputs (e.g. ``dicom_dir``, ``lesion_roi``); a role
        whose path is ``None`` or empty is recorded as absent.
    extra : further JSON-serialisable entries (e.g. subject and session IDs).
    """
    digests: dict[str, Any] = {}
    for role in sorted(inputs):
        path = inputs[role]
        digests[role] = tree_digest(path) if path else None
    record: dict[str, Any] = dict(extra or {})
    record.update({
        "software": package_versions(),
        "config_sha256": config_sha256(config),
        "config_sha256_excludes": list(OUTPUT_ONLY_KEYS),
        "inputs": digests,
    })
    return record
