"""Deterministic synthetic spine DCE-MRI phantom and longitudinal radiotherapy cohort.

Pure numerics (numpy, pandas, scipy); no file input or output (see
:mod:`dce.io.dicom_write` for writing the phantom as DICOM and NIfTI).

Independence from the code under test
-------------------------------------
This module imports nothing from the ``dce`` package (a test parses its syntax tree).
Its arterial input function, kinetic model integration, signal equation and noise are
written here, with their own parameterisation and numerical method, so that assumptions
shared with the fitter (population AIF, sampling of the input, signal model) cannot
cancel out in a validation. In particular its AIF is *not* a population AIF the fitter
knows (Parker, Georgiou, ...), lesions have their own bolus delay behind the aorta, the
aorta is partial-volumed with its neighbours, and the receive field is not flat.

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
the core, see :class:`LesionSpec`). Sizes are in mm (:class:`Anatomy`), so any matrix and
voxel size gives the same anatomy. Between sessions the patient moves relative to the
slab (table shift, :attr:`SessionSpec.shift_mm`); the label maps always follow.

Label maps and partial volume
-----------------------------
Each voxel is supersampled on an ``s x s x s`` grid of sub-voxel centres
(:attr:`Acquisition.supersample`, default 3, i.e. 27 points; ``s`` odd so that the voxel
centre is one of them). Every sub-voxel point is classified (tissue, lesion, position in
the lesion) and the voxel's noiseless complex signal is the *mean of its sub-voxel
signals*; so voxels on every tissue boundary -- the aortic wall, the lesion rim, the
vertebral end plates, the skin -- are mixtures. The label maps
(:attr:`SessionPhantom.tissue_labels`, ``lesion_labels``, ``vertebra_labels``,
``marrow_roi``) hold the class of the *voxel centre*. ``truth["pv_fraction"]`` is the
fraction of the voxel's sub-voxels that belong to the centre's class (1 inside a tissue,
< 1 at edges).

Truth definition: **the truth of a voxel is the volume average of its contents.** For
every voxel, ``truth["ktrans_per_min"]``, ``truth["vp"]`` and ``truth["ve"]`` are the
means of Ktrans, vp and ve over *all* its ``s^3`` sub-voxels, whatever tissue each one is
(marrow, lesion, disc, aorta, ...), each with that tissue's parameters (a lesion
sub-voxel: the lesion's parameters at that point). Tissues without uptake (Ktrans = 0:
CSF, aorta, air) count as Ktrans = 0 and ve = 0; vp is 0 in CSF and air and ``1 - Hct``
in the aorta (blood). ``truth["kep_per_min"] = Ktrans_avg / ve_avg`` where ``ve_avg > 0``
(``ve`` and ``kep`` are NaN elsewhere). This is what a one-compartment fit of a mixed
voxel sees when the mixture's concentration is the volume-weighted sum of its
contents' concentrations (up to differences in kep between them). The lesion ROI is the
voxel-centre label, so its boundary voxels also contain marrow: a perfect method
reports their mixture, which is why the lesion truth table
(:meth:`SessionPhantom.lesion_truth`, :attr:`Cohort.truth`) averages the *volume-average*
maps over the label (columns ``ktrans_per_min``, ``vp``, ``ve``, ``kep_per_min``; the
lesion mean of ``kep`` is the mean of the voxels' ``Ktrans_avg / ve_avg``). On the coarse
test cohort (``.test/config``, 64 x 64 x 8) these lesion means are about 12 % (Ktrans,
vp) and 9 % (ve) below the voxel-centre values; on the demo cohort about 8-9 % and 6 %.

The voxel-centre values are kept: the maps ``ktrans_per_min_tissue``, ``vp_tissue``,
``ve_tissue``, ``kep_per_min_tissue`` hold the parameters of the tissue at the voxel
centre (for a lesion voxel: the lesion's parameters at the centre point; aorta:
``vp = 1 - Hct``; ``ve``/``kep`` NaN where Ktrans = 0), and the table's ``*_tissue``
columns average them over the label. With ``supersample=1`` both definitions coincide
exactly. ``delay_s``, ``t10_s`` and ``m0`` are always the centre tissue's.

Only the truth definition accounts for the mixture: the image itself mixes the
sub-voxels' *signals* (as a scanner does), not their concentrations, so where the mixed
tissues have different T10 or M0 the voxel's signal is not exactly that of the
volume-average parameters.

Arterial input function (this module's own family)
--------------------------------------------------
Whole-blood concentration (mM), ``u = t - arrival_s`` (zero for ``u <= 0``)::

    Cb(u) = scale * [ A * g(u; a1, b1)                                   first pass
                      + A * f_r * g(u - u_r; a_r, b_r)                   recirculation
                      + P * G(u) * exp(-(u - u_p) / tau) ]               washout

    g(x; a, b) = (x / (a b))^a * exp(a - x / b)   (x > 0; a gamma variate with peak 1
                                                   at x = a b)
    G(u)       = P(a1 + 1, u / b1)                 (regularised lower incomplete gamma
                                                   function: a smooth switch that turns
                                                   the washout on during the first pass)

with ``u_p = a1 b1`` the first-pass peak time after arrival, ``b1`` set by the first-pass
FWHM (``b1 = fwhm_s / W(a1)``, ``W`` the FWHM of ``g(.; a1, 1)``), the recirculation
peaking ``recirc_delay_s`` after the first pass with FWHM ``recirc_width x fwhm_s``
(shape ``a_r``; its start ``u_r`` is moved to 0 if it would precede the arrival, keeping
its peak time), ``P`` the level of the late plateau at the first-pass peak and ``tau``
its decay time. Plasma: ``Cp = Cb / (1 - Hct)``. The curve is evaluated analytically on
a fine grid (:attr:`Acquisition.dt_fine_s`, 0.1 s) and at the acquisition times.

Per patient (cohort, :func:`make_cohort`) and then varied per session:

===================== ================== ============== ==================================
parameter             per patient        per session    notes
===================== ================== ============== ==================================
A (first-pass ampl.)  U(3.0, 7.5) mM     x U(0.85,1.15) clipped to 2.8-8 mM; the curve's
                                                        peak (A plus washout, recirculation)
                                                        is 3-9 mM, as measured at a standard
                                                        0.1 mmol/kg dose [Parker2006]_,
                                                        [Georgiou2019]_ (aortic curves)
fwhm_s                U(6, 15) s         x U(0.9, 1.1)  first-pass FWHM; clipped to 6-15 s
a1 (first-pass shape) U(3.5, 6.0)        same           time to peak a1*b1 = 5-15 s
recirc_delay_s        U(15, 25) s        + U(-2, 2)     after the first-pass peak
recirc_fraction f_r   U(0.2, 0.4)        + U(-.03,.03)  relative to A
recirc_width          U(1.2, 1.8)        same           FWHM ratio, shape a_r = U(3, 5)
plateau P             A x U(.10, .18)    x U(0.85,1.15) late blood level, clipped to
                                                        0.5-1.5 mM (peak:plateau 5-10)
washout tau           U(180, 600) s      same           decay over minutes
arrival_s             --                 (3..5) x dt    a few baseline phases, *not*
                                         + U(0, dt)     aligned with a phase
hematocrit            U(0.36, 0.46)      same           adult range (oncology patients
                                                        at the low end); fitters often
                                                        assume 0.45
===================== ================== ============== ==================================

Kinetics (own forward model)
----------------------------
Every enhancing voxel / sub-voxel follows the extended Tofts model::

    Ct(t) = vp Cp(t - d) + Ktrans * integral_0^t Cp(s - d) exp(-kep (t - s)) ds,
    kep = Ktrans / ve,

integrated with an exact recursive exponential integrator for the piecewise-linear
interpolant of ``Cp(. - d)`` on the fine grid (``d`` evaluated analytically, no
resampling), and stepped exactly (partial last step) to each acquisition time. ``d`` is 0
for normal tissues and the lesion's own delay behind the aorta (cohort: U(0, 5) s per
lesion, constant over its sessions; arterial-to-tissue delays in bone metastases are a
few seconds). Aorta voxels hold the blood concentration ``Cb`` (inflow neglected).

Signal
------
Spoiled gradient echo, fast water exchange::

    S = M0 sin(a) (1 - E1) / (1 - cos(a) E1),  E1 = exp(-TR R1),  R1 = 1/T10 + r1 C

with each tissue's T10 and M0 (table below), relaxivity ``r1`` (4.5 /mM/s), the dynamic
flip angle and TR of the session. The variable-flip-angle (VFA) series (default 2, 5,
10, 15, 20 deg) uses the same M0, T10, partial volume, receive field, gain and noise
level.

Receive field, gain and noise
-----------------------------
* Receive bias: ``B(i, j, k) = coil(i) * exp(sum_n c_n p_n(x, y, z))``: a posterior
  spine-coil falloff (``coil(i)`` falls linearly by :attr:`Anatomy.coil_falloff`, 30 %,
  from posterior to anterior) times a random smooth low-order field over normalised
  coordinates ``x, y, z`` in [-1, 1] with ``p = (x, y, z, x^2, y^2, z^2, xy, xz, yz)``
  (:attr:`SessionSpec.bias_coeffs`; drawn U(-0.12, 0.12) linear, U(-0.08, 0.08)
  quadratic, U(-0.05, 0.05) cross terms: about +-20-30 % over the FOV). Evaluated at the
  voxel centre (the field is smooth).
* Gain: a per-session global factor :attr:`SessionSpec.gain` (cohort: log-uniform in
  [0.5, 2]) times :attr:`Acquisition.m0_scale`; signal units are arbitrary and change
  between sessions.
* Noise: Rician (magnitude of signal plus complex Gaussian noise) with per-channel SD
  ``sigma = S_blood / snr``: ``S_blood`` is the noiseless pre-contrast signal of pure
  blood, ``gain * m0_scale * M0_blood * SPGR(T10_blood) * mean(B over aorta voxels)``,
  and ``snr`` is :attr:`Acquisition.snr` = the baseline *blood* SNR (cohort: U(5, 15) per
  session). Blood T10 1.65 s at 3 T, 1.48 s at 1.5 T [Lu2004]_, [Zhang2013]_.
* Protocol per patient (cohort): flip angle U(10, 25) deg (integer), TR U(3.5, 5.0) ms
  (typical 3-D SPGR DCE protocols of the spine, Saha et al. review).

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
aorta      1.65   0.95  0          --    --     arterial blood at 3 T [Lu2004]_; holds Cb
muscle     1.41   0.75  0.05       0.10  0.015  T1 [Gold2004]_; kinetics typical of muscle
fat        0.37   1.00  0.01       0.05  0.005  subcutaneous fat [Gold2004]_
soft       1.20   0.80  0.10       0.20  0.03   anterior viscera (assumed values)
lesion     1.20   0.85  (LesionSpec)            marrow-replacing metastasis (T1 assumed);
                                               kinetics come from :class:`LesionSpec`
========== ====== ===== ========== ===== ====== ==============================================

At 1.5 T the T1 values are replaced by 0.55 (marrow), 1.0 (disc), 4.0 (CSF), 1.48
(blood), 1.01 (muscle), 0.34 (fat), 0.9 (soft tissue), 1.0 s (lesion) -- approximate.
M0 is relative. These are plausible, rounded values for a test phantom, not reference
data.

Cohort (:func:`make_cohort`)
----------------------------
Patients with 1-2 treated vertebral lesions, a baseline session about 7 days before
radiotherapy and 1-2 follow-ups (about day 60 and day 120). About 30 % of lesions recur.
The treated (irradiated) lesions have a delay behind the aorta U(0, 5) s and a class
drawn at cohort level (``lesion_class``, with ``primary`` = histology of the primary
tumour and ``vascularity``): ``ceil(0.15 n)`` myeloma, as many chordoma (n >= 8 treated
lesions), the rest metastases, 40 % of them hypervascular (renal, thyroid primary), the
others hypovascular (prostate, breast, lung) [Khadem2012]_, [Saha2014]_. Each patient
also has, with probability 0.7 (``incidental_fraction``) and a free level, one untreated
lesion (``treated`` 0, ``recurrence`` empty): atypical hemangioma, benign compression
fracture or tuberculosis in turn, stable over the sessions apart from test-retest
variation N(0, 8 %). Pre-treatment kinetics per class (uniform; vp and Ktrans of the
treated lesions are the same quantiles as before the classes were introduced):

=================== ============== =============== ============= ===========================
class               vp (%)         Ktrans (/min)   ve            source of the contrast
=================== ============== =============== ============= ===========================
metastasis, hypo    2.5-7          0.04-0.18       0.10-0.40     vp 4.2 % malignant vs 1.6 %
                                                                 non-neoplastic [Guan2020]_
metastasis, hyper   4.5-11         0.08-0.25       0.10-0.40     vp 1.8x hypo [Saha2014]_
myeloma             4-10           0.10-0.28       0.06-0.16     Ktrans 1.5x, kep 1.8x
                                                                 metastases [Lang2013]_
chordoma            2-6            0.04-0.14       0.25-0.50     assumed; its vp drop after
                                                                 RT is scaled by 0.6 (max vp
                                                                 / 1.6 [Santos2017]_)
atypical hemangioma 0.8-3.5        0.02-0.08       0.10-0.30     lower vp, Ktrans than
                                                                 metastases [Morales2018]_
benign fracture     1-4            0.03-0.12       0.25-0.50     lower Ktrans, vp
                                                                 [ArevaloPerez2015]_; ve
                                                                 (edema) assumed
tuberculosis        2-5            kep x ve        N(0.47, 0.12) kep N(0.81, 0.19) /min
                                                                 [Verma2022]_
=================== ============== =============== ============= ===========================

``adjacent_disc`` (normal / degenerated, for the Liu et al. analysis) is drawn at random
and has no effect on the images: the phantom has no disc-degeneration model.

Outcome design (per lesion, at the first follow-up; later follow-ups continue the trend):

* controlled: vp change N(-62 %, 7 %) clipped to [-75, -50] % (mean drop 65.2 % after
  high-dose RT [Lis2017]_; the seed's Fig. 4 shows 72 % at 2 months), Ktrans change
  N(-55 %, 8 %);
* recurrent, progressing: vp change U(-45, +40) % and Ktrans change U(-30, +30) % --
  recurrent lesions mostly keep or increase vp ([Chu2013]_, [Kumar2017]_) but some
  lose part of it;
* recurrent, "responder-like": ``ceil(0.3 x n_recurrent)`` of the recurrent lesions
  (at least 1 and at most ``n_recurrent - 1``, when there are at least 2) first respond
  like controlled ones: their first-follow-up vp change is the q-quantile of the
  controlled lesions' changes in the same cohort, q ~ U(0.6, 0.9), Ktrans change
  N(-45 %, 10 %); they rebound later (vp +20..+60 points per follow-up).

The outcome and the responder-like subset are drawn at cohort level, so the overlap is
controlled: the expected true AUC of the first-follow-up dVp for recurrence is about
``1 - 0.25 x n_responder_like / n_recurrent`` ~ 0.86-0.88 (measured on the demo cohort,
10 patients, seed 0, 15 treated lesions of which 4 recur, with the volume-average ``vp``
truth at the demo matrix 96 x 96 x 10: dVp 0.795, dKtrans 0.773, dkep 0.773; 0.818 for
dVp at the test matrix 64 x 64 x 8; the chordomas' smaller vp drop moves two lesions). Recurrence on
conventional MRI at day 150-300 (DCE precedes conventional MRI by about 6.6 months [Kumar2017]_).

Parametric response maps: a voxel whose true change lies on a PRM threshold is classed
by any measurement with a coin flip, so the design keeps every lesion's true voxel-wise
change of vp and Ktrans (the span of its heterogeneity profile) out of a dead band of
+-:data:`PRM_DESIGN_MARGIN` x the project-default thresholds (0.02 vp, 0.05 /min): the
lesion's baseline vp / Ktrans is moved within its class range to the nearest value that
clears every follow-up (else the earliest ones), and a change no baseline clears is moved
to the nearest clear value of the same sign (the relative changes above stay as drawn
where the baseline suffices: the demo's first-follow-up true AUCs are unchanged). Partial
volume at the lesion border still spreads a border voxel's change towards zero.
Rim + core lesions (``rim_core_fraction``): a recurrent posterior cap over a necrotic
core (:func:`make_cohort`).

Randomness: everything is drawn from numpy Generators seeded by
``SeedSequence(seed, spawn_key=...)``: the patient design from key ``(1, patient)``, the
outcome assignment from key ``(0,)``, and each session's noise from key
``(2, patient, session)``, the follow-ups' rigid motion (``followup_motion``) from key
``(9, patient)`` (so it changes no other draw). A session's arrays therefore do not depend
on the order in which sessions are generated. :func:`make_session` draws its receive field from key
``(3,)`` of its seed unless ``bias_coeffs`` is given.

References
----------
.. [Gold2004] Gold GE et al. Musculoskeletal MRI at 3.0 T: relaxation times and image
   contrast. AJR 2004;183:343-351.
.. [Lu2004] Lu H et al. Determining the longitudinal relaxation time (T1) of blood at
   3.0 Tesla. Magn Reson Med 2004;52:679-682.
.. [Zhang2013] Zhang X et al. In vivo blood T1 measurements at 1.5 T, 3 T, and 7 T.
   Magn Reson Med 2013;70:1082-1086.
.. [Lu2005] Lu H et al. Routine clinical brain MRI sequences for use at 3.0 Tesla.
   J Magn Reson Imaging 2005;22:13-22.
.. [Parker2006] Parker GJM et al. Experimentally-derived functional form for a
   population-averaged high-temporal-resolution arterial input function for DCE-MRI.
   Magn Reson Med 2006;56:993-1000 (used here only for the *range* of peak, width and
   recirculation of measured aortic curves, not for its functional form).
.. [Georgiou2019] Georgiou L et al. A functional form for a representative individual
   arterial input function measured from a population using high temporal resolution
   DCE MRI. Magn Reson Med 2019;81:1955-1963 (ranges only, as above).
.. [Guan2020] Guan Y et al. T1-weighted DCE MRI to differentiate nonneoplastic and
   malignant vertebral body lesions in the spine. Radiology 2020;297:382-389.
.. [Lang2013] Lang N et al. Differentiation of myeloma and metastatic cancer in the spine
   using DCE MRI. Magn Reson Imaging 2013;31:1285-1291.
.. [Lis2017] Lis E et al. DCE MRI of osseous spine metastasis before and 1 hour after
   high-dose image-guided radiation therapy. Neurosurg Focus 2017;42:E9.
.. [Chu2013] Chu S et al. Measurement of blood perfusion in spinal metastases with DCE
   MRI: evaluation of tumor response to radiation therapy. Spine 2013;38:E1418-E1424.
.. [Khadem2012] Khadem NR et al. Characterizing hypervascular and hypovascular
   metastases and normal bone marrow of the spine using DCE MR imaging. AJNR
   2012;33:2178-2185.
.. [Saha2014] Saha A et al. MR perfusion characteristics of hypervascular renal and
   hypovascular prostate spinal metastases. Spine 2014;39:E1433-E1440.
.. [Santos2017] Santos P et al. T1-weighted DCE MR perfusion imaging characterizes tumor
   response to radiation therapy in chordoma. AJNR 2017;38:2210-2216.
.. [Morales2018] Morales KA et al. Differentiating atypical hemangiomas and metastatic
   vertebral lesions: the role of T1-weighted DCE MRI. AJNR 2018;39:968-973.
.. [ArevaloPerez2015] Arevalo-Perez J et al. Differentiating benign from malignant
   vertebral fractures using T1-weighted DCE MRI. J Magn Reson Imaging 2015;42:1039-1047.
.. [Verma2022] Verma M et al. DCE MR perfusion volumetrics can differentiate tuberculosis
   of the spine and vertebral malignancy. Acta Radiol 2022;63:1504-1512.
.. [Kumar2017] Kumar KA et al. A pilot study evaluating the use of DCE perfusion MRI to
   predict local recurrence after radiosurgery on spinal metastases. Technol Cancer Res
   Treat 2017;16:857-865.

Literature values above are quoted from the review of Saha et al. (AJNR 2025;46:465-475);
the T1 values are rounded and approximate. The AIF-family, noise, bias and outcome ranges
are design choices for a realistic, independent test phantom, not reference data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = [
    "DEMO_MOTION",
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
    "aif_blood_mM",
    "cohort_sheets",
    "default_tissues",
    "demo_cohort",
    "make_cohort",
    "make_session",
    "render_session",
    "rotation_matrix",
    "spgr",
    "tofts_fine",
    "world_motion",
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
_N_BIAS = 9


# --------------------------------------------------------------------------- specifications


@dataclass(frozen=True)
class TissueProperties:
    """Relaxation and kinetic properties of one tissue class.

    Attributes
    ----------
    t10_s : float
        Pre-contrast T1 (s).
    m0 : float
        Relative equilibrium magnetisation (proton density), before the receive field,
        :attr:`SessionSpec.gain` and :attr:`Acquisition.m0_scale`.
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
        The aorta's kinetic fields are unused: aorta voxels hold the blood concentration.
    """
    t1 = ({"marrow": 0.65, "disc": 1.2, "csf": 4.3, "aorta": 1.65, "muscle": 1.41,
           "fat": 0.37, "soft": 1.2, "lesion": 1.2} if field_strength_t >= 2.25 else
          {"marrow": 0.55, "disc": 1.0, "csf": 4.0, "aorta": 1.48, "muscle": 1.01,
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
    sagittal slices. :func:`make_cohort` varies the flip angle and TR per patient.

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
        Baseline *blood* SNR: noiseless pre-contrast signal of pure blood in the aorta
        divided by the noise standard deviation (module notes); None for noise-free
        images. (Before the independent-phantom rewrite this was the marrow SNR.)
    dt_fine_s : float
        Time step (s) of the fine grid on which the AIF and tissue curves are generated.
    m0_scale : float
        Global signal scale (arbitrary units); multiplied by :attr:`SessionSpec.gain`.
    supersample : int
        Sub-voxel points per axis for partial volume (odd; 1 = no partial volume).
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
    snr: float | None = 10.0
    dt_fine_s: float = 0.1
    m0_scale: float = 10000.0
    supersample: int = 3

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
        if not 0 < self.flip_angle_deg < 180:
            raise ValueError(f"flip_angle_deg: must be in (0, 180), got {self.flip_angle_deg}")
        if self.snr is not None and self.snr <= 0:
            raise ValueError(f"snr: must be > 0 or None, got {self.snr}")
        if not 0 < self.dt_fine_s <= float(np.min(np.diff(t))):
            raise ValueError(f"dt_fine_s: must be > 0 and <= the phase spacing, got "
                             f"{self.dt_fine_s}")
        if self.supersample < 1 or self.supersample % 2 == 0:
            raise ValueError(f"supersample: need an odd number >= 1, got {self.supersample}")

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
    rim_radius : float
        Where the lesion's *rim* (heterogeneous response, :func:`make_cohort`
        ``rim_core_fraction``) begins: for ``rim_shape`` ``"shell"`` the normalised
        ellipsoidal radius (0-1) beyond which the points are rim (1: no rim); for
        ``"posterior"`` the normalised posterior coordinate ``(u - u_centre) / a_u``
        (-1 to 1) beyond which they are (the margin facing the spinal canal).
    rim_factor : float
        Ktrans and vp of the rim points are multiplied by this factor (on top of the
        heterogeneity profile); the nominal values are those of the core.
    rim_shape : str
        ``"shell"`` (outer shell) or ``"posterior"`` (posterior cap, see ``rim_radius``).
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
    rim_radius: float = 1.0
    rim_factor: float = 1.0
    rim_shape: str = "shell"



@dataclass(frozen=True)
class AIFSpec:
    """Arterial input of one session: this module's gamma-variate family (module notes).

    Attributes
    ----------
    arrival_s : float
        Bolus arrival time in the aorta (s after the first phase; the curve is exactly 0
        before it).
    amplitude_mM : float
        First-pass amplitude ``A`` (whole blood, mM): the first-pass gamma variate's own
        peak. The curve's peak is somewhat higher (washout term).
    fwhm_s : float
        Full width at half maximum of the first-pass gamma variate (s).
    shape : float
        First-pass gamma-variate shape ``a1`` (peak ``a1 * b1`` after arrival).
    recirc_delay_s : float
        Recirculation peak time after the first-pass peak (s).
    recirc_fraction : float
        Recirculation amplitude relative to ``amplitude_mM``.
    recirc_width : float
        Recirculation FWHM relative to ``fwhm_s``.
    recirc_shape : float
        Recirculation gamma-variate shape ``a_r``.
    plateau_mM : float
        Washout level ``P`` (mM) extrapolated to the first-pass peak.
    washout_tau_s : float
        Washout decay time (s).
    hematocrit : float
        Large-vessel hematocrit; plasma = blood / (1 - hematocrit).
    scale : float
        Extra multiplier of the whole curve (kept for callers that vary dose only).
    """

    arrival_s: float = 22.0
    amplitude_mM: float = 5.0
    fwhm_s: float = 9.0
    shape: float = 3.0
    recirc_delay_s: float = 20.0
    recirc_fraction: float = 0.3
    recirc_width: float = 1.8
    recirc_shape: float = 2.5
    plateau_mM: float = 1.0
    washout_tau_s: float = 360.0
    hematocrit: float = 0.45
    scale: float = 1.0

    def validate(self) -> None:
        """Raise ValueError for inconsistent parameters."""
        if self.arrival_s < 0:
            raise ValueError(f"aif.arrival_s: must be >= 0, got {self.arrival_s}")
        if not 0 <= self.hematocrit < 1:
            raise ValueError(f"aif.hematocrit: must be in [0, 1), got {self.hematocrit}")
        for name in ("fwhm_s", "shape", "recirc_width", "recirc_shape", "washout_tau_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"aif.{name}: must be > 0, got {getattr(self, name)}")
        for name in ("amplitude_mM", "recirc_delay_s", "recirc_fraction", "plateau_mM",
                     "scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"aif.{name}: must be >= 0, got {getattr(self, name)}")


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
        The session's own protocol (flip angle, TR, blood SNR may differ per session).
    anatomy : Anatomy
    tissues : mapping or None
        Tissue properties; None for :func:`default_tissues` at the acquisition's field.
    shift_mm : tuple of float
        Patient position relative to the slab, ``(posterior, inferior, right)`` (mm).
    rotation_deg : tuple of float
        Patient rotation in the slab (deg) about the posterior, inferior and right axes
        (:func:`rotation_matrix`), about the centre of the centre-level vertebral body
        (before the shift): a slab point is ``R a + shift`` for the anatomical point
        ``a``. :func:`world_motion` gives the motion between two sessions.
    seed : tuple of int
        ``(entropy, *spawn_key)`` of the session's noise ``SeedSequence``.
    gain : float
        Global receive gain of the session (multiplies ``acquisition.m0_scale``).
    bias_coeffs : tuple of float
        Coefficients of the random low-order receive field (module notes; up to 9, missing
        ones are 0; empty = coil falloff only).
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
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seed: tuple[int, ...] = (0,)
    gain: float = 1.0
    bias_coeffs: tuple[float, ...] = ()

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
        Fine time grid (s) and whole-blood / plasma concentration (mM) on it (analytic
        samples; the tissue curves use their piecewise-linear interpolant).
    t_s, cb_mM, cp_mM : ndarray
        The analytic curve at the acquisition times.
    hematocrit, arrival_s, scale : float
        See :class:`AIFSpec`.
    peak_mM : float
        Maximum of the whole-blood curve on the fine grid (mM).
    peak_time_s : float
        Time of that maximum (s).
    fwhm_s : float
        Full width at half maximum of the whole-blood curve's first peak, measured on the
        fine grid (s); wider than :attr:`AIFSpec.fwhm_s` (the first-pass component) when
        recirculation and washout keep the curve above half maximum (about 30 % of the
        cohort's sessions, up to about 30 s).
    spec : AIFSpec
        The parameters.
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
    peak_mM: float
    peak_time_s: float
    fwhm_s: float
    spec: AIFSpec


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
        Tissue codes (:data:`TISSUE_CODES`) at the voxel centres.
    lesion_labels : ndarray of uint8
        0 outside lesions, the lesion label where the voxel centre is inside one.
    marrow_roi : ndarray of uint8
        1 in a normal-marrow reference ROI (centre of a lesion-free vertebral body).
    vertebra_labels : ndarray of uint8
        ``n`` in the vertebral body of ``levels[n - 1]``, 0 elsewhere (lesions included).
    levels : tuple of str
        Levels visible in the slab, cranial to caudal.
    truth : dict of ndarray
        Ground-truth maps. Volume averages over the voxel's sub-voxels (module notes,
        "the truth of a voxel is the volume average of its contents"):
        ``ktrans_per_min``, ``ve`` (NaN where the average ve is 0), ``vp``,
        ``kep_per_min`` (= ``ktrans_per_min / ve``, NaN where ve is). Of the tissue at the
        voxel centre: ``ktrans_per_min_tissue``, ``ve_tissue`` (NaN where Ktrans = 0),
        ``vp_tissue`` (aorta: ``1 - Hct``), ``kep_per_min_tissue`` (NaN where Ktrans = 0),
        ``delay_s``, ``t10_s`` (NaN in air), ``m0`` (signal units: tissue
        M0 x receive field x gain x m0_scale; the M0 a VFA fit of a pure voxel gives),
        ``bias`` (receive field incl. coil falloff, without gain) and ``pv_fraction``
        (fraction of the voxel occupied by the centre's class).
    aif : TrueAIF
    noise_sigma : float
        Standard deviation of each Gaussian noise channel (0 when noise-free).
    blood_signal : float
        Noiseless pre-contrast pure-blood signal used to set ``noise_sigma``.
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
    blood_signal: float = 0.0

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

    @property
    def blood_snr(self) -> float | None:
        """Requested baseline blood SNR (None when noise-free)."""
        return self.spec.acquisition.snr

    def lesion_truth(self) -> pd.DataFrame:
        """Per-lesion truth: voxel count and mean parameters over the lesion label.

        Columns: subject, session, days_from_rt, lesion, level, n_voxels,
        ``ktrans_per_min``, ``ve``, ``vp``, ``kep_per_min`` (label means of the
        volume-average maps: the default truth), ``ktrans_per_min_tissue``, ``ve_tissue``,
        ``vp_tissue``, ``kep_per_min_tissue`` (label means of the voxel-centre tissue
        values), ``*_nominal`` (the :class:`LesionSpec` values), delay_s, t10_s.
        """
        return _lesion_truth(self.spec, self.lesion_labels, self.truth)


# --------------------------------------------------------------------------- physics


def spgr(m0: Any, r1_per_s: Any, flip_angle_deg: Any, tr_s: float) -> _FloatArray:
    """Steady-state spoiled gradient-echo signal (this module's own implementation).

    ``S = M0 sin(a) (1 - E1) / (1 - cos(a) E1)``, ``E1 = exp(-TR R1)``.

    Parameters
    ----------
    m0, r1_per_s, flip_angle_deg : array_like
        Broadcast together.
    tr_s : float

    Returns
    -------
    ndarray
    """
    a = np.deg2rad(np.asarray(flip_angle_deg, dtype=np.float64))
    e1 = np.exp(-tr_s * np.asarray(r1_per_s, dtype=np.float64))
    return np.asarray(np.asarray(m0, dtype=np.float64) * np.sin(a) * (1.0 - e1)
                      / (1.0 - np.cos(a) * e1))


@lru_cache(maxsize=64)
def _gamma_fwhm_unit(shape: float) -> float:
    """FWHM of ``(x / a)^a exp(a - x)`` (peak 1 at ``x = a``), by bisection."""
    a = float(shape)

    def f(x: float) -> float:
        return float(a * np.log(x / a) + a - x - np.log(0.5))

    def root(lo: float, hi: float) -> float:
        flo = f(lo)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            fm = f(mid)
            if (fm > 0) == (flo > 0):
                lo, flo = mid, fm
            else:
                hi = mid
        return 0.5 * (lo + hi)

    return root(a, a + 50.0 * (1.0 + np.sqrt(a))) - root(1e-12 * a, a)


def _gamma_variate(x: _FloatArray, shape: float, beta: float) -> _FloatArray:
    """``(x / (a b))^a exp(a - x / b)`` for ``x > 0``, else 0 (peak 1 at ``x = a b``)."""
    out = np.zeros_like(x, dtype=np.float64)
    pos = x > 0
    z = x[pos] / (shape * beta)
    out[pos] = np.exp(shape * (np.log(z) + 1.0 - z))
    return out


def aif_blood_mM(t_s: Any, spec: AIFSpec) -> _FloatArray:
    """Whole-blood concentration (mM) of the module's AIF family at times ``t_s``.

    Parameters
    ----------
    t_s : array_like
        Times (s) from the first phase.
    spec : AIFSpec

    Returns
    -------
    ndarray
        ``Cb(t)`` (module notes); exactly 0 up to ``spec.arrival_s``.
    """
    from scipy.special import gammainc  # here: the workflow imports this module at parse time

    spec.validate()
    u = np.asarray(t_s, dtype=np.float64) - spec.arrival_s
    a1 = spec.shape
    b1 = spec.fwhm_s / _gamma_fwhm_unit(a1)
    up = a1 * b1
    first = _gamma_variate(u, a1, b1)
    ar = spec.recirc_shape
    br = spec.recirc_width * spec.fwhm_s / _gamma_fwhm_unit(ar)
    t_rp = up + spec.recirc_delay_s  # recirculation peak after arrival
    if ar * br > t_rp:  # would start before the arrival: keep its peak time, narrow it
        br = t_rp / ar
    recirc = _gamma_variate(u - (t_rp - ar * br), ar, br)
    uc = np.maximum(u, 0.0)
    washout = np.where(u > 0, gammainc(a1 + 1.0, uc / b1)
                       * np.exp(-(uc - up) / spec.washout_tau_s), 0.0)
    cb = spec.amplitude_mM * (first + spec.recirc_fraction * recirc) \
        + spec.plateau_mM * washout
    return np.asarray(spec.scale * cb)


def _fwhm_first_pass(t: _FloatArray, c: _FloatArray) -> float:
    """FWHM (s) of the first peak of ``c`` sampled at ``t`` (linear interpolation)."""
    i = int(np.argmax(c))
    half = 0.5 * float(c[i])
    if half <= 0:
        return 0.0
    lo = i
    while lo > 0 and c[lo] > half:
        lo -= 1
    hi = i
    while hi < c.size - 1 and c[hi] > half:
        hi += 1
    t_lo = float(np.interp(half, [c[lo], c[lo + 1]], [t[lo], t[lo + 1]])) if lo < i \
        else float(t[i])
    t_hi = float(np.interp(half, [c[hi], c[hi - 1]], [t[hi], t[hi - 1]])) if hi > i \
        else float(t[i])
    return t_hi - t_lo


def tofts_fine(t_fine_s: Any, cp_fine_mM: Any, t_out_s: Any, ktrans_per_min: Any,
               kep_per_min: Any, vp: Any) -> _FloatArray:
    """Extended Tofts tissue concentration by an exact recursive exponential integrator.

    The input is the piecewise-linear interpolant of ``cp_fine_mM`` on the uniform grid
    ``t_fine_s`` (already delayed by the caller); for each row, with ``k = kep`` and step
    ``h``, ``I_{n+1} = E I_n + c_n (1 - E) / k + (c_{n+1} - c_n) (1/k - (1 - E)/(k^2 h))``,
    ``E = exp(-k h)``, which is exact for piecewise-linear input; each output time is
    reached by an exact partial step from the grid point before it.

    Parameters
    ----------
    t_fine_s : array_like, shape (n_fine,)
        Uniform grid (s), starting at ``t_fine_s[0]``.
    cp_fine_mM : array_like, shape (n_fine,)
        Plasma concentration on the grid.
    t_out_s : array_like, shape (n_out,)
        Output times (s), within the grid.
    ktrans_per_min, kep_per_min, vp : array_like, shape (n_rows,)
        Per-row parameters (``kep > 0`` where ``ktrans > 0``).

    Returns
    -------
    ndarray, shape (n_rows, n_out)
        ``vp Cp(t) + Ktrans int Cp(s) exp(-kep (t - s)) ds`` (mM).
    """
    tf = np.asarray(t_fine_s, dtype=np.float64)
    cp = np.asarray(cp_fine_mM, dtype=np.float64)
    t_out = np.asarray(t_out_s, dtype=np.float64)
    kt = np.atleast_1d(np.asarray(ktrans_per_min, dtype=np.float64)) / 60.0
    kep = np.atleast_1d(np.asarray(kep_per_min, dtype=np.float64)) / 60.0
    vpa = np.atleast_1d(np.asarray(vp, dtype=np.float64))
    kt, kep, vpa = np.broadcast_arrays(kt, kep, vpa)
    h = float(tf[1] - tf[0])
    if t_out.min() < tf[0] - 1e-9 or t_out.max() > tf[-1] + 1e-9:
        raise ValueError("t_out_s: output times must lie within the fine grid")
    cp_out = np.interp(t_out, tf, cp)
    out = vpa[:, None] * cp_out[None, :]
    act = kt > 0
    if not act.any():
        return np.asarray(out)
    k = kep[act]
    if np.any(k <= 0):
        raise ValueError("kep_per_min: must be > 0 where ktrans_per_min > 0")

    def coeffs(step: float) -> tuple[_FloatArray, _FloatArray, _FloatArray]:
        om = -np.expm1(-k * step)  # 1 - E
        e = 1.0 - om
        a = om / k
        b = 1.0 / k - om / (k * k * step)
        return e, a, b

    e, a, b = coeffs(h)
    pos = (t_out - tf[0]) / h
    n_of = np.clip(np.floor(pos + 1e-9).astype(np.int64), 0, tf.size - 1)
    delta = t_out - (tf[0] + n_of * h)
    delta[np.abs(delta) < 1e-9 * h] = 0.0
    conv = np.zeros((k.size, t_out.size))
    need: dict[int, list[int]] = {}
    for m, n in enumerate(n_of.tolist()):
        need.setdefault(int(n), []).append(m)
    state = np.zeros(k.size)
    last = max(need)
    for n in range(last + 1):
        if n in need:
            for m in need[n]:
                d = float(delta[m])
                if d <= 0.0:
                    conv[:, m] = state
                else:
                    ed, ad, bd = coeffs(d)
                    conv[:, m] = ed * state + cp[n] * ad + (cp_out[m] - cp[n]) * bd
        if n < last:
            state = e * state + cp[n] * a + (cp[n + 1] - cp[n]) * b
    out[act] += kt[act][:, None] * conv
    return np.asarray(out)


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



def rotation_matrix(rotation_deg: Sequence[float]) -> _FloatArray:
    """Rotation of the patient in the slab frame ``(u, v, w)`` = (posterior, inferior,
    right).

    Parameters
    ----------
    rotation_deg : sequence of 3 float
        Right-handed angles (deg) about ``+u``, ``+v``, ``+w``; ``R = Rw Rv Ru`` (the
        rotation about ``u`` applied first).

    Returns
    -------
    ndarray, shape (3, 3)
    """
    a, b, c = (float(np.radians(x)) for x in rotation_deg)
    ru = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])
    rv = np.array([[np.cos(b), 0.0, np.sin(b)], [0.0, 1.0, 0.0], [-np.sin(b), 0.0, np.cos(b)]])
    rw = np.array([[np.cos(c), -np.sin(c), 0.0], [np.sin(c), np.cos(c), 0.0], [0.0, 0.0, 1.0]])
    return np.asarray(rw @ rv @ ru)


def _slab_frame(acq: Acquisition, ana: Anatomy) -> tuple[_FloatArray, _FloatArray]:
    """``(P, o)``: the slab frame ``(u, v, w)`` (mm, before the patient's pose) of a RAS
    point ``x`` is ``P x + o``."""
    perm = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    ni, di = acq.matrix[0], acq.voxel_mm[0]
    return perm, np.array([ni * di * (0.5 - ana.spine_position), 0.0, 0.0])


def world_motion(baseline: SessionSpec, followup: SessionSpec) -> _FloatArray:
    """The true rigid motion between two sessions of a patient, in world (RAS) mm.

    Each session places the anatomy in the slab as ``p = R a + shift``
    (:attr:`SessionSpec.rotation_deg`, :func:`rotation_matrix`, :attr:`SessionSpec.shift_mm`;
    ``a`` the anatomical point, origin at the centre of the centre-level vertebral body,
    which is the centre of rotation), and the slab's voxels have the same world
    coordinates in every session (:func:`affine_for`).

    Parameters
    ----------
    baseline, followup : SessionSpec
        Same acquisition field of view and anatomy.

    Returns
    -------
    ndarray, shape (4, 4)
        Maps a baseline world point (RAS mm) to the follow-up world point of the same
        anatomy.
    """
    perm, o = _slab_frame(baseline.acquisition, baseline.anatomy)
    perm_f, o_f = _slab_frame(followup.acquisition, followup.anatomy)
    if not (np.allclose(perm, perm_f) and np.allclose(o, o_f)):
        raise ValueError("world_motion: the sessions have different fields of view")
    rel = rotation_matrix(followup.rotation_deg) @ rotation_matrix(baseline.rotation_deg).T
    t_b, t_f = np.asarray(baseline.shift_mm, float), np.asarray(followup.shift_mm, float)
    m = np.eye(4)
    m[:3, :3] = perm.T @ rel @ perm
    m[:3, 3] = perm.T @ (rel @ (o - t_b) + t_f - o)
    return m


def _coords(spec: SessionSpec, offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
            ) -> tuple[_FloatArray, _FloatArray, _FloatArray]:
    """Anatomical coordinates (mm) of the points ``voxel + offset`` (offset in voxels).

    ``u``: A-P (+ posterior, 0 = body centre line, lordosis applied), ``v``: S-I
    (+ inferior, 0 = centre of the centre-level body), ``w``: L-R (+ right).
    """
    acq, ana = spec.acquisition, spec.anatomy
    ni, nj, nk = acq.matrix
    di, dj, dk = acq.voxel_mm
    su, sv, sw = spec.shift_mm
    oi, oj, ok = offset
    u1 = (np.arange(ni) + 0.5 + oi) * di - ana.spine_position * ni * di - su
    v1 = (np.arange(nj) + oj - (nj - 1) / 2.0) * dj - sv
    w1 = (np.arange(nk) + ok - (nk - 1) / 2.0) * dk - sw
    u, v, w = np.meshgrid(u1, v1, w1, indexing="ij")
    if any(spec.rotation_deg):
        # slab point p = R a + shift  =>  anatomy a = R^T (p - shift); R^T = R.T
        rot = rotation_matrix(spec.rotation_deg)
        u, v, w = (rot[0, 0] * u + rot[1, 0] * v + rot[2, 0] * w,
                   rot[0, 1] * u + rot[1, 1] * v + rot[2, 1] * w,
                   rot[0, 2] * u + rot[1, 2] * v + rot[2, 2] * w)
    half_v = max(0.5 * nj * dj, 1e-6)
    u = u - ana.curvature_mm * (v / half_v) ** 2
    return u, v, w


@dataclass(frozen=True)
class _Class:
    tissue: NDArray[np.uint8]
    lesion: NDArray[np.uint8]
    factor: _FloatArray  # lesion heterogeneity factor (1 outside lesions)
    body: NDArray[np.bool_]
    m_idx: _FloatArray


def _classify(spec: SessionSpec, u: _FloatArray, v: _FloatArray, w: _FloatArray,
              *, check: bool = False) -> _Class:
    """Tissue class, lesion label and lesion factor of every point."""
    ana = spec.anatomy
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

    lesion = np.zeros(shape, dtype=np.uint8)
    factor = np.ones(shape)
    if spec.lesions:
        _, _, visible, _ = _visible_levels(spec)
        c = _level_index(spec.centre_level)
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
        if check and not inside.any():
            raise ValueError(f"lesion {les.label} at {les.level}: no voxel inside the "
                             "vertebral body at this matrix/voxel size (enlarge it)")
        lesion[inside] = les.label
        tissue[inside] = code["lesion"]
        factor[inside] = 1.0 + les.heterogeneity * ((1.0 - r2[inside]) - 0.4)
        if les.rim_factor != 1.0:  # heterogeneous response: rim x rim_factor
            if les.rim_shape == "posterior":
                in_rim = (u[inside] - du) / au > les.rim_radius
            elif les.rim_shape == "shell":
                in_rim = r2[inside] > les.rim_radius ** 2
            else:
                raise ValueError(f"lesion {les.label}: rim_shape {les.rim_shape!r} is not "
                                 "'shell' or 'posterior'")
            factor[inside] *= np.where(in_rim, les.rim_factor, 1.0)
    return _Class(tissue=tissue, lesion=lesion, factor=factor, body=body, m_idx=m_idx)


def _bias_field(spec: SessionSpec) -> _FloatArray:
    """Receive field (coil falloff x random low-order field) at the voxel centres."""
    acq, ana = spec.acquisition, spec.anatomy
    ni, nj, nk = acq.matrix
    coil = 1.0 - ana.coil_falloff * (1.0 - (np.arange(ni) + 0.5) / ni)

    def norm(n: int) -> _FloatArray:
        return np.zeros(1) if n == 1 else np.linspace(-1.0, 1.0, n)

    x, y, z = np.meshgrid(norm(ni), norm(nj), norm(nk), indexing="ij")
    c = np.zeros(_N_BIAS)
    coeffs = np.asarray(spec.bias_coeffs, dtype=np.float64)
    if coeffs.size > _N_BIAS:
        raise ValueError(f"bias_coeffs: at most {_N_BIAS} coefficients, got {coeffs.size}")
    c[:coeffs.size] = coeffs
    expo = (c[0] * x + c[1] * y + c[2] * z + c[3] * x * x + c[4] * y * y + c[5] * z * z
            + c[6] * x * y + c[7] * x * z + c[8] * y * z)
    return np.asarray(coil[:, None, None] * np.exp(expo))


def _draw_bias(rng: np.random.Generator) -> tuple[float, ...]:
    lin = rng.uniform(-0.12, 0.12, 3)
    quad = rng.uniform(-0.08, 0.08, 3)
    cross = rng.uniform(-0.05, 0.05, 3)
    return tuple(float(x) for x in np.concatenate([lin, quad, cross]))


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
    m0_tissue: _FloatArray  # relative tissue M0 (no field, no gain)


def _lesion_params(spec: SessionSpec, lesion: NDArray[np.uint8], factor: _FloatArray
                   ) -> tuple[_FloatArray, _FloatArray, _FloatArray, _FloatArray]:
    """Ktrans, ve, vp, delay of lesion points (1-D arrays over ``lesion > 0``)."""
    sel = lesion > 0
    lab = lesion[sel]
    f = factor[sel]
    kt = np.zeros(lab.size)
    ve = np.zeros(lab.size)
    vp = np.zeros(lab.size)
    delay = np.zeros(lab.size)
    for les in spec.lesions:
        m = lab == les.label
        kt[m] = les.ktrans_per_min * f[m]
        vp[m] = np.clip(les.vp * f[m], 0.0, 1.0)
        ve[m] = les.ve
        delay[m] = les.delay_s
    return kt, ve, vp, delay


def _render_maps(spec: SessionSpec) -> _Maps:
    """Label maps and ground-truth parameter maps at the voxel centres (no curves)."""
    acq, ana = spec.acquisition, spec.anatomy
    acq.validate()
    spec.aif.validate()
    tissues = spec.tissue_table()
    u, v, w = _coords(spec)
    cl = _classify(spec, u, v, w, check=True)
    tissue, lesion = cl.tissue, cl.lesion
    shape = u.shape
    half_d, half_w = ana.body_depth_mm / 2.0, ana.body_width_mm / 2.0
    p, h = ana.pitch_mm, ana.body_height_mm
    code = TISSUE_CODES

    m_min, _m_max, visible, complete = _visible_levels(spec)
    vert = np.zeros(shape, dtype=np.uint8)
    vert[cl.body] = (cl.m_idx[cl.body] - m_min + 1).astype(np.uint8)
    c = _level_index(spec.centre_level)

    kt = np.zeros(shape)
    ve = np.full(shape, np.nan)
    vp = np.zeros(shape)
    delay = np.zeros(shape)
    sel = lesion > 0
    kt[sel], ve[sel], vp[sel], delay[sel] = _lesion_params(spec, lesion, cl.factor)

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
        marrow_roi[(r2 <= 1.0) & (tissue == code["marrow"]) & (cl.m_idx == m)] = 1
        if not marrow_roi.any():
            marrow_roi[(tissue == code["marrow"]) & (cl.m_idx == m)] = 1

    t10 = np.full(shape, np.nan)
    m0 = np.zeros(shape)
    for name, cd in code.items():
        if name == "background":
            continue
        s = tissue == cd
        if not s.any():
            continue
        tp = tissues[name]
        t10[s] = tp.t10_s
        m0[s] = tp.m0
        if name == "lesion":
            continue
        if name == "aorta":
            vp[s] = 1.0 - spec.aif.hematocrit
            continue
        kt[s] = tp.ktrans_per_min
        vp[s] = tp.vp
        if tp.ktrans_per_min > 0:
            ve[s] = tp.ve
    return _Maps(tissue=tissue, lesion=lesion, marrow_roi=marrow_roi, vertebra=vert,
                 levels=tuple(visible), ktrans=kt, ve=ve, vp=vp, delay=delay, t10=t10,
                 m0_tissue=m0)


def _fine_grid(acq: Acquisition) -> _FloatArray:
    t = acq.t_s
    n_fine = int(np.ceil(t[-1] / acq.dt_fine_s - 1e-9)) + 1
    return np.arange(n_fine, dtype=np.float64) * acq.dt_fine_s


def _true_aif(spec: SessionSpec) -> TrueAIF:
    acq, a = spec.acquisition, spec.aif
    t = acq.t_s
    t_fine = _fine_grid(acq)
    cb_fine = aif_blood_mM(t_fine, a)
    cb = aif_blood_mM(t, a)
    i = int(np.argmax(cb_fine))
    return TrueAIF(t_fine_s=t_fine, cb_fine_mM=cb_fine, cp_fine_mM=cb_fine / (1 - a.hematocrit),
                   t_s=t, cb_mM=cb, cp_mM=cb / (1 - a.hematocrit), hematocrit=a.hematocrit,
                   scale=a.scale, arrival_s=a.arrival_s, peak_mM=float(cb_fine[i]),
                   peak_time_s=float(t_fine[i]), fwhm_s=_fwhm_first_pass(t_fine, cb_fine),
                   spec=a)


def _tissue_conc(t_s: _FloatArray, t_fine: _FloatArray, aif: AIFSpec, kt: _FloatArray,
                 ve: _FloatArray, vp: _FloatArray, delay: _FloatArray) -> _FloatArray:
    """Extended Tofts concentration (mM), shape (n_rows, n_times); each delay group is
    driven by the analytically delayed plasma curve sampled on the fine grid."""
    out = np.zeros((kt.size, t_s.size))
    hct = aif.hematocrit
    for d in np.unique(delay):
        rows = np.flatnonzero(delay == d)
        cp = aif_blood_mM(t_fine - d, aif) / (1.0 - hct)
        k = kt[rows]
        kep = np.where(k > 0, k / np.where(k > 0, ve[rows], 1.0), 1.0)
        out[rows] = tofts_fine(t_fine, cp, t_s, k, kep, vp[rows])
    return out


def _rician(clean: NDArray[Any], sigma: float, rng: np.random.Generator) -> NDArray[np.float32]:
    if sigma <= 0:
        return clean.astype(np.float32)
    n1 = rng.standard_normal(clean.shape, dtype=np.float32)
    n2 = rng.standard_normal(clean.shape, dtype=np.float32)
    re = clean.astype(np.float32) + np.float32(sigma) * n1
    return np.sqrt(re * re + (np.float32(sigma) * n2) ** 2)


def _offsets(s: int) -> list[tuple[float, float, float]]:
    f = [(q - (s - 1) / 2.0) / s for q in range(s)]
    return [(a, b, c) for a in f for b in f for c in f]


#: Tissue classes in code order (column order of :attr:`_SubVoxels.frac`).
_CLASS_NAMES: tuple[str, ...] = tuple(nm for nm in TISSUE_CODES if nm != "background")


@dataclass(frozen=True)
class _SubVoxels:
    """Sub-voxel classification of a set of voxels (all, or selected ones)."""

    frac_all: _FloatArray  # (n, 1 + n_classes): fraction per tissue code (0 = air)
    vox: NDArray[np.int64]  # row (0..n-1) of every lesion sub-voxel point
    lab: NDArray[np.uint8]  # its lesion label
    fac: _FloatArray  # its lesion heterogeneity factor
    n_points: int  # sub-voxels per voxel

    @property
    def frac(self) -> _FloatArray:
        """(n, n_classes): fraction of sub-voxels per class, in :data:`_CLASS_NAMES` order."""
        return self.frac_all[:, 1:]


def _subvoxels(spec: SessionSpec, voxels: NDArray[np.int64] | None = None) -> _SubVoxels:
    """Classify the ``s^3`` sub-voxel points of every voxel (or of the flat indices
    ``voxels``): class fractions and the lesion sub-points."""
    acq = spec.acquisition
    offs = _offsets(acq.supersample) if acq.supersample > 1 else [(0.0, 0.0, 0.0)]
    n = int(np.prod(acq.matrix)) if voxels is None else int(voxels.size)
    n_cls = len(_CLASS_NAMES)
    counts = np.zeros((n, n_cls + 1), dtype=np.float64)
    rows = np.arange(n)
    les_vox: list[NDArray[np.int64]] = []
    les_lab: list[NDArray[np.uint8]] = []
    les_fac: list[_FloatArray] = []
    for off in offs:
        u, v, w = _coords(spec, off)
        if voxels is not None:
            u, v, w = u.ravel()[voxels], v.ravel()[voxels], w.ravel()[voxels]
        cl = _classify(spec, u, v, w)
        tis = cl.tissue.ravel().astype(np.int64)
        counts += np.bincount(rows * (n_cls + 1) + tis,
                              minlength=n * (n_cls + 1)).reshape(n, n_cls + 1)
        lab = cl.lesion.ravel()
        sel = lab > 0
        if sel.any():
            les_vox.append(rows[sel])
            les_lab.append(lab[sel])
            les_fac.append(cl.factor.ravel()[sel])
    return _SubVoxels(
        frac_all=counts / len(offs),
        vox=np.concatenate(les_vox) if les_vox else np.zeros(0, dtype=np.int64),
        lab=np.concatenate(les_lab) if les_lab else np.zeros(0, dtype=np.uint8),
        fac=np.concatenate(les_fac) if les_fac else np.zeros(0),
        n_points=len(offs))


def _volume_average(spec: SessionSpec, sub: _SubVoxels
                    ) -> tuple[_FloatArray, _FloatArray, _FloatArray]:
    """Sub-voxel (volume) averages of Ktrans, ve and vp over *all* sub-voxels.

    Each tissue contributes its own parameters; tissues without uptake (Ktrans = 0: CSF,
    aorta, air) contribute Ktrans = ve = 0; the aorta contributes vp = 1 - Hct (blood
    is plasma plus cells), air and CSF vp = 0. Lesion sub-voxels contribute their own
    (heterogeneous) parameters.
    """
    tissues = spec.tissue_table()
    n_cls = len(_CLASS_NAMES)
    kt_c, ve_c, vp_c = np.zeros(n_cls), np.zeros(n_cls), np.zeros(n_cls)
    for q, name in enumerate(_CLASS_NAMES):
        if name == "lesion":
            continue  # per sub-voxel point below
        if name == "aorta":
            vp_c[q] = 1.0 - spec.aif.hematocrit
            continue
        tp = tissues[name]
        if tp.ktrans_per_min > 0:
            kt_c[q], ve_c[q] = tp.ktrans_per_min, tp.ve
        vp_c[q] = tp.vp
    kt, ve, vp = sub.frac @ kt_c, sub.frac @ ve_c, sub.frac @ vp_c
    if sub.vox.size:
        n = sub.frac.shape[0]
        kt_l, ve_l, vp_l, _ = _lesion_params(spec, sub.lab, sub.fac)
        kt = kt + np.bincount(sub.vox, weights=kt_l, minlength=n) / sub.n_points
        ve = ve + np.bincount(sub.vox, weights=ve_l, minlength=n) / sub.n_points
        vp = vp + np.bincount(sub.vox, weights=vp_l, minlength=n) / sub.n_points
    return kt, ve, vp


def _ve_kep(kt: _FloatArray, ve: _FloatArray) -> tuple[_FloatArray, _FloatArray]:
    """ve map (NaN where ve <= 0 or undefined) and kep = Ktrans / ve (NaN there too)."""
    ok = ve > 0
    ve_out = np.where(ok, ve, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        kep = np.where(ok, kt / np.where(ok, ve, 1.0), np.nan)
    return ve_out, kep


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
    Partial volume: each voxel's noiseless signal is the mean over its sub-voxel points
    (module notes). Non-lesion tissues are homogeneous, so they enter through their
    sub-voxel fractions times one curve per class; every lesion sub-voxel point gets its
    own kinetic curve. The receive field is evaluated at the voxel centre. The kinetic
    truth maps are the sub-voxel (volume) averages, with the voxel-centre tissue values
    under ``*_tissue`` (module notes).
    """
    acq = spec.acquisition
    maps = _render_maps(spec)
    aif = _true_aif(spec)
    tissues = spec.tissue_table()
    t = acq.t_s
    t_fine = aif.t_fine_s
    shape = maps.tissue.shape
    n = int(np.prod(shape))
    code = TISSUE_CODES
    names = _CLASS_NAMES
    n_cls = len(names)

    # sub-voxel classification: class fractions and lesion sub-points
    sub = _subvoxels(spec)
    frac = sub.frac  # (n, n_cls) in the order of `names`
    flat_ids = np.arange(n)
    centre_code = maps.tissue.ravel().astype(np.int64)
    pv = sub.frac_all[flat_ids, centre_code]

    # class curves (unit field and gain): dynamic and VFA
    r1 = acq.r1_per_mM_per_s
    s_cls = np.zeros((n_cls, t.size))
    fas: tuple[float, ...] = tuple(float(a) for a in acq.vfa_flip_angles_deg or ())
    v_cls = np.zeros((n_cls, len(fas)))
    for q, name in enumerate(names):
        tp = tissues[name]
        if fas:
            v_cls[q] = spgr(tp.m0, 1.0 / tp.t10_s, np.asarray(fas), acq.tr_s)
        if name == "lesion":
            continue
        if name == "aorta":
            conc = aif.cb_mM
        else:
            conc = _tissue_conc(t, t_fine, spec.aif, np.array([tp.ktrans_per_min]),
                                np.array([tp.ve]), np.array([tp.vp]), np.zeros(1))[0]
        s_cls[q] = spgr(tp.m0, 1.0 / tp.t10_s + r1 * conc, acq.flip_angle_deg, acq.tr_s)
    clean = frac @ s_cls  # lesion class handled below
    if sub.vox.size:
        vox = sub.vox
        kt, ve, vp, delay = _lesion_params(spec, sub.lab, sub.fac)
        conc = _tissue_conc(t, t_fine, spec.aif, kt, ve, vp, delay)
        tl = tissues["lesion"]
        sig = spgr(tl.m0, 1.0 / tl.t10_s + r1 * conc, acq.flip_angle_deg, acq.tr_s)
        order = np.argsort(vox, kind="stable")
        vs = vox[order]
        starts = np.flatnonzero(np.r_[True, vs[1:] != vs[:-1]])
        clean[vs[starts]] += np.add.reduceat(sig[order], starts, axis=0) / sub.n_points
    bias = _bias_field(spec)
    scale_vox = bias.ravel() * spec.gain * acq.m0_scale
    clean *= scale_vox[:, None]

    # noise level from the pure-blood baseline signal
    tb = tissues["aorta"]
    aorta = maps.tissue == code["aorta"]
    b_ref = float(bias[aorta].mean()) if aorta.any() else float(bias.mean())
    s_blood = float(spec.gain * acq.m0_scale * b_ref
                    * spgr(tb.m0, 1.0 / tb.t10_s, acq.flip_angle_deg, acq.tr_s))
    sigma = 0.0 if acq.snr is None else s_blood / acq.snr
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed[0], spawn_key=spec.seed[1:]))
    signal = _rician(clean, sigma, rng).reshape(*shape, t.size)
    del clean

    vfa = None
    if fas:
        vfa_clean = (frac @ v_cls) * scale_vox[:, None]
        vfa = _rician(vfa_clean, sigma, rng).reshape(*shape, len(fas))

    kt_avg, ve_avg, vp_avg = _volume_average(spec, sub)
    ve_v, kep_v = _ve_kep(kt_avg.reshape(shape), ve_avg.reshape(shape))
    with np.errstate(invalid="ignore", divide="ignore"):
        kep_tissue = np.where(np.isnan(maps.ve), np.nan, maps.ktrans / maps.ve)
    m0 = maps.m0_tissue * bias * spec.gain * acq.m0_scale
    truth = {"ktrans_per_min": kt_avg.reshape(shape), "ve": ve_v,
             "vp": vp_avg.reshape(shape), "kep_per_min": kep_v,
             "ktrans_per_min_tissue": maps.ktrans, "ve_tissue": maps.ve,
             "vp_tissue": maps.vp, "kep_per_min_tissue": kep_tissue,
             "delay_s": maps.delay, "t10_s": maps.t10, "m0": m0,
             "bias": bias, "pv_fraction": pv.reshape(shape)}
    return SessionPhantom(spec=spec, signal=signal, t_s=t, affine=affine_for(acq),
                          vfa_signal=vfa, vfa_flip_angles_deg=fas, tissue_labels=maps.tissue,
                          lesion_labels=maps.lesion, marrow_roi=maps.marrow_roi,
                          vertebra_labels=maps.vertebra, levels=maps.levels, truth=truth,
                          aif=aif, noise_sigma=sigma, blood_signal=s_blood)


