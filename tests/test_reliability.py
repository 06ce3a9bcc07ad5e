"""Reliability of the workflow at cohort scale (issue 6): broken inputs, strict settings,
bad sheets, interruption by SIGKILL and rerun, determinism and provenance.

Builds on the shared run of the test cohort (``run`` in conftest.py). Every broken input
is its own session of a second run with ``--keep-going``: the test asserts the message
in that session's log (naming subject, session and file), that the failed job left no
output, and that the other sessions completed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydicom
import pytest
from wfutil import (
    DEMO,
    RESULTS,
    add_b1_map,
    break_dicom,
    compare_results,
    prepare_cohort,
    result_files,
    run_cli,
    sessions_sheet,
    snakemake,
    snakemake_cli,
)

from dce.io.nifti import read_nifti, write_nifti
from dce.io.provenance import config_sha256, file_sha256, package_versions, tree_digest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP via snakemake

#: DICOM defects: session name -> (defect, fragments of the message in the session's log).
DICOM_DEFECTS = {
    "truncated": ("truncated", ["rule convert: failed", "cannot decode pixel data"]),
    "corrupt": ("corrupt", ["rule convert: failed", "truncated or corrupt DICOM file"]),
    "dupslice": ("duplicated_slice", ["rule convert: failed", "copy_of_one_slice",
                                      "duplicated position within a phase"]),
    "reptime": ("repeated_time", ["rule convert: failed", "duplicated position within a "
                                  "phase", "time 50.000 s (TriggerTime"]),
    "nodce": ("no_dce", ["rule convert: failed", "no DCE series", "5 series found"]),
    "twodce": ("two_dce", ["rule convert: failed", "2 series match the DCE",
                           "convert.dce_pattern"]),
    "zerobase": ("zero_baseline", ["rule kinetics: failed", "_dce.nii.gz: only",
                                   "zero or non-finite baseline signal",
                                   "acquisition.n_baseline"]),
}


def _ses_dir(work: Path, results: str, s: str, t: str) -> Path:
    return work / results / f"sub-{s}" / f"ses-{t}"


def _logs(work: Path, results: str, s: str, t: str) -> str:
    return "".join(p.read_text() for p in sorted(
        (work / results / "logs" / f"sub-{s}" / f"ses-{t}").glob("*.log")))


def _done(work: Path, results: str, s: str, t: str, what: str = "roi.tsv") -> bool:
    return (_ses_dir(work, results, s, t) / f"sub-{s}_ses-{t}_{what}").exists()


def _outputs(work: Path, results: str, s: str, t: str) -> list[str]:
    d = _ses_dir(work, results, s, t)
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@dataclass
class Broken:
    """Rows (pandas Series) of the sessions of the broken-input run, and the files."""

    a: Any
    b: Any
    c: Any
    d: Any
    e: Any
    good: Any
    files: dict[str, Path]
    cfg: dict[str, Any]


@pytest.fixture(scope="module")
def broken(run: Path) -> Broken:
    """Sheets with one broken input per session, run with --keep-going into results_bad."""
    demo = run / DEMO
    sessions = sessions_sheet(run)
    lesions = pd.read_csv(demo / "lesions.tsv", sep="\t", dtype={"subject": str})
    subjects = list(dict.fromkeys(sessions["subject"]))
    first = sessions[sessions["subject"] == subjects[0]]
    a, b = first.iloc[0], first.iloc[1]
    c = sessions[sessions["subject"] == subjects[1]].iloc[0]
    third = sessions[sessions["subject"] == subjects[2]]
    d, e, good = third.iloc[0], third.iloc[1], third.iloc[2]   # good: left intact
    assert a.vendor == "ge"
    bad = demo / "bad"
    bad.mkdir()
    # a: lesion ROI moved 500 mm away; b: empty lesion ROI
    img = read_nifti(demo / a.lesion_roi)
    shifted = img.affine.copy()
    shifted[:3, 3] += 500.0
    write_nifti(bad / "outside.nii.gz", img.data, shifted)
    write_nifti(bad / "empty.nii.gz", np.zeros_like(img.data), img.affine)
    sessions.loc[a.name, "lesion_roi"] = "bad/outside.nii.gz"
    sessions.loc[b.name, "lesion_roi"] = "bad/empty.nii.gz"
    # e: lesion and marrow ROIs stored in another voxel order (k, i, j; first axis flipped)
    for col in ("lesion_roi", "marrow_roi"):
        roi = read_nifti(demo / e[col])
        n = roi.data.shape[2]
        perm = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, n - 1], [0, 0, 0, 1]], float)
        write_nifti(bad / f"reoriented_{col}.nii.gz",
                    np.flip(np.transpose(roi.data, (2, 0, 1)), axis=0), roi.affine @ perm)
        sessions.loc[e.name, col] = f"bad/reoriented_{col}.nii.gz"
    # d: no VFA series
    shutil.copytree(demo / d.dicom_dir, bad / "novfa")
    for f in (bad / "novfa").iterdir():
        if f.name == ".snakemake_timestamp":   # Snakemake's mark of a directory() output
            continue
        if "vfa" in str(pydicom.dcmread(f, stop_before_pixels=True).SeriesDescription).lower():
            f.unlink()
    sessions.loc[d.name, "dicom_dir"] = "bad/novfa"
    # new sessions of subject a: one DICOM defect each; a phase lost from the export;
    # an aorta mask without enhancement (the AIF fails QC)
    rows = []
    files = {}
    for name, (kind, _) in DICOM_DEFECTS.items():
        files[name] = break_dicom(demo / a.dicom_dir, bad / name, kind)
        rows.append({**a.to_dict(), "session": name, "dicom_dir": f"bad/{name}"})
    break_dicom(demo / a.dicom_dir, bad / "gap", "missing_phase")
    rows.append({**a.to_dict(), "session": "gap", "dicom_dir": "bad/gap"})
    rows.append({**a.to_dict(), "session": "aiffail", "aorta_roi": a.marrow_roi})
    sheet = pd.concat([sessions, pd.DataFrame(rows)], ignore_index=True)
    sheet["aorta_roi"] = sheet["aorta_roi"].fillna("") if "aorta_roi" in sheet else ""
    sheet.to_csv(demo / "sessions_bad.tsv", sep="\t", index=False)
    # c: a lesion listed in lesions.tsv but absent from the ROI
    extra = pd.DataFrame([{"subject": c.subject, "lesion": 9, "level": "L5"}])
    pd.concat([lesions, extra]).to_csv(demo / "lesions_bad.tsv", sep="\t", index=False)

    keys = [(r.subject, r.session) for r in (a, b, c, d, e, good)]
    keys += [(a.subject, r["session"]) for r in rows]
    targets = [f"results_bad/sub-{s}/ses-{t}/sub-{s}_ses-{t}_roi.tsv" for s, t in keys]
    cfg = {"demo": {"enabled": False}, "sessions": f"{DEMO.as_posix()}/sessions_bad.tsv",
           "lesions": f"{DEMO.as_posix()}/lesions_bad.tsv", "results": "results_bad"}
    with pytest.raises(Exception):  # noqa: B017 - snakemake reports failed jobs generically
        snakemake(run, config=cfg, targets=targets, keep_going=True)
    return Broken(a=a, b=b, c=c, d=d, e=e, good=good, files=files, cfg=cfg)


@pytest.mark.workflow
def test_dicom_defects_fail_their_session_only(run: Path, broken: Broken) -> None:
    """Truncated / corrupt file, duplicated slice, repeated phase time, no DCE series, two
    DCE series, blank baseline: the session's log names subject, session and file; the
    session has no output from the failed rule on; the other sessions complete."""
    a, files = broken.a, broken.files
    for name, (_, fragments) in DICOM_DEFECTS.items():
        text = _logs(run, "results_bad", a.subject, name)
        assert f"sub-{a.subject} ses-{name} rule" in text, name
        for frag in fragments:
            assert frag in text, (name, frag, text[-2000:])
        if files[name].is_file():                      # the offending file is named
            assert files[name].name in text, name
        made = _outputs(run, "results_bad", a.subject, name)
        if name == "zerobase":   # conversion fine; nothing from the kinetics job
            assert not [m for m in made if "_conc" in m or "_aif" in m or "_ktrans" in m]
            assert f"sub-{a.subject}_ses-{name}_dce.nii.gz" in made
        else:
            assert made == [], (name, made)
    good = broken.good
    assert _done(run, "results_bad", good.subject, good.session)


@pytest.mark.workflow
def test_lost_phase_and_failed_aif_qc_warn_and_complete(run: Path,
                                                        broken: Broken) -> None:
    """A phase missing from a clock-timed export cannot be told from uneven sampling: the
    session completes on the real times with a warning; an AIF failing QC falls back to
    the population AIF with a warning (aif.on_qc_failure: fallback)."""
    a = broken.a
    log = _logs(run, "results_bad", a.subject, "gap")
    assert "WARNING" in log and "phase gap: 10 s between phases 19 and 20" in log
    assert "1 phase(s) may be missing from the export" in log
    side = json.loads((_ses_dir(run, "results_bad", a.subject, "gap")
                       / f"sub-{a.subject}_ses-gap_dce.json").read_text())
    assert side["NumberOfPhases"] == 39 and any("phase gap" in n for n in side["Notes"])
    assert _done(run, "results_bad", a.subject, "gap")
    log = _logs(run, "results_bad", a.subject, "aiffail")
    assert "WARNING AIF QC failed" in log and "population AIF parker" in log
    qc = json.loads((_ses_dir(run, "results_bad", a.subject, "aiffail")
                     / f"sub-{a.subject}_ses-aiffail_aif.json").read_text())
    assert qc["passed"] is False and qc["fallback_used"] is True and qc["source"] == "parker"
    assert _done(run, "results_bad", a.subject, "aiffail")


@pytest.mark.workflow
def test_broken_rois_fail_with_the_file_name(run: Path, broken: Broken) -> None:
    """ROI outside the FOV, empty ROI, lesion missing from the ROI: errors naming the file,
    no partial outputs; a session without VFA data gets the fixed T10 and completes; ROIs
    stored in another voxel order give the same statistics."""
    a, b, c, d, e = broken.a, broken.b, broken.c, broken.d, broken.e
    assert "outside.nii.gz" in _logs(run, "results_bad", a.subject, a.session)
    assert "outside the image field of view" in _logs(run, "results_bad", a.subject, a.session)
    assert "empty.nii.gz" in _logs(run, "results_bad", b.subject, b.session)
    assert "no labelled" in _logs(run, "results_bad", b.subject, b.session)
    log_c = _logs(run, "results_bad", c.subject, c.session)
    assert "lesion label(s) 9" in log_c and Path(c.lesion_roi).name in log_c
    for r in (a, b, c):
        assert not _done(run, "results_bad", r.subject, r.session)
    for r in (a, b):                  # the AIF prior reads the broken ROI first
        assert not _done(run, "results_bad", r.subject, r.session, "aif.tsv")
    assert _done(run, "results_bad", d.subject, d.session)
    t1 = json.loads((_ses_dir(run, "results_bad", d.subject, d.session)
                     / f"sub-{d.subject}_ses-{d.session}_T1map.json").read_text())
    assert t1["Source"] == "fixed" and t1["FixedT10_s"] == pytest.approx(1.2)
    assert "WARNING no VFA series: fixed T10 = 1.2 s" in _logs(run, "results_bad", d.subject,
                                                                d.session)
    # the reoriented ROIs give exactly the statistics of the original ones
    stem = f"sub-{e.subject}_ses-{e.session}_roi.tsv"
    new = pd.read_csv(_ses_dir(run, "results_bad", e.subject, e.session) / stem, sep="\t")
    ref = pd.read_csv(_ses_dir(run, str(RESULTS), e.subject, e.session) / stem, sep="\t")
    cols = ["roi", "label", "n_voxels", "ktrans_per_min_mean"]
    pd.testing.assert_frame_equal(new[cols], ref[cols])


@pytest.mark.workflow
def test_strict_settings_stop_the_session(run: Path, broken: Broken) -> None:
    """t1.missing_vfa: error and aif.on_qc_failure: error stop those sessions (no T1 map,
    no AIF), with the setting to change in the message; the others complete."""
    a, d, good = broken.a, broken.d, broken.good
    cfg = dict(broken.cfg)
    cfg.update(results="results_strict", t1={"missing_vfa": "error"},
               aif={"on_qc_failure": "error"})
    targets = [f"results_strict/sub-{d.subject}/ses-{d.session}/sub-{d.subject}_ses-"
               f"{d.session}_T1map.nii.gz",
               f"results_strict/sub-{a.subject}/ses-aiffail/sub-{a.subject}_ses-aiffail_aif.tsv",
               f"results_strict/sub-{good.subject}/ses-{good.session}/sub-{good.subject}_ses-"
               f"{good.session}_aif.tsv"]
    with pytest.raises(Exception):  # noqa: B017
        snakemake(run, config=cfg, targets=targets, keep_going=True)
    log = _logs(run, "results_strict", d.subject, d.session)
    assert f"sub-{d.subject} ses-{d.session} rule kinetics: failed" in log
    assert "no VFA series and t1.missing_vfa is 'error'" in log
    assert not _done(run, "results_strict", d.subject, d.session, "T1map.nii.gz")
    log = _logs(run, "results_strict", a.subject, "aiffail")
    assert f"sub-{a.subject} ses-aiffail rule kinetics: failed" in log
    assert "failed QC" in log and "aif.on_qc_failure is error" in log and "_dce.nii.gz" in log
    assert not [m for m in _outputs(run, "results_strict", a.subject, "aiffail") if "_aif" in m]
    assert _done(run, "results_strict", good.subject, good.session, "aif.tsv")


@pytest.mark.workflow
@pytest.mark.parametrize("edit, words", [
    ({"subject": "../x"}, ["sessions_unsafe.tsv", "../x", "does not match"]),
    ({"session": "fu 1"}, ["sessions_unsafe.tsv", "fu 1", "does not match"]),
    ("duplicate", ["sessions_unsafe.tsv", "is listed more than once"]),
])
def test_unsafe_or_duplicate_sheet_rows_are_refused(run: Path, edit: object,
                                                    words: list[str]) -> None:
    """Subject/session IDs become folder names: anything but letters and digits, and a
    session listed twice, stop the run before any job, naming the sheet and the row."""
    sessions = sessions_sheet(run)
    if edit == "duplicate":
        sessions = pd.concat([sessions, sessions.iloc[[1]]], ignore_index=True)
    else:
        assert isinstance(edit, dict)
        for col, value in edit.items():
            sessions.loc[2, col] = value
    sessions.to_csv(run / DEMO / "sessions_unsafe.tsv", sep="\t", index=False)
    cfg = {"demo": {"enabled": False}, "sessions": f"{DEMO.as_posix()}/sessions_unsafe.tsv",
           "lesions": f"{DEMO.as_posix()}/lesions.tsv", "results": "results_unsafe"}
    with pytest.raises(Exception) as info:
        snakemake(run, config=cfg, mode="dryrun")
    text = str(info.value) + "".join(str(x) for x in info.value.args)
    assert all(w in text for w in words), text
    assert not (run / "results_unsafe").exists()


def _copy_results(run: Path, name: str) -> None:
    """A copy of the shared run's per-session results (times kept: nothing reruns)."""
    shutil.copytree(run / RESULTS, run / name, copy_function=shutil.copy2,
                    ignore=shutil.ignore_patterns("cohort", "provenance.json", "logs"))


