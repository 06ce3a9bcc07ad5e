"""ROI files in every format give the same voxels and lesion statistics as NIfTI labels.

Independent truth: on an oblique DCE grid (a slab tilted 20 deg about x and 20 deg about
y, anisotropic voxels) the lesions are unions of index-space rectangles, built by array
slicing into a NIfTI label volume. The same lesions are then written, by this file's own
code, as

* a DICOM RTSTRUCT with pydicom: each slice's outline is a polygon along the voxel edges
  (half-integer indices, written down by hand below), mapped to world LPS mm with the
  grid's affine; a hole is a second contour inside the first;
* a DICOM-SEG with highdicom from single-frame MR images written by the project's DICOM
  writer (:func:`dce.io.dicom_write.write_series`); each frame's pixels are labelled by
  locating the pixel centre from the image's own DICOM geometry (ImagePositionPatient,
  ImageOrientationPatient, PixelSpacing) in the NIfTI truth;
* a 3D Slicer ``.seg.nrrd`` with pynrrd (LPS space, another axis order and direction,
  Slicer's ``Segment<N>_*`` keys; one label layer, or two layers with overlapping label
  values).

Every format gives exactly the NIfTI voxel sets (the geometry allows it: contours on the
image planes, segmentations on the image grid or a permutation of it), hence identical
:func:`dce.roi.session_roi_table` output. A free-form polygon on a tilted slice is checked
against matplotlib's point-in-polygon test in in-plane world coordinates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import highdicom as hd
import nibabel as nib
import nrrd
import numpy as np
import pandas as pd
import pydicom
import pytest
from matplotlib.path import Path as MplPath
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from dce.contours import grid_in_polygon, points_in_polygon
from dce.io.dicom_write import write_series
from dce.io.maps import read_roi, read_session_rois
from dce.io.rois import roi_format, roi_regions
from dce.roi import session_roi_table
from dce.semiquant import TICRule

SHAPE = (12, 11, 8)
SPACING_MM = (1.5, 1.2, 3.0)
RTSTRUCT_UID = "1.2.840.10008.5.1.4.1.1.481.3"


def _rot(axis: int, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    r = np.eye(3)
    a, b = [x for x in range(3) if x != axis]
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r


def tilted_affine(deg_x: float = 20.0, deg_y: float = 20.0) -> np.ndarray:
    """Voxel -> RAS mm of a slab tilted about x and y (orthogonal axes)."""
    aff = np.eye(4)
    aff[:3, :3] = _rot(0, deg_x) @ _rot(1, deg_y) @ np.diag(SPACING_MM)
    aff[:3, 3] = [-20.0, 35.0, -110.0]
    return aff


AFFINE = tilted_affine()

# Lesions as slices -> (outer polygons, hole polygons) in index space (i, j), vertices on
# voxel edges, and the same sets as rectangles of voxel indices (inclusive bounds).
L_SHAPE = [(6.5, 1.5), (10.5, 1.5), (10.5, 4.5), (8.5, 4.5), (8.5, 9.5), (6.5, 9.5)]
RECT = [(1.5, 2.5), (5.5, 2.5), (5.5, 7.5), (1.5, 7.5)]
HOLE = [(2.5, 3.5), (4.5, 3.5), (4.5, 5.5), (2.5, 5.5)]
CONTOURS: dict[int, dict[int, list[list[tuple[float, float]]]]] = {
    1: {2: [RECT], 3: [RECT, HOLE], 4: [RECT]},
    2: {5: [L_SHAPE], 6: [L_SHAPE]},
}


def truth_labels() -> np.ndarray:
    lab = np.zeros(SHAPE, dtype=np.int16)
    lab[2:6, 3:8, 2:5] = 1
    lab[3:5, 4:6, 3] = 0                                    # the hole
    lab[7:11, 2:5, 5:7] = 2
    lab[7:9, 5:10, 5:7] = 2
    return lab


def world_lps(i: float, j: float, k: float, affine: np.ndarray = AFFINE) -> list[float]:
    ras = affine @ np.array([i, j, k, 1.0])
    return [-ras[0], -ras[1], ras[2]]


# --------------------------------------------------------------------------- writers

def _meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def write_rtstruct(path: Path, rois: list[dict[str, Any]]) -> Path:
    """RTSTRUCT with pydicom; ``rois``: ``{"number", "name", "contours": [(n, 3) LPS]}``."""
    uid = generate_uid()
    ds = Dataset()
    ds.file_meta = _meta(RTSTRUCT_UID, uid)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTSTRUCT_UID, uid, "RTSTRUCT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StructureSetLabel = "test"
    frame = generate_uid()
    ssr, rcs = [], []
    for roi in rois:
        item = Dataset()
        item.ROINumber, item.ROIName = roi["number"], roi["name"]
        item.ReferencedFrameOfReferenceUID, item.ROIGenerationAlgorithm = frame, "MANUAL"
        ssr.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = roi["number"]
        seq = []
        for pts in roi["contours"]:
            c = Dataset()
            c.ContourGeometricType = roi.get("type", "CLOSED_PLANAR")
            c.NumberOfContourPoints = len(pts)
            c.ContourData = [f"{v:.6f}" for v in np.asarray(pts).ravel()]
            seq.append(c)
        rc.ContourSequence = DicomSequence(seq)
        rcs.append(rc)
    ds.StructureSetROISequence = DicomSequence(ssr)
    ds.ROIContourSequence = DicomSequence(rcs)
    ds.save_as(path, enforce_file_format=True)
    return path


def lesion_contours_lps(lesion: int, *, affine: np.ndarray = AFFINE,
                        dk: float = 0.0) -> list[np.ndarray]:
    out = []
    for k, polys in CONTOURS[lesion].items():
        for poly in polys:
            out.append(np.array([world_lps(i, j, k + dk, affine) for i, j in poly]))
    return out


def write_seg(folder: Path, truth: np.ndarray, names: dict[int, str]) -> Path:
    """DICOM-SEG (highdicom) on MR source images written by the project's writer."""
    files = write_series(folder / "mr", truth.astype(float) * 100 + 10, [0.0], AFFINE,
                         flip_angle_deg=15, tr_s=0.005, te_s=0.002, patient_name="Test^Seg",
                         patient_id="SEG1", shuffle_instance_numbers=False)
    sources = [pydicom.dcmread(f) for f in files]
    inv = np.linalg.inv(AFFINE)
    frames = []
    for ds in sources:                      # label each pixel from its own DICOM geometry
        ipp = np.asarray(ds.ImagePositionPatient, float)
        iop = np.asarray(ds.ImageOrientationPatient, float)
        dr, dc = (float(v) for v in ds.PixelSpacing)     # between rows, between columns
        r, c = np.meshgrid(np.arange(ds.Rows), np.arange(ds.Columns), indexing="ij")
        lps = (ipp[:, None, None] + iop[:3, None, None] * c * dc
               + iop[3:, None, None] * r * dr)
        ras = np.stack([-lps[0], -lps[1], lps[2], np.ones_like(lps[0])])
        idx = np.rint(np.tensordot(inv, ras, axes=1)[:3]).astype(int)
        lab = truth[idx[0], idx[1], idx[2]]
        frames.append(np.stack([lab == n for n in sorted(names)], axis=-1))
    descs = [hd.seg.SegmentDescription(
        segment_number=k + 1, segment_label=names[n],
        segmented_property_category=hd.sr.CodedConcept("49755003", "SCT",
                                                       "Morphologically abnormal structure"),
        segmented_property_type=hd.sr.CodedConcept("108369006", "SCT", "Neoplasm"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for k, n in enumerate(sorted(names))]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=np.stack(frames).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descs,
        series_instance_uid=hd.UID(), series_number=50, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="test", manufacturer_model_name="test",
        software_versions="1", device_serial_number="1")
    path = folder / "lesions_seg.dcm"
    seg.save_as(path)
    return path


def nrrd_grid(truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The truth in another voxel order (p, q, r) = (k, n_i - 1 - i, j), its RAS affine."""
    data = np.flip(np.transpose(truth, (2, 0, 1)), axis=1)
    m = np.array([[0, -1, 0, SHAPE[0] - 1], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    return np.ascontiguousarray(data), AFFINE @ m


def write_seg_nrrd(path: Path, layers: np.ndarray, aff_ras: np.ndarray,
                   segments: list[tuple[str, int, int]]) -> Path:
    """Slicer-style .seg.nrrd (LPS); ``segments``: (name, label value, layer)."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff_ras
    dirs = lps[:3, :3].T.tolist()
    hdr: dict[str, Any] = {"space": "left-posterior-superior", "space origin": lps[:3, 3]}
    if layers.ndim == 4:
        hdr["space directions"] = [[np.nan] * 3, *dirs]
        hdr["kinds"] = ["list", "domain", "domain", "domain"]
    else:
        hdr["space directions"] = dirs
        hdr["kinds"] = ["domain"] * 3
    for n, (name, value, layer) in enumerate(segments):
        hdr[f"Segment{n}_ID"] = f"Segment_{n + 1}"
        hdr[f"Segment{n}_Name"] = name
        hdr[f"Segment{n}_LabelValue"] = str(value)
        hdr[f"Segment{n}_Layer"] = str(layer)
    nrrd.write(str(path), layers.astype(np.uint8), hdr)
    return path


# --------------------------------------------------------------------------- fixtures

NAMES = {1: "GTV L1", 2: "GTV T12"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rois")
    truth = truth_labels()
    out: dict[str, Path] = {}
    out["nifti"] = d / "lesions.nii.gz"
    nib.save(nib.Nifti1Image(truth, AFFINE), out["nifti"])
    body = [np.array([world_lps(i, j, 3, AFFINE) for i, j in RECT]) + np.array([0, 0, 900.0])]
    out["rtstruct_names"] = write_rtstruct(d / "names.dcm", [
        {"number": 1, "name": "BODY", "contours": body},    # outside the FOV, never asked for
        {"number": 7, "name": NAMES[2], "contours": lesion_contours_lps(2)},
        {"number": 2, "name": NAMES[1], "contours": lesion_contours_lps(1)}])
    out["rtstruct_numbers"] = write_rtstruct(d / "numbers.dcm", [
        {"number": n, "name": NAMES[n], "contours": lesion_contours_lps(n)} for n in (1, 2)])
    out["seg"] = write_seg(d, truth, NAMES)
    data, aff = nrrd_grid(truth)
    out["nrrd"] = write_seg_nrrd(d / "lesions.seg.nrrd", data, aff,
                                 [(NAMES[1], 1, 0), (NAMES[2], 2, 0)])
    two = np.stack([data == 1, data == 2]).astype(np.uint8)  # both segments: value 1
    out["nrrd_layers"] = write_seg_nrrd(d / "layers.seg.nrrd", two, aff,
                                        [(NAMES[1], 1, 0), (NAMES[2], 1, 1)])
    return out


CASES = [("rtstruct_names", NAMES), ("rtstruct_numbers", None), ("rtstruct_numbers", NAMES),
         ("seg", None), ("seg", NAMES), ("nrrd", None), ("nrrd", NAMES),
         ("nrrd_layers", NAMES)]


def test_formats_detected_from_content(files: dict[str, Path]) -> None:
    got = {k: roi_format(p) for k, p in files.items()}
    assert got == {"nifti": "nifti", "rtstruct_names": "rtstruct",
                   "rtstruct_numbers": "rtstruct", "seg": "seg", "nrrd": "nrrd",
                   "nrrd_layers": "nrrd"}
    assert [(r.number, r.name) for r in roi_regions(files["rtstruct_names"])] == [
        (1, "BODY"), (7, NAMES[2]), (2, NAMES[1])]
    assert [(r.number, r.name) for r in roi_regions(files["seg"])] == [(1, NAMES[1]),
                                                                       (2, NAMES[2])]
    assert [(r.number, r.name) for r in roi_regions(files["nrrd_layers"])] == [
        (1, NAMES[1]), (1, NAMES[2])]
    assert [r.number for r in roi_regions(files["nifti"])] == [1, 2]


def test_unknown_files_are_named(files: dict[str, Path], tmp_path: Path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("lesion 1 at L1\n")
    with pytest.raises(ValueError, match=r"notes\.txt: not a recognised ROI file"):
        roi_format(txt)
    mr = next((files["seg"].parent / "mr").iterdir())
    with pytest.raises(ValueError, match=r"DICOM Modality 'MR' is not an ROI"):
        read_roi(mr, SHAPE, AFFINE)
    raw = tmp_path / "no_preamble"                         # DICOM without the preamble
    ds = pydicom.dcmread(files["rtstruct_numbers"])
    ds.preamble = None
    del ds.file_meta
    ds.save_as(raw, enforce_file_format=False, implicit_vr=False, little_endian=True)
    assert raw.read_bytes()[128:132] != b"DICM" and roi_format(raw) == "rtstruct"


@pytest.mark.parametrize(("key", "names"), CASES)
def test_same_voxels_as_nifti(files: dict[str, Path], key: str,
                              names: dict[int, str] | None) -> None:
    truth = truth_labels()
    assert np.count_nonzero(truth == 1) == 4 * 5 * 3 - 4 and np.count_nonzero(truth == 2) == 44
    lab, notes = read_roi(files[key], SHAPE, AFFINE, labels=[1, 2], names=names)
    assert lab.shape == SHAPE
    np.testing.assert_array_equal(lab, truth)               # identical voxel sets
    assert notes == []
    nii, _ = read_roi(files["nifti"], SHAPE, AFFINE)
    np.testing.assert_array_equal(nii, truth)


def test_same_lesion_statistics(files: dict[str, Path]) -> None:
    rng = np.random.default_rng(13)
    maps = {"ktrans_per_min": rng.gamma(2.0, 0.05, SHAPE), "ve": rng.uniform(0, 1, SHAPE),
            "status": rng.choice([0, 0, 0, 3], SHAPE)}
    t = np.arange(20) * 10.0
    sig = 100 + rng.normal(0, 2, (*SHAPE, 20)) + 50 * (t > 20)
    marrow = np.zeros(SHAPE, dtype=np.int32)
    marrow[0:2, 0:3, 0:4] = 1
    kw: dict[str, Any] = {"voxel_volume_mm3": float(np.prod(SPACING_MM)), "n_baseline": 3,
                          "iauc_windows_s": [60.0], "rule": TICRule(), "rslope_from": "pct",
                          "index": {"subject": "P01", "session": "pre"},
                          "levels": {1: "L1", 2: "T12"}}
    tables = {}
    for key, names in [("nifti", None), *CASES]:
        lesions, mar, _ = read_session_rois(files[key], None, SHAPE, AFFINE, expected=[1, 2],
                                            expected_from="lesions.tsv", subject="P01",
                                            names=names)
        assert mar is None
        tables[key, str(names)] = session_roi_table(maps, sig, t, lesions, marrow, **kw)[0]
    ref = tables["nifti", "None"]
    assert ref["n_voxels"].tolist()[:2] == [56, 44]
    for k, table in tables.items():
        pd.testing.assert_frame_equal(table, ref, obj=str(k))


def test_marrow_roi_is_union_of_regions(files: dict[str, Path]) -> None:
    _, mar, notes = read_session_rois(files["nifti"], files["seg"], SHAPE, AFFINE,
                                      expected=[1, 2], expected_from="lesions.tsv",
                                      subject="P01")
    assert mar is not None
    np.testing.assert_array_equal(mar, (truth_labels() > 0).astype(np.int32))
    # RTSTRUCT with a structure outside the FOV: skipped with a note, the rest is used
    lab, notes = read_roi(files["rtstruct_names"], SHAPE, AFFINE)
    np.testing.assert_array_equal(lab > 0, truth_labels() > 0)
    assert any("BODY" in n and "outside the image field of view" in n for n in notes)


# --------------------------------------------------------------------- tilted geometry

def test_free_polygon_on_tilted_slice_matches_world_truth(tmp_path: Path) -> None:
    """A star-shaped polygon drawn in a tilted slice plane (world mm), rasterised; truth:
    matplotlib's contains_points on voxel centres in the slice's in-plane coordinates."""
    rng = np.random.default_rng(7)
    aff = tilted_affine(20.0, 20.0)
    k = 4
    u = aff[:3, 0] / np.linalg.norm(aff[:3, 0])
    v = aff[:3, 1] / np.linalg.norm(aff[:3, 1])
    centre = aff @ np.array([5.3, 4.8, k, 1.0])
    ang = np.sort(rng.uniform(0, 2 * np.pi, 17))
    rad = rng.uniform(2.0, 5.0, ang.size)                  # mm, inside the grid
    xy = np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])
    ras = centre[:3] + xy[:, :1] * u + xy[:, 1:] * v
    lps = ras * [-1, -1, 1]
    path = write_rtstruct(tmp_path / "star.dcm", [{"number": 3, "name": "star",
                                                   "contours": [lps]}])
    lab, notes = read_roi(path, SHAPE, aff, labels=[3])
    assert notes == []
    ii, jj = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    world = (aff[:3, :3] @ np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k)])
             + aff[:3, 3:4])
    local = np.column_stack([(world.T - centre[:3]) @ u, (world.T - centre[:3]) @ v])
    expect = MplPath(xy).contains_points(local).reshape(ii.shape)
    assert expect.sum() > 10
    np.testing.assert_array_equal(lab[..., k] == 3, expect)
    assert np.count_nonzero(lab) == expect.sum()           # nothing on other slices