def _lesion_truth(spec: SessionSpec, lesion: NDArray[np.uint8],
                  truth: Mapping[str, _FloatArray]) -> pd.DataFrame:
    """Lesion means of the volume-average truth (``ktrans_per_min``, ``ve``, ``vp``,
    ``kep_per_min``) and of the voxel-centre tissue truth (``*_tissue``)."""
    rows = []
    for les in spec.lesions:
        sel = lesion == les.label
        row: dict[str, Any] = {
            "subject": spec.subject, "session": spec.session,
            "days_from_rt": spec.days_from_rt, "lesion": les.label, "level": les.level,
            "n_voxels": int(sel.sum())}
        for suffix in ("", "_tissue"):
            kt = truth["ktrans_per_min" + suffix][sel]
            ve = truth["ve" + suffix][sel]
            row["ktrans_per_min" + suffix] = float(kt.mean())
            row["ve" + suffix] = float(ve.mean())
            row["vp" + suffix] = float(truth["vp" + suffix][sel].mean())
            row["kep_per_min" + suffix] = float((kt / ve).mean())
        rows.append({
            **row,
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
                 shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 gain: float = 1.0,
                 bias_coeffs: Sequence[float] | None = None) -> SessionPhantom:
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
    rotation_deg : tuple of float
        Patient rotation (deg) about the posterior, inferior and right axes
        (:attr:`SessionSpec.rotation_deg`).
    gain : float
        Global receive gain.
    bias_coeffs : sequence of float, optional
        Random receive-field coefficients (module notes); None draws them from
        ``SeedSequence(seed, spawn_key=(3,))``; ``()`` for the coil falloff only.

    Returns
    -------
    SessionPhantom
    """
    for name, val in (("subject", subject), ("session", session)):
        if not (isinstance(val, str) and val.isascii() and val.isalnum()):
            raise ValueError(f"{name}: IDs must be alphanumeric ([A-Za-z0-9]+), got {val!r}")
    entropy = _seed_entropy(seed)
    if bias_coeffs is None:
        bias = _draw_bias(np.random.default_rng(np.random.SeedSequence(entropy,
                                                                       spawn_key=(3,))))
    else:
        bias = tuple(float(x) for x in bias_coeffs)
    if not gain > 0:
        raise ValueError(f"gain: must be > 0, got {gain}")
    spec = SessionSpec(
        subject=subject, session=session, days_from_rt=float(days_from_rt),
        centre_level=centre_level,
        lesions=tuple(lesions) if lesions is not None else (LesionSpec(1, centre_level),),
        aif=aif or AIFSpec(), acquisition=acquisition or Acquisition(),
        anatomy=anatomy or Anatomy(), tissues=tissues, shift_mm=shift_mm,
        rotation_deg=tuple(float(x) for x in rotation_deg),  # type: ignore[arg-type]
        seed=(entropy,), gain=float(gain), bias_coeffs=bias)
    return render_session(spec)


# --------------------------------------------------------------------------- cohort


@dataclass(frozen=True)
class Cohort:
    """A synthetic longitudinal cohort; session images are rendered on demand.

    Attributes
    ----------
    sessions : DataFrame
        One row per session: subject, session, days_from_rt, centre_level, aif_scale,
        bolus_arrival_s, hematocrit, aif_amplitude_mM, aif_fwhm_s, flip_angle_deg, tr_s,
        blood_snr, gain.
    lesions : DataFrame
        One row per lesion: subject, lesion (int label), level, recurrence (0/1),
        recurrence_day (nullable Int64; day of recurrence on conventional MRI, NA when
        controlled), responder_like (0/1: a recurrent lesion that first responds like a
        controlled one), delay_s.
    specs : dict
        ``(subject, session)`` -> :class:`SessionSpec`.
    seed : int
        The cohort seed.

    Notes
    -----
    Rendering is deterministic per session and independent of order, so
    ``cohort.session("P03", "fu1")`` always returns identical arrays. Sessions are not
    cached (a default session holds about 25 MB of float32 signal). The design (tables
    and specifications) is cheap (milliseconds per session); the lesion truth
    (:attr:`truth`) renders every session's maps and is computed on first use.
    """

    sessions: pd.DataFrame
    lesions: pd.DataFrame
    specs: dict[tuple[str, str], SessionSpec] = field(repr=False)
    seed: int = 0

    @cached_property
    def truth(self) -> pd.DataFrame:
        """One row per lesion and session: the nominal parameters and the means of the
        truth maps over the lesion's voxels (volume-average ``ktrans_per_min``, ``ve``,
        ``vp``, ``kep_per_min`` and voxel-centre ``*_tissue``; see
        :meth:`SessionPhantom.lesion_truth`), plus recurrence. Computed on first access
        (renders the maps of every session, not the images)."""
        truth_frames = []
        for spec in self.specs.values():
            maps = _render_maps(spec)
            # volume averages are needed on the lesion label only
            voxels = np.flatnonzero(maps.lesion.ravel() > 0)
            kt_l, ve_l, vp_l = _volume_average(spec, _subvoxels(spec, voxels))
            avg = []
            for vals in (kt_l, ve_l, vp_l):
                full = np.full(maps.lesion.shape, np.nan)
                full.ravel()[voxels] = vals
                avg.append(full)
            ve_v, kep_v = _ve_kep(avg[0], avg[1])
            truth = {"ktrans_per_min": avg[0], "ve": ve_v, "vp": avg[2], "kep_per_min": kep_v,
                     "ktrans_per_min_tissue": maps.ktrans, "ve_tissue": maps.ve,
                     "vp_tissue": maps.vp, "t10_s": maps.t10}
            truth_frames.append(_lesion_truth(spec, maps.lesion, truth))
        truth_df = pd.concat(truth_frames, ignore_index=True)
        return truth_df.merge(self.lesions[["subject", "lesion", "recurrence"]],
                              on=["subject", "lesion"], how="left")

    def motion_truth(self) -> pd.DataFrame:
        """The true rigid motion of every session from its subject's first session.

        Returns
        -------
        DataFrame
            One row per session: subject, session, baseline_session (the subject's first
            session), the session's pose (``shift_{posterior,inferior,right}_mm``,
            ``rotation_{posterior,inferior,right}_deg``, :class:`SessionSpec`) and
            ``m<r><c>`` (rows 0-2, columns 0-3) of :func:`world_motion`: the 4x4 matrix
            mapping a baseline world point (RAS mm) to the session's world point of the
            same anatomy (the identity for the baseline).
        """
        rows = []
        first: dict[str, SessionSpec] = {}
        for (subj, ses), spec in self.specs.items():
            base = first.setdefault(subj, spec)
            m = world_motion(base, spec)
            row: dict[str, Any] = {"subject": subj, "session": ses,
                                   "baseline_session": base.session}
            for name, v in zip(("posterior", "inferior", "right"), spec.shift_mm, strict=True):
                row[f"shift_{name}_mm"] = float(v)
            for name, v in zip(("posterior", "inferior", "right"), spec.rotation_deg,
                               strict=True):
                row[f"rotation_{name}_deg"] = float(v)
            row.update({f"m{r}{c}": float(m[r, c]) for r in range(3) for c in range(4)})
            rows.append(row)
        return pd.DataFrame(rows)

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


#: Thresholds of the phantom's true PRM classes (absolute change; vp: volume fraction,
#: ktrans_per_min: /min): the project-default thresholds of the pipeline's PRM,
#: written here again (this module imports nothing from ``dce``).
PRM_TRUTH_THRESHOLDS: dict[str, float] = {"vp": 0.02, "ktrans_per_min": 0.05}
#: Class codes of the true PRM class maps (those of the pipeline's class maps).
PRM_TRUTH_CODES: dict[str, int] = {"outside": 0, "increased": 1, "unchanged": 2,
                                   "decreased": 3}
#: SessionSpec fields of the patient's pose: the follow-up is rendered with the
#: baseline's to see its tissue on the baseline grid (perfect registration).
_POSE_FIELDS: tuple[str, ...] = ("shift_mm", "rotation_deg")


def prm_truth(cohort: Cohort, subject: str, session: str) -> dict[str, Any]:
    """True voxel-wise change of a follow-up from the subject's first session on the
    baseline grid (perfect registration): the follow-up's design rendered with the
    baseline's pose, volume averages (module notes) at the baseline's lesion and
    normal-marrow voxels.

    Parameters
    ----------
    cohort : Cohort
    subject, session : str
        A follow-up session (not the subject's first).

    Returns
    -------
    dict
        ``lesion`` (baseline lesion labels, uint8), ``marrow`` (baseline marrow ROI,
        bool), ``affine`` (baseline), and float maps on the baseline grid (NaN outside the
        lesion and marrow voxels): ``vp_baseline``, ``vp_followup``,
        ``ktrans_per_min_baseline``, ``ktrans_per_min_followup``.
    """
    order = cohort.sessions[cohort.sessions["subject"] == subject]["session"].tolist()
    if session not in order[1:]:
        raise ValueError(f"{subject}/{session}: not a follow-up session of the cohort")
    base = cohort.specs[(subject, order[0])]
    fu = cohort.specs[(subject, session)]
    fu = replace(fu, **{f: getattr(base, f) for f in _POSE_FIELDS})
    maps = _render_maps(base)
    shape = maps.lesion.shape
    idx = np.flatnonzero((maps.lesion > 0) | (maps.marrow_roi > 0))
    out: dict[str, Any] = {"lesion": maps.lesion, "marrow": maps.marrow_roi > 0,
                           "affine": affine_for(base.acquisition)}
    for tag, spec in (("baseline", base), ("followup", fu)):
        kt, _, vp = _volume_average(spec, _subvoxels(spec, idx))
        for name, val in (("vp", vp), ("ktrans_per_min", kt)):
            arr = np.full(int(np.prod(shape)), np.nan)
            arr[idx] = val
            out[f"{name}_{tag}"] = arr.reshape(shape)
    return out


def prm_truth_classes(truth: Mapping[str, Any], name: str,
                      threshold: float | None = None) -> NDArray[np.uint8]:
    """True PRM class map (codes :data:`PRM_TRUTH_CODES`) of one parameter (``vp`` or
    ``ktrans_per_min``) over the baseline lesion voxels of :func:`prm_truth`; threshold
    default :data:`PRM_TRUTH_THRESHOLDS`."""
    thr = PRM_TRUTH_THRESHOLDS[name] if threshold is None else float(threshold)
    change = truth[f"{name}_followup"] - truth[f"{name}_baseline"]
    code = PRM_TRUTH_CODES
    out = np.full(change.shape, code["outside"], dtype=np.uint8)
    les = truth["lesion"] > 0
    out[les & (change > thr)] = code["increased"]
    out[les & (change < -thr)] = code["decreased"]
    out[les & (np.abs(change) <= thr)] = code["unchanged"]
    return out


def prm_truth_table(cohort: Cohort) -> pd.DataFrame:
    """Per follow-up session, lesion and parameter (``vp``, ``ktrans_per_min``): the true
    PRM fractions (:func:`prm_truth_classes` with :data:`PRM_TRUTH_THRESHOLDS`) and the
    true ROI-mean change over the baseline lesion label, with the lesion's
    ``response_pattern``."""
    les = cohort.lesions
    pattern = {(s, int(n)): p for s, n, p in zip(les["subject"], les["lesion"],
                                                 les["response_pattern"], strict=True)}
    rows = []
    for subj, ses in zip(cohort.sessions["subject"], cohort.sessions["session"],
                         strict=True):
        if ses == cohort.sessions[cohort.sessions["subject"] == subj]["session"].iloc[0]:
            continue
        t = prm_truth(cohort, subj, ses)
        for name in PRM_TRUTH_THRESHOLDS:
            cls = prm_truth_classes(t, name)
            change = t[f"{name}_followup"] - t[f"{name}_baseline"]
            for lab in np.unique(t["lesion"][t["lesion"] > 0]):
                sel = t["lesion"] == lab
                n = int(sel.sum())
                c = cls[sel]
                rows.append({
                    "subject": subj, "session": ses, "lesion": int(lab), "parameter": name,
                    "threshold": PRM_TRUTH_THRESHOLDS[name], "n_voxels": n,
                    "prm_pos_fraction": float(np.mean(c == PRM_TRUTH_CODES["increased"])),
                    "prm_zero_fraction": float(np.mean(c == PRM_TRUTH_CODES["unchanged"])),
                    "prm_neg_fraction": float(np.mean(c == PRM_TRUTH_CODES["decreased"])),
                    "mean_change": float(change[sel].mean()),
                    "response_pattern": pattern.get((subj, int(lab)), "uniform")})
    return pd.DataFrame(rows)


def _subject_ids(n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"P{i + 1:0{width}d}" for i in range(n)]


def _range(x: float | tuple[float, float]) -> tuple[float, float]:
    if isinstance(x, (int, float)):
        return float(x), float(x)
    lo, hi = (float(v) for v in x)
    if hi < lo:
        raise ValueError(f"range: need lo <= hi, got {x}")
    return lo, hi


def _patient_aif(rng: np.random.Generator) -> dict[str, float]:
    return {"amplitude_mM": rng.uniform(3.0, 7.5), "fwhm_s": rng.uniform(6.0, 15.0),
            "shape": rng.uniform(3.5, 6.0), "recirc_delay_s": rng.uniform(15.0, 25.0),
            "recirc_fraction": rng.uniform(0.2, 0.4), "recirc_width": rng.uniform(1.2, 1.8),
            "recirc_shape": rng.uniform(3.0, 5.0), "plateau_ratio": rng.uniform(0.10, 0.18),
            "washout_tau_s": rng.uniform(180.0, 600.0)}


def _session_aif(rng: np.random.Generator, pat: Mapping[str, float], arrival_s: float,
                 hematocrit: float) -> AIFSpec:
    return AIFSpec(
        arrival_s=arrival_s,
        amplitude_mM=float(np.clip(pat["amplitude_mM"] * rng.uniform(0.85, 1.15), 2.8, 8.0)),
        fwhm_s=float(np.clip(pat["fwhm_s"] * rng.uniform(0.9, 1.1), 6.0, 15.0)),
        shape=pat["shape"],
        recirc_delay_s=float(np.clip(pat["recirc_delay_s"] + rng.uniform(-2.0, 2.0),
                                     15.0, 25.0)),
        recirc_fraction=float(np.clip(pat["recirc_fraction"] + rng.uniform(-0.03, 0.03),
                                      0.2, 0.4)),
        recirc_width=pat["recirc_width"], recirc_shape=pat["recirc_shape"],
        plateau_mM=float(np.clip(pat["amplitude_mM"] * pat["plateau_ratio"]
                                 * rng.uniform(0.85, 1.15), 0.5, 1.5)),
        washout_tau_s=pat["washout_tau_s"], hematocrit=hematocrit)


#: Pre-treatment kinetics per lesion class: (lo, hi) of vp (fraction), Ktrans (/min) and
#: ve; the lesion's quantile draws are mapped linearly into these ranges (module notes).
_CLASS_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "metastasis/hypo": {"vp": (0.025, 0.07), "ktrans_per_min": (0.04, 0.18),
                        "ve": (0.10, 0.40)},
    "metastasis/hyper": {"vp": (0.045, 0.11), "ktrans_per_min": (0.08, 0.25),
                         "ve": (0.10, 0.40)},
    "myeloma": {"vp": (0.04, 0.10), "ktrans_per_min": (0.10, 0.28), "ve": (0.06, 0.16)},
    "chordoma": {"vp": (0.02, 0.06), "ktrans_per_min": (0.04, 0.14), "ve": (0.25, 0.50)},
    "atypical_hemangioma": {"vp": (0.008, 0.035), "ktrans_per_min": (0.02, 0.08),
                            "ve": (0.10, 0.30)},
    "benign_fracture": {"vp": (0.01, 0.04), "ktrans_per_min": (0.03, 0.12),
                        "ve": (0.25, 0.50)},
}
#: Primary tumours of the metastases and their vascularity [Khadem2012]_, [Saha2014]_.
_PRIMARIES = {"renal": "hyper", "thyroid": "hyper", "prostate": "hypo", "breast": "hypo",
              "lung": "hypo"}
#: Untreated lesion classes (drawn in turn, so each occurs about equally often).
_INCIDENTAL = ("atypical_hemangioma", "benign_fracture", "tuberculosis")
#: Factor on the follow-up vp change of a chordoma (1 - 0.62 x 0.6 ~ 1 / 1.6).
_CHORDOMA_RESPONSE = 0.6


def _class_kinetics(les: dict[str, Any], rng: np.random.Generator) -> dict[str, float]:
    """Pre-treatment vp, Ktrans and ve of a lesion from its class and quantile draws."""
    cls = les["lesion_class"]
    u = les["base"]
    if cls == "tuberculosis":
        # kep 0.81 +- 0.19 /min, ve 0.47 +- 0.12 [Verma2022]_
        ve = float(np.clip(rng.normal(0.47, 0.12), 0.25, 0.70))
        kep = float(np.clip(rng.normal(0.81, 0.19), 0.40, 1.30))
        lo, hi = 0.02, 0.05
        return {"vp": lo + (hi - lo) * u["vp"], "ktrans_per_min": kep * ve, "ve": ve}
    key = f"metastasis/{les['vascularity']}" if cls == "metastasis" else cls
    ranges = _CLASS_RANGES[key]
    return {k: ranges[k][0] + (ranges[k][1] - ranges[k][0]) * u[k]
            for k in ("vp", "ktrans_per_min", "ve")}


def _assign_classes(designs: list[dict[str, Any]], entropy: int, incidental_fraction: float,
                    ana: Anatomy, acq: Acquisition, session_shift_mm: float,
                    delay_range_s: tuple[float, float], n_followups: int) -> None:
    """Lesion classes of the treated lesions, the untreated (incidental) lesions, and
    every lesion's pre-treatment kinetics from its class (in place; module notes)."""
    treated = [les for d in designs for les in d["lesions"]]
    n = len(treated)
    rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(4,)))
    n_other = int(np.ceil(0.15 * n)) if n >= 8 else 0
    classes = ["myeloma"] * n_other + ["chordoma"] * n_other
    classes += ["metastasis"] * (n - len(classes))
    n_met = n - 2 * n_other
    hyper = max(round(0.4 * n_met), 1 if n_met >= 2 else 0)
    vasc = ["hyper"] * hyper + ["hypo"] * (n_met - hyper)
    order = rng.permutation(n)
    vorder = [str(v) for v in rng.permutation(vasc)] if vasc else []
    for i, idx in enumerate(order):
        les = treated[int(idx)]
        cls = classes[i]
        les["lesion_class"], les["treated"] = cls, True
        if cls == "metastasis":
            v = vorder.pop()
            names = sorted(k for k, x in _PRIMARIES.items() if x == v)
            les["primary"], les["vascularity"] = str(rng.choice(names)), v
        else:
            les["primary"] = cls
            les["vascularity"] = "hyper" if cls == "myeloma" else "hypo"
    # untreated lesions: one per patient with probability incidental_fraction, at a
    # complete level that leaves one lesion-free body for the normal-marrow ROI
    extra = []
    half_d, half_h, half_w = (ana.body_depth_mm / 2, ana.body_height_mm / 2,
                              ana.body_width_mm / 2)
    for p, d in enumerate(designs):
        prng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(5, p)))
        probe = SessionSpec(d["subject"], "pre", 0.0, d["centre"], (), acquisition=acq,
                            anatomy=ana)
        up = _visible_levels(replace(probe, shift_mm=(0.0, session_shift_mm, 0.0)))[3]
        down = _visible_levels(replace(probe, shift_mm=(0.0, -session_shift_mm, 0.0)))[3]
        used = {les["level"] for les in d["lesions"]}
        free = [lv for lv in up if lv in down and lv not in used]
        if prng.random() >= incidental_fraction or len(free) < 2:
            continue
        les = {
            "label": len(d["lesions"]) + 1, "level": str(prng.choice(free)),
            "axes": (prng.uniform(0.35, 0.6) * half_d, prng.uniform(0.45, 0.7) * half_h,
                     prng.uniform(0.4, 0.65) * half_w),
            "offset": (prng.uniform(-0.3, 0.3) * half_d, prng.uniform(-0.25, 0.25) * half_h,
                       prng.uniform(-0.3, 0.3) * half_w),
            "base": {"vp": prng.random(), "ktrans_per_min": prng.random(),
                     "ve": prng.random()},
            "heterogeneity": prng.uniform(0.1, 0.3),
            "delay_s": float(prng.uniform(*delay_range_s)),
            "treated": False, "primary": "", "vascularity": "", "recurrence_day": 0,
            # untreated: stable apart from test-retest variation
            "untreated": [(float(prng.normal(0.0, 0.08)), float(prng.normal(0.0, 0.08)))
                          for _ in range(n_followups)],
            "ve_change": [float(prng.normal(0.0, 0.05)) for _ in range(n_followups)],
        }
        d["lesions"].append(les)
        extra.append(les)
    crng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(6,)))
    for les, k in zip(extra, crng.permutation(len(extra)), strict=True):
        les["lesion_class"] = _INCIDENTAL[int(k) % len(_INCIDENTAL)]
    # vertebral bodies next to a degenerated disc: not modelled in the images (random)
    drng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(7,)))
    krng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(8,)))
    for d in designs:
        for les in d["lesions"]:
            les["adjacent_disc"] = "degenerated" if drng.random() < 0.5 else "normal"
            les["base"] = _class_kinetics(les, krng)


