"""Workflow tests through snakemake's Python API on a small generated cohort.

One real run of the whole workflow (.test/config/config.yaml: 3 patients, 64 x 64 x 8
voxels, 40 phases; about half a minute once the numba kernels are compiled) is shared by
the tests: outputs, accuracy against the phantom's ground truth, reruns after a change of
the AIF settings, de-identification. A rejected configuration and a dry run need no real
run. Broken inputs, interruption and determinism: tests/test_reliability.py.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake import api as snakemake_api
from snakemake.settings import types as st
from wfutil import (
    DEMO,
    RESULTS,
    SNAKEFILE,
    TEST_CONFIG,
    cwd,
    plan,
    sessions_sheet,
    snakemake,
    text_blobs,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP via snakemake


# --------------------------------------------------------------------------- no real run


@pytest.mark.workflow
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
    """dce.viz shows superior up, anterior left, whatever the voxel order."""
    from dce.phantom import Acquisition, affine_for
    from dce.viz.sections import sagittal_section, to_ras
    from dce.viz.session import aif_qc_figure

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


@pytest.mark.workflow
def test_lint_clean(tmp_path: Path) -> None:
    """``snakemake --lint`` has nothing to say (the CI runs this test)."""
    out = io.StringIO()
    with cwd(tmp_path), contextlib.redirect_stdout(out), snakemake_api.SnakemakeApi(
            st.OutputSettings(quiet={st.Quietness.PROGRESS})) as api:
        wf = api.workflow(resource_settings=st.ResourceSettings(cores=1),
                          config_settings=st.ConfigSettings(configfiles=[TEST_CONFIG]),
                          snakefile=SNAKEFILE, workdir=tmp_path)
        linted = wf.lint()
    assert not linted, out.getvalue()


@pytest.mark.workflow
def test_dry_run_plans_the_demo_cohort(tmp_path: Path) -> None:
    snakemake(tmp_path, mode="dryrun")
    assert not (tmp_path / DEMO).exists()   # a dry run writes nothing
    # every session's jobs are planned before the demo cohort exists (no checkpoint: the
    # sessions are the design's, dce.phantom.demo_cohort; the job total is known at once)
    from dce.phantom import demo_cohort

    demo = yaml.safe_load(TEST_CONFIG.read_text())["demo"]
    design = demo_cohort(demo["n_patients"], demo["seed"], matrix=demo["matrix"],
                         n_phases=demo["n_phases"]).sessions
    table = plan(snakemake(tmp_path, mode="summary"))
    planned = {m.groups() for m in map(_SESSION_RE.search, table["output_file"]) if m}
    assert planned == set(zip(design["subject"], design["session"], strict=True))
    assert (table["plan"] != "no update").all()
    assert not (tmp_path / DEMO).exists()


_SESSION_RE = re.compile(rf"^{re.escape(RESULTS.as_posix())}/sub-([^/]+)/ses-([^/]+)/")


# --------------------------------------------------------------------------- real run


@pytest.mark.workflow
def test_every_session_output_exists(run: Path) -> None:
    sessions = sessions_sheet(run)
    assert len(sessions) >= 5
    for r in sessions.itertuples():
        d = run / RESULTS / f"sub-{r.subject}" / f"ses-{r.session}"
        stem = f"sub-{r.subject}_ses-{r.session}"
        for what in ("dce.nii.gz", "dce.json", "vfa.nii.gz", "T1map.nii.gz", "conc.json",
                     "aif.tsv", "aif.json", "aif.png", "aifvoxels.nii.gz", "ktrans.nii.gz",
                     "kep.nii.gz", "ve.nii.gz", "vp.nii.gz", "r2.nii.gz", "fitstatus.nii.gz",
                     "peakenh.nii.gz", "tictype.nii.gz", "iauc60.nii.gz", "roi.tsv", "tic.tsv",
                     "tic.png", "maps.png", "provenance.json"):
            assert (d / f"{stem}_{what}").is_file(), f"{stem}_{what}"
        # the 4-D concentration is a pure intermediate (outputs.keep_intermediates false:
        # held in memory by the kinetics job, never written); its sidecar is the record
        assert not (d / f"{stem}_conc.nii").exists()
        assert not (d / f"{stem}_conc.nii.gz").exists()
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


@pytest.mark.workflow
def test_every_registry_map_reaches_the_outputs(run: Path) -> None:
    """Every map of dce.registry for the configured model and IAUC windows is written per
    session, in its registry data type, with its registry sidecar fields, and every map
    summarised per ROI has its statistics columns in the ROI table (the fit status: its
    failed-fit fraction)."""
    import nibabel as nib
    import yaml

    from dce.registry import (
        FIT_STATUS_MAP,
        fit_map_names,
        output_map,
        roi_map_names,
        semiquant_map_names,
        sidecar_fields,
    )

    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    schema = yaml.safe_load((SNAKEFILE.parent / "workflow" / "schemas" /
                             "config.schema.yaml").read_text())
    model = (cfg.get("model") or {}).get("name") or \
        schema["properties"]["model"]["properties"]["name"]["default"]
    windows = ((cfg.get("semiquant") or {}).get("iauc_windows_s") or
               schema["properties"]["semiquant"]["properties"]["iauc_windows_s"]["default"])
    names = fit_map_names(model) + semiquant_map_names(windows)
    assert len(names) >= 14
    for r in sessions_sheet(run).itertuples():
        d = run / RESULTS / f"sub-{r.subject}" / f"ses-{r.session}"
        stem = f"sub-{r.subject}_ses-{r.session}"
        for name in names:
            img: Any = nib.load(d / f"{stem}_{name}.nii.gz")
            assert img.get_data_dtype() == np.dtype(output_map(name).dtype), name
            side = json.loads((d / f"{stem}_{name}.json").read_text())
            assert {k: side[k] for k in sidecar_fields(name)} == sidecar_fields(name), name
        roi = pd.read_csv(d / f"{stem}_roi.tsv", sep="\t")
        for name in roi_map_names(windows, model):
            if name == FIT_STATUS_MAP:   # counted, not summarised
                assert "fit_failed_fraction" in roi.columns
                continue
            for stat in ("mean", "median", "p95"):
                assert f"{output_map(name).column}_{stat}" in roi.columns, (name, stat)


@pytest.mark.workflow
def test_no_identifiers_in_outputs(run: Path) -> None:
    """Canary identifiers (name, ID, birth date, study date and time, institution,
    physicians, accession number, UIDs ...) planted in every input DICOM file appear in
    no output, log, file name or the HTML report (gzip content decompressed)."""
    needles = (run / "canaries.txt").read_text(encoding="utf-8").split("\n")
    needles = [n for n in needles if n]
    assert len(needles) > 15 and "CANARYPID123" in needles
    sessions = sessions_sheet(run)
    first = next((run / DEMO / sessions["dicom_dir"].iloc[0]).iterdir())
    assert b"CANARYPID123" in first.read_bytes()          # really in the input
    blobs = text_blobs(run / RESULTS)
    blobs.update({f"{k} (snakemake log)": v for k, v in text_blobs(run / ".snakemake" / "log")
                  .items()})
    blobs["report.html"] = (run / "report.html").read_bytes()
    assert len(blobs) > 400
    for where, blob in blobs.items():
        low = blob.lower()
        for needle in needles:
            assert needle.lower().encode() not in low, (needle, where)


@pytest.mark.workflow
def test_outputs_record_no_input_paths(run: Path) -> None:
    """The paths of the input files (DICOM folders, ROI and B1 files of the sessions sheet)
    may hold identifiers (a folder named after the patient): no JSON or TSV output records
    them (their hashes are in the provenance records)."""
    sessions = sessions_sheet(run)
    needles = {str(DEMO)} | {
        str(v) for c in ("dicom_dir", "lesion_roi", "marrow_roi", "b1_map")
        if c in sessions for v in sessions[c] if str(v)}
    files = [f for f in (run / RESULTS).rglob("*")
             if f.suffix in (".json", ".tsv") and "logs" not in f.parts]
    assert len(files) > 100 and any("space-baseline" in f.name for f in files)
    for f in files:
        text = f.read_text(encoding="utf-8")
        for needle in needles:
            assert needle not in text, (needle, f)


@pytest.mark.workflow
def test_accuracy_against_ground_truth(run: Path) -> None:
    """Issue 11 acceptance on the test cohort, against the independent phantom's truth
    (the computation of benchmarks/demo_accuracy.py): automatic AIF peak median |error|
    <= 10 % (max <= 25 %), every session's AIF from the aorta; lesion-mean Ktrans and vp
    median |relative error| <= 10 % (max <= 30 %); per-lesion dVp median error <= 5
    percentage points; lesion-level AUC of dVp within 0.05 of the true AUC."""
    spec = importlib.util.spec_from_file_location(
        "demo_accuracy", Path(__file__).parents[1] / "benchmarks" / "demo_accuracy.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    acc = mod.demo_accuracy(run / DEMO, run / RESULTS)
    assert acc["aif_sessions_failed_qc"] == 0, acc
    assert acc["aif_peak_median_abs_rel_error"] <= 0.10, acc
    assert acc["aif_peak_max_abs_rel_error"] <= 0.25, acc
    assert acc["n_lesion_sessions"] >= 5
    assert acc["ktrans_median_abs_rel_error"] <= 0.10, acc
    assert acc["vp_median_abs_rel_error"] <= 0.10, acc
    assert acc["ktrans_max_abs_rel_error"] <= 0.30, acc
    assert acc["vp_max_abs_rel_error"] <= 0.30, acc
    assert acc["n_lesions_with_followup"] >= 2
    assert acc["dvp_median_abs_error_pp"] <= 5.0, acc
    assert abs(acc["auc_dvp_measured"] - acc["auc_dvp_true"]) <= 0.05, acc


@pytest.mark.workflow
def test_nothing_to_do_after_the_run(run: Path) -> None:
    table = plan(snakemake(run, mode="summary"))
    pending = table[table["plan"] != "no update"]
    assert pending.empty, pending[["output_file", "rule", "plan"]].to_string()


@pytest.mark.workflow
def test_aif_settings_rerun_only_aif_dependent_jobs(run: Path) -> None:
    aif = {"selection": {"max_voxels": 1500}, "delay": "phases", "delay_phases": 1}
    table = plan(snakemake(run, config={"aif": aif}, mode="summary"))
    pending = set(table.loc[table["plan"] != "no update", "rule"])
    # the AIF (with the T1 maps, the concentration and the fit: one job, rule kinetics)
    # and everything downstream of it (cohort rules, if any, included) ...
    assert {"kinetics", "roi", "benchmark_summary"} <= pending, pending
    assert {"provenance", "run_provenance"} <= pending      # the configuration hash changed
    # ... the AIF outputs and the maps among the kinetics job's outputs; the 4-D
    # concentration is no file at all (outputs.keep_intermediates false: held in memory)
    reruns = table[table["plan"] != "no update"]["output_file"]
    assert reruns.str.endswith("_aif.tsv").sum() == len(sessions_sheet(run))
    assert reruns.str.contains(r"_ses-[^_/]+_ktrans\.nii\.gz$").sum() == len(sessions_sheet(run))
    # the follow-ups' maps on the baseline grid and their PRMs follow the fit
    sheet = sessions_sheet(run)
    n_followups = len(sheet) - sheet["subject"].nunique()      # one baseline per subject
    assert reruns.str.endswith("_space-baseline_ktrans.nii.gz").sum() == n_followups
    assert {"register", "prm"} <= pending, pending
    assert not table["output_file"].str.contains("_conc.nii").any()
    # ... but nothing else upstream of it or beside it
    upstream = {"demo_cohort", "convert"}
    assert not pending & upstream, pending & upstream
    untouched = set(table.loc[table["plan"] == "no update", "rule"])
    assert {"convert"} <= untouched
