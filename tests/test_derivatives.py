"""The results folder as a BIDS derivatives dataset (issue 13 item 8): dataset_description,
Sources as BIDS URIs, the naming rules of dce.io.derivatives.check_derivatives (unit
tests on trees written here by hand) and the real output tree of the shared run."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from dce.io.convert import output_paths
from dce.io.derivatives import (
    RETIRED_KEYS,
    bids_uri,
    check_derivatives,
    dataset_description,
    derived_sources,
    required_keys,
    write_dataset_description,
)

REPO = Path(__file__).resolve().parents[1]
STEM = "sub-P01_ses-pre"
SES = Path("sub-P01") / "ses-pre"

# ----------------------------------------------------------------- dataset_description


def test_dataset_description_keys_version_and_determinism(tmp_path: Path) -> None:
    desc_path, ignore_path = write_dataset_description(tmp_path / "results")
    first = desc_path.read_bytes()
    write_dataset_description(tmp_path / "results")
    assert desc_path.read_bytes() == first                       # deterministic
    d = json.loads(first)
    assert {"Name", "BIDSVersion", "DatasetType", "GeneratedBy"} <= set(d)
    assert d["DatasetType"] == "derivative"
    assert re.fullmatch(r"1\.\d+\.\d+", d["BIDSVersion"])
    gen = d["GeneratedBy"]
    assert isinstance(gen, list) and len(gen) == 1 and gen[0]["Name"] == "dce"
    version = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(),
                        re.MULTILINE)
    assert version and gen[0]["Version"] == version.group(1)     # the package version
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}", first.decode())  # no dates
    ignore = ignore_path.read_text().splitlines()
    assert {"cohort/", "logs/", "benchmarks/", "provenance.json"} <= set(ignore)
    assert d == dataset_description()


# ------------------------------------------------------------------------- BIDS URIs


def test_bids_uri_relative_to_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = "results/test/sub-P01/ses-pre/sub-P01_ses-pre_conc.nii.gz"
    assert bids_uri(rel, "results/test") == "bids::sub-P01/ses-pre/sub-P01_ses-pre_conc.nii.gz"
    assert bids_uri(tmp_path / rel, "results/test") == \
        "bids::sub-P01/ses-pre/sub-P01_ses-pre_conc.nii.gz"      # absolute input, same URI
    assert bids_uri(rel, tmp_path / "results" / "test/") == \
        "bids::sub-P01/ses-pre/sub-P01_ses-pre_conc.nii.gz"
    for outside in ("demo/test/dicom/P01_pre", "/tmp/roi.nii.gz", "results/other.tsv",
                    "results/test"):
        with pytest.raises(ValueError, match="not a file inside the derivative dataset"):
            bids_uri(outside, "results/test")


def test_derived_sources_keeps_dataset_files_in_order_once(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.chdir(tmp_path)
    paths = ["results/sub-A/ses-b/sub-A_ses-b_conc.nii.gz", "demo/dicom/Smith_John",
             "/data/rois/lesion.nii.gz", "results/sub-A/ses-b/sub-A_ses-b_aif.tsv",
             "results/sub-A/ses-b/sub-A_ses-b_conc.nii.gz"]
    assert derived_sources(paths, "results") == [
        "bids::sub-A/ses-b/sub-A_ses-b_conc.nii.gz", "bids::sub-A/ses-b/sub-A_ses-b_aif.tsv"]
    assert derived_sources(paths[1:3], "results") == []


def test_required_keys_per_suffix() -> None:
    from dce.registry import fit_map_names, semiquant_map_names
    names = fit_map_names() + semiquant_map_names([60, 90])
    assert len(names) >= 14
    for name in names:
        assert set(required_keys(name)) == {"Quantity", "Column", "Units", "Sources"}, name
    assert set(required_keys("dce")) == {"VolumeTiming", "FlipAngle", "RepetitionTime"}
    assert "Sources" in required_keys("T1map") and "Sources" in required_keys("conc")
    assert required_keys("tic") == () and required_keys("provenance") == ()


# ----------------------------------------------------------- the checker on hand trees


def _json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def _good_tree(root: Path) -> Path:
    """A minimal results folder that follows every rule, written without the library."""
    _json(root / "dataset_description.json", {
        "Name": "x", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "dce", "Version": "0.0"}]})
    (root / ".bidsignore").write_text("cohort/\nlogs/\nprovenance.json\n")
    (root / "cohort").mkdir()
    (root / "cohort" / "cohort.tsv").write_text("a\n1\n")
    (root / "logs").mkdir()
    _json(root / "provenance.json", {})
    ses = root / SES
    ses.mkdir(parents=True)
    (ses / f"{STEM}_dce.nii.gz").write_bytes(b"\x1f\x8b")
    _json(ses / f"{STEM}_dce.json", {"VolumeTiming": [0, 5], "FlipAngle": 20,
                                     "RepetitionTime": 0.0045})
    (ses / f"{STEM}_conc.nii.gz").write_bytes(b"\x1f\x8b")
    _json(ses / f"{STEM}_conc.json", {"Units": "mM", "VolumeTiming": [0, 5],
                                      "Sources": [f"bids::{SES.as_posix()}/{STEM}_dce.nii.gz"]})
    (ses / f"{STEM}_aif.tsv").write_text("t_s\tcp_mM\n0\t0\n")
    _json(ses / f"{STEM}_aif.json", {"source": "aorta", "Sources": [
        f"bids::{SES.as_posix()}/{STEM}_dce.nii.gz"]})
    (ses / f"{STEM}_ktrans.nii.gz").write_bytes(b"\x1f\x8b")
    _json(ses / f"{STEM}_ktrans.json", {
        "Quantity": "Ktrans", "Column": "ktrans", "Units": "1/min",
        "Sources": [f"bids::{SES.as_posix()}/{STEM}_conc.nii.gz",
                    f"bids::{SES.as_posix()}/{STEM}_aif.tsv"]})
    (ses / f"{STEM}_desc-lesion_tic.png").write_bytes(b"\x89PNG")
    (ses / f"{STEM}_roi.tsv").write_text("lesion\n1\n")
    return root


def test_good_tree_passes(tmp_path: Path) -> None:
    assert check_derivatives(_good_tree(tmp_path / "r")) == []


def test_removed_intermediate_is_a_source_while_its_sidecar_stays(tmp_path: Path) -> None:
    """The 4-D concentration removed after the fit (outputs.keep_intermediates false) may
    stay a Sources entry of the fit maps while its sidecar records it; without the
    sidecar, or for a removed non-intermediate, the entry names no file."""
    root = _good_tree(tmp_path / "r")
    (root / SES / f"{STEM}_conc.nii.gz").unlink()
    assert check_derivatives(root) == []
    (root / SES / f"{STEM}_conc.json").unlink()
    found = check_derivatives(root)
    assert found == [f"{SES.as_posix()}/{STEM}_ktrans.json: 'Sources' entry "
                     f"'bids::{SES.as_posix()}/{STEM}_conc.nii.gz' names no file of the "
                     "dataset"], found
    root = _good_tree(tmp_path / "r2")
    (root / SES / f"{STEM}_dce.nii.gz").unlink()     # not an intermediate: its sidecar stays
    found = check_derivatives(root)
    assert len(found) == 2 and all("_dce.nii.gz' names no file" in f for f in found), found


def test_conversion_file_names_follow_the_rules(tmp_path: Path) -> None:
    """Every file the convert step can write (DCE, VFA, raw B1 map: dce.io.convert
    .output_paths) is named by the rules, NIfTI with its sidecar."""
    root = _good_tree(tmp_path / "r")
    subject, session = SES.parts[0][4:], SES.parts[1][4:]
    paths = output_paths(root / SES, subject, session)
    assert {"dce", "vfa", "b1"} <= set(paths)
    for key, path in paths.items():
        if key.endswith("json"):
            _json(path, {"VolumeTiming": [0, 5], "FlipAngle": 20, "RepetitionTime": 0.0045,
                         "FlipAngles_deg": [2, 15]})
        else:
            path.write_bytes(b"\x1f\x8b")
    assert check_derivatives(root) == []


def _ses(root: Path) -> Path:
    return root / SES


def _edit_json(path: Path, **changes: object) -> None:
    d = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    path.write_text(json.dumps(d))


def _rename(src: str, dst: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        (root / src).rename(root / dst)
    return f


BAD: dict[str, tuple[Callable[[Path], object], str]] = {
    "no description": (lambda r: (r / "dataset_description.json").unlink(),
                       "dataset_description.json: missing"),
    "raw dataset type": (lambda r: _edit_json(r / "dataset_description.json",
                                              DatasetType="raw"),
                         "dataset_description.json: DatasetType 'raw', expected 'derivative'"),
    "no GeneratedBy": (lambda r: _edit_json(r / "dataset_description.json", GeneratedBy=None),
                       "dataset_description.json: lacks 'GeneratedBy'"),
    "GeneratedBy without Name": (
        lambda r: _edit_json(r / "dataset_description.json", GeneratedBy=[{"Version": "1"}]),
        "dataset_description.json: GeneratedBy must be a non-empty list of objects with 'Name'"),
    "stray top-level file": (lambda r: (r / "notes.txt").write_text("x"),
                             "notes.txt: top-level entry neither sub-<label> nor in .bidsignore"),
    "top-level folder not ignored": (
        lambda r: (r / "benchmarks").mkdir(),
        "benchmarks: top-level entry neither sub-<label> nor in .bidsignore"),
    "subject label": (_rename("sub-P01", "sub-P_01"), "sub-P_01: subject label must be "
                      "alphanumeric"),
    "file of another subject": (
        _rename(f"{SES}/{STEM}_roi.tsv", f"{SES}/sub-P02_ses-pre_roi.tsv"),
        "sub-P01/ses-pre/sub-P02_ses-pre_roi.tsv: name must start with 'sub-P01_ses-pre_'"),
    "suffix not alphanumeric": (
        _rename(f"{SES}/{STEM}_roi.tsv", f"{SES}/{STEM}_roi-table.tsv"),
        "sub-P01/ses-pre/sub-P01_ses-pre_roi-table.tsv: not sub-<s>_ses-<t>[_<key>-<value>]*"
        "_<suffix>.tsv with alphanumeric keys, values and suffix"),
    "entity without value": (
        _rename(f"{SES}/{STEM}_desc-lesion_tic.png", f"{SES}/{STEM}_lesion_tic.png"),
        "sub-P01/ses-pre/sub-P01_ses-pre_lesion_tic.png: not sub-<s>_ses-<t>"),
    "extension": (lambda r: (_ses(r) / f"{STEM}_notes.txt").write_text("x"),
                  "sub-P01/ses-pre/sub-P01_ses-pre_notes.txt: extension not one of"),
    "folder in session": (lambda r: (_ses(r) / "anat").mkdir(),
                          "sub-P01/ses-pre/anat: unexpected folder in a session folder"),
    "not a session folder": (lambda r: (r / "sub-P01" / "pre").mkdir(),
                             "sub-P01/pre: a subject folder holds only ses-<label> folders"),
    "NIfTI without sidecar": (lambda r: (_ses(r) / f"{STEM}_ktrans.json").unlink(),
                              "sub-P01/ses-pre/sub-P01_ses-pre_ktrans.nii.gz: NIfTI without "
                              "JSON sidecar sub-P01_ses-pre_ktrans.json"),
    "map without Sources": (lambda r: _edit_json(_ses(r) / f"{STEM}_ktrans.json",
                                                 Sources=None),
                            "sub-P01/ses-pre/sub-P01_ses-pre_ktrans.json: lacks required key "
                            "'Sources'"),
    "map without Units": (lambda r: _edit_json(_ses(r) / f"{STEM}_ktrans.json", Units=None),
                          "sub-P01/ses-pre/sub-P01_ses-pre_ktrans.json: lacks required key "
                          "'Units'"),
    "dce without VolumeTiming": (lambda r: _edit_json(_ses(r) / f"{STEM}_dce.json",
                                                      VolumeTiming=None),
                                 "sub-P01/ses-pre/sub-P01_ses-pre_dce.json: lacks required key "
                                 "'VolumeTiming'"),
    "retired key": (lambda r: _edit_json(_ses(r) / f"{STEM}_dce.json",
                                         RepetitionTime_s=0.0045),
                    "sub-P01/ses-pre/sub-P01_ses-pre_dce.json: retired key 'RepetitionTime_s'; "
                    "use 'RepetitionTime'"),
    "absolute Sources": (lambda r: _edit_json(
        _ses(r) / f"{STEM}_conc.json", Sources=[str(_ses(r) / f"{STEM}_dce.nii.gz")]),
        "sub-P01/ses-pre/sub-P01_ses-pre_conc.json: 'Sources' entry"),
    "Sources leaving the dataset": (lambda r: _edit_json(
        _ses(r) / f"{STEM}_conc.json", Sources=["bids::../demo/dicom/P01"]),
        "sub-P01/ses-pre/sub-P01_ses-pre_conc.json: 'Sources' entry 'bids::../demo/dicom/P01' "
        "is not a BIDS URI"),
    "Sources naming no file": (lambda r: _edit_json(
        _ses(r) / f"{STEM}_conc.json", Sources=["bids::sub-P01/ses-pre/gone.nii.gz"]),
        "sub-P01/ses-pre/sub-P01_ses-pre_conc.json: 'Sources' entry "
        "'bids::sub-P01/ses-pre/gone.nii.gz' names no file of the dataset"),
    "empty Sources": (lambda r: _edit_json(_ses(r) / f"{STEM}_aif.json", Sources=[]),
                      "sub-P01/ses-pre/sub-P01_ses-pre_aif.json: 'Sources' must be a non-empty"),
    "broken JSON": (lambda r: (_ses(r) / f"{STEM}_roi.json").write_text("{"),
                    "sub-P01/ses-pre/sub-P01_ses-pre_roi.json: not readable JSON"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_broken_rule_is_one_violation(tmp_path: Path, case: str) -> None:
    root = _good_tree(tmp_path / "r")
    breaker, expected = BAD[case]
    breaker(root)
    found = check_derivatives(root)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_retired_keys_are_the_documented_mapping() -> None:
    """The old -> new list in docs/outputs.md is the one the checker enforces."""
    readme = (REPO / "docs" / "outputs.md").read_text(encoding="utf-8")
    for old, new in RETIRED_KEYS.items():
        assert re.search(rf"`{old}`\s*->\s*`{new}`", readme), (old, new)


# --------------------------------------------------------- the real tree of the run


@pytest.mark.workflow
def test_results_are_a_bids_derivatives_dataset(run: Path) -> None:
    from wfutil import RESULTS, sessions_sheet

    from dce.registry import output_map

    root = run / RESULTS
    assert check_derivatives(root) == []
    d = json.loads((root / "dataset_description.json").read_text())
    assert d["DatasetType"] == "derivative" and d["GeneratedBy"][0]["Name"] == "dce"
    sheet = sessions_sheet(run)
    assert len(sheet) >= 3
    n_json = 0
    for r in sheet.itertuples():
        d_ses = root / f"sub-{r.subject}" / f"ses-{r.session}"
        stem = f"sub-{r.subject}_ses-{r.session}"
        uri = f"bids::sub-{r.subject}/ses-{r.session}/{stem}"
        side = {p.name[len(stem) + 1:-5]: json.loads(p.read_text())
                for p in d_ses.glob("*.json")}
        n_json += len(side)
        # the temporary concentration (outputs.keep_intermediates false) is uncompressed
        stages = {"fit": [f"{uri}_conc.nii", f"{uri}_aif.tsv"],
                  "semiquant": [f"{uri}_dce.nii.gz"]}
        maps = [name for name, s in side.items() if "Column" in s and "_" not in name]
        assert len(maps) >= 14
        for name in maps:
            assert side[name]["Sources"] == stages[output_map(name).stage], name
        # a follow-up's maps on its baseline grid (rule register): the map and transform
        for name in (n for n in side if n.startswith("space-baseline_") and "Column" in side[n]):
            assert side[name]["Sources"] == [f"{uri}_{name.split('_', 1)[1]}.nii.gz",
                                             f"{uri}_desc-tobaseline_xfm.json"], name
        vfa = (d_ses / f"{stem}_vfa.nii.gz").exists()
        assert side["T1map"]["Sources"] == [f"{uri}_vfa.nii.gz" if vfa else f"{uri}_dce.nii.gz"]
        assert side["M0map"]["Sources"] == side["T1map"]["Sources"]
        assert side["conc"]["Sources"][:2] == [f"{uri}_dce.nii.gz", f"{uri}_T1map.nii.gz"]
        assert side["concstatus"]["Sources"] == side["conc"]["Sources"]
        assert side["aif"]["Sources"] == [f"{uri}_dce.nii.gz"]   # blood T10: literature
        assert side["aifvoxels"]["Sources"] == side["aif"]["Sources"]
        assert side["dce"]["RepetitionTime"] > 0 and len(side["dce"]["VolumeTiming"]) > 10
        assert all(not set(s) & set(RETIRED_KEYS) for s in side.values())
    assert n_json >= 20 * len(sheet)