#: Volume fraction of a rim + core lesion that is rim: the posterior cap of the ellipsoid,
#: the margin facing the spinal canal, where the dose of spine SBRT is limited by the cord
#: and most local failures after it occur (epidural / marginal recurrence, Chang EL et al.,
#: J Neurosurg Spine 2007;7:151). A cap rather than an outer shell: a shell holding 30 % of
#: a 7-9 mm lesion is 0.9 mm thick, below the 1.8 mm voxel, so no voxel would be rim.
RIM_VOLUME_FRACTION = 0.3
#: Vp increase of the recurrent rim (volume fraction, absolute): a recurrent metastasis'
#: vp (3-10 %, the lesion classes' ranges) over a necrotic / responding baseline. Its
#: smallest voxel value (x 0.84, the heterogeneity profile's lowest factor) is 0.042, past
#: the upper edge 0.028 of the design's dead band (:data:`PRM_DESIGN_MARGIN`).
RIM_VP_INCREASE = (0.05, 0.08)
#: Dead band of the design around the PRM thresholds, relative: the demo's true voxel-wise
#: change of vp and Ktrans in a lesion (the range its heterogeneity profile spans, before
#: partial volume) stays outside ``[(1 - m) thr, (1 + m) thr]`` in magnitude, with ``thr``
#: the project-default PRM thresholds (:data:`PRM_TRUTH_THRESHOLDS`: 0.02 vp, 0.05 /min
#: Ktrans), i.e. 0.012-0.028 vp and 0.03-0.07 /min. A voxel whose true change lies on the
#: threshold is classed by any measurement with a coin flip, so a phantom with changes
#: there cannot test class fractions. 0.4 thr (0.008 vp, 0.02 /min) is about 1.6 times
#: the median voxel-wise SD of the pipeline's error of the change in the demo's uniform
#: lesions (benchmarks/prm_noise.py, seed-0 demo: vp 0.005, range 0.002-0.03; Ktrans
#: 0.013 /min, range 0.003-0.17 in the high-Ktrans lesions), so a voxel at the band's
#: edge of a typical lesion flips class with a probability of about 5 %. Not several
#: times the noise: a wider band would leave no room for "unchanged" below a 0.02
#: threshold (docs/validation.md has what this leaves unmet).
PRM_DESIGN_MARGIN = 0.4
#: Margin of a rim + core lesion's ROI-mean vp change below zero: the core's drop
#: ``(1 - phi) b |r_core|`` is at least this factor times the rim's rise ``phi x increase``
#: (``phi`` :data:`RIM_VOLUME_FRACTION`), so the ROI mean falls while the rim is PRM+.
RIM_CORE_MEAN_MARGIN = 1.5
#: Smallest relative fall of vp and Ktrans in the core of a rim + core lesion: the
#: irradiated core is necrotic (its vascular space largely gone, as after the high single
#: doses of spine SBRT, where necrosis of the treated tumour is the expected response);
#: the lesion's controlled-outcome draw where that falls further.
RIM_CORE_RESPONSE = -0.8
#: Baseline ranges of the classes without an entry in ``_CLASS_RANGES`` (tuberculosis: vp
#: as drawn; Ktrans = kep x ve over the clipped ranges of _class_kinetics).
_OTHER_RANGES = {"tuberculosis": {"vp": (0.02, 0.05), "ktrans_per_min": (0.10, 0.91)}}