def test_contour_between_slices_is_projected(tmp_path: Path) -> None:
    """Contours 0.3 slice spacings off the planes: nearest slice, same voxels, a note."""
    path = write_rtstruct(tmp_path / "off.dcm", [
        {"number": n, "name": NAMES[n], "contours": lesion_contours_lps(n, dk=0.3)}
        for n in (1, 2)])
    lab, notes = read_roi(path, SHAPE, AFFINE, labels=[1, 2])
    np.testing.assert_array_equal(lab, truth_labels())
    assert len(notes) == 2 and "projected onto the nearest slice" in notes[0]
    assert "0.90 mm off-plane" in notes[0]                 # 0.3 x 3.0 mm slices


def test_axial_contour_on_tilted_slab_is_an_error(tmp_path: Path) -> None:
    """A contour in a world axial plane crosses several tilted slices: no slice owns it."""
    centre = AFFINE @ np.array([6.0, 5.0, 3.0, 1.0])
    sq = np.array([[-6, -6], [6, -6], [6, 6], [-6, 6]], float)
    lps = np.column_stack([-(centre[0] + sq[:, 0]), -(centre[1] + sq[:, 1]),
                           np.full(4, centre[2])])
    path = write_rtstruct(tmp_path / "axial.dcm", [{"number": 1, "name": "GTV",
                                                    "contours": [lps]}])
    with pytest.raises(ValueError, match=r"axial\.dcm \[ROI 1 'GTV'\]: contour 1 does not lie "
                       r"in an image slice plane.*tilted by about 2\d deg"):
        read_roi(path, SHAPE, AFFINE, labels=[1])


