"""Workflow tests through snakemake's Python API on a small generated cohort.

One real run of the whole workflow (config/test/config.yaml: 3 patients, 64 x 64 x 8
voxels, 40 phases; about half a minute once the numba kernels are compiled) is shared by
the tests: outputs, accuracy against the phantom's ground truth, reruns after a change of
the AIF settings, and a second run with broken inputs. A rejected configuration and a dry
run need no real run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
TEST_CONFIG = REPO / "config" / "test" / "config.yaml"
_CFG = yaml.safe_load(TEST_CONFIG.read_text())
DEMO = Path(_CFG["sessions"]).parent      # relative to the work directory
RESULTS = Path(_CFG["results"])

snakemake_api = pytest.importorskip("snakemake.api")
from snakemake.settings import types as st  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP via snakemake


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
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
    out = io.StringIO()
    with _cwd(workdir), contextlib.redirect_stdout(out), snakemake_api.SnakemakeApi(
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


def plan(summary: str) -> pd.DataFrame:
    """The ``--summary`` table: output_file, rule, plan, ..."""
    lines = [ln for ln in summary.splitlines() if ln.count("\t") >= 3]
    header = lines[0].split("\t")
    return pd.DataFrame([ln.split("\t") for ln in lines[1:]], columns=header)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test cohort generated and processed by the workflow (one real run)."""
    work = tmp_path_factory.mktemp("wf")
    snakemake(work)
    return work


def _sessions(work: Path) -> pd.DataFrame:
    return pd.read_csv(work / DEMO / "sessions.tsv", sep="\t", dtype={"subject": str,
                                                                           "session": str})


# --------------------------------------------------------------------------- no real run