def _het_span(heterogeneity: float) -> tuple[float, float]:
    """Smallest and largest factor of a lesion's heterogeneity profile
    (``1 + h ((1 - r^2) - 0.4)``, :class:`LesionSpec`)."""
    return 1.0 - 0.4 * heterogeneity, 1.0 + 0.6 * heterogeneity


def _clear(change: float, heterogeneity: float, thr: float) -> bool:
    """Whether a lesion's voxel changes ``change x profile`` avoid the dead band."""
    lo_h, hi_h = _het_span(heterogeneity)
    mag = abs(change)
    return bool(mag * hi_h <= (1.0 - PRM_DESIGN_MARGIN) * thr
                or mag * lo_h >= (1.0 + PRM_DESIGN_MARGIN) * thr)


def _clear_baseline(b: float, rng_b: tuple[float, float], rels: Sequence[float],
                    heterogeneity: float, thr: float, b_min: float = 0.0) -> float:
    """The baseline value in ``rng_b`` (and at least ``b_min``, where the range allows)
    whose follow-up changes ``b x rel`` avoid the dead band: all of them if possible,
    else the earliest ones (the first follow-up is the cohort's primary time point), the
    nearest to ``b`` among equals."""
    lo_h, hi_h = _het_span(heterogeneity)
    hi = rng_b[1]
    lo = min(max(rng_b[0], b_min), hi)
    cands = [b, lo, hi]
    for r in rels:
        if abs(r) > 0:
            cands += [(1.0 - PRM_DESIGN_MARGIN) * thr / (abs(r) * hi_h) * (1 - 1e-9),
                      (1.0 + PRM_DESIGN_MARGIN) * thr / (abs(r) * lo_h) * (1 + 1e-9)]
    cands = [c for c in cands if lo <= c <= hi]
    return max(cands, key=lambda c: (tuple(_clear(c * r, heterogeneity, thr) for r in rels),
                                     -abs(c - b)))