def test_contour_outside_the_grid_is_an_error(tmp_path: Path) -> None:
    far = [c + np.array([0.0, 0.0, 500.0]) for c in lesion_contours_lps(1)]
    path = write_rtstruct(tmp_path / "far.dcm", [{"number": 1, "name": "GTV",
                                                  "contours": far}])
    with pytest.raises(ValueError, match=r"far\.dcm \[ROI 1 'GTV'\]: every contour lies "
                       "outside the image field of view"):
        read_roi(path, SHAPE, AFFINE, labels=[1])


def test_name_not_found_lists_the_names(files: dict[str, Path]) -> None:
    for key in ("rtstruct_names", "seg", "nrrd"):
        with pytest.raises(ValueError, match=r"lesion 2: no region with name 'GTV T11' "
                           r"\(regions present, number and name: .*'GTV T12'"):
            read_roi(files[key], SHAPE, AFFINE, labels=[1, 2],
                     names={1: NAMES[1], 2: "GTV T11"})
    with pytest.raises(ValueError, match=r"names\.dcm: lesion 3: no region with number 3 "
                       r"\(regions present, number and name: 1 'BODY', 7 'GTV T12', 2 "
                       r"'GTV L1'\); give the ROI/segment name in the roi_name column"):
        read_session_rois(files["rtstruct_names"], None, SHAPE, AFFINE, expected=[3],
                          expected_from="lesions.tsv", subject="P01")
    # duplicate label values across Slicer layers: matching by number is ambiguous
    with pytest.raises(ValueError, match="lesion 1: 2 regions with number 1"):
        read_roi(files["nrrd_layers"], SHAPE, AFFINE, labels=[1])
    with pytest.raises(ValueError, match="label volume has no ROI names"):
        read_roi(files["nifti"], SHAPE, AFFINE, labels=[1], names={1: "GTV"})


