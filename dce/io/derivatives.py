"""The results folder as a BIDS derivatives dataset: ``dataset_description.json``,
``.bidsignore``, ``Sources`` in the sidecars, and a checker of the naming rules.

The rules (docs/outputs.md, "Outputs as a BIDS derivatives dataset") that
:func:`check_derivatives` enforces on a results root:

1. ``dataset_description.json`` at the root with ``Name``, ``BIDSVersion``,
   ``DatasetType`` = ``"derivative"`` and ``GeneratedBy`` (a non-empty list of objects,
   each with ``Name``).
2. Every other top-level entry is a subject folder ``sub-<label>`` or is matched by a
   pattern of the root's ``.bidsignore`` (project folders: ``cohort/``, ``logs/``,
   ``benchmarks/``, the run's ``provenance.json``, the report).
3. A subject folder holds only session folders ``ses-<label>``; a session folder holds
   only files named ``sub-<s>_ses-<t>[_<key>-<value>]*_<suffix><ext>``, with ``<s>`` and
   ``<t>`` those of the folders, keys, values and suffix alphanumeric, ``<ext>`` one of
   :data:`EXTENSIONS`.  (No datatype level such as ``anat/``: the project's layout puts a
   session's files side by side.)
4. Every NIfTI has a JSON sidecar (same name, ``.json``); every JSON file is an object.
5. Required sidecar keys by suffix (:func:`required_keys`): the converted images carry
   their BIDS acquisition keys, every derived image its ``Sources``, every registry map
   ``Quantity``, ``Column``, ``Units``.
6. ``Sources`` is a list of BIDS URIs ``bids::<path relative to the root>`` of files that
   exist in the dataset (never absolute paths, ``..`` or source DICOM paths), or of a
   temporary intermediate (:data:`INTERMEDIATES`, removed after the run) whose JSON
   sidecar exists.
7. No sidecar uses a retired unit-suffixed key where BIDS defines one
   (:data:`RETIRED_KEYS`, e.g. ``RepetitionTime_s`` -> ``RepetitionTime``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from dce import __version__
from dce.io._atomic import atomic_path
from dce.registry import output_map

__all__ = ["BIDSIGNORE", "BIDS_VERSION", "EXTENSIONS", "INTERMEDIATES", "RETIRED_KEYS",
           "bids_uri", "check_derivatives", "dataset_description", "derived_sources",
           "required_keys", "write_dataset_description"]

PathLike = str | os.PathLike[str]

#: BIDS version whose derivative rules the results follow.
BIDS_VERSION = "1.10.0"

#: Patterns of ``.bidsignore`` (gitignore style): the project's non-BIDS top-level entries.
BIDSIGNORE = ("cohort/", "logs/", "benchmarks/", "provenance.json", "*.html")

#: File extensions allowed in a session folder.
EXTENSIONS = (".nii.gz", ".nii", ".json", ".tsv", ".png", ".pdf", ".tfm")  # .tfm: ITK transform

#: Suffixes of the temporary intermediates (the workflow's ``outputs.keep_intermediates``
#: false): the image may be gone, its JSON sidecar stays as the record of a ``Sources`` entry.
INTERMEDIATES = ("conc",)

#: Old project key -> BIDS key (same unit: s, deg, T, mm).  Issue 13 item 8.
RETIRED_KEYS = {
    "RepetitionTime_s": "RepetitionTime",
    "FlipAngle_deg": "FlipAngle",
    "MagneticFieldStrength_T": "MagneticFieldStrength",
    "SliceThickness_mm": "SliceThickness",
    "EchoTime_s": "EchoTime",
    "AcquisitionTimes_s": "VolumeTiming",
}

#: Sidecar keys required by suffix, besides those of the registry maps.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "dce": ("VolumeTiming", "FlipAngle", "RepetitionTime"),
    "vfa": ("FlipAngles_deg", "RepetitionTime"),
    "T1map": ("Sources", "Units"),
    "M0map": ("Sources",),
    "conc": ("Sources", "Units", "VolumeTiming"),
    "concstatus": ("Sources",),
    "aifvoxels": ("Sources",),
    "aif": ("Sources",),           # the JSON of aif.tsv (the AIF QC record)
}

_LABEL = re.compile(r"[A-Za-z0-9]+")
_ENTITY = re.compile(r"([A-Za-z0-9]+)-([A-Za-z0-9]+)")
_URI = "bids::"


def dataset_description() -> dict[str, Any]:
    """The ``dataset_description.json`` of the results (deterministic: no dates).

    ``SourceDatasets`` is left out: the sources are DICOM folders named in the sessions
    sheet, not BIDS datasets, and their paths may carry identifiers (their hashes are in
    ``provenance.json``).  No ``License``: the study decides the data's license.
    """
    return {
        "Name": "DCE-MRI of spinal bone lesions: per-session maps and lesion statistics",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{
            "Name": "dce",
            "Version": __version__,
            "Description": ("Snakemake workflow and Python package dce: DICOM conversion, "
                            "T1 mapping, concentration, AIF, tracer-kinetic fit, "
                            "semi-quantitative maps, ROI statistics, cohort analysis"),
        }],
    }


def write_dataset_description(root: PathLike) -> tuple[Path, Path]:
    """Write ``dataset_description.json`` and ``.bidsignore`` into ``root`` (atomically).

    Returns
    -------
    (Path, Path)
        The two files.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    desc, ignore = root / "dataset_description.json", root / ".bidsignore"
    with atomic_path(desc) as tmp:
        tmp.write_text(json.dumps(dataset_description(), indent=2) + "\n", encoding="utf-8")
    with atomic_path(ignore) as tmp:
        tmp.write_text("\n".join(BIDSIGNORE) + "\n", encoding="utf-8")
    return desc, ignore