def test_config_defaults_match_schema() -> None:
    """config/config.yaml spells out the schema defaults (except the demo switch)."""
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    filled: dict[str, Any] = {"sessions": cfg["sessions"], "lesions": cfg["lesions"]}
    validate(filled, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    cfg["demo"]["enabled"] = False
    assert cfg == filled


@pytest.mark.parametrize("bad, words", [
    ({"aif": {"mode": "magic"}}, ["magic"]),
    ({"model": {"name": "tofts", "methd": "nlls"}}, ["methd"]),
    ({"acquisition": {"hematocrit": 45}}, ["hematocrit", "45"]),
])
def test_bad_config_is_rejected(tmp_path: Path, bad: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(Exception) as exc_info:
        snakemake(tmp_path, config=bad, mode="dryrun")
    text = str(exc_info.value) + "".join(str(a) for a in exc_info.value.args)
    if exc_info.value.__cause__ is not None:
        text += str(exc_info.value.__cause__)
    assert all(w in text for w in words), text
    assert not (tmp_path / DEMO).exists()


def test_figures_orientation_and_failed_qc(tmp_path: Path) -> None:
    """dce.plots shows superior up, anterior left, whatever the voxel order."""
    from dce.phantom import Acquisition, affine_for
    from dce.plots import aif_qc_figure, sagittal_section, to_ras

    aff = affine_for(Acquisition(matrix=(6, 5, 4)))   # i posterior, j inferior, k right
    vol = np.zeros((6, 5, 4))
    vol[0, 0, 0] = 1.0                                  # most anterior, superior, left voxel
    ras, zooms = to_ras(vol, aff)
    assert np.allclose(zooms, [5.0, 1.8, 1.8])          # x (k), y (i), z (j)
    assert ras.shape == (4, 6, 5) and ras[0, -1, -1] == 1.0
    assert sagittal_section(ras, 0)[0, 0] == 1.0      # top left of the display
    t = np.arange(20) * 5.0
    qc = {"passed": False, "reason": "peak 0.2 mM < min_peak_mM 1", "source": "parker",
          "fallback_used": True, "fallback_reason": "QC failed", "peak_blood_mM": None,
          "arrival_s": float("nan"), "n_voxels": 0}
    fig = aif_qc_figure(t, np.exp(-t / 50), background=vol, voxel_mask=np.zeros(vol.shape, bool),
                        affine=aff, qc=qc, measured_cb_mM=np.full(t.size, np.nan))
    fig.savefig(tmp_path / "qc.png")
    assert (tmp_path / "qc.png").stat().st_size > 1000


def test_lint_clean(tmp_path: Path) -> None:
    """``snakemake --lint`` has nothing to say (the CI runs this test)."""
    out = io.StringIO()
    with _cwd(tmp_path), contextlib.redirect_stdout(out), snakemake_api.SnakemakeApi(
            st.OutputSettings(quiet={st.Quietness.PROGRESS})) as api:
        wf = api.workflow(resource_settings=st.ResourceSettings(cores=1),
                          config_settings=st.ConfigSettings(configfiles=[TEST_CONFIG]),
                          snakefile=SNAKEFILE, workdir=tmp_path)
        linted = wf.lint()
    assert not linted, out.getvalue()


def test_dry_run_plans_the_demo_cohort(tmp_path: Path) -> None:
    snakemake(tmp_path, mode="dryrun")
    assert not (tmp_path / DEMO).exists()   # a dry run writes nothing


# --------------------------------------------------------------------------- real run


def test_every_session_output_exists(run: Path) -> None:
    sessions = _sessions(run)
    assert len(sessions) >= 5
    for r in sessions.itertuples():
        d = run / RESULTS / f"sub-{r.subject}" / f"ses-{r.session}"
        stem = f"sub-{r.subject}_ses-{r.session}"
        for what in ("dce.nii.gz", "dce.json", "vfa.nii.gz", "T1map.nii.gz", "conc.nii.gz",
                     "aif.tsv", "aif.json", "aif.png", "aifvoxels.nii.gz", "ktrans.nii.gz",
                     "kep.nii.gz", "ve.nii.gz", "vp.nii.gz", "r2.nii.gz", "fitstatus.nii.gz",
                     "peakenh.nii.gz", "tictype.nii.gz", "iauc60.nii.gz", "roi.tsv", "tic.tsv",
                     "tic.png", "maps.png"):
            assert (d / f"{stem}_{what}").is_file(), f"{stem}_{what}"
        roi = pd.read_csv(d / f"{stem}_roi.tsv", sep="\t")
        assert set(roi["roi"]) == {"lesion", "marrow"}
        for col in ("ktrans_per_min_mean", "vp_median", "ve_sd", "kep_per_min_p5",
                    "ktrans_per_min_p25", "vp_p75", "vp_p95", "ktrans_per_min_max",
                    "n_voxels", "fit_failed_fraction", "tic_type", "rslope_max"):
            assert col in roi.columns, col
        les = roi[roi["roi"] == "lesion"]
        assert set(les["tic_type"]) <= set("ABCDE")
        assert np.all(np.isfinite(les["rslope_max"]))
        aif = pd.read_csv(d / f"{stem}_aif.tsv", sep="\t")
        assert list(aif.columns[:3]) == ["t_s", "cb_mM", "cp_mM"]
        qc = json.loads((d / f"{stem}_aif.json").read_text())
        for key in ("passed", "reason", "peak_blood_mM", "arrival_s", "n_voxels",
                    "noise_ratio", "source"):
            assert key in qc
        t1 = json.loads((d / f"{stem}_T1map.json").read_text())
        assert t1["Source"] == "VFA"
    bench = pd.read_csv(run / RESULTS / "benchmarks" / "summary.tsv", sep="\t")
    assert len(bench) == len(sessions)
    assert np.all(bench["wall_s"] > 0) and np.all(bench["max_rss_mb"] > 0)


def test_no_identifiers_in_outputs(run: Path) -> None:
    """The demo DICOM carries PatientName PHANTOM^<subject>; no output may contain it."""
    for p in (run / RESULTS).rglob("*.json"):
        text = p.read_text()
        assert "PHANTOM" not in text and "Patient" not in text, p


def test_accuracy_against_ground_truth(run: Path) -> None:
    """Lesion-mean Ktrans and vp within 10 % (median over lesions and sessions); automatic
    AIF from the aorta, passing QC, peak within 10 % and arrival within one phase of the
    truth in every session (the computation of benchmarks/demo_accuracy.py)."""
    spec = importlib.util.spec_from_file_location(
        "demo_accuracy", Path(__file__).parents[1] / "benchmarks" / "demo_accuracy.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    acc = mod.demo_accuracy(run / DEMO, run / RESULTS)
    assert acc["aif_sessions_failed_qc"] == 0
    assert acc["aif_peak_max_abs_rel_error"] <= 0.10
    assert acc["aif_arrival_max_abs_error_phases"] <= 1.0
    assert acc["n_lesion_sessions"] >= 5
    assert acc["ktrans_median_abs_rel_error"] <= 0.10
    assert acc["vp_median_abs_rel_error"] <= 0.10


def test_nothing_to_do_after_the_run(run: Path) -> None:
    table = plan(snakemake(run, mode="summary"))
    pending = table[table["plan"] != "no update"]
    assert pending.empty, pending[["output_file", "rule", "plan"]].to_string()


def test_aif_settings_rerun_only_aif_dependent_jobs(run: Path) -> None:
    table = plan(snakemake(run, config={"aif": {"n_voxels": 24, "delay": "phases",
                                                "delay_phases": 1}}, mode="summary"))
    pending = set(table.loc[table["plan"] != "no update", "rule"])
    # the AIF and everything downstream of it (cohort rules, if any, included) ...
    assert {"aif", "fit", "roi", "benchmark_summary"} <= pending, pending
    # ... but nothing upstream of it or beside it
    upstream = {"demo_cohort", "numba_warmup", "convert", "t1map", "concentration",
                "semiquant"}
    assert not pending & upstream, pending & upstream
    untouched = set(table.loc[table["plan"] == "no update", "rule"])
    assert {"convert", "t1map", "concentration", "semiquant"} <= untouched


# --------------------------------------------------------------------------- broken inputs


def _without_vfa(src: Path, dst: Path) -> None:
    import pydicom

    shutil.copytree(src, dst)
    for f in dst.rglob("*"):
        if f.is_file():
            desc = str(pydicom.dcmread(f, stop_before_pixels=True).get("SeriesDescription", ""))
            if "vfa" in desc.lower():
                f.unlink()


def test_broken_inputs_fail_with_the_file_name(run: Path) -> None:
    """ROI outside the FOV, empty ROI, lesion missing from the ROI: errors naming the file,
    no partial outputs; a session without VFA data gets the fixed T10 and completes; ROIs
    stored in another voxel order give the same statistics."""
    from dce.io import read_nifti, write_nifti

    demo = run / DEMO
    sessions = _sessions(run)
    lesions = pd.read_csv(demo / "lesions.tsv", sep="\t", dtype={"subject": str})
    subjects = list(dict.fromkeys(sessions["subject"]))
    first = sessions[sessions["subject"] == subjects[0]]
    a, b = first.iloc[0], first.iloc[1]
    c = sessions[sessions["subject"] == subjects[1]].iloc[0]
    third = sessions[sessions["subject"] == subjects[2]]
    d, e = third.iloc[0], third.iloc[1]
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
    _without_vfa(demo / d.dicom_dir, bad / "novfa")
    sessions.loc[d.name, "dicom_dir"] = "bad/novfa"
    sessions.to_csv(demo / "sessions_bad.tsv", sep="\t", index=False)
    # c: a lesion listed in lesions.tsv but absent from the ROI
    extra = pd.DataFrame([{"subject": c.subject, "lesion": 9, "level": "L5"}])
    pd.concat([lesions, extra]).to_csv(demo / "lesions_bad.tsv", sep="\t", index=False)

    keys = [(r.subject, r.session) for r in (a, b, c, d, e)]
    targets = [f"results_bad/sub-{s}/ses-{t}/sub-{s}_ses-{t}_roi.tsv" for s, t in keys]
    cfg = {"demo": {"enabled": False}, "sessions": f"{DEMO.as_posix()}/sessions_bad.tsv",
           "lesions": f"{DEMO.as_posix()}/lesions_bad.tsv", "results": "results_bad"}
    with pytest.raises(Exception):  # noqa: B017 - snakemake reports failed jobs generically
        snakemake(run, config=cfg, targets=targets, keep_going=True)

    def logs(s: str, t: str) -> str:
        return "".join(p.read_text() for p in
                       (run / "results_bad" / "logs" / f"sub-{s}" / f"ses-{t}").glob("*.log"))

    def roi_done(s: str, t: str) -> bool:
        return (run / "results_bad" / f"sub-{s}" / f"ses-{t}"
                / f"sub-{s}_ses-{t}_roi.tsv").exists()

    assert "outside.nii.gz" in logs(a.subject, a.session)
    assert "outside the image field of view" in logs(a.subject, a.session)
    assert "empty.nii.gz" in logs(b.subject, b.session)
    assert "no labelled" in logs(b.subject, b.session)
    assert "lesion label(s) 9" in logs(c.subject, c.session)
    assert Path(c.lesion_roi).name in logs(c.subject, c.session)
    for s, t in keys[:3]:
        assert not roi_done(s, t)        # failed jobs leave no partial output
    for s, t in keys[:2]:                # the AIF prior reads the broken ROI first
        assert not (run / "results_bad" / f"sub-{s}" / f"ses-{t}"
                    / f"sub-{s}_ses-{t}_aif.tsv").exists()
    assert roi_done(d.subject, d.session)
    t1 = json.loads((run / "results_bad" / f"sub-{d.subject}" / f"ses-{d.session}"
                     / f"sub-{d.subject}_ses-{d.session}_T1map.json").read_text())
    assert t1["Source"] == "fixed" and t1["FixedT10_s"] == pytest.approx(1.2)
    # the reoriented ROIs give exactly the statistics of the original ones
    stem = f"sub-{e.subject}_ses-{e.session}_roi.tsv"
    new = pd.read_csv(run / "results_bad" / f"sub-{e.subject}" / f"ses-{e.session}" / stem,
                      sep="\t")
    ref = pd.read_csv(run / RESULTS / f"sub-{e.subject}" / f"ses-{e.session}" / stem,
                      sep="\t")
    pd.testing.assert_frame_equal(new[["roi", "label", "n_voxels", "ktrans_per_min_mean"]],
                                  ref[["roi", "label", "n_voxels", "ktrans_per_min_mean"]])