def _clear_rel(b: float, rel: float, heterogeneity: float, thr: float,
               most_negative: float) -> float:
    """The relative change nearest ``rel`` (same sign, at least ``most_negative``) whose
    change ``b x rel`` avoids the dead band (``rel`` itself if it does)."""
    if _clear(b * rel, heterogeneity, thr):
        return rel
    lo_h, hi_h = _het_span(heterogeneity)
    inside = (1.0 - PRM_DESIGN_MARGIN) * thr / (b * hi_h) * (1 - 1e-9)
    past = (1.0 + PRM_DESIGN_MARGIN) * thr / (b * lo_h) * (1 + 1e-9)
    sign = -1.0 if rel < 0 else 1.0
    if sign < 0 and past > -most_negative:
        return -inside
    return sign * (inside if abs(abs(rel) - inside) <= abs(past - abs(rel)) else past)


def _design_followups(les: dict[str, Any], kind: str, n_followups: int
                      ) -> list[tuple[float, float, dict[str, Any]]]:
    """Per follow-up the vp and Ktrans factors (relative to baseline) and the
    :class:`LesionSpec` rim fields of a lesion with outcome ``kind``, its baseline
    (``les["base"]``) moved within its class range (in place) so that every true change
    avoids the dead band of :data:`PRM_DESIGN_MARGIN` (:func:`_clear_baseline`); a
    change no baseline in the range clears is moved instead (:func:`_clear_rel`; a rim's
    Ktrans change, which follows from the vp design, is not moved).

    A rim + core lesion (``les["rim_increase"]``): the core responds like a controlled
    lesion (the lesion's ``controlled`` draws), by at least :data:`RIM_CORE_RESPONSE`;
    the posterior cap (:data:`RIM_VOLUME_FRACTION`) has the baseline vp plus the rim
    increase and the core's Ktrans times the same factor as its vp; the baseline vp is at
    least that of :data:`RIM_CORE_MEAN_MARGIN` (ROI-mean vp change negative), where the
    class range allows."""
    b = les["base"]
    key = (f"metastasis/{les['vascularity']}" if les["lesion_class"] == "metastasis"
           else les["lesion_class"])
    ranges = _CLASS_RANGES.get(key) or _OTHER_RANGES[key]
    h = les["heterogeneity"]
    rim_inc = les.get("rim_increase")
    steps = les["controlled" if rim_inc is not None else kind][:n_followups]
    # chordoma: max Vp fell by a factor 1.6 after RT [Santos2017]_, against 2.6 for the
    # metastases' mean drop of 62 %
    vp_scale = _CHORDOMA_RESPONSE if les["lesion_class"] == "chordoma" else 1.0
    rel_vp = [max(1 + v * vp_scale, 0.02) - 1 for v, _ in steps]
    rel_kt = [max(1 + k, 0.05) - 1 for _, k in steps]
    if rim_inc is not None:
        rel_vp = [min(r, RIM_CORE_RESPONSE) for r in rel_vp]
        rel_kt = [min(r, RIM_CORE_RESPONSE) for r in rel_kt]
    thr = PRM_TRUTH_THRESHOLDS
    phi = RIM_VOLUME_FRACTION
    b_min = 0.0
    if rim_inc is not None:
        b_min = RIM_CORE_MEAN_MARGIN * phi * rim_inc / ((1 - phi) * min(abs(r) for r in rel_vp))
    new_vp = _clear_baseline(b["vp"], ranges["vp"], rel_vp, h, thr["vp"], b_min)
    rel_vp = [_clear_rel(new_vp, r, h, thr["vp"], -0.95) for r in rel_vp]
    b["vp"] = new_vp
    rims: list[dict[str, Any]] = [{} for _ in steps]
    kt_rels = list(rel_kt)
    if rim_inc is not None:
        # posterior cap beyond x holds (1 - x)^2 (2 + x) / 4 of the ellipsoid
        roots = np.roots([1.0, 0.0, -3.0, 2.0 - 4.0 * phi])
        x = float(next(r.real for r in roots if abs(r.imag) < 1e-9 and -1.0 <= r.real <= 1.0))
        factors = [(1.0 + rim_inc / new_vp) / (1 + r) for r in rel_vp]
        rims = [{"rim_radius": x, "rim_factor": f, "rim_shape": "posterior"}
                for f in factors]
        # core and rim of each follow-up in turn
        kt_rels = [x for r, f in zip(rel_kt, factors, strict=True) for x in (r, (1 + r) * f - 1)]
    new_kt = _clear_baseline(b["ktrans_per_min"], ranges["ktrans_per_min"], kt_rels, h,
                             thr["ktrans_per_min"])
    rel_kt = [_clear_rel(new_kt, r, h, thr["ktrans_per_min"], -0.95) for r in rel_kt]
    b["ktrans_per_min"] = new_kt
    return [(1 + rv, 1 + rk, rim) for rv, rk, rim in zip(rel_vp, rel_kt, rims, strict=True)]


