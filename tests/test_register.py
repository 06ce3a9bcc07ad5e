"""Rigid registration of a follow-up to the baseline session (dce.register), against the
phantom's known motion (dce.phantom: its renderer moves the anatomy analytically,
sub-voxel supersampled, and shares no code with SimpleITK or dce.register).

Issue 16 acceptance: translations up to 20 mm and rotations up to 10 deg recovered within
1 mm target registration error at the lesion centres and 1 deg; a wrong pairing (another
subject's baseline) fails the QC with a message; identical results across runs;
resampling of a known map.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from dce.phantom import (
    Acquisition,
    LesionSpec,
    SessionPhantom,
    demo_cohort,
    make_session,
    world_motion,
)
from dce.register import (
    RegistrationSettings,
    dice_by_label,
    register_rigid,
    resample_to_baseline,
    rotation_angles_deg,
)

N_BASELINE = 4   # the phantom's bolus arrives at 22 s: phases 0-15 s are pre-contrast
#: demo geometry (96 x 96 x 10, 1.8 x 1.8 x 5 mm), few phases: only the baseline is used
ACQ = Acquisition(n_phases=8, vfa_flip_angles_deg=None)
LESIONS = (LesionSpec(1, "L1", offset_mm=(3.0, 2.0, -4.0), semi_axes_mm=(9.0, 7.0, 12.0)),
           LesionSpec(2, "T12", offset_mm=(-4.0, -3.0, 5.0), semi_axes_mm=(7.0, 6.0, 9.0)))


@lru_cache(maxsize=1)
def _baseline() -> SessionPhantom:
    return make_session(seed=11, session="pre", acquisition=ACQ, lesions=LESIONS,
                        shift_mm=(1.0, -1.5, 0.5))


def _followup(seed: int, shift_mm: tuple[float, float, float],
              rotation_deg: tuple[float, float, float]) -> SessionPhantom:
    return make_session(seed=seed, session="fu1", acquisition=ACQ, lesions=LESIONS,
                        shift_mm=shift_mm, rotation_deg=rotation_deg)


def _precontrast(ph: SessionPhantom) -> np.ndarray:
    return np.asarray(ph.signal[..., :N_BASELINE].mean(axis=-1))


def _centroids_ras(ph: SessionPhantom) -> dict[int, np.ndarray]:
    out = {}
    for lab in np.unique(ph.lesion_labels[ph.lesion_labels > 0]):
        idx = np.argwhere(ph.lesion_labels == lab).mean(axis=0)
        out[int(lab)] = ph.affine[:3, :3] @ idx + ph.affine[:3, 3]
    return out


def _rotation_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (deg) of the rotation between two rotation matrices."""
    c = (np.trace(a @ b.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


# (shift (posterior, inferior, right) mm, rotation about posterior, inferior, right deg):
# the extremes of each axis, combined extremes, and seeded random draws
_rng = np.random.default_rng(16)
CASES = [
    ((0.0, 20.0, 0.0), (0.0, 0.0, 0.0)),
    ((0.0, -20.0, 0.0), (0.0, 0.0, 10.0)),
    ((0.0, 0.0, 0.0), (10.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 10.0, 0.0)),
    ((-8.0, -20.0, 3.0), (6.0, -6.0, -10.0)),
    ((8.0, 20.0, -3.0), (-10.0, 10.0, 10.0)),
    *[(tuple(float(x) for x in _rng.uniform(-1, 1, 3) * (10.0, 20.0, 4.0)),
       tuple(float(x) for x in _rng.uniform(-10.0, 10.0, 3))) for _ in range(3)],
]


def test_phantom_motion_truth_moves_the_lesions() -> None:
    """The truth itself: world_motion maps each rendered baseline lesion centroid onto the
    rendered follow-up centroid (sub-voxel: the label centroids of thick slices)."""
    base = _baseline()
    fu = _followup(2, (-8.0, -20.0, 3.0), (6.0, -6.0, -10.0))
    m = world_motion(base.spec, fu.spec)
    cb, cf = _centroids_ras(base), _centroids_ras(fu)
    assert set(cb) == set(cf) == {1, 2}
    for lab in cb:
        moved = m[:3, :3] @ cb[lab] + m[:3, 3]
        assert np.linalg.norm(cf[lab] - cb[lab]) > 15.0          # it did move
        assert np.linalg.norm(moved - cf[lab]) < 0.6, lab


@pytest.mark.parametrize(("shift_mm", "rotation_deg"), CASES)
def test_known_rigid_motion_is_recovered(shift_mm: tuple[float, float, float],
                                          rotation_deg: tuple[float, float, float]) -> None:
    base = _baseline()
    fu = _followup(3 + CASES.index((shift_mm, rotation_deg)), shift_mm, rotation_deg)
    truth = world_motion(base.spec, fu.spec)
    reg = register_rigid(_precontrast(base), base.affine, base.lesion_labels,
                         _precontrast(fu), fu.affine, fu.lesion_labels)
    for lab, c in _centroids_ras(base).items():
        point = np.append(c, 1.0)
        tre = np.linalg.norm((reg.matrix_ras @ point - truth @ point)[:3])
        assert tre < 1.0, (lab, tre)
    assert _rotation_error_deg(reg.matrix_ras[:3, :3], truth[:3, :3]) < 1.0
    assert np.allclose(reg.rotation_deg, rotation_angles_deg(truth[:3, :3]), atol=1.0)
    assert reg.qc.passed, reg.qc.reasons
    assert reg.qc.ncc_after > reg.qc.ncc_before
    assert set(reg.qc.dice) == {1, 2} and min(reg.qc.dice.values()) > 0.7
    rec = reg.record()
    assert np.allclose(rec["matrix_ras"], reg.matrix_ras)
    assert "baseline" in rec["direction"] and "follow-up" in rec["direction"]


def test_wrong_pairing_fails_qc() -> None:
    """Another subject's baseline: the spine aligns, the lesions do not."""
    cohort = demo_cohort(3, 3, n_phases=8)
    own = cohort.session("P01", "pre")
    other = cohort.session("P02", "fu1")
    reg = register_rigid(_precontrast(own), own.affine, own.lesion_labels,
                         _precontrast(other), other.affine, other.lesion_labels)
    assert not reg.qc.passed
    text = "; ".join(reg.qc.reasons)
    assert "lesion 1 Dice" in text and "registration.min_dice" in text, text
    assert reg.qc_record()["passed"] is False


def test_registration_is_reproducible() -> None:
    base = _baseline()
    fu = _followup(5, (4.0, 12.0, -2.0), (3.0, -2.0, 7.0))
    args = (_precontrast(base), base.affine, base.lesion_labels, _precontrast(fu),
            fu.affine, fu.lesion_labels)
    one, two = register_rigid(*args), register_rigid(*args)
    assert np.array_equal(one.matrix_ras, two.matrix_ras)
    assert one.qc_record() == two.qc_record()
    assert one.transform.GetParameters() == two.transform.GetParameters()


def test_settings_from_config_and_bad_settings() -> None:
    s = RegistrationSettings.from_config({"mask_margin_mm": 20.0, "shrink_factors": [2, 1],
                                          "smoothing_sigmas_mm": [1.0, 0.0], "maps": ["vp"],
                                          "enabled": True})
    assert s.mask_margin_mm == 20.0 and s.shrink_factors == (2, 1)
    with pytest.raises(ValueError, match="metric"):
        RegistrationSettings(metric="ssd")
    with pytest.raises(ValueError, match="resolution level"):
        RegistrationSettings(shrink_factors=(2, 1), smoothing_sigmas_mm=(1.0,))
    base = _baseline()
    with pytest.raises(ValueError, match="no lesion voxel"):
        register_rigid(_precontrast(base), base.affine, np.zeros(base.lesion_labels.shape),
                       _precontrast(base), base.affine)


# --------------------------------------------------------------------------- resampling


def _grid_affine(voxel_mm: tuple[float, float, float], origin: tuple[float, float, float],
                 ) -> np.ndarray:
    a = np.diag([*voxel_mm, 1.0])
    a[:3, 3] = origin
    return a


def _rigid(angle_deg: float, t: tuple[float, float, float]) -> np.ndarray:
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    m = np.eye(4)
    m[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    m[:3, 3] = t
    return m


def test_linear_resampling_of_a_linear_map_is_exact() -> None:
    """A map linear in world mm, moved by a known rigid transform: trilinear interpolation
    reproduces it exactly inside the follow-up grid; NaN outside its field of view."""
    a_f = _grid_affine((2.0, 2.0, 5.0), (-40.0, -40.0, -20.0))
    shape_f = (41, 41, 9)
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in shape_f), indexing="ij"), -1)
    world_f = idx @ a_f[:3, :3].T + a_f[:3, 3]
    g = np.array([0.3, -0.7, 1.1])

    def field(x: np.ndarray) -> np.ndarray:
        return np.asarray(x @ g + 5.0)

    fmap = field(world_f)
    a_b = _grid_affine((1.5, 1.5, 4.0), (-30.0, -30.0, -16.0))
    shape_b = (61, 41, 9)    # reaches beyond the follow-up grid along x
    m = _rigid(7.0, (3.0, -2.0, 1.5))
    out = resample_to_baseline(fmap, a_f, shape_b, a_b, m)
    idx_b = np.stack(np.meshgrid(*(np.arange(n) for n in shape_b), indexing="ij"), -1)
    world_b = idx_b @ a_b[:3, :3].T + a_b[:3, 3]
    mapped = world_b @ m[:3, :3].T + m[:3, 3]
    expected = field(mapped)
    vox_f = (mapped - a_f[:3, 3]) / np.diag(a_f)[:3]
    inside = np.all((vox_f >= 0) & (vox_f <= np.array(shape_f) - 1), axis=-1)
    outside = np.any((vox_f < -0.5) | (vox_f > np.array(shape_f) - 0.5), axis=-1)
    assert inside.sum() > 1000 and outside.sum() > 1000
    assert np.allclose(out[inside], expected[inside], atol=1e-9)
    assert np.all(np.isnan(out[outside]))