@pytest.mark.workflow
def test_lesion_without_baseline_stops_the_cohort_step(run: Path) -> None:
    """A lesion whose baseline session is not in the sheet: the per-session work is done,
    the cohort step stops naming the lesion and the setting."""
    sessions = sessions_sheet(run)
    subject = sessions["subject"].iloc[-1]
    drop = (sessions["subject"] == subject) & (sessions["session"] == "pre")
    assert drop.sum() == 1
    sessions[~drop].to_csv(run / DEMO / "sessions_nobase.tsv", sep="\t", index=False)
    _copy_results(run, "results_nobase")
    cfg = {"demo": {"enabled": False}, "sessions": f"{DEMO.as_posix()}/sessions_nobase.tsv",
           "lesions": f"{DEMO.as_posix()}/lesions.tsv", "results": "results_nobase"}
    with pytest.raises(Exception):  # noqa: B017
        snakemake(run, config=cfg, targets=["results_nobase/cohort/changes.tsv"],
                  keep_going=True)
    log = (run / "results_nobase" / "logs" / "cohort" / "cohort_table.log").read_text()
    assert "rule cohort_table: failed" in log
    assert "no baseline session 'pre' for lesion(s)" in log and subject in log
    assert "sessions_nobase.tsv (or set cohort.baseline_session: null" in log
    assert not (run / "results_nobase" / "cohort" / "cohort.tsv").exists()