#: Follow-up motion of the demo cohort (:func:`demo_cohort`): largest translation (mm) and
#: rotation (deg) about the posterior, inferior and right axes. The slab is planned on the
#: spine at every visit, so the table position (inferior) varies most and the sagittal
#: tilt (about the right axis, in plane) more than the through-plane rotations, which
#: with 5 mm slices tilt the anatomy across slices (10 deg over the 44 mm width of a
#: vertebral body moves its edges by about 4 mm, most of a slice).
DEMO_MOTION: tuple[tuple[float, float, float], tuple[float, float, float]] = (
    (8.0, 20.0, 3.0), (4.0, 4.0, 10.0))


def _draw_motion(design: dict[str, Any], rng: np.random.Generator,
                 motion: tuple[Sequence[float], Sequence[float]], ana: Anatomy,
                 acq: Acquisition) -> dict[int, tuple[float, float, float]]:
    """Draw each follow-up's motion; add its translation to ``design["shifts"]`` and
    return ``{session index: rotation_deg}``."""
    t_max = np.asarray(motion[0], dtype=np.float64)
    r_max = np.asarray(motion[1], dtype=np.float64)
    if t_max.shape != (3,) or r_max.shape != (3,) or np.any(t_max < 0) or np.any(r_max < 0):
        raise ValueError(f"followup_motion: need ((3 translations mm), (3 rotations deg)), "
                         f">= 0; got {motion}")
    nj, dj = acq.matrix[1], acq.voxel_mm[1]
    p, h, spare = ana.pitch_mm, ana.body_height_mm, 6.0
    c = _level_index(design["centre"])
    ms = [_level_index(les["level"]) - c for les in design["lesions"]]
    lo = -(nj / 2.0) * dj + 1.0 + spare - min(ms) * p + h / 2   # bounds of the v shift
    hi = (nj / 2.0) * dj - 1.0 - spare - max(ms) * p - h / 2
    rotations: dict[int, tuple[float, float, float]] = {}
    for s in range(1, len(design["days"])):
        x = rng.uniform(-1.0, 1.0, 3)
        t = x * t_max
        r = rng.uniform(-1.0, 1.0, 3) * r_max
        sh = design["shifts"][s]
        a, b = max(-t_max[1], lo - sh[1]), min(t_max[1], hi - sh[1])
        t[1] = a + (x[1] + 1.0) / 2.0 * (b - a) if a <= b else 0.0
        design["shifts"][s] = tuple(float(a + b) for a, b in zip(sh, t, strict=True))
        rotations[s] = (float(r[0]), float(r[1]), float(r[2]))
    return rotations


