"""Deterministic synthetic spine DCE-MRI phantom and longitudinal radiotherapy cohort.

Pure numerics (numpy, pandas); no file input or output (see :mod:`dce.io.dicom_write`
for writing the phantom as DICOM and NIfTI).

Anatomy
-------
A sagittal slab through the thoraco-lumbar spine. Voxel order is the one
:mod:`dce.io.dicom` produces for a sagittal series (``i`` = DICOM column, ``j`` = DICOM
row, ``k`` = slice):

* ``i``: anterior -> posterior (RAS ``-y``), ``j``: superior -> inferior (RAS ``-z``),
  ``k``: patient left -> right (RAS ``+x``).  The affine maps ``(i, j, k)`` to RAS+ mm
  and has a positive determinant; written as DICOM and read back with
  :func:`dce.io.load_dce` it is reproduced exactly.

Tissues (codes in :data:`TISSUE_CODES`): vertebral bodies (normal fatty marrow),
intervertebral discs, spinal canal (CSF), the aorta (a cylinder of blood anterior and
to the left of the vertebral bodies, running cranio-caudally through several slices),
muscle (paraspinal and psoas), subcutaneous fat, anterior soft tissue (viscera) and
background air (zero signal plus noise). Lesions are ellipsoids inside vertebral bodies
with their own kinetic parameters; Ktrans and vp vary smoothly inside a lesion (higher in
the core, see :class:`LesionSpec`). A smooth receive-coil profile (posterior spine coil)
multiplies M0. Sizes are in mm (:class:`Anatomy`), so any matrix and voxel size gives
the same anatomy.

Contrast kinetics
-----------------
The whole-blood AIF is the Parker population AIF (:func:`dce.aif.parker_aif`), scaled
per session and arriving after a few baseline phases, evaluated on a fine grid
(0.1 s by default) and converted to plasma with the hematocrit. Every voxel follows the
extended Tofts model driven by that fine-grid plasma curve (piecewise linear between the
fine samples) and is evaluated exactly at the acquisition times with
:func:`dce.models.extended_tofts` -- the generator's truth is therefore *not* the
fitter's sampling of the input. Aorta voxels hold the blood concentration (inflow
effects neglected), i.e. extended Tofts with ``Ktrans = 0`` and ``vp = 1 - Hct``.

Signal: SPGR steady state (fast water exchange) with each voxel's T10 and M0, relaxivity
``r1``, flip angle and TR of :class:`Acquisition`; Rician noise (magnitude of complex
Gaussian noise) with standard deviation ``sigma = S_marrow / snr`` where ``S_marrow``
is the median pre-contrast signal of normal marrow. An optional variable-flip-angle
(VFA) series shares M0, T10 and sigma.

Default tissue properties (:func:`default_tissues`, rounded, 3 T)
----------------------------------------------------------------
========== ====== ===== ========== ===== ====== ==============================================
tissue     T10 s  M0    Ktrans/min ve    vp     notes
========== ====== ===== ========== ===== ====== ==============================================
marrow     0.65   0.90  0.006      0.08  0.003  adult vertebral marrow, mostly fatty; a little
                                               more red marrow, so a longer T1, than knee
                                               marrow (586 ms at 3 T [Gold2004]_); low,
                                               flat enhancement (type A TIC, seed review)
disc       1.20   0.80  0.005      0.20  0      nucleus pulposus, avascular (assumed values)
csf        4.30   1.00  0          --    0      about 4.2-4.4 s at 3 T [Lu2005]_; no uptake
aorta      1.66   0.95  0          --    1-Hct  arterial blood at 3 T [Lu2004]_
muscle     1.41   0.75  0.05       0.10  0.015  T1 [Gold2004]_; kinetics typical of muscle
fat        0.37   1.00  0.01       0.05  0.005  subcutaneous fat [Gold2004]_
soft       1.20   0.80  0.10       0.20  0.03   anterior viscera (assumed values)
lesion     1.20   0.85  (LesionSpec)            marrow-replacing metastasis (T1 assumed);
                                               kinetics come from :class:`LesionSpec`
========== ====== ===== ========== ===== ====== ==============================================

At 1.5 T the T1 values are replaced by 0.55 (marrow), 1.0 (disc), 4.0 (CSF), 1.44
(blood), 1.01 (muscle), 0.34 (fat), 0.9 (soft tissue), 1.0 s (lesion) -- approximate.
M0 is relative (scaled by :attr:`Acquisition.m0_scale`). These are plausible, rounded
values for a test phantom, not reference data.

Cohort (:func:`make_cohort`)
----------------------------
Patients with 1-2 vertebral lesions, a baseline session about 7 days before
radiotherapy and 1-2 follow-ups (about day 60 and day 120). About 30 % of lesions recur.
Pre-treatment lesions have vp 4-8 % and Ktrans 0.08-0.20 /min (metastases: vp 4.2 %
vs 1.6 % in non-neoplastic lesions [Guan2020]_; Ktrans 0.077 +- 0.028 /min [Lang2013]_).
Controlled lesions lose about 65 % of vp (mean drop 65.2 % after high-dose RT
[Lis2017]_ -- measured 1 hour after RT there, applied here to the follow-ups; the seed's
Fig. 4 shows a 72 % drop at 2 months) and about 55 % of Ktrans; recurrent lesions keep
or increase vp and Ktrans ([Chu2013]_, [Kumar2017]_), and recur on conventional MRI at
day 150-300 (DCE precedes conventional MRI by about 6.6 months [Kumar2017]_).

Randomness: everything is drawn from numpy Generators seeded by
``SeedSequence(seed, spawn_key=...)``: the patient design from key ``(1, patient)``, the
outcome assignment from key ``(0,)``, and each session's noise from key
``(2, patient, session)``. A session's arrays therefore do not depend on the order in
which sessions are generated.

References
----------
.. [Gold2004] Gold GE et al. Musculoskeletal MRI at 3.0 T: relaxation times and image
   contrast. AJR 2004;183:343-351.
.. [Lu2004] Lu H et al. Determining the longitudinal relaxation time (T1) of blood at
   3.0 Tesla. Magn Reson Med 2004;52:679-682.
.. [Lu2005] Lu H et al. Routine clinical brain MRI sequences for use at 3.0 Tesla.
   J Magn Reson Imaging 2005;22:13-22.
.. [Guan2020] Guan Y et al. T1-weighted DCE MRI to differentiate nonneoplastic and
   malignant vertebral body lesions in the spine. Radiology 2020;297:382-389.
.. [Lang2013] Lang N et al. Differentiation of myeloma and metastatic cancer in the spine
   using DCE MRI. Magn Reson Imaging 2013;31:1285-1291.
.. [Lis2017] Lis E et al. DCE MRI of osseous spine metastasis before and 1 hour after
   high-dose image-guided radiation therapy. Neurosurg Focus 2017;42:E9.
.. [Chu2013] Chu S et al. Measurement of blood perfusion in spinal metastases with DCE
   MRI: evaluation of tumor response to radiation therapy. Spine 2013;38:E1418-E1424.
.. [Kumar2017] Kumar KA et al. A pilot study evaluating the use of DCE perfusion MRI to
   predict local recurrence after radiosurgery on spinal metastases. Technol Cancer Res
   Treat 2017;16:857-865.

Literature values above are quoted from the review of Saha et al. (AJNR 2025;46:465-475);
the T1 values are rounded and approximate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from dce.aif import blood_to_plasma, parker_aif
from dce.models import extended_tofts
from dce.signal import concentration_to_signal, spgr_signal

__all__ = [
    "SPINE_LEVELS",
    "TISSUE_CODES",
    "AIFSpec",
    "Acquisition",
    "Anatomy",
    "Cohort",
    "LesionSpec",
    "SessionPhantom",
    "SessionSpec",
    "TissueProperties",
    "TrueAIF",
    "affine_for",
    "default_tissues",
    "make_cohort",
    "make_session",
    "render_session",
]

#: Vertebral level names, cranial to caudal.
SPINE_LEVELS: tuple[str, ...] = (
    tuple(f"C{i}" for i in range(1, 8)) + tuple(f"T{i}" for i in range(1, 13))
    + tuple(f"L{i}" for i in range(1, 6)) + ("S1",))

#: Tissue label codes of :attr:`SessionPhantom.tissue_labels`.
TISSUE_CODES: dict[str, int] = {
    "background": 0, "marrow": 1, "disc": 2, "csf": 3, "aorta": 4, "muscle": 5, "fat": 6,
    "soft": 7, "lesion": 8,
}

_FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------- specifications


@dataclass(frozen=True)
class TissueProperties:
    """Relaxation and kinetic properties of one tissue class.

    Attributes
    ----------
    t10_s : float
        Pre-contrast T1 (s).
    m0 : float
        Relative equilibrium magnetisation (proton density x receive gain), before
        :attr:`Acquisition.m0_scale` and the coil profile.
    ktrans_per_min : float
        Volume transfer constant (/min).
    ve : float
        Extravascular extracellular volume fraction (ignored when ``ktrans_per_min`` is 0).
    vp : float
        Plasma volume fraction.
    """

    t10_s: float
    m0: float
    ktrans_per_min: float = 0.0
    ve: float = 0.2
    vp: float = 0.0


def default_tissues(field_strength_t: float = 3.0) -> dict[str, TissueProperties]:
    """Default tissue properties (see the module table) at 1.5 T or 3 T.

    Parameters
    ----------
    field_strength_t : float
        Main field (T). Values below 2.25 T get the 1.5 T relaxation times.

    Returns
    -------
    dict
        Tissue name (keys of :data:`TISSUE_CODES` except background) to properties.
        ``aorta.vp`` is a placeholder: the aorta gets ``vp = 1 - hematocrit``.
    """
    t1 = ({"marrow": 0.65, "disc": 1.2, "csf": 4.3, "aorta": 1.66, "muscle": 1.41,
           "fat": 0.37, "soft": 1.2, "lesion": 1.2} if field_strength_t >= 2.25 else
          {"marrow": 0.55, "disc": 1.0, "csf": 4.0, "aorta": 1.44, "muscle": 1.01,
           "fat": 0.34, "soft": 0.9, "lesion": 1.0})
    return {
        "marrow": TissueProperties(t1["marrow"], 0.90, 0.006, 0.08, 0.003),
        "disc": TissueProperties(t1["disc"], 0.80, 0.005, 0.20, 0.0),
        "csf": TissueProperties(t1["csf"], 1.00, 0.0, 0.2, 0.0),
        "aorta": TissueProperties(t1["aorta"], 0.95, 0.0, 0.2, 0.0),
        "muscle": TissueProperties(t1["muscle"], 0.75, 0.05, 0.10, 0.015),
        "fat": TissueProperties(t1["fat"], 1.00, 0.01, 0.05, 0.005),
        "soft": TissueProperties(t1["soft"], 0.80, 0.10, 0.20, 0.03),
        "lesion": TissueProperties(t1["lesion"], 0.85, 0.12, 0.25, 0.06),
    }


@dataclass(frozen=True)
class Acquisition:
    """Imaging parameters of a DCE session (3-D SPGR, sagittal).

    Defaults follow the typical 3 T spine protocol quoted by Saha et al. (AJNR 2025):
    TR 4-5 ms, TE 1-2 ms, 5 mm slices, flip angle 20 deg, about 5 s per phase, 10-12
    sagittal slices.

    Attributes
    ----------
    matrix : tuple of int
        ``(n_i, n_j, n_k)``: anterior-posterior, superior-inferior, left-right voxels.
    voxel_mm : tuple of float
        Voxel size (mm) along ``i, j, k`` (``k`` = slice thickness = slice spacing).
    n_phases : int
        Number of dynamic phases.
    dt_s : float
        Phase spacing (s); phase ``p`` is acquired at ``p * dt_s``.
    phase_times_s : tuple of float or None
        Explicit (possibly uneven) phase times (s), overriding ``n_phases``/``dt_s``.
    flip_angle_deg, tr_s, te_s : float
        Dynamic flip angle (deg), repetition and echo time (s).
    field_strength_t : float
        Main field (T); selects the default T1 table.
    r1_per_mM_per_s : float
        Longitudinal relaxivity of the contrast agent (/mM/s).
    vfa_flip_angles_deg : tuple of float or None
        Flip angles (deg) of the VFA T1-mapping series; None for no VFA series.
    snr : float or None
        Pre-contrast normal-marrow signal divided by the noise standard deviation;
        None for noise-free images.
    dt_fine_s : float
        Time step (s) of the fine grid on which the AIF and tissue curves are generated.
    m0_scale : float
        Global signal scale (arbitrary units).
    """

    matrix: tuple[int, int, int] = (96, 96, 10)
    voxel_mm: tuple[float, float, float] = (1.8, 1.8, 5.0)
    n_phases: int = 60
    dt_s: float = 5.0
    phase_times_s: tuple[float, ...] | None = None
    flip_angle_deg: float = 20.0
    tr_s: float = 0.0045
    te_s: float = 0.0015
    field_strength_t: float = 3.0
    r1_per_mM_per_s: float = 4.5
    vfa_flip_angles_deg: tuple[float, ...] | None = (2.0, 5.0, 10.0, 15.0, 20.0)
    snr: float | None = 30.0
    dt_fine_s: float = 0.1
    m0_scale: float = 10000.0

    @property
    def t_s(self) -> _FloatArray:
        """Phase acquisition times (s)."""
        if self.phase_times_s is not None:
            return np.asarray(self.phase_times_s, dtype=np.float64)
        return np.arange(self.n_phases, dtype=np.float64) * self.dt_s

    def validate(self) -> None:
        """Raise ValueError for inconsistent parameters."""
        if len(self.matrix) != 3 or min(self.matrix) < 1:
            raise ValueError(f"matrix: need three positive sizes, got {self.matrix}")
        if len(self.voxel_mm) != 3 or min(self.voxel_mm) <= 0:
            raise ValueError(f"voxel_mm: need three positive sizes (mm), got {self.voxel_mm}")
        t = self.t_s
        if t.size < 2 or np.any(np.diff(t) <= 0) or t[0] < 0:
            raise ValueError("phase times must be >= 0 and strictly increasing, with >= 2 "
                             "phases")
        if not 0 < self.tr_s < 1:
            raise ValueError(f"tr_s: repetition time in seconds, got {self.tr_s}")
        if self.snr is not None and self.snr <= 0:
            raise ValueError(f"snr: must be > 0 or None, got {self.snr}")
        if not 0 < self.dt_fine_s <= float(np.min(np.diff(t))):
            raise ValueError(f"dt_fine_s: must be > 0 and <= the phase spacing, got "
                             f"{self.dt_fine_s}")


@dataclass(frozen=True)
class Anatomy:
    """Sizes (mm) and placement of the phantom anatomy.

    Attributes
    ----------
    body_height_mm, disc_height_mm : float
        Cranio-caudal height of a vertebral body and of a disc.
    body_depth_mm, body_width_mm : float
        Antero-posterior depth and left-right width of a vertebral body (rounded-box
        cross-section, superellipse exponent ``body_shape``).
    body_shape : float
        Superellipse exponent of the body cross-section (2 = ellipse).
    canal_depth_mm, canal_width_mm : float
        Spinal canal (elliptic cross-section) behind the bodies.
    muscle_depth_mm, fat_depth_mm : float
        Paraspinal muscle and subcutaneous fat thickness behind the canal.
    aorta_radius_mm : float
        Aortic radius.
    aorta_left_mm : float
        Left offset of the aortic axis from the midline.
    aorta_gap_mm : float
        Gap between the anterior vertebral surface and the aortic wall.
    spine_position : float
        Position of the vertebral-body centre along ``i`` as a fraction of the FOV
        (0 = anterior edge).
    curvature_mm : float
        Lordotic curvature: the spine axis moves posteriorly by this much at the top and
        bottom edges of the FOV (the aorta follows).
    coil_falloff : float
        Relative loss of receive sensitivity from the posterior to the anterior FOV edge
        (posterior spine coil).
    """

    body_height_mm: float = 25.0
    disc_height_mm: float = 8.0
    body_depth_mm: float = 36.0
    body_width_mm: float = 44.0
    body_shape: float = 3.0
    canal_depth_mm: float = 17.0
    canal_width_mm: float = 22.0
    muscle_depth_mm: float = 55.0
    fat_depth_mm: float = 15.0
    aorta_radius_mm: float = 11.0
    aorta_left_mm: float = 12.0
    aorta_gap_mm: float = 3.0
    spine_position: float = 0.34
    curvature_mm: float = 5.0
    coil_falloff: float = 0.3

    @property
    def pitch_mm(self) -> float:
        """Distance between consecutive vertebral body centres (mm)."""
        return self.body_height_mm + self.disc_height_mm


@dataclass(frozen=True)
class LesionSpec:
    """One ellipsoidal lesion inside a vertebral body.

    Attributes
    ----------
    label : int
        Lesion label (1..255) in :attr:`SessionPhantom.lesion_labels`.
    level : str
        Vertebral level, e.g. ``"L1"`` (must be visible in the slab).
    offset_mm : tuple of float
        Centre offset (mm) from the vertebral-body centre: ``(posterior, inferior, right)``.
    semi_axes_mm : tuple of float
        Semi-axes (mm) along ``(A-P, S-I, L-R)``. The lesion is clipped to the body.
    ktrans_per_min, ve, vp : float
        Nominal kinetic parameters (/min, fraction, fraction).
    heterogeneity : float
        Smooth within-lesion variation of Ktrans and vp: both are multiplied by
        ``1 + heterogeneity * ((1 - r^2) - 0.4)`` with ``r`` the normalised ellipsoidal
        radius (whose volume mean is 1 for an unclipped ellipsoid). ve is uniform.
    delay_s : float
        Extra bolus arrival delay (s) of the lesion relative to the aorta.
    """

    label: int
    level: str
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    semi_axes_mm: tuple[float, float, float] = (9.0, 7.0, 12.0)
    ktrans_per_min: float = 0.12
    ve: float = 0.25
    vp: float = 0.06
    heterogeneity: float = 0.3
    delay_s: float = 0.0


@dataclass(frozen=True)
class AIFSpec:
    """Arterial input of one session: a scaled, delayed Parker population AIF.

    Attributes
    ----------
    scale : float
        Multiplies the Parker whole-blood curve (dose, cardiac output).
    arrival_s : float
        Bolus arrival time in the aorta (s after the first phase).
    hematocrit : float
        Large-vessel hematocrit; plasma = blood / (1 - hematocrit).
    """

    scale: float = 1.0
    arrival_s: float = 22.0
    hematocrit: float = 0.45


@dataclass(frozen=True)
class SessionSpec:
    """Everything needed to render one session deterministically.

    Attributes
    ----------
    subject, session : str
        Identifiers (alphanumeric).
    days_from_rt : float
        Days from radiotherapy (negative = before).
    centre_level : str
        Vertebral level at the centre of the FOV.
    lesions : tuple of LesionSpec
    aif : AIFSpec
    acquisition : Acquisition
    anatomy : Anatomy
    tissues : mapping or None
        Tissue properties; None for :func:`default_tissues` at the acquisition's field.
    shift_mm : tuple of float
        Patient position relative to the slab, ``(posterior, inferior, right)`` (mm).
    seed : tuple of int
        ``(entropy, *spawn_key)`` of the session's noise ``SeedSequence``.
    """

    subject: str
    session: str
    days_from_rt: float
    centre_level: str
    lesions: tuple[LesionSpec, ...]
    aif: AIFSpec = AIFSpec()
    acquisition: Acquisition = Acquisition()
    anatomy: Anatomy = Anatomy()
    tissues: Mapping[str, TissueProperties] | None = None
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seed: tuple[int, ...] = (0,)

    def tissue_table(self) -> dict[str, TissueProperties]:
        """The tissue properties in use."""
        base = default_tissues(self.acquisition.field_strength_t)
        if self.tissues is not None:
            base.update(self.tissues)
        return base


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TrueAIF:
    """The true arterial input of a session.

    Attributes
    ----------
    t_fine_s, cb_fine_mM, cp_fine_mM : ndarray
        Fine time grid (s) and whole-blood / plasma concentration (mM) on it; the truth
        is the piecewise-linear interpolant of these samples.
    t_s, cb_mM, cp_mM : ndarray
        The same at the acquisition times.
    hematocrit, scale, arrival_s : float
        See :class:`AIFSpec`.
    """

    t_fine_s: _FloatArray
    cb_fine_mM: _FloatArray
    cp_fine_mM: _FloatArray
    t_s: _FloatArray
    cb_mM: _FloatArray
    cp_mM: _FloatArray
    hematocrit: float
    scale: float
    arrival_s: float


@dataclass(frozen=True)
class SessionPhantom:
    """A rendered session. Image arrays are in ``(i, j, k[, t])`` order (module notes).

    Attributes
    ----------
    spec : SessionSpec
    signal : ndarray, float32, shape (n_i, n_j, n_k, n_phases)
        Dynamic SPGR magnitude signal.
    t_s : ndarray, shape (n_phases,)
        Phase times (s).
    affine : ndarray, shape (4, 4)
        Voxel to RAS+ mm.
    vfa_signal : ndarray, float32, shape (n_i, n_j, n_k, n_fa), or None
        VFA signal, one volume per flip angle.
    vfa_flip_angles_deg : tuple of float
    tissue_labels : ndarray of uint8
        Tissue codes (:data:`TISSUE_CODES`).
    lesion_labels : ndarray of uint8
        0 outside lesions, the lesion label inside.
    marrow_roi : ndarray of uint8
        1 in a normal-marrow reference ROI (centre of a lesion-free vertebral body).
    vertebra_labels : ndarray of uint8
        ``n`` in the vertebral body of ``levels[n - 1]``, 0 elsewhere (lesions included).
    levels : tuple of str
        Levels visible in the slab, cranial to caudal.
    truth : dict of ndarray
        Ground-truth maps: ``ktrans_per_min``, ``ve`` (NaN where Ktrans = 0),
        ``vp``, ``kep_per_min`` (NaN where Ktrans = 0), ``delay_s``, ``t10_s`` (NaN in
        air) and ``m0`` (signal units, coil profile included).
    aif : TrueAIF
    noise_sigma : float
        Standard deviation of each Gaussian noise channel (0 when noise-free).
    """

    spec: SessionSpec
    signal: NDArray[np.float32]
    t_s: _FloatArray
    affine: _FloatArray
    vfa_signal: NDArray[np.float32] | None
    vfa_flip_angles_deg: tuple[float, ...]
    tissue_labels: NDArray[np.uint8]
    lesion_labels: NDArray[np.uint8]
    marrow_roi: NDArray[np.uint8]
    vertebra_labels: NDArray[np.uint8]
    levels: tuple[str, ...]
    truth: dict[str, _FloatArray]
    aif: TrueAIF
    noise_sigma: float

    @property
    def subject(self) -> str:
        """Subject ID."""
        return self.spec.subject

    @property
    def session(self) -> str:
        """Session ID."""
        return self.spec.session

    @property
    def acquisition(self) -> Acquisition:
        """Imaging parameters."""
        return self.spec.acquisition

    def lesion_truth(self) -> pd.DataFrame:
        """Per-lesion truth: voxel count and mean parameters over the lesion label."""
        return _lesion_truth(self.spec, self.lesion_labels, self.truth)


# --------------------------------------------------------------------------- geometry


def affine_for(acq: Acquisition) -> _FloatArray:
    """Voxel-to-RAS affine of the sagittal slab (FOV centred at the RAS origin).

    Parameters
    ----------
    acq : Acquisition

    Returns
    -------
    ndarray, shape (4, 4)
        ``i`` -> posterior (RAS -y), ``j`` -> inferior (RAS -z), ``k`` -> right (RAS +x).
    """
    di, dj, dk = (float(v) for v in acq.voxel_mm)
    aff = np.zeros((4, 4))
    aff[1, 0] = -di
    aff[2, 1] = -dj
    aff[0, 2] = dk
    aff[3, 3] = 1.0
    centre = (np.asarray(acq.matrix, dtype=np.float64) - 1.0) / 2.0
    aff[:3, 3] = -aff[:3, :3] @ centre
    return aff


@dataclass(frozen=True)
class _Grid:
    u: _FloatArray  # anatomical A-P (mm, + posterior, 0 = body centre line)
    v: _FloatArray  # S-I (mm, + inferior, 0 = centre of the centre-level body)
    w: _FloatArray  # L-R (mm, + right)
    v_range: tuple[float, float]
    coil: _FloatArray  # receive profile along i


def _grid(spec: SessionSpec) -> _Grid:
    acq, ana = spec.acquisition, spec.anatomy
    ni, nj, nk = acq.matrix
    di, dj, dk = acq.voxel_mm
    su, sv, sw = spec.shift_mm
    u1 = (np.arange(ni) + 0.5) * di - ana.spine_position * ni * di - su
    v1 = (np.arange(nj) - (nj - 1) / 2.0) * dj - sv
    w1 = (np.arange(nk) - (nk - 1) / 2.0) * dk - sw
    u, v, w = np.meshgrid(u1, v1, w1, indexing="ij")
    half_v = max(0.5 * nj * dj, 1e-6)
    u = u - ana.curvature_mm * (v / half_v) ** 2
    coil = 1.0 - ana.coil_falloff * (1.0 - (np.arange(ni) + 0.5) / ni)
    return _Grid(u=u, v=v, w=w, v_range=(float(v1[0] - dj / 2), float(v1[-1] + dj / 2)),
                 coil=coil)


def _level_index(level: str) -> int:
    try:
        return SPINE_LEVELS.index(level)
    except ValueError:
        raise ValueError(f"level: unknown vertebral level {level!r}; use one of "
                         f"{', '.join(SPINE_LEVELS)}") from None


def _visible_levels(spec: SessionSpec) -> tuple[int, int, list[str], list[str]]:
    """(m_min, m_max, visible level names, complete level names) for a session."""
    ana = spec.anatomy
    acq = spec.acquisition
    nj, dj = acq.matrix[1], acq.voxel_mm[1]
    sv = spec.shift_mm[1]
    lo = -(nj / 2.0) * dj - sv
    hi = (nj / 2.0) * dj - sv
    p, h = ana.pitch_mm, ana.body_height_mm
    m_min = int(np.ceil((lo - h / 2) / p))
    m_max = int(np.floor((hi + h / 2) / p))
    c = _level_index(spec.centre_level)
    if c + m_min < 0 or c + m_max >= len(SPINE_LEVELS):
        raise ValueError(f"centre_level {spec.centre_level!r}: the slab would extend beyond "
                         f"{SPINE_LEVELS[0]}-{SPINE_LEVELS[-1]}; choose a more central level")
    visible = [SPINE_LEVELS[c + m] for m in range(m_min, m_max + 1)]
    complete = [SPINE_LEVELS[c + m] for m in range(m_min, m_max + 1)
                if m * p - h / 2 >= lo + 1.0 and m * p + h / 2 <= hi - 1.0]
    return m_min, m_max, visible, complete


@dataclass(frozen=True)
class _Maps:
    tissue: NDArray[np.uint8]
    lesion: NDArray[np.uint8]
    marrow_roi: NDArray[np.uint8]
    vertebra: NDArray[np.uint8]
    levels: tuple[str, ...]
    ktrans: _FloatArray
    ve: _FloatArray  # NaN where no EES exchange
    vp: _FloatArray
    delay: _FloatArray
    t10: _FloatArray  # NaN in air
    m0: _FloatArray


def _render_maps(spec: SessionSpec) -> _Maps:
    """Label maps and ground-truth parameter maps (no time curves)."""
    acq, ana = spec.acquisition, spec.anatomy
    acq.validate()
    tissues = spec.tissue_table()
    g = _grid(spec)
    u, v, w = g.u, g.v, g.w
    shape = u.shape
    half_d, half_w = ana.body_depth_mm / 2.0, ana.body_width_mm / 2.0
    p, h = ana.pitch_mm, ana.body_height_mm

    m_idx = np.rint(v / p)
    dv = v - m_idx * p
    cross = (np.abs(u / half_d) ** ana.body_shape + np.abs(w / half_w) ** ana.body_shape) <= 1.0
    body = cross & (np.abs(dv) <= h / 2.0)
    disc = cross & ~body
    canal_c = half_d + 0.5 + ana.canal_depth_mm / 2.0
    canal = (((u - canal_c) / (ana.canal_depth_mm / 2.0)) ** 2
             + (w / (ana.canal_width_mm / 2.0)) ** 2) <= 1.0
    post_edge = half_d + 0.5 + ana.canal_depth_mm
    r = ana.aorta_radius_mm
    ua = -half_d - ana.aorta_gap_mm - r
    aorta = (u - ua) ** 2 + (w + ana.aorta_left_mm) ** 2 <= r * r

    code = TISSUE_CODES
    tissue = np.zeros(shape, dtype=np.uint8)
    tissue[(u >= -half_d - 145.0) & (u < -half_d - 130.0)] = code["fat"]
    tissue[(u >= -half_d - 130.0) & (u < -half_d)] = code["soft"]
    tissue[(u >= -half_d) & (u <= post_edge + ana.muscle_depth_mm)] = code["muscle"]
    tissue[(u > post_edge + ana.muscle_depth_mm)
           & (u <= post_edge + ana.muscle_depth_mm + ana.fat_depth_mm)] = code["fat"]
    tissue[canal] = code["csf"]
    tissue[disc] = code["disc"]
    tissue[body] = code["marrow"]
    tissue[aorta] = code["aorta"]

    # vertebra labels (bodies only), cranial to caudal
    m_min, _m_max, visible, complete = _visible_levels(spec)
    vert = np.zeros(shape, dtype=np.uint8)
    vert[body] = (m_idx[body] - m_min + 1).astype(np.uint8)
    c = _level_index(spec.centre_level)

    # lesions
    lesion = np.zeros(shape, dtype=np.uint8)
    factor = np.ones(shape)
    kt = np.zeros(shape)
    ve = np.full(shape, np.nan)
    vp = np.zeros(shape)
    delay = np.zeros(shape)
    for les in spec.lesions:
        if not 1 <= les.label <= 255:
            raise ValueError(f"lesion label must be in 1..255, got {les.label}")
        if les.level not in visible:
            raise ValueError(f"lesion {les.label}: level {les.level!r} is not in the slab "
                             f"(visible: {', '.join(visible)})")
        m = _level_index(les.level) - c
        du, dvv, dw = les.offset_mm
        au, av, aw = les.semi_axes_mm
        r2 = ((u - du) / au) ** 2 + ((v - m * p - dvv) / av) ** 2 + ((w - dw) / aw) ** 2
        inside = (r2 <= 1.0) & body & (m_idx == m)
        if not inside.any():
            raise ValueError(f"lesion {les.label} at {les.level}: no voxel inside the "
                             "vertebral body at this matrix/voxel size (enlarge it)")
        lesion[inside] = les.label
        tissue[inside] = code["lesion"]
        f = 1.0 + les.heterogeneity * ((1.0 - r2[inside]) - 0.4)
        factor[inside] = f
        kt[inside] = les.ktrans_per_min * f
        vp[inside] = np.clip(les.vp * f, 0.0, 1.0)
        ve[inside] = les.ve
        delay[inside] = les.delay_s

    # normal-marrow ROI: centre of the lesion-free complete body nearest the lesions
    lesion_levels = {les.level for les in spec.lesions}
    free = [lv for lv in complete if lv not in lesion_levels] or \
        [lv for lv in visible if lv not in lesion_levels]
    marrow_roi = np.zeros(shape, dtype=np.uint8)
    if free:
        ref = (np.mean([_level_index(lv) for lv in lesion_levels]) if lesion_levels
               else float(c))
        best = min(free, key=lambda lv: (abs(_level_index(lv) - ref), _level_index(lv)))
        m = _level_index(best) - c
        r2 = ((u / (0.6 * half_d)) ** 2 + ((v - m * p) / (0.35 * h)) ** 2
              + (w / (0.6 * half_w)) ** 2)
        marrow_roi[(r2 <= 1.0) & (tissue == code["marrow"]) & (m_idx == m)] = 1
        if not marrow_roi.any():
            marrow_roi[(tissue == code["marrow"]) & (m_idx == m)] = 1

    # tissue-class parameters
    t10 = np.full(shape, np.nan)
    m0 = np.zeros(shape)
    for name, cd in code.items():
        if name == "background":
            continue
        sel = tissue == cd
        if not sel.any():
            continue
        tp = tissues[name]
        t10[sel] = tp.t10_s
        m0[sel] = tp.m0
        if name == "lesion":
            continue
        if name == "aorta":
            vp[sel] = 1.0 - spec.aif.hematocrit
            continue
        kt[sel] = tp.ktrans_per_min
        vp[sel] = tp.vp
        if tp.ktrans_per_min > 0:
            ve[sel] = tp.ve
    m0 = m0 * acq.m0_scale * g.coil[:, None, None]
    return _Maps(tissue=tissue, lesion=lesion, marrow_roi=marrow_roi, vertebra=vert,
                 levels=tuple(visible), ktrans=kt, ve=ve, vp=vp, delay=delay, t10=t10, m0=m0)


def _true_aif(spec: SessionSpec) -> TrueAIF:
    acq, a = spec.acquisition, spec.aif
    t = acq.t_s
    n_fine = int(np.ceil(t[-1] / acq.dt_fine_s - 1e-9)) + 1
    t_fine = np.arange(n_fine, dtype=np.float64) * acq.dt_fine_s
    if a.arrival_s < 0:
        raise ValueError(f"aif.arrival_s: must be >= 0, got {a.arrival_s}")
    cb_fine = a.scale * parker_aif(t_fine, delay_s=a.arrival_s)
    cp_fine = blood_to_plasma(cb_fine, a.hematocrit)
    return TrueAIF(t_fine_s=t_fine, cb_fine_mM=cb_fine, cp_fine_mM=cp_fine, t_s=t,
                   cb_mM=np.interp(t, t_fine, cb_fine), cp_mM=np.interp(t, t_fine, cp_fine),
                   hematocrit=a.hematocrit, scale=a.scale, arrival_s=a.arrival_s)


def _concentration_rows(t_s: _FloatArray, aif: TrueAIF, kt: _FloatArray, ve: _FloatArray,
                        vp: _FloatArray, delay: _FloatArray, *, chunk: int = 2048
                        ) -> _FloatArray:
    """Extended Tofts concentration (mM), shape (n_rows, n_times), from the fine AIF."""
    out = np.zeros((kt.size, t_s.size))
    active = (kt > 0) | (vp > 0)
    for d in np.unique(delay[active]):
        rows = np.flatnonzero(active & (delay == d))
        for start in range(0, rows.size, chunk):
            r = rows[start:start + chunk]
            out[r] = extended_tofts(t_s, aif.cp_fine_mM, ktrans_per_min=kt[r],
                                    ve=np.where(kt[r] > 0, ve[r], 1.0), vp=vp[r],
                                    t_aif_s=aif.t_fine_s, delay_s=float(d))
    return out


def _rician(clean: NDArray[Any], sigma: float, rng: np.random.Generator) -> NDArray[np.float32]:
    if sigma <= 0:
        return clean.astype(np.float32)
    n1 = rng.standard_normal(clean.shape, dtype=np.float32)
    n2 = rng.standard_normal(clean.shape, dtype=np.float32)
    re = clean.astype(np.float32) + np.float32(sigma) * n1
    return np.sqrt(re * re + (np.float32(sigma) * n2) ** 2)


def render_session(spec: SessionSpec) -> SessionPhantom:
    """Render a session: labels, truth maps, true AIF, dynamic and VFA signal.

    Parameters
    ----------
    spec : SessionSpec

    Returns
    -------
    SessionPhantom

    Notes
    -----
    Voxels sharing all properties (tissue class, coil row) are computed once: the
    extended Tofts curves are evaluated for the distinct ``(Ktrans, ve, vp, delay,
    T10, M0)`` rows only (every lesion voxel is distinct), vectorised over rows.
    """
    acq = spec.acquisition
    maps = _render_maps(spec)
    aif = _true_aif(spec)
    t = acq.t_s
    shape = maps.tissue.shape
    n = int(np.prod(shape))
    body = (maps.tissue != TISSUE_CODES["background"]).ravel()
    ve_int = np.nan_to_num(maps.ve, nan=1.0)
    key = np.stack([maps.ktrans.ravel(), ve_int.ravel(), maps.vp.ravel(), maps.delay.ravel(),
                    np.nan_to_num(maps.t10, nan=1.0).ravel(), maps.m0.ravel()], axis=1)[body]
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    conc = _concentration_rows(t, aif, uniq[:, 0], uniq[:, 1], uniq[:, 2], uniq[:, 3])
    sig_u = concentration_to_signal(conc, t10_s=uniq[:, 4], m0=uniq[:, 5], tr_s=acq.tr_s,
                                    flip_angle_deg=acq.flip_angle_deg,
                                    r1_per_mM_per_s=acq.r1_per_mM_per_s)
    clean = np.zeros((n, t.size), dtype=np.float32)
    clean[body] = sig_u[inv]

    marrow = (maps.tissue == TISSUE_CODES["marrow"]).ravel()
    sigma = 0.0
    if acq.snr is not None:
        ref = clean[marrow, 0] if marrow.any() else clean[body, 0]
        sigma = float(np.median(ref)) / acq.snr
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed[0], spawn_key=spec.seed[1:]))
    signal = _rician(clean, sigma, rng).reshape(*shape, t.size)
    del clean

    vfa = None
    fas: tuple[float, ...] = ()
    if acq.vfa_flip_angles_deg:
        fas = tuple(float(a) for a in acq.vfa_flip_angles_deg)
        s_vfa = spgr_signal(maps.m0.ravel()[:, None], np.nan_to_num(maps.t10, nan=1.0).ravel()
                            [:, None], np.asarray(fas)[None, :], acq.tr_s)
        vfa = _rician(s_vfa, sigma, rng).reshape(*shape, len(fas))

    with np.errstate(invalid="ignore", divide="ignore"):
        kep = np.where(np.isnan(maps.ve), np.nan, maps.ktrans / maps.ve)
    truth = {"ktrans_per_min": maps.ktrans, "ve": maps.ve, "vp": maps.vp,
             "kep_per_min": kep, "delay_s": maps.delay, "t10_s": maps.t10, "m0": maps.m0}
    return SessionPhantom(spec=spec, signal=signal, t_s=t, affine=affine_for(acq),
                          vfa_signal=vfa, vfa_flip_angles_deg=fas, tissue_labels=maps.tissue,
                          lesion_labels=maps.lesion, marrow_roi=maps.marrow_roi,
                          vertebra_labels=maps.vertebra, levels=maps.levels, truth=truth,
                          aif=aif, noise_sigma=sigma)


def _lesion_truth(spec: SessionSpec, lesion: NDArray[np.uint8],
                  truth: Mapping[str, _FloatArray]) -> pd.DataFrame:
    rows = []
    for les in spec.lesions:
        sel = lesion == les.label
        kt = truth["ktrans_per_min"][sel]
        ve = truth["ve"][sel]
        rows.append({
            "subject": spec.subject, "session": spec.session,
            "days_from_rt": spec.days_from_rt, "lesion": les.label, "level": les.level,
            "n_voxels": int(sel.sum()),
            "ktrans_per_min": float(kt.mean()), "ve": float(ve.mean()),
            "vp": float(truth["vp"][sel].mean()),
            "kep_per_min": float((kt / ve).mean()),
            "ktrans_per_min_nominal": les.ktrans_per_min, "ve_nominal": les.ve,
            "vp_nominal": les.vp, "delay_s": les.delay_s,
            "t10_s": float(truth["t10_s"][sel].mean()),
        })
    return pd.DataFrame(rows)


def _seed_entropy(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def make_session(*, seed: int = 0, subject: str = "P01", session: str = "pre",
                 days_from_rt: float = -7.0, centre_level: str = "L1",
                 lesions: Sequence[LesionSpec] | None = None,
                 acquisition: Acquisition | None = None, anatomy: Anatomy | None = None,
                 aif: AIFSpec | None = None,
                 tissues: Mapping[str, TissueProperties] | None = None,
                 shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> SessionPhantom:
    """Render a single phantom session.

    Parameters
    ----------
    seed : int
        Noise seed (the session's ``SeedSequence`` entropy).
    subject, session : str
        Identifiers (alphanumeric).
    days_from_rt : float
        Days from radiotherapy.
    centre_level : str
        Vertebral level at the centre of the FOV.
    lesions : sequence of LesionSpec, optional
        Default: one lesion (label 1) in ``centre_level`` with the default parameters.
    acquisition, anatomy, aif : optional
        Default :class:`Acquisition`, :class:`Anatomy`, :class:`AIFSpec`.
    tissues : mapping, optional
        Overrides of :func:`default_tissues`.
    shift_mm : tuple of float
        Patient shift ``(posterior, inferior, right)`` (mm).

    Returns
    -------
    SessionPhantom
    """
    for name, val in (("subject", subject), ("session", session)):
        if not (isinstance(val, str) and val.isascii() and val.isalnum()):
            raise ValueError(f"{name}: IDs must be alphanumeric ([A-Za-z0-9]+), got {val!r}")
    spec = SessionSpec(
        subject=subject, session=session, days_from_rt=float(days_from_rt),
        centre_level=centre_level,
        lesions=tuple(lesions) if lesions is not None else (LesionSpec(1, centre_level),),
        aif=aif or AIFSpec(), acquisition=acquisition or Acquisition(),
        anatomy=anatomy or Anatomy(), tissues=tissues, shift_mm=shift_mm,
        seed=(_seed_entropy(seed),))
    return render_session(spec)


# --------------------------------------------------------------------------- cohort


@dataclass(frozen=True)
class Cohort:
    """A synthetic longitudinal cohort; session images are rendered on demand.

    Attributes
    ----------
    sessions : DataFrame
        One row per session: subject, session, days_from_rt, centre_level, aif_scale,
        bolus_arrival_s, hematocrit.
    lesions : DataFrame
        One row per lesion: subject, lesion (int label), level, recurrence (0/1),
        recurrence_day (nullable Int64; day of recurrence on conventional MRI, NA when
        controlled).
    truth : DataFrame
        One row per lesion and session: the nominal parameters and the means of the
        truth maps over the lesion's voxels (see :meth:`SessionPhantom.lesion_truth`),
        plus recurrence.
    specs : dict
        ``(subject, session)`` -> :class:`SessionSpec`.
    seed : int
        The cohort seed.

    Notes
    -----
    Rendering is deterministic per session and independent of order, so
    ``cohort.session("P03", "fu1")`` always returns identical arrays. Sessions are not
    cached (a default session holds about 25 MB of float32 signal).
    """

    sessions: pd.DataFrame
    lesions: pd.DataFrame
    truth: pd.DataFrame
    specs: dict[tuple[str, str], SessionSpec] = field(repr=False)
    seed: int = 0

    def session(self, subject: str, session: str) -> SessionPhantom:
        """Render one session.

        Parameters
        ----------
        subject, session : str

        Returns
        -------
        SessionPhantom
        """
        try:
            spec = self.specs[(subject, session)]
        except KeyError:
            raise KeyError(f"no session {subject}/{session} in the cohort") from None
        return render_session(spec)

    def __iter__(self) -> Iterator[SessionPhantom]:
        for subj, ses in zip(self.sessions["subject"], self.sessions["session"], strict=True):
            yield self.session(str(subj), str(ses))

    def __len__(self) -> int:
        return len(self.specs)


def _subject_ids(n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"P{i + 1:0{width}d}" for i in range(n)]


def make_cohort(n_patients: int = 10, seed: int = 0, *,
                acquisition: Acquisition | None = None, anatomy: Anatomy | None = None,
                recurrence_fraction: float = 0.3,
                baseline_day: float = -7.0,
                followup_days: Sequence[float] = (60.0, 120.0),
                p_all_followups: float = 0.6, p_two_lesions: float = 0.5,
                centre_levels: Sequence[str] = ("T11", "T12", "L1", "L2"),
                hematocrit: float = 0.45, session_shift_mm: float = 2.0,
                lesion_delay_range_s: tuple[float, float] = (0.0, 0.0),
                tissues: Mapping[str, TissueProperties] | None = None) -> Cohort:
    """Design a synthetic radiotherapy cohort (tables and per-session specifications).

    Parameters
    ----------
    n_patients : int
        Number of patients (IDs ``P01``, ``P02``, ...).
    seed : int
        Cohort seed; everything is a deterministic function of it (module notes).
    acquisition, anatomy : optional
        Shared imaging parameters and anatomy sizes.
    recurrence_fraction : float
        Fraction of lesions that recur (rounded; at least one of each outcome when there
        are two or more lesions).
    baseline_day : float
        Nominal day of the baseline session relative to RT (jitter +-4 days).
    followup_days : sequence of float
        Nominal follow-up days (jitter about +-10 days). Each patient has the first
        follow-up, and all of them with probability ``p_all_followups``.
    p_two_lesions : float
        Probability that a patient has two lesions (else one).
    centre_levels : sequence of str
        Candidate levels for the centre of the FOV.
    hematocrit : float
        Hematocrit of every session.
    session_shift_mm : float
        Maximum patient shift per axis between sessions (mm, uniform).
    lesion_delay_range_s : tuple of float
        Range of the extra lesion bolus delay (s), constant per lesion.
    tissues : mapping, optional
        Overrides of :func:`default_tissues`.

    Returns
    -------
    Cohort
    """
    if n_patients < 1:
        raise ValueError(f"n_patients: need >= 1, got {n_patients}")
    if not 0 <= recurrence_fraction <= 1:
        raise ValueError(f"recurrence_fraction: must be in [0, 1], got {recurrence_fraction}")
    if len(followup_days) < 1:
        raise ValueError("followup_days: need at least one follow-up")
    entropy = _seed_entropy(seed)
    acq = acquisition or Acquisition()
    ana = anatomy or Anatomy()
    acq.validate()
    dt = float(np.min(np.diff(acq.t_s)))
    subjects = _subject_ids(n_patients)
    session_ids = ["pre"] + [f"fu{i + 1}" for i in range(len(followup_days))]

    designs: list[dict[str, Any]] = []
    for p, subj in enumerate(subjects):
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(1, p)))
        centre = str(rng.choice(list(centre_levels)))
        probe = SessionSpec(subj, "pre", 0.0, centre, (), acquisition=acq, anatomy=ana)
        _, _, _, complete = _visible_levels(replace(probe, shift_mm=(0.0, session_shift_mm,
                                                                     0.0)))
        _, _, _, complete2 = _visible_levels(replace(probe, shift_mm=(0.0, -session_shift_mm,
                                                                      0.0)))
        complete = [lv for lv in complete if lv in complete2]
        if len(complete) < 2:
            raise ValueError("acquisition: the slab shows fewer than two complete vertebral "
                             "bodies; enlarge the matrix or voxel size along j")
        n_les = 1 + int(rng.random() < p_two_lesions)
        n_les = min(n_les, len(complete) - 1)
        levels = sorted(rng.choice(complete, size=n_les, replace=False).tolist(),
                        key=_level_index)
        n_fu = len(followup_days) if rng.random() < p_all_followups else 1
        days = [baseline_day + int(rng.integers(-4, 5))]
        days += [followup_days[i] + int(rng.integers(-10, 11)) for i in range(n_fu)]
        half_d, half_h, half_w = (ana.body_depth_mm / 2, ana.body_height_mm / 2,
                                  ana.body_width_mm / 2)
        lesions: list[dict[str, Any]] = []
        for k, lv in enumerate(levels):
            axes = (rng.uniform(0.35, 0.6) * half_d, rng.uniform(0.45, 0.7) * half_h,
                    rng.uniform(0.4, 0.65) * half_w)
            offset = (rng.uniform(-0.3, 0.3) * half_d, rng.uniform(-0.25, 0.25) * half_h,
                      rng.uniform(-0.3, 0.3) * half_w)
            base = {"vp": rng.uniform(0.04, 0.08), "ktrans_per_min": rng.uniform(0.08, 0.20),
                    "ve": rng.uniform(0.15, 0.35)}
            vp_c1 = float(np.clip(rng.normal(-0.65, 0.07), -0.85, -0.45))
            kt_c1 = float(np.clip(rng.normal(-0.55, 0.08), -0.80, -0.30))
            controlled = [(vp_c1, kt_c1)]
            recurrent = [(rng.uniform(-0.05, 0.40), rng.uniform(-0.05, 0.30))]
            for _ in range(1, len(followup_days)):
                pv, pk = controlled[-1]
                controlled.append((float(np.clip(pv + rng.normal(-0.02, 0.04), -0.9, -0.45)),
                                   float(np.clip(pk + rng.normal(-0.02, 0.04), -0.9, -0.25))))
                rv, rk = recurrent[-1]
                recurrent.append((rv + rng.uniform(0.05, 0.40), rk + rng.uniform(0.0, 0.30)))
            ve_change = [rng.normal(0.05, 0.05) for _ in followup_days]
            lesions.append({
                "label": k + 1, "level": lv, "axes": axes, "offset": offset, "base": base,
                "heterogeneity": rng.uniform(0.2, 0.4),
                "delay_s": rng.uniform(*lesion_delay_range_s),
                "controlled": controlled, "recurrent": recurrent, "ve_change": ve_change,
                "recurrence_day": int(rng.integers(150, 301)),
            })
        aifs = [AIFSpec(scale=rng.uniform(0.8, 1.2),
                        arrival_s=float(int(rng.integers(3, 6)) * dt + rng.uniform(0.0, dt)),
                        hematocrit=hematocrit) for _ in days]
        shifts = [tuple(float(x) for x in rng.uniform(-session_shift_mm, session_shift_mm, 3))
                  for _ in days]
        designs.append({"subject": subj, "centre": centre, "lesions": lesions, "days": days,
                        "aifs": aifs, "shifts": shifts})

    # outcomes: exactly round(fraction * n) recurrent lesions, drawn at cohort level
    all_lesions = [(d["subject"], les) for d in designs for les in d["lesions"]]
    n_total = len(all_lesions)
    n_rec = round(recurrence_fraction * n_total)
    if n_total >= 2 and 0 < recurrence_fraction < 1:
        n_rec = min(max(n_rec, 1), n_total - 1)
    rng0 = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(0,)))
    rec_set = set(rng0.permutation(n_total)[:n_rec].tolist())

    sessions_rows, lesion_rows = [], []
    specs: dict[tuple[str, str], SessionSpec] = {}
    idx = 0
    outcome: dict[tuple[str, int], bool] = {}
    for d in designs:
        for les in d["lesions"]:
            rec = idx in rec_set
            outcome[(d["subject"], les["label"])] = rec
            lesion_rows.append({"subject": d["subject"], "lesion": les["label"],
                                "level": les["level"], "recurrence": int(rec),
                                "recurrence_day": les["recurrence_day"] if rec else pd.NA})
            idx += 1
    p_index = {s: i for i, s in enumerate(subjects)}
    for d in designs:
        subj = d["subject"]
        for s, day in enumerate(d["days"]):
            les_specs = []
            for les in d["lesions"]:
                b = les["base"]
                if s == 0:
                    dvp = dkt = dve = 0.0
                else:
                    traj = les["recurrent"] if outcome[(subj, les["label"])] else \
                        les["controlled"]
                    dvp, dkt = traj[s - 1]
                    dve = les["ve_change"][s - 1]
                les_specs.append(LesionSpec(
                    label=les["label"], level=les["level"], offset_mm=les["offset"],
                    semi_axes_mm=les["axes"], ktrans_per_min=b["ktrans_per_min"] * (1 + dkt),
                    ve=float(np.clip(b["ve"] * (1 + dve), 0.05, 0.8)),
                    vp=b["vp"] * (1 + dvp), heterogeneity=les["heterogeneity"],
                    delay_s=les["delay_s"]))
            ses = session_ids[s]
            spec = SessionSpec(subject=subj, session=ses, days_from_rt=float(day),
                               centre_level=d["centre"], lesions=tuple(les_specs),
                               aif=d["aifs"][s], acquisition=acq, anatomy=ana,
                               tissues=tissues, shift_mm=d["shifts"][s],
                               seed=(entropy, 2, p_index[subj], s))
            specs[(subj, ses)] = spec
            sessions_rows.append({"subject": subj, "session": ses, "days_from_rt": float(day),
                                  "centre_level": d["centre"],
                                  "aif_scale": d["aifs"][s].scale,
                                  "bolus_arrival_s": d["aifs"][s].arrival_s,
                                  "hematocrit": d["aifs"][s].hematocrit})

    truth_frames = []
    for spec in specs.values():
        maps = _render_maps(spec)
        truth = {"ktrans_per_min": maps.ktrans, "ve": maps.ve, "vp": maps.vp,
                 "t10_s": maps.t10}
        truth_frames.append(_lesion_truth(spec, maps.lesion, truth))
    lesions_df = pd.DataFrame(lesion_rows)
    lesions_df["recurrence_day"] = lesions_df["recurrence_day"].astype("Int64")
    truth_df = pd.concat(truth_frames, ignore_index=True)
    truth_df = truth_df.merge(lesions_df[["subject", "lesion", "recurrence"]],
                              on=["subject", "lesion"], how="left")
    return Cohort(sessions=pd.DataFrame(sessions_rows), lesions=lesions_df, truth=truth_df,
                  specs=specs, seed=entropy)