@pytest.mark.workflow
def test_single_class_endpoint_is_refused_with_a_note(run: Path) -> None:
    """An endpoint with one class only: no AUC, a 'single class' note in roc.tsv and a
    warning in the log; the other endpoint is analysed."""
    lesions = pd.read_csv(run / DEMO / "lesions.tsv", sep="\t", dtype={"subject": str})
    lesions["never"] = 0
    lesions.to_csv(run / DEMO / "lesions_never.tsv", sep="\t", index=False)
    _copy_results(run, "results_never")
    cfg = {"demo": {"enabled": False}, "sessions": f"{DEMO.as_posix()}/sessions.tsv",
           "lesions": f"{DEMO.as_posix()}/lesions_never.tsv", "results": "results_never",
           "cohort": {"endpoints": [{"name": "recurrence"}, {"name": "never"}],
                      "bootstrap": {"n": 200}}}
    snakemake(run, config=cfg, targets=["results_never/cohort/roc.tsv"])
    roc = pd.read_csv(run / "results_never" / "cohort" / "roc.tsv", sep="\t")
    never = roc[roc["endpoint"] == "never"]
    assert len(never) > 0 and never["auc"].isna().all()
    assert never["note"].str.contains("single class").all()
    assert roc.loc[roc["endpoint"] == "recurrence", "auc"].notna().all()
    log = (run / "results_never" / "logs" / "cohort" / "cohort_roc.log").read_text()
    assert "WARNING ROC never ~" in log and "single class" in log