def make_cohort(n_patients: int = 10, seed: int = 0, *,
                acquisition: Acquisition | None = None, anatomy: Anatomy | None = None,
                recurrence_fraction: float = 0.3,
                responder_like_fraction: float = 0.3,
                incidental_fraction: float = 0.7,
                baseline_day: float = -7.0,
                followup_days: Sequence[float] = (60.0, 120.0),
                p_all_followups: float = 0.6, p_two_lesions: float = 0.5,
                centre_levels: Sequence[str] = ("T11", "T12", "L1", "L2"),
                hematocrit: float | tuple[float, float] = (0.36, 0.46),
                session_shift_mm: float = 2.0,
                followup_motion: tuple[Sequence[float], Sequence[float]] | None = None,
                lesion_delay_range_s: tuple[float, float] = (0.0, 5.0),
                flip_angle_range_deg: tuple[float, float] | None = (10.0, 25.0),
                tr_range_s: tuple[float, float] | None = (0.0035, 0.005),
                blood_snr_range: tuple[float, float] | None = (5.0, 15.0),
                gain_range: tuple[float, float] = (0.5, 2.0),
                random_bias: bool = True,
                tissues: Mapping[str, TissueProperties] | None = None,
                rim_core_fraction: float = 0.5) -> Cohort:
    """Design a synthetic radiotherapy cohort (tables and per-session specifications).

    Parameters
    ----------
    n_patients : int
        Number of patients (IDs ``P01``, ``P02``, ...).
    seed : int
        Cohort seed; everything is a deterministic function of it (module notes).
    acquisition, anatomy : optional
        Shared imaging geometry / timing and anatomy sizes. Flip angle, TR and SNR are
        replaced per patient / session unless the corresponding range is None.
    recurrence_fraction : float
        Fraction of lesions that recur (rounded; at least one of each outcome when there
        are two or more lesions).
    responder_like_fraction : float
        Fraction of the recurrent lesions (rounded, at least one when there are two or
        more recurrent lesions and the fraction is > 0) that first respond like
        controlled lesions (module notes).
    incidental_fraction : float
        Probability that a patient also has an untreated benign or infectious lesion
        (atypical hemangioma, benign compression fracture or tuberculosis; module notes),
        when the slab has a free level for it.
    baseline_day : float
        Nominal day of the baseline session relative to RT (jitter +-4 days).
    followup_days : sequence of float
        Nominal follow-up days (jitter about +-10 days). Each patient has the first
        follow-up, and all of them with probability ``p_all_followups``.
    p_two_lesions : float
        Probability that a patient has two lesions (else one).
    centre_levels : sequence of str
        Candidate levels for the centre of the FOV.
    hematocrit : float or (lo, hi)
        Hematocrit (fixed, or uniform per patient).
    session_shift_mm : float
        Maximum patient shift per axis between sessions (mm, uniform).
    followup_motion : (translation_mm, rotation_deg) or None
        Rigid motion of every follow-up session relative to the slab, on top of the
        session shift: per axis (posterior, inferior, right) the largest translation (mm)
        and rotation (deg), drawn uniformly in ``[-max, max]`` from the patient's stream
        ``(9, patient)`` (:attr:`SessionSpec.rotation_deg`; the inferior translation is
        drawn from the part of ``[-max, max]`` that keeps every lesion's vertebral body
        inside the slab with 6 mm to spare, none if there is no such part). None: no
        motion (:data:`DEMO_MOTION` for the demo cohort).
    lesion_delay_range_s : tuple of float
        Range of the lesion bolus delay behind the aorta (s), constant per lesion.
    flip_angle_range_deg : (lo, hi) or None
        Dynamic flip angle per patient (uniform, rounded to 1 deg); None keeps the
        acquisition's.
    tr_range_s : (lo, hi) or None
        TR per patient (uniform, rounded to 0.01 ms); None keeps the acquisition's.
    blood_snr_range : (lo, hi) or None
        Baseline blood SNR per session (uniform); None keeps ``acquisition.snr``.
    gain_range : (lo, hi)
        Global receive gain per session (log-uniform).
    random_bias : bool
        Draw a random low-order receive field per session (else coil falloff only).
    tissues : mapping, optional
        Overrides of :func:`default_tissues`.
    rim_core_fraction : float
        Fraction of the recurrent (not responder-like) lesions (rounded up) whose
        follow-ups respond heterogeneously: a recurrent rim (the posterior
        :data:`RIM_VOLUME_FRACTION` of the ellipsoid; vp + :data:`RIM_VP_INCREASE`
        (absolute), Ktrans up by the same factor) next to a necrotic core (vp and Ktrans
        down by :data:`RIM_CORE_RESPONSE` or more), the ROI-mean vp change negative
        (:data:`RIM_CORE_MEAN_MARGIN`). Drawn from their own stream
        (``spawn_key=(10,)``).

        Every lesion's true follow-up changes of vp and Ktrans clear the dead band
        :data:`PRM_DESIGN_MARGIN` around the default PRM thresholds (baseline values
        moved within the class ranges, else the change moved; ``_design_followups``).
        Lesion table column ``response_pattern`` (``rim_core`` / ``uniform``).

    Returns
    -------
    Cohort
    """
    if n_patients < 1:
        raise ValueError(f"n_patients: need >= 1, got {n_patients}")
    if not 0 <= recurrence_fraction <= 1:
        raise ValueError(f"recurrence_fraction: must be in [0, 1], got {recurrence_fraction}")
    if not 0 <= incidental_fraction <= 1:
        raise ValueError(f"incidental_fraction: must be in [0, 1], got {incidental_fraction}")
    if not 0 <= responder_like_fraction <= 1:
        raise ValueError(f"responder_like_fraction: must be in [0, 1], got "
                         f"{responder_like_fraction}")
    if not 0 <= rim_core_fraction <= 1:
        raise ValueError(f"rim_core_fraction: must be in [0, 1], got {rim_core_fraction}")
    if len(followup_days) < 1:
        raise ValueError("followup_days: need at least one follow-up")
    entropy = _seed_entropy(seed)
    acq0 = acquisition or Acquisition()
    ana = anatomy or Anatomy()
    acq0.validate()
    hct_lo, hct_hi = _range(hematocrit)
    g_lo, g_hi = _range(gain_range)
    if not 0 < g_lo:
        raise ValueError(f"gain_range: must be > 0, got {gain_range}")
    dt = float(np.min(np.diff(acq0.t_s)))
    subjects = _subject_ids(n_patients)
    session_ids = ["pre"] + [f"fu{i + 1}" for i in range(len(followup_days))]

    designs: list[dict[str, Any]] = []
    for p, subj in enumerate(subjects):
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(1, p)))
        centre = str(rng.choice(list(centre_levels)))
        probe = SessionSpec(subj, "pre", 0.0, centre, (), acquisition=acq0, anatomy=ana)
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
        n_f = len(followup_days)
        for k, lv in enumerate(levels):
            axes = (rng.uniform(0.35, 0.6) * half_d, rng.uniform(0.45, 0.7) * half_h,
                    rng.uniform(0.4, 0.65) * half_w)
            offset = (rng.uniform(-0.3, 0.3) * half_d, rng.uniform(-0.25, 0.25) * half_h,
                      rng.uniform(-0.3, 0.3) * half_w)
            # quantiles of the pre-treatment kinetics, mapped into the range of the
            # lesion's class once the classes are drawn (_CLASS_RANGES)
            base = {"vp": rng.random(), "ktrans_per_min": rng.random(), "ve": rng.random()}
            # (vp change, Ktrans change) per follow-up, for each possible outcome
            c_vp = float(np.clip(rng.normal(-0.62, 0.07), -0.75, -0.50))
            c_kt = float(np.clip(rng.normal(-0.55, 0.08), -0.80, -0.30))
            controlled = [(c_vp, c_kt)]
            r_vp, r_kt = rng.uniform(-0.45, 0.40), rng.uniform(-0.30, 0.30)
            recurrent = [(r_vp, r_kt)]
            s_vp = float(np.clip(rng.normal(-0.55, 0.10), -0.72, -0.35))
            s_kt = float(np.clip(rng.normal(-0.45, 0.10), -0.75, -0.20))
            responder = [(s_vp, s_kt)]
            for _ in range(1, n_f):
                pv, pk = controlled[-1]
                controlled.append((float(np.clip(pv + rng.normal(-0.02, 0.04), -0.9, -0.45)),
                                   float(np.clip(pk + rng.normal(-0.02, 0.04), -0.9, -0.25))))
                rv, rk = recurrent[-1]
                recurrent.append((rv + rng.uniform(0.05, 0.40), rk + rng.uniform(0.0, 0.30)))
                sv, sk = responder[-1]
                responder.append((sv + rng.uniform(0.20, 0.60), sk + rng.uniform(0.10, 0.40)))
            ve_change = [rng.normal(0.05, 0.05) for _ in followup_days]
            lesions.append({
                "label": k + 1, "level": lv, "axes": axes, "offset": offset, "base": base,
                "heterogeneity": rng.uniform(0.2, 0.4),
                "delay_s": float(rng.uniform(*lesion_delay_range_s)),
                "controlled": controlled, "recurrent": recurrent, "responder": responder,
                "ve_change": ve_change, "recurrence_day": int(rng.integers(150, 301)),
            })
        # protocol and physiology per patient, then per session
        acq_p = acq0
        if flip_angle_range_deg is not None:
            acq_p = replace(acq_p, flip_angle_deg=float(np.rint(
                rng.uniform(*_range(flip_angle_range_deg)))))
        if tr_range_s is not None:
            acq_p = replace(acq_p, tr_s=round(float(rng.uniform(*_range(tr_range_s))), 5))
        hct = float(rng.uniform(hct_lo, hct_hi))
        pat_aif = _patient_aif(rng)
        aifs, acqs, gains, biases, shifts = [], [], [], [], []
        for _ in days:
            arrival = float(int(rng.integers(3, 6)) * dt + rng.uniform(0.0, dt))
            aifs.append(_session_aif(rng, pat_aif, arrival, hct))
            snr = acq_p.snr if blood_snr_range is None else \
                float(rng.uniform(*_range(blood_snr_range)))
            acqs.append(replace(acq_p, snr=snr))
            gains.append(float(np.exp(rng.uniform(np.log(g_lo), np.log(g_hi)))))
            bias_draw = _draw_bias(rng)
            biases.append(bias_draw if random_bias else ())
            shifts.append(tuple(float(x) for x in rng.uniform(-session_shift_mm,
                                                              session_shift_mm, 3)))
        designs.append({"subject": subj, "centre": centre, "lesions": lesions, "days": days,
                        "aifs": aifs, "acqs": acqs, "gains": gains, "biases": biases,
                        "shifts": shifts})

    _assign_classes(designs, entropy, incidental_fraction, ana, acq0, session_shift_mm,
                    lesion_delay_range_s, len(followup_days))
    if followup_motion is not None:
        for p, d in enumerate(designs):
            d["rotations"] = _draw_motion(d, np.random.default_rng(
                np.random.SeedSequence(entropy, spawn_key=(9, p))), followup_motion, ana, acq0)

    # outcomes: exactly round(fraction * n) recurrent lesions, drawn at cohort level, and
    # among them round(responder_like_fraction * n_rec) responder-like ones
    all_lesions = [(d["subject"], les) for d in designs for les in d["lesions"]
                   if les["treated"]]
    n_total = len(all_lesions)
    n_rec = round(recurrence_fraction * n_total)
    if n_total >= 2 and 0 < recurrence_fraction < 1:
        n_rec = min(max(n_rec, 1), n_total - 1)
    rng0 = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(0,)))
    perm = rng0.permutation(n_total)
    rec_list = perm[:n_rec].tolist()
    n_resp = int(np.ceil(responder_like_fraction * n_rec - 1e-9))
    if n_rec >= 2 and responder_like_fraction > 0:
        n_resp = min(max(n_resp, 1), n_rec - 1)
    elif n_rec < 2:
        n_resp = 0
    rec_set = set(rec_list)
    resp_list = [int(x) for x in rng0.permutation(rec_list)[:n_resp]] if n_resp else []
    resp_set = set(resp_list)
    # heterogeneous response (rim + core) of some recurrent lesions, own stream
    hrng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(10,)))
    cand = [i for i in range(n_total) if i in rec_set and i not in resp_set]
    n_rim = int(np.ceil(rim_core_fraction * len(cand) - 1e-9)) if cand else 0
    for i in hrng.permutation(cand)[:n_rim].tolist() if n_rim else []:
        all_lesions[int(i)][1]["rim_increase"] = float(hrng.uniform(*RIM_VP_INCREASE))
    # responder-like lesions respond at the first follow-up like a controlled lesion of
    # this cohort between the 60th and 90th percentile of its vp change
    ctrl_fu1 = np.sort([les["controlled"][0][0] for i, (_, les) in enumerate(all_lesions)
                        if i not in rec_set])
    for i in resp_list:
        les = all_lesions[i][1]
        q = float(rng0.uniform(0.6, 0.9))
        if ctrl_fu1.size:
            v0 = float(np.quantile(ctrl_fu1, q))
            shift = v0 - les["responder"][0][0]
            les["responder"] = [(v + shift, k) for v, k in les["responder"]]

    sessions_rows, lesion_rows = [], []
    specs: dict[tuple[str, str], SessionSpec] = {}
    idx = 0
    outcome: dict[tuple[str, int], str] = {}
    for d in designs:
        for les in d["lesions"]:
            if les["treated"]:
                rec = idx in rec_set
                kind = ("responder" if idx in resp_set else "recurrent") if rec else \
                    "controlled"
                idx += 1
            else:
                rec, kind = False, "untreated"
            outcome[(d["subject"], les["label"])] = kind
            lesion_rows.append({"subject": d["subject"], "lesion": les["label"],
                                "level": les["level"],
                                "recurrence": int(rec) if les["treated"] else pd.NA,
                                "recurrence_day": les["recurrence_day"] if rec else pd.NA,
                                "lesion_class": les["lesion_class"],
                                "primary": les["primary"],
                                "vascularity": les["vascularity"],
                                "treated": int(les["treated"]),
                                "adjacent_disc": les["adjacent_disc"],
                                "responder_like": int(kind == "responder"),
                                "response_pattern": ("rim_core" if "rim_increase" in les
                                                     else "uniform"),
                                "delay_s": les["delay_s"]})
    p_index = {s: i for i, s in enumerate(subjects)}
    # follow-up factors with every true change clear of the PRM dead band (baselines
    # moved within their class ranges first; _design_followups)
    plans = {(d["subject"], les["label"]): _design_followups(
        les, outcome[(d["subject"], les["label"])], len(d["days"]) - 1)
        for d in designs for les in d["lesions"]}
    for d in designs:
        subj = d["subject"]
        for s, day in enumerate(d["days"]):
            les_specs = []
            for les in d["lesions"]:
                b = les["base"]
                if s == 0:
                    f_vp = f_kt = 1.0
                    dve = 0.0
                    rim: dict[str, Any] = {}
                else:
                    f_vp, f_kt, rim = plans[(subj, les["label"])][s - 1]
                    dve = les["ve_change"][s - 1]
                les_specs.append(LesionSpec(
                    label=les["label"], level=les["level"], offset_mm=les["offset"],
                    semi_axes_mm=les["axes"],
                    ktrans_per_min=b["ktrans_per_min"] * f_kt,
                    ve=float(np.clip(b["ve"] * (1 + dve), 0.05, 0.8)),
                    vp=b["vp"] * f_vp, heterogeneity=les["heterogeneity"],
                    delay_s=les["delay_s"], **rim))
            ses = session_ids[s]
            a, acq_s = d["aifs"][s], d["acqs"][s]
            spec = SessionSpec(subject=subj, session=ses, days_from_rt=float(day),
                               centre_level=d["centre"], lesions=tuple(les_specs),
                               aif=a, acquisition=acq_s, anatomy=ana,
                               tissues=tissues, shift_mm=d["shifts"][s],
                               rotation_deg=d.get("rotations", {}).get(s, (0.0, 0.0, 0.0)),
                               seed=(entropy, 2, p_index[subj], s), gain=d["gains"][s],
                               bias_coeffs=d["biases"][s])
            specs[(subj, ses)] = spec
            sessions_rows.append({"subject": subj, "session": ses, "days_from_rt": float(day),
                                  "centre_level": d["centre"], "aif_scale": a.scale,
                                  "bolus_arrival_s": a.arrival_s, "hematocrit": a.hematocrit,
                                  "aif_amplitude_mM": a.amplitude_mM, "aif_fwhm_s": a.fwhm_s,
                                  "flip_angle_deg": acq_s.flip_angle_deg, "tr_s": acq_s.tr_s,
                                  "blood_snr": acq_s.snr, "gain": d["gains"][s]})

    lesions_df = pd.DataFrame(lesion_rows)
    lesions_df["recurrence"] = lesions_df["recurrence"].astype("Int64")
    lesions_df["recurrence_day"] = lesions_df["recurrence_day"].astype("Int64")
    return Cohort(sessions=pd.DataFrame(sessions_rows), lesions=lesions_df, specs=specs,
                  seed=entropy)