def bids_uri(path: PathLike, root: PathLike) -> str:
    """``bids::<relative path>`` of a file inside the dataset ``root``.

    Raises
    ------
    ValueError
        ``path`` is not inside ``root`` (naming both).
    """
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    posix = PurePosixPath(*Path(rel).parts)
    if posix.is_absolute() or (posix.parts and posix.parts[0] == "..") or rel == ".":
        raise ValueError(f"{path}: not a file inside the derivative dataset {root}")
    return f"{_URI}{posix}"


def derived_sources(paths: Iterable[PathLike], root: PathLike) -> list[str]:
    """The ``Sources`` of a derived file: :func:`bids_uri` of each input inside ``root``,
    in order, without repeats.  Inputs outside the dataset (DICOM folders, ROI files of
    the sessions sheet) are left out: their paths may hold identifiers; their hashes are
    in the provenance records."""
    out: list[str] = []
    for p in paths:
        try:
            uri = bids_uri(p, root)
        except ValueError:
            continue
        if uri not in out:
            out.append(uri)
    return out


def required_keys(suffix: str) -> tuple[str, ...]:
    """Sidecar keys a file with this suffix must have (rule 5; registry maps:
    ``Quantity``, ``Column``, ``Units``, ``Sources``)."""
    if suffix in _REQUIRED:
        return _REQUIRED[suffix]
    try:
        output_map(suffix)
    except KeyError:
        return ()
    return ("Quantity", "Column", "Units", "Sources")


def _ignored(name: str, is_dir: bool, patterns: list[str]) -> bool:
    for pat in patterns:
        if pat.endswith("/"):
            if is_dir and fnmatch.fnmatchcase(name, pat.rstrip("/").lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(name, pat.lstrip("/")):
            return True
    return False


def _split_name(name: str) -> tuple[str, str] | None:
    for ext in EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)], ext
    return None


def _check_json(path: Path, root: Path, suffix: str) -> list[str]:
    rel = path.relative_to(root).as_posix()
    try:
        side = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{rel}: not readable JSON ({exc})"]
    if not isinstance(side, dict):
        return [f"{rel}: JSON is not an object"]
    out = [f"{rel}: lacks required key {k!r}" for k in required_keys(suffix) if k not in side]
    out += [f"{rel}: retired key {k!r}; use {RETIRED_KEYS[k]!r}"
            for k in side if k in RETIRED_KEYS]
    if "Sources" in side:
        src = side["Sources"]
        if not isinstance(src, list) or not src:
            out.append(f"{rel}: 'Sources' must be a non-empty list of BIDS URIs")
        else:
            for uri in src:
                target = str(uri)[len(_URI):] if str(uri).startswith(_URI) else None
                if target is None or target.startswith("/") or ".." in target.split("/"):
                    out.append(f"{rel}: 'Sources' entry {uri!r} is not a BIDS URI "
                               "'bids::<path inside the dataset>'")
                elif not (root / target).is_file() and not _removed_intermediate(root,
                                                                                 target):
                    out.append(f"{rel}: 'Sources' entry {uri!r} names no file of the dataset")
    return out


