"""Acceptance: the workflow runs end to end from a NIfTI/JSON (BIDS-style) copy of the
test cohort and gives the same lesion tables as from DICOM.

The copy is made here, by test code: the shared DICOM run's converted ``_dce``/``_vfa``
images are rewritten with nibabel into a BIDS-like tree (``sub-*/ses-*/perf`` and
``anat``) with dcm2niix-like sidecars in BIDS units (RepetitionTime and EchoTime in s,
FlipAngle in deg), per-volume timing as ``VolumeTiming``, ``FrameTimesStart`` or a timing
file in the sheet column ``dce_times_s``, VFA as one 4-D file (volumes in reverse flip
angle order) or as 3-D ``_flip-<n>_VFA`` files, and dcm2niix-style identifiers planted
in every sidecar. One more run of the small cohort (about as long as the shared run).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from wfutil import DEMO, RESULTS, sessions_sheet, snakemake, text_blobs

from dce.io.nifti import read_nifti
from dce.io.provenance import file_sha256

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP via snakemake

#: identifiers a dcm2niix sidecar may hold; none may reach an output
PLANTED = {"PatientName": "BIDSCANARY^NAME", "PatientID": "BIDSCANARYPID",
           "PatientBirthDate": "19230405", "AcquisitionDateTime": "1987-06-05T07:13:17.5",
           "AcquisitionTime": "07:13:17.500000", "InstitutionName": "BIDSCANARYHOSP",
           "InstitutionAddress": "1 BIDSCANARYSTREET", "DeviceSerialNumber": "BIDSCANARYSN",
           "StationName": "BIDSCANARYSTATION", "ProtocolName": "BIDSCANARYPROTOCOL",
           "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.123454321"}


def _save(path: Path, data: Any, affine: Any, side: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    nib.save(img, path)
    path.with_name(path.name.replace(".nii.gz", ".json")).write_text(
        json.dumps(side, indent=2), encoding="utf-8")


def _bids_copy(run: Path, work: Path) -> pd.DataFrame:
    """BIDS-style NIfTI/JSON copy of the DICOM run's images in ``work/bids``; returns the
    sessions sheet (also written there, with the lesion sheet and the ROIs)."""
    root = work / "bids"
    rows = []
    for n, r in enumerate(sessions_sheet(run).to_dict("records")):
        s, t = r["subject"], r["session"]
        src = run / RESULTS / f"sub-{s}" / f"ses-{t}" / f"sub-{s}_ses-{t}"
        dce: Any = nib.load(f"{src}_dce.nii.gz")
        dside = json.loads(Path(f"{src}_dce.json").read_text())
        times = dside["VolumeTiming"]
        side = {"Modality": "MR", "Manufacturer": dside["Manufacturer"],
                "MagneticFieldStrength": dside["MagneticFieldStrength"],
                "RepetitionTime": dside["RepetitionTime"], "EchoTime": dside["EchoTime"],
                "FlipAngle": dside["FlipAngle"], "ConversionSoftware": "dcm2niix",
                **PLANTED}
        row = {k: v for k, v in r.items() if k != "dicom_dir"}
        stem = f"sub-{s}/ses-{t}"
        dpath = f"{stem}/perf/sub-{s}_ses-{t}_dce.nii.gz"
        if n % 3 == 0:
            side["VolumeTiming"] = times
        elif n % 3 == 1:
            side["FrameTimesStart"] = times
        else:                                   # no sidecar timing: the sheet column
            (root / "timing").mkdir(parents=True, exist_ok=True)
            (root / "timing" / f"{s}_{t}.tsv").write_text(
                "time_s\n" + "".join(f"{v!r}\n" for v in times), encoding="utf-8")
            row["dce_times_s"] = f"timing/{s}_{t}.tsv"
        _save(root / dpath, dce.dataobj, dce.affine, side)
        row["dce_nifti"] = dpath
        vfa: Any = nib.load(f"{src}_vfa.nii.gz")
        vside = json.loads(Path(f"{src}_vfa.json").read_text())
        fas = vside["FlipAngles_deg"]
        base = {k: v for k, v in side.items()
                if k not in ("FlipAngle", "VolumeTiming", "FrameTimesStart")}
        base |= {"RepetitionTime": vside["RepetitionTime"], "EchoTime": vside["EchoTime"]}
        vdata = np.asanyarray(vfa.dataobj)
        if n % 2 == 0:                          # one 4-D file, volumes in reverse order
            vpath = f"{stem}/anat/sub-{s}_ses-{t}_VFA.nii.gz"
            _save(root / vpath, vdata[..., ::-1], vfa.affine,
                  base | {"FlipAngle": fas[::-1]})
            row["vfa_nifti"] = vpath
        else:                                   # BIDS qMRI: one 3-D file per flip angle
            paths = []
            for i, fa in enumerate(fas, start=1):
                paths.append(f"{stem}/anat/sub-{s}_ses-{t}_flip-{i}_VFA.nii.gz")
                _save(root / paths[-1], vdata[..., i - 1], vfa.affine, base | {"FlipAngle": fa})
            row["vfa_nifti"] = ";".join(paths)
        for col in ("lesion_roi", "marrow_roi", "aorta_roi", "b1_map"):
            if row.get(col):
                dst = root / "derivatives" / "rois" / row[col]
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(run / DEMO / row[col], dst)
                row[col] = f"derivatives/rois/{row[col]}"
        rows.append(row)
    sheet = pd.DataFrame(rows)
    sheet.to_csv(root / "sessions.tsv", sep="\t", index=False)
    shutil.copy(run / DEMO / "lesions.tsv", root / "lesions.tsv")
    return sheet


@pytest.mark.workflow
def test_nifti_bids_input_gives_the_dicom_lesion_tables(run: Path, tmp_path: Path) -> None:
    work = tmp_path / "nifti"
    sheet = _bids_copy(run, work)
    assert {"dce_nifti", "vfa_nifti", "dce_times_s"} <= set(sheet.columns)
    assert "dicom_dir" not in sheet.columns
    snakemake(work, config={"demo": {"enabled": False}, "sessions": "bids/sessions.tsv",
                            "lesions": "bids/lesions.tsv"})
    n_rows = 0
    for r in sheet.itertuples():
        rel = Path(f"sub-{r.subject}") / f"ses-{r.session}" / f"sub-{r.subject}_ses-{r.session}"
        a, b = run / RESULTS / rel, work / RESULTS / rel
        # the lesion tables: byte-identical (exact, not merely to float32 rounding)
        assert Path(f"{b}_roi.tsv").read_bytes() == Path(f"{a}_roi.tsv").read_bytes(), rel
        n_rows += len(pd.read_csv(f"{b}_roi.tsv", sep="\t"))
        # converted images: same voxels as read by the pipeline (the DICOM run stores the
        # DCE as 16-bit stored values with scl_slope, the NIfTI run as float32), affine,
        # sidecar keys and acquisition values
        for what in ("dce", "vfa"):
            ra, rb = read_nifti(f"{a}_{what}.nii.gz"), read_nifti(f"{b}_{what}.nii.gz")
            assert ra.data.dtype == rb.data.dtype == np.float32
            assert np.array_equal(ra.data, rb.data)
            assert np.array_equal(ra.affine, rb.affine)
            sa = json.loads(Path(f"{a}_{what}.json").read_text())
            sb = json.loads(Path(f"{b}_{what}.json").read_text())
            assert set(sa) == set(sb), set(sa) ^ set(sb)
            for key in ("VolumeTiming", "FlipAngle", "FlipAngles_deg",
                        "RepetitionTime", "EchoTime", "MagneticFieldStrength"):
                assert sa.get(key) == sb.get(key), (rel, what, key)
        prov = json.loads(Path(f"{b}_provenance.json").read_text())["inputs"]
        assert "dicom" not in prov
        for role in ("dce_nifti", "dce_json"):     # input hashes of the NIfTI files
            path = work / "bids" / str(r.dce_nifti)
            path = path if role == "dce_nifti" else path.with_name(
                path.name.replace(".nii.gz", ".json"))
            assert prov[role]["sha256"] == file_sha256(path), (rel, role)
        rec = json.loads(Path(f"{b}_convert.json").read_text())
        assert rec["source"] == "nifti" and rec["vfa"] is not None
        assert any("NIfTI" in line for line in rec["summary"])
        for what in ("ktrans", "ve", "T1map"):
            ma, mb = read_nifti(f"{a}_{what}.nii.gz"), read_nifti(f"{b}_{what}.nii.gz")
            assert np.array_equal(ma.data, mb.data, equal_nan=True), (rel, what)
    assert n_rows >= 2 * len(sheet)
    # the cohort tables built from the lesion tables agree too
    cohort_a = sorted(p.relative_to(run / RESULTS) for p in (run / RESULTS / "cohort").rglob(
        "*.tsv")) if (run / RESULTS / "cohort").exists() else []
    for rel_path in cohort_a:
        assert (work / RESULTS / rel_path).read_bytes() == \
            (run / RESULTS / rel_path).read_bytes(), rel_path
    # no identifier of the input sidecars reaches an output or log
    needles = [*PLANTED.values(), "BIDSCANARY", "07:13:17", "1987-06-05"]
    for name, blob in text_blobs(work / RESULTS).items():
        for needle in needles:
            assert needle.encode() not in blob, (needle, name)


@pytest.mark.workflow
@pytest.mark.parametrize("cells, words", [
    ({"dicom_dir": "dicom", "dce_nifti": "a.nii.gz"},
     ["both dicom_dir and dce_nifti", "exactly one image source"]),
    ({"dicom_dir": "", "dce_nifti": ""}, ["no image source", "dicom_dir", "dce_nifti"]),
])
def test_session_needs_exactly_one_image_source(tmp_path: Path, cells: dict[str, str],
                                                words: list[str]) -> None:
    (tmp_path / "in").mkdir()
    row = {"subject": "P1", "session": "pre", "days_from_rt": "-3", "lesion_roi": "l.nii.gz",
           **cells}
    pd.DataFrame([row]).to_csv(tmp_path / "in" / "sessions.tsv", sep="\t", index=False)
    pd.DataFrame([{"subject": "P1", "lesion": 1, "level": "L1"}]).to_csv(
        tmp_path / "in" / "lesions.tsv", sep="\t", index=False)
    with pytest.raises(Exception) as exc_info:
        snakemake(tmp_path, config={"demo": {"enabled": False}, "sessions": "in/sessions.tsv",
                                    "lesions": "in/lesions.tsv"}, mode="dryrun")
    text = str(exc_info.value) + "".join(str(a) for a in exc_info.value.args)
    if exc_info.value.__cause__ is not None:
        text += str(exc_info.value.__cause__)
    assert "in/sessions.tsv: session P1/pre" in text, text
    assert all(w in text for w in words), text