def test_hole_and_non_closed_contours(tmp_path: Path) -> None:
    """Even-odd rule: a contour inside another is a hole; POINT contours are ignored."""
    rect = np.array([world_lps(i, j, 3) for i, j in RECT])
    hole = np.array([world_lps(i, j, 3) for i, j in HOLE])
    path = write_rtstruct(tmp_path / "hole.dcm", [
        {"number": 1, "name": "ring", "contours": [rect, hole]},
        {"number": 2, "name": "marker", "type": "POINT", "contours": [rect[:3]]}])
    lab, notes = read_roi(path, SHAPE, AFFINE, labels=[1])
    np.testing.assert_array_equal(lab, np.where(truth_labels()[..., :] == 1, 1, 0)
                                  * (np.arange(SHAPE[2]) == 3))
    assert any("POINT (1)" in n for n in notes)


@pytest.mark.parametrize("seed", range(5))
def test_scanline_grid_test_equals_point_test(seed: int) -> None:
    """The scanline rasteriser decides every grid point like the point test, including
    polygons with vertices and edges on grid points (ties)."""
    rng = np.random.default_rng(seed)
    poly = rng.uniform(-3, 20, (11, 2))
    poly[::2] = np.rint(poly[::2])                         # integer vertices: ties
    lo, hi = (-2, 0), (18, 21)
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1),
                         indexing="ij")
    expect = points_in_polygon(np.column_stack([gx.ravel(), gy.ravel()]), poly)
    got = grid_in_polygon(poly, lo, hi)
    assert got.shape == gx.shape and 0 < got.sum() < got.size
    np.testing.assert_array_equal(got, expect.reshape(gx.shape))