def _removed_intermediate(root: Path, target: str) -> bool:
    """Whether ``target`` (relative to ``root``) is a NIfTI of a temporary intermediate
    (:data:`INTERMEDIATES`) whose JSON sidecar exists."""
    split = _split_name(PurePosixPath(target).name)
    if split is None or split[1] not in (".nii.gz", ".nii"):
        return False
    suffix = split[0].rsplit("_", 1)[-1]
    return suffix in INTERMEDIATES and (root / (target[: -len(split[1])] + ".json")).is_file()


def _check_session(ses_dir: Path, root: Path, sub: str, ses: str) -> list[str]:
    out: list[str] = []
    prefix = f"sub-{sub}_ses-{ses}_"
    for path in sorted(ses_dir.iterdir()):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            out.append(f"{rel}: unexpected folder in a session folder")
            continue
        split = _split_name(path.name)
        if split is None:
            out.append(f"{rel}: extension not one of {', '.join(EXTENSIONS)}")
            continue
        stem, ext = split
        if not stem.startswith(prefix):
            out.append(f"{rel}: name must start with {prefix!r}")
            continue
        *entities, suffix = stem[len(prefix):].split("_")
        bad = [e for e in entities if not _ENTITY.fullmatch(e)]
        if bad or not _LABEL.fullmatch(suffix):
            out.append(f"{rel}: not sub-<s>_ses-<t>[_<key>-<value>]*_<suffix>{ext} with "
                       "alphanumeric keys, values and suffix")
            continue
        if ext in (".nii", ".nii.gz"):
            side = ses_dir / f"{stem}.json"
            if not side.is_file():
                out.append(f"{rel}: NIfTI without JSON sidecar {side.name}")
        elif ext == ".json":
            out += _check_json(path, root, suffix)
    return out


def check_derivatives(root: PathLike) -> list[str]:
    """Violations of the naming and sidecar rules (module docstring) under ``root``.

    Parameters
    ----------
    root : path-like
        The results folder (``config["results"]``).

    Returns
    -------
    list of str
        One message per violation, naming the file relative to ``root``; empty when the
        folder passes.
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: no such folder"]
    out: list[str] = []
    desc = root / "dataset_description.json"
    if not desc.is_file():
        out.append("dataset_description.json: missing")
    else:
        try:
            d = json.loads(desc.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            d = None
            out.append(f"dataset_description.json: invalid JSON ({exc})")
        if isinstance(d, dict):
            out += [f"dataset_description.json: lacks {k!r}"
                    for k in ("Name", "BIDSVersion", "DatasetType", "GeneratedBy") if k not in d]
            if "DatasetType" in d and d["DatasetType"] != "derivative":
                out.append(f"dataset_description.json: DatasetType {d['DatasetType']!r}, "
                           "expected 'derivative'")
            gen = d.get("GeneratedBy")
            if "GeneratedBy" in d and not (isinstance(gen, list) and gen and all(
                    isinstance(g, dict) and g.get("Name") for g in gen)):
                out.append("dataset_description.json: GeneratedBy must be a non-empty list "
                           "of objects with 'Name'")
        elif d is not None:
            out.append("dataset_description.json: not a JSON object")
    ignore = root / ".bidsignore"
    patterns = [ln.strip() for ln in ignore.read_text(encoding="utf-8").splitlines()
                if ln.strip() and not ln.startswith("#")] if ignore.is_file() else []
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name in ("dataset_description.json", ".bidsignore"):
            continue
        if entry.is_dir() and name.startswith("sub-"):
            sub = name[4:]
            if not _LABEL.fullmatch(sub):
                out.append(f"{name}: subject label must be alphanumeric")
                continue
            for ses_dir in sorted(entry.iterdir()):
                rel = ses_dir.relative_to(root).as_posix()
                ses = ses_dir.name[4:]
                if not (ses_dir.is_dir() and ses_dir.name.startswith("ses-")
                        and _LABEL.fullmatch(ses)):
                    out.append(f"{rel}: a subject folder holds only ses-<label> folders")
                    continue
                out += _check_session(ses_dir, root, sub, ses)
        elif not _ignored(name, entry.is_dir(), patterns):
            out.append(f"{name}: top-level entry neither sub-<label> nor in .bidsignore")
    return out
