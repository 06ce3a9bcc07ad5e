"""Helpers of the workflow tests: run Snakemake on a generated cohort, plant canary
identifiers in its DICOM, break DICOM exports in known ways, compare two result trees.

Not a test module (no ``test_`` prefix); the fixtures using it live in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import yaml
from pydicom.uid import generate_uid
from snakemake import api as snakemake_api
from snakemake.settings import types as st

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"
_CFG = yaml.safe_load(TEST_CONFIG.read_text())
DEMO = Path(_CFG["sessions"]).parent      # relative to the work directory
RESULTS = Path(_CFG["results"])

#: Set by tests/conftest.py before each test: whether it is marked ``workflow`` (only
#: those may run Snakemake; the unit layer is ``pytest -m "not workflow"``).
WORKFLOW_ALLOWED = True


def _check_allowed() -> None:
    if not WORKFLOW_ALLOWED:
        raise RuntimeError("this test runs Snakemake: mark it @pytest.mark.workflow")


#: Identifiers planted in every DICOM file of the test cohort (none may reach an output).
CANARY_TAGS = {
    "PatientName": "CANARYFAMILY^GIVEN",
    "PatientID": "CANARYPID123",
    "PatientBirthDate": "19230405",
    "StudyDate": "19870605",
    "StudyTime": "071317",
    "InstitutionName": "CANARYHOSPITAL",
    "InstitutionAddress": "1 CANARYSTREET",
    "ReferringPhysicianName": "CANARYREF^DOC",
    "OperatorsName": "CANARYOP^X",
    "AccessionNumber": "CANARYACC77",
    "StationName": "CANARYSTATION",
    "OtherPatientIDs": "CANARYOTHERID",
    "StudyDescription": "CANARYSTUDYDESC",
}


@contextlib.contextmanager
def cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    try:
        yield
    finally:
        os.chdir(old)


def snakemake(workdir: Path, *, config: dict[str, Any] | None = None,
              configfiles: list[Path] | None = None, targets: list[str] | None = None,
              mode: str = "run", keep_going: bool = False, cores: int = 2) -> str:
    """Run the workflow in ``workdir``: ``mode`` = run, dryrun or summary.

    Returns what snakemake printed on stdout (the summary table for ``summary``).
    """
    _check_allowed()
    out = io.StringIO()
    with cwd(workdir), contextlib.redirect_stdout(out), snakemake_api.SnakemakeApi(
            st.OutputSettings(quiet={st.Quietness.PROGRESS, st.Quietness.RULES})) as api:
        wf = api.workflow(
            resource_settings=st.ResourceSettings(cores=cores),
            config_settings=st.ConfigSettings(
                configfiles=list(configfiles or [TEST_CONFIG]), config=config or {}),
            snakefile=SNAKEFILE, workdir=workdir)
        dag = wf.dag(st.DAGSettings(targets=set(targets or [])))
        if mode == "summary":
            dag.summary()
        else:
            dag.execute_workflow(
                executor="dryrun" if mode == "dryrun" else "local",
                execution_settings=st.ExecutionSettings(keep_going=keep_going))
    return out.getvalue()


def snakemake_cli(workdir: Path, *args: str) -> list[str]:
    """The command line running the workflow on the test configuration in ``workdir``."""
    _check_allowed()
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
            "--configfile", str(TEST_CONFIG), "--cores", "2", *args]


def plan(summary: str) -> pd.DataFrame:
    """The ``--summary`` table: output_file, rule, plan, ..."""
    lines = [ln for ln in summary.splitlines() if ln.count("\t") >= 3]
    header = lines[0].split("\t")
    return pd.DataFrame([ln.split("\t") for ln in lines[1:]], columns=header)


def sessions_sheet(work: Path) -> pd.DataFrame:
    return pd.read_csv(work / DEMO / "sessions.tsv", sep="\t",
                       dtype={"subject": str, "session": str}, keep_default_na=False)


# --------------------------------------------------------------------------- cohort


def plant_canaries(folder: Path) -> list[str]:
    """Write :data:`CANARY_TAGS` into every DICOM file under ``folder``; returns the
    needles to search the outputs for (tag values, also with ``^`` as a space, and the
    study/series UIDs of the files)."""
    needles = set(CANARY_TAGS.values())
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(f)
        except pydicom.errors.InvalidDicomError:
            continue
        for kw, value in CANARY_TAGS.items():
            setattr(ds, kw, value)
        needles |= {str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)}
        ds.save_as(f)
    needles |= {n.replace("^", " ") for n in needles if "^" in n}
    return sorted(needles)


def prepare_cohort(work: Path) -> list[str]:
    """Generate the test cohort in ``work`` (the demo_cohort rule) and plant canary
    identifiers in its DICOM; returns the needles."""
    snakemake(work, targets=[str(DEMO / "sessions.tsv")])
    return plant_canaries(work / DEMO)


#: Session of the test cohort given a sheet B1 map by :func:`add_b1_map` (row 0).
B1_PERCENT = 100.0


def add_b1_map(work: Path) -> tuple[str, str]:
    """Give the first session of the test cohort a ``b1_map``: a uniform 100 % map (the
    phantom has no B1 inhomogeneity, so the outputs stay those of the phantom) on a
    coarser grid (2x voxels) shifted by a fraction of a voxel and larger than the DCE
    field of view, no sidecar (the unit is found from the values). Returns (subject,
    session)."""
    sheet = sessions_sheet(work)
    row = sheet.iloc[0]
    roi: Any = nib.load(work / DEMO / str(row["lesion_roi"]))     # on the DCE grid
    lin, origin = np.asarray(roi.affine)[:3, :3], np.asarray(roi.affine)[:3, 3]
    aff = np.eye(4)
    aff[:3, :3] = lin * 2.0
    aff[:3, 3] = origin + lin @ [-1.7, -1.7, -1.7]
    shape = tuple(int(n) // 2 + 4 for n in roi.shape[:3])
    rel = Path(str(row["lesion_roi"])).parent / "b1map.nii.gz"
    nib.save(nib.Nifti1Image(np.full(shape, B1_PERCENT, dtype=np.float32), aff),
             work / DEMO / rel)
    sheet["b1_map"] = ""
    sheet.loc[0, "b1_map"] = str(rel)
    sheet.to_csv(work / DEMO / "sessions.tsv", sep="\t", index=False)
    return str(row["subject"]), str(row["session"])


# --------------------------------------------------------------------------- broken DICOM


def _dce_files(folder: Path) -> list[tuple[Path, Any]]:
    out = []
    for f in sorted(folder.iterdir()):
        try:  # other files are skipped, as dce.io.dicom does (e.g. Snakemake's
            # .snakemake_timestamp in the demo's DICOM folders, directory() outputs)
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        if "vfa" not in str(ds.get("SeriesDescription", "")).lower():
            out.append((f, ds))
    return out


def _phases(files: list[tuple[Path, Any]]) -> tuple[str, list[str]]:
    """(timing keyword, its distinct values in time order) of the DCE files."""
    kw = next(k for k in ("TriggerTime", "AcquisitionTime") if k in files[0][1])
    values = sorted({str(ds.get(kw, 0)) for _, ds in files}, key=float)
    return kw, values


def break_dicom(src: Path, dst: Path, kind: str) -> Path:
    """Copy the DICOM folder ``src`` to ``dst`` with one defect (classic single-frame
    files with TriggerTime or AcquisitionTime timing; returns the file concerned or
    ``dst``)."""
    shutil.copytree(src, dst)
    files = _dce_files(dst)
    kw, times = _phases(files)
    target = files[len(files) // 2][0]
    if kind == "truncated":                # pixel data cut short
        raw = target.read_bytes()
        target.write_bytes(raw[: int(len(raw) * 0.6)])
        return target
    if kind == "corrupt":                  # DICOM marker, header destroyed
        raw = target.read_bytes()
        target.write_bytes(raw[:132] + b"\xff" * 200)
        return target
    if kind == "missing_phase":            # every slice of the middle phase lost
        for f, ds in files:
            if str(ds.get(kw, 0)) == times[len(times) // 2]:
                f.unlink()
        return dst
    if kind == "duplicated_slice":
        copy = dst / "copy_of_one_slice"
        shutil.copy(files[5][0], copy)
        return copy
    if kind == "repeated_time":            # phase 11 carries the time of phase 10
        for f, ds in files:
            if str(ds.get(kw, 0)) == times[11]:
                full = pydicom.dcmread(f)
                full[kw].value = full[kw].value.__class__(times[10])
                full.save_as(f)
        return dst
    if kind == "no_dce":
        for f, _ in files:
            f.unlink()
        return dst
    if kind == "two_dce":                  # the DCE series exported twice
        uid = generate_uid()
        for f, _ in files:
            full = pydicom.dcmread(f)
            full.SeriesInstanceUID, full.SeriesNumber = uid, 99
            full.SOPInstanceUID = generate_uid()
            full.save_as(dst / f"b_{f.name}")
        return dst
    if kind == "zero_baseline":            # the first four phases blank
        for f, ds in files:
            if str(ds.get(kw, 0)) in times[:4]:
                full = pydicom.dcmread(f)
                full.PixelData = bytes(len(full.PixelData))
                full.save_as(f)
        return dst
    raise ValueError(f"unknown defect {kind!r}")


# --------------------------------------------------------------------------- comparison

#: Result files compared byte for byte.
EXACT_SUFFIXES = (".tsv", ".json", ".md", ".tex", ".html", ".txt", ".png", ".pdf")
#: Folders of the results holding run-specific records (timings, logs).
RUN_SPECIFIC = ("benchmarks", "logs")


def result_files(root: Path) -> dict[str, Path]:
    """Relative path -> file of every result under ``root`` except timings and logs."""
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] not in RUN_SPECIFIC}


def compare_results(a: Path, b: Path) -> dict[str, int]:
    """Assert two result trees agree: same files, tables/JSON/text byte-identical, NIfTI
    voxel data, dtype and affine identical. Returns counts per kind of file compared."""
    fa, fb = result_files(a), result_files(b)
    assert sorted(fa) == sorted(fb), sorted(set(fa) ^ set(fb))
    counts = {"exact": 0, "nifti": 0, "nifti_gz_bytes_equal": 0, "other": 0}
    for rel, pa in fa.items():
        pb = fb[rel]
        if rel.endswith(".nii.gz"):
            ia: Any = nib.load(pa)
            ib: Any = nib.load(pb)
            da, db = np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj)
            assert da.dtype == db.dtype and da.shape == db.shape, rel
            assert np.array_equal(da, db, equal_nan=da.dtype.kind == "f"), rel
            assert np.array_equal(ia.affine, ib.affine), rel
            counts["nifti"] += 1
            counts["nifti_gz_bytes_equal"] += pa.read_bytes() == pb.read_bytes()
        elif rel.endswith(EXACT_SUFFIXES):
            assert pa.read_bytes() == pb.read_bytes(), rel
            counts["exact"] += 1
        else:
            counts["other"] += 1
    return counts


def text_blobs(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (gzip decompressed) and every file name, as bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            raw = p.read_bytes()
            out[str(p)] = gzip.decompress(raw) if p.name.endswith(".gz") else raw
            out[f"name of {p}"] = str(p.relative_to(root)).encode()
    return out


def report_command(workdir: Path, report: Path) -> list[str]:
    return snakemake_cli(workdir, "--report", str(report))


def run_cli(cmd: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