def test_points_in_polygon_against_matplotlib() -> None:
    rng = np.random.default_rng(3)
    poly = rng.uniform(-5, 5, (9, 2))                      # self-intersecting: even-odd
    pts = rng.uniform(-6, 6, (4000, 2))
    np.testing.assert_array_equal(points_in_polygon(pts, poly),
                                  MplPath(poly).contains_points(pts))


# --------------------------------------------------------------------------- workflow

def voxel_squares_lps(mask: np.ndarray, affine: np.ndarray) -> list[np.ndarray]:
    """One square contour (along the voxel's edges, on its slice) per voxel of ``mask``:
    disjoint polygons whose union contains exactly the centres of ``mask``."""
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    out = []
    for i, j, k in np.argwhere(mask):
        vox = np.column_stack([i + corners[:, 0], j + corners[:, 1], np.full(4, k),
                               np.ones(4)])
        ras = (affine @ vox.T).T[:, :3]
        out.append(ras * [-1.0, -1.0, 1.0])
    return out


@pytest.mark.workflow
def test_workflow_rtstruct_and_seg_nrrd_give_the_nifti_roi_table(run: Path) -> None:
    """One session of the test cohort with its lesion ROI as an RTSTRUCT (lesions by
    roi_name, ROI numbers unlike the labels) and its marrow ROI as a .seg.nrrd: the
    session's roi.tsv equals the one of the NIfTI run."""
    from wfutil import DEMO, RESULTS, sessions_sheet, snakemake

    demo = run / DEMO
    sessions = sessions_sheet(run)
    lesions = pd.read_csv(demo / "lesions.tsv", sep="\t", dtype=str, keep_default_na=False)
    row = sessions.iloc[0]
    s, t = row["subject"], row["session"]
    les: Any = nib.load(demo / row["lesion_roi"])
    lab = np.asarray(les.dataobj).astype(int)
    labels = [int(v) for v in lesions.loc[lesions["subject"] == s, "lesion"]]
    assert labels and set(labels) <= set(np.unique(lab).tolist())
    write_rtstruct(demo / "lesions_rt.dcm", [
        {"number": 10 + n, "name": f"GTV {n}", "contours": voxel_squares_lps(lab == n,
                                                                          les.affine)}
        for n in labels])
    mar: Any = nib.load(demo / row["marrow_roi"])
    mdata = (np.asarray(mar.dataobj) > 0).astype(np.uint8)
    write_seg_nrrd(demo / "marrow.seg.nrrd", mdata, mar.affine, [("marrow", 1, 0)])
    sheet = sessions.copy()
    sheet.loc[sheet.index[0], ["lesion_roi", "marrow_roi"]] = ["lesions_rt.dcm",
                                                               "marrow.seg.nrrd"]
    sheet.to_csv(demo / "sessions_fmt.tsv", sep="\t", index=False)
    lesions["roi_name"] = [f"GTV {v}" if sub == s else ""
                           for sub, v in zip(lesions["subject"], lesions["lesion"],
                                             strict=True)]
    lesions.to_csv(demo / "lesions_fmt.tsv", sep="\t", index=False)
    stem = f"sub-{s}/ses-{t}/sub-{s}_ses-{t}_roi.tsv"
    cfg = {"demo": {"enabled": False}, "sessions": f"{DEMO.as_posix()}/sessions_fmt.tsv",
           "lesions": f"{DEMO.as_posix()}/lesions_fmt.tsv", "results": "results_fmt"}
    snakemake(run, config=cfg, targets=[f"results_fmt/{stem}"])
    new = pd.read_csv(run / "results_fmt" / stem, sep="\t")
    ref = pd.read_csv(run / RESULTS / stem, sep="\t")
    assert (new["roi"] == "lesion").sum() == len(labels) and "marrow" in set(new["roi"])
    pd.testing.assert_frame_equal(new, ref)