def test_nearest_resampling_moves_labels_by_whole_voxels() -> None:
    """A translation by whole voxels moves a label map exactly (nearest neighbour); a NaN
    voxel of a continuous map spreads only to its interpolation neighbours."""
    a = _grid_affine((2.0, 2.0, 5.0), (0.0, 0.0, 0.0))
    labels = np.zeros((20, 20, 6))
    labels[5:9, 6:10, 2:4] = 3
    m = _rigid(0.0, (4.0, -2.0, 5.0))     # baseline x -> follow-up x + (2, -1, 1) voxels
    out = resample_to_baseline(labels, a, labels.shape, a, m, kind="nearest")
    assert np.array_equal(np.argwhere(out == 3), np.argwhere(labels == 3) - [2, -1, 1])
    assert dice_by_label(np.roll(labels, (-2, 1, -1), axis=(0, 1, 2)), out) == {3: 1.0}
    cont = np.ones((20, 20, 6))
    cont[10, 10, 3] = np.nan
    res = resample_to_baseline(cont, a, cont.shape, a, _rigid(0.0, (1.0, 0.0, 0.0)))
    nan = np.argwhere(np.isnan(res[:-1]))    # the last row i = 19 maps outside the grid
    assert nan.tolist() == [[9, 10, 3], [10, 10, 3]]