# --------------------------------------------------------------------------- interruption


@pytest.mark.workflow
def test_sigkill_during_fit_then_rerun_equals_an_uninterrupted_run(
        run: Path, tmp_path: Path) -> None:
    """SIGKILL to snakemake and its jobs while a kinetics job (T1, concentration, AIF,
    fit) runs; then the documented rerun
    (``snakemake --unlock``, then the same command: the profile sets rerun-incomplete)
    completes, and every table, JSON record and NIfTI volume equals the uninterrupted
    shared run's (a second clean run: determinism)."""
    work = tmp_path
    prepare_cohort(work)
    add_b1_map(work)              # as the shared run (conftest.run)
    cmd = snakemake_cli(work)
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    logs = work / RESULTS / "logs"
    deadline = time.monotonic() + 600
    try:
        while not list(logs.glob("sub-*/ses-*/kinetics.log")):
            assert proc.poll() is None, "the run ended before any fit started"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    sessions = sessions_sheet(work)
    unfinished = [(s, t) for s, t in zip(sessions["subject"], sessions["session"],
                                         strict=True)
                  if not _done(work, str(RESULTS), s, t)]
    assert unfinished, "the kill came too late"
    rerun = run_cli(cmd)          # the stale lock stops a plain rerun ...
    assert rerun.returncode != 0 and "--unlock" in rerun.stderr + rerun.stdout
    unlock = run_cli(snakemake_cli(work, "--unlock"))
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    rerun = run_cli(cmd)          # ... the documented one completes
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    counts = compare_results(run / RESULTS, work / RESULTS)
    assert counts["nifti"] > 150 and counts["exact"] > 200, counts
    assert counts["nifti_gz_bytes_equal"] == counts["nifti"], counts