def demo_cohort(n_patients: int = 10, seed: int = 0, *,
                matrix: Sequence[int] | None = None,
                n_phases: int | None = None) -> Cohort:
    """The demo cohort of the workflow (config ``demo``) and of ``dce demo``.

    :func:`make_cohort` with the default :class:`Acquisition`, its matrix and number of
    phases replaced, and the follow-ups moved rigidly (:data:`DEMO_MOTION`); the field of
    view stays, so the voxel size follows the matrix
    (rounded to 1e-6 mm).

    Parameters
    ----------
    n_patients, seed : int
        As in :func:`make_cohort`.
    matrix : sequence of 3 int, optional
        Anterior-posterior, superior-inferior, slices (default: the acquisition's).
    n_phases : int, optional
        Dynamic phases (default: the acquisition's).

    Returns
    -------
    Cohort
        The design only (milliseconds); images are rendered per session on demand.
    """
    acq = Acquisition()
    if matrix is not None:
        if len(matrix) != 3:
            raise ValueError(f"matrix: need 3 sizes, got {matrix}")
        ni, nj, nk = (int(m) for m in matrix)
        fov = [m * v for m, v in zip(acq.matrix, acq.voxel_mm, strict=True)]
        acq = replace(acq, matrix=(ni, nj, nk),
                      voxel_mm=(round(fov[0] / ni, 6), round(fov[1] / nj, 6),
                                round(fov[2] / nk, 6)))
    if n_phases is not None:
        acq = replace(acq, n_phases=int(n_phases))
    return make_cohort(int(n_patients), seed=int(seed), acquisition=acq,
                       followup_motion=DEMO_MOTION)


def cohort_sheets(cohort: Cohort, vendors: Sequence[str] = ("ge", "siemens", "philips"), *,
                  hematocrit: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The session and lesion sheets of a cohort written as files (the layout of
    :func:`dce.io.dicom_write.write_cohort_dicom`, which writes these rows).

    Parameters
    ----------
    cohort : Cohort
    vendors : sequence of str
        Scanner styles cycled over patients (patient ``n`` gets ``vendors[n % len]``),
        lower-cased.
    hematocrit : bool
        Add the ``hematocrit`` column (each session's true large-vessel hematocrit).

    Returns
    -------
    sessions : DataFrame
        subject, session, days_from_rt (days), vendor, dicom_dir, lesion_roi, marrow_roi
        (paths relative to the sheet's folder: ``<subject>/<session>/dicom`` and
        ``<subject>/<session>/roi/<subject>_<session>_{lesions,marrow}.nii.gz``) and
        hematocrit (fraction), one row per session in cohort order.
    lesions : DataFrame
        subject, lesion, level, recurrence (0/1; NA for an untreated lesion),
        recurrence_day (days; NA if controlled), lesion_class, primary (histology of the
        primary tumour; empty for benign lesions), vascularity (hyper / hypo; empty for
        benign lesions), treated (0/1: irradiated), adjacent_disc (normal / degenerated;
        not modelled in the images: random, module notes).
    """
    styles = [str(v).lower() for v in vendors]
    if not styles:
        raise ValueError("vendors: need at least one style")
    subjects = list(dict.fromkeys(cohort.sessions["subject"]))
    rows = []
    for subj, ses in zip(cohort.sessions["subject"], cohort.sessions["session"],
                         strict=True):
        spec = cohort.specs[(subj, ses)]
        roi = f"{subj}/{ses}/roi/{subj}_{ses}"
        row: dict[str, Any] = {
            "subject": subj, "session": ses, "days_from_rt": spec.days_from_rt,
            "vendor": styles[subjects.index(subj) % len(styles)],
            "dicom_dir": f"{subj}/{ses}/dicom", "lesion_roi": f"{roi}_lesions.nii.gz",
            "marrow_roi": f"{roi}_marrow.nii.gz"}
        if hematocrit:
            row["hematocrit"] = float(spec.aif.hematocrit)
        rows.append(row)
    cols = [c for c in ("subject", "lesion", "level", "recurrence", "recurrence_day",
                        "lesion_class", "primary", "vascularity", "treated", "adjacent_disc")
            if c in cohort.lesions.columns]
    return pd.DataFrame(rows), cohort.lesions[cols].copy()
