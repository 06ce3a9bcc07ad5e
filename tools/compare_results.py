#!/usr/bin/env python3
"""Compare two results folders of the workflow (e.g. a SLURM run against a local run).

Usage: python tools/compare_results.py RESULTS_A RESULTS_B

- every ``.tsv`` must be byte-identical;
- every NIfTI (``.nii``, ``.nii.gz``) must hold identical voxel data (shape, dtype after
  scaling, values with NaN == NaN) and the same affine;
- every other file (figures, JSON sidecars and records, text tables) must exist in both
  folders; its content is not compared here (tests/test_reliability.py compares JSON and
  text tables byte for byte between two local runs).

Skipped: ``benchmarks/`` and ``logs/`` at any depth (timings, host and process details)
and ``report*.html`` at the top (only made by ``snakemake --report``).
Exit status 0 if equal, 1 on any difference, 2 on a usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

SKIP_DIRS = {"benchmarks", "logs"}
MAX_SHOWN = 20


def _is_nifti(rel: str) -> bool:
    return rel.endswith((".nii", ".nii.gz"))


def _files(root: Path) -> set[str]:
    out = set()
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        rel = p.relative_to(root)
        if SKIP_DIRS.intersection(rel.parts[:-1]):
            continue
        if len(rel.parts) == 1 and rel.name.startswith("report") and rel.suffix == ".html":
            continue
        out.add(rel.as_posix())
    return out


def _load_nifti(path: Path) -> nib.Nifti1Image | nib.Nifti2Image:
    img = nib.load(path)
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ValueError(f"{path}: not a NIfTI image ({type(img).__name__})")
    return img


def _nifti_difference(a: Path, b: Path) -> str | None:
    img_a, img_b = _load_nifti(a), _load_nifti(b)
    if img_a.shape != img_b.shape:
        return f"shape {img_a.shape} != {img_b.shape}"
    if not np.array_equal(img_a.affine, img_b.affine):
        return "affine differs"
    data_a = np.asanyarray(img_a.dataobj)
    data_b = np.asanyarray(img_b.dataobj)
    if data_a.dtype != data_b.dtype:
        return f"dtype {data_a.dtype} != {data_b.dtype}"
    floating = np.issubdtype(data_a.dtype, np.floating)
    if np.array_equal(data_a, data_b, equal_nan=floating):
        return None
    if floating:
        same = (data_a == data_b) | (np.isnan(data_a) & np.isnan(data_b))
        diff = np.abs(data_a.astype(np.float64) - data_b.astype(np.float64))
        biggest = float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
        return f"{int(np.count_nonzero(~same))} voxel value(s) differ, max |diff| {biggest:.3g}"
    return f"{int(np.count_nonzero(data_a != data_b))} voxel value(s) differ"


def compare(root_a: Path, root_b: Path) -> list[str]:
    """Differences between the two folders, one line each (empty: equal)."""
    files_a, files_b = _files(root_a), _files(root_b)
    problems = [f"only in {root_a}: {rel}" for rel in sorted(files_a - files_b)]
    problems += [f"only in {root_b}: {rel}" for rel in sorted(files_b - files_a)]
    counts = {"tsv": 0, "nifti": 0, "other": 0}
    for rel in sorted(files_a & files_b):
        a, b = root_a / rel, root_b / rel
        if rel.endswith(".tsv"):
            counts["tsv"] += 1
            if a.read_bytes() != b.read_bytes():
                problems.append(f"tsv differs: {rel}")
        elif _is_nifti(rel):
            counts["nifti"] += 1
            why = _nifti_difference(a, b)
            if why:
                problems.append(f"nifti differs: {rel}: {why}")
        else:
            counts["other"] += 1
    print(
        f"compared {counts['tsv']} TSV (bytes), {counts['nifti']} NIfTI (voxel data); "
        f"{counts['other']} other files present in both (not compared)"
    )
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root_a, root_b = Path(argv[0]), Path(argv[1])
    for root in (root_a, root_b):
        if not root.is_dir():
            print(f"not a folder: {root}", file=sys.stderr)
            return 2
    problems = compare(root_a, root_b)
    for line in problems[:MAX_SHOWN]:
        print(line)
    if len(problems) > MAX_SHOWN:
        print(f"... and {len(problems) - MAX_SHOWN} more")
    if problems:
        print(f"DIFFERENT: {len(problems)} difference(s) between {root_a} and {root_b}")
        return 1
    print(f"EQUAL: {root_a} and {root_b}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