# --------------------------------------------------------------------------- provenance


@pytest.mark.workflow
def test_every_output_set_has_provenance(run: Path) -> None:
    """Per session and for the run: package versions, the configuration hash (changes
    with the configuration, not with the output folder) and input hashes that match the
    input files."""
    sessions = sessions_sheet(run)
    versions = package_versions()
    for row in sessions.to_dict("records"):
        sub, ses, dicom_dir = str(row["subject"]), str(row["session"]), str(row["dicom_dir"])
        rec = json.loads((_ses_dir(run, str(RESULTS), sub, ses)
                          / f"sub-{sub}_ses-{ses}_provenance.json").read_text())
        assert rec["subject"] == sub and rec["session"] == ses
        assert rec["software"] == versions and rec["software"]["dce"] != "not installed"
        dicom = run / DEMO / dicom_dir
        n = sum(1 for p in dicom.rglob("*") if p.is_file())
        assert rec["inputs"]["dicom"]["n_files"] == n > 300
        assert rec["inputs"]["lesion_roi"]["sha256"] == file_sha256(
            run / DEMO / str(row["lesion_roi"]))
        assert rec["inputs"]["aorta_roi"] is None
        text = json.dumps(rec)   # no input path or file name (they can hold names)
        assert dicom_dir not in text and next(dicom.iterdir()).name not in text
    run_rec = json.loads((run / RESULTS / "provenance.json").read_text())
    assert len(run_rec["sessions"]) == len(sessions)
    assert run_rec["inputs"]["sessions_sheet"]["sha256"] == file_sha256(
        run / DEMO / "sessions.tsv")
    # one configuration hash for the run; the output folder is not part of it
    h = run_rec["config_sha256"]
    assert len(h) == 64 and h == rec["config_sha256"]
    assert config_sha256({"results": "a", "x": 1}) == config_sha256({"results": "b", "x": 1})
    assert config_sha256({"x": 1}) != config_sha256({"x": 2})


def test_tree_digest_tracks_content_names_and_count(tmp_path: Path) -> None:
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    (a / "x.dcm").write_bytes(b"one")
    (a / "sub" / "y.dcm").write_bytes(b"two")
    d0 = tree_digest(a)
    assert d0["n_files"] == 2 and d0["n_bytes"] == 6 and d0["kind"] == "folder"
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert tree_digest(b) == d0                     # location does not matter
    (b / "x.dcm").write_bytes(b"One")
    assert tree_digest(b)["sha256"] != d0["sha256"]  # content does
    shutil.rmtree(b)
    shutil.copytree(a, b)
    (b / "x.dcm").rename(b / "z.dcm")
    assert tree_digest(b)["sha256"] != d0["sha256"]  # names do
    f = tree_digest(a / "x.dcm")
    assert f == {"kind": "file", "n_files": 1, "n_bytes": 3,
                 "sha256": hashlib.sha256(b"one").hexdigest()}
    with pytest.raises(FileNotFoundError, match="nowhere"):
        tree_digest(tmp_path / "nowhere")


@pytest.mark.workflow
def test_results_listing_skips_run_specific_records(run: Path) -> None:
    files = result_files(run / RESULTS)
    assert not [f for f in files if f.startswith(("logs/", "benchmarks/"))]
    assert "provenance.json" in files
