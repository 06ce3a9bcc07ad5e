"""Rigid registration of a follow-up session to the subject's baseline session.

Arrays and affines in, transform and quality record out (no file input or output; the
workflow's rule ``register`` reads and writes, ``workflow/scripts/register.py``).

Method
------
* **Images**: the pre-contrast mean of each session's DCE series (the phases before the
  bolus arrives, ``acquisition.n_baseline``): the same sequence, flip angle and TR at both
  visits, so the tissues have the same contrast; only gain, receive field and noise
  differ.
* **Transform**: rigid, 6 degrees of freedom (:class:`SimpleITK.Euler3DTransform`), centred
  on the baseline lesions: the centre of rotation is the centroid of the baseline lesion
  ROI, the initial translation moves it onto the centroid of the follow-up lesion ROI (the
  lesions both ROIs share; none shared: no initial translation, the scanner's world
  frame). The vertebrae repeat every ~33 mm along the spine, so an intensity-only start
  could lock onto the neighbouring body for a table shift beyond half a vertebra; the
  ROI centroids, drawn on each visit, resolve that and the image refines it.
* **Metric**: Mattes mutual information (default; ``correlation`` selectable): it is
  insensitive to the visits' different receive gain and receive field (smooth bias) and
  to different protocols, where normalised correlation assumes a linear intensity
  relation. Sampled at random voxels of the mask with a fixed seed, one thread: the
  result is bit-identical across runs (random rather than regular sampling avoids the
  grid-aligned local optima of interpolated full sampling).
* **Receive field**: each visit has its own coil placement, so a smooth multiplicative
  intensity field differs between the images; left in, it pulls the registration (about
  2-3 degrees of through-plane rotation on the phantom, whose random receive field varies
  by +-10-20 %). Two stages: (1) register the flattened images (log image minus its
  Gaussian-smoothed version, ``bias_sigma_mm``, :func:`flatten_receive_field`), which
  removes the field but not exactly (the thin slab's edges); (2) with that transform, fit
  the ratio of the baseline to the mapped follow-up as ``exp(polynomial)`` of degree
  ``bias_degree`` on the flattest voxels of the mask (``bias_flat_fraction``, away from
  edges, :func:`receive_field_ratio`), divide the baseline by it and register the
  original images again from stage 1's transform (``bias_passes`` times).
* **Mask**: the baseline lesion ROI dilated by ``mask_margin_mm`` (Euclidean distance in
  mm): bone does not deform, the whole slab (breathing, bowel, posture of the legs) may.
* **Optimiser**: regular-step gradient descent, parameter scales from the physical
  shift, three resolution levels (shrink 4, 2, 1 in plane, smoothing in mm).
* **Cost**: at most ``max_samples`` mask voxels are sampled per iteration and level
  (the metric evaluation is most of the time): a 256 x 256 x 12 grid then costs about
  what the demo's 96 x 96 x 10 does; grids as coarse as the demo's are not capped.
* **Conventions**: NIfTI affines map voxels to RAS+ mm; ITK works in LPS. The images are
  passed to ITK in LPS (``x, y`` negated); the returned matrix is in RAS world mm.
  ``matrix_ras`` maps a point of the *baseline* world to the *follow-up* world point of
  the same anatomy (the direction ITK's resampling uses: fixed -> moving), so a follow-up
  map is put onto the baseline grid by sampling it at ``matrix_ras @ x_baseline``.

Quality control (:class:`RegistrationQC`): the image similarity must improve, the
normalised cross-correlation inside the mask after registration must reach
``min_ncc``, and every lesion label present in both ROIs must overlap with a Dice of at
least ``min_dice`` after mapping. A failed registration still returns its transform;
the record says why it failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Registration", "RegistrationQC", "RegistrationSettings", "dice_by_label",
           "flatten_receive_field", "lesion_mask", "normalised_correlation",
           "receive_field_ratio", "register_rigid", "resample_to_baseline", "rotation_angles_deg"]

_FloatArray = NDArray[np.float64]

#: RAS <-> LPS (the same matrix both ways).
_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])

METRICS = ("mattes", "correlation")


@dataclass(frozen=True)
class RegistrationSettings:
    """Settings of :func:`register_rigid` (config section ``registration``).

    Attributes
    ----------
    bias_sigma_mm : float
        Gaussian sigma (mm) of :func:`flatten_receive_field`; 0: the images as they are.
    bias_passes : int
        Passes of the receive-field ratio correction after the first registration
        (:func:`receive_field_ratio`), each followed by a registration of the raw images.
    bias_degree : int
        Polynomial degree of that ratio.
    bias_flat_fraction : float
        Fraction of the mask voxels (smallest gradient) the ratio is fitted on.
    mask_margin_mm : float
        Margin (mm) by which the baseline lesion ROI is dilated into the metric mask.
    metric : str
        ``mattes`` (Mattes mutual information) or ``correlation`` (ITK's normalised
        correlation metric).
    histogram_bins : int
        Histogram bins of the mutual information.
    sampling_fraction : float
        Fraction of the mask voxels sampled (random, fixed seed) per iteration, (0, 1].
    max_samples : int
        At most about this many mask voxels sampled per iteration at each resolution
        level (the fraction is lowered where ``sampling_fraction`` of the level's mask
        voxels would be more): fine grids then cost no more than coarse ones (the metric
        evaluation is most of the registration's time). The default, 20000, caps only
        grids finer than the demo's 1.8 x 1.8 x 5 mm (a 30 mm mask there has at most
        about 31000 voxels): at 0.68 x 0.68 x 4.2 mm (256 x 256 x 12) about 200000.
    seed : int
        Seed of the metric sampling, >= 1 (ITK reads 0 as "seed from the wall clock",
        which would make the result differ between runs).
    shrink_factors : tuple of int
        In-plane shrink factor per resolution level (coarse to fine); slices are not
        shrunk (thick slices).
    smoothing_sigmas_mm : tuple of float
        Gaussian smoothing (mm) per level.
    iterations : int
        Maximum optimiser iterations per level.
    min_ncc : float
        QC: minimum normalised cross-correlation inside the mask after registration.
    min_dice : float
        QC: minimum Dice of each lesion label present in both ROIs after mapping.
    max_centroid_shift_mm : float
        QC: the registered transform may move the baseline lesion centroid at most this
        far (mm) from where the ROI centroids put it (the start); also the limit beyond
        which the first (flattened) stage is discarded.
    """

    bias_sigma_mm: float = 10.0
    bias_passes: int = 1
    bias_degree: int = 2
    bias_flat_fraction: float = 0.3
    mask_margin_mm: float = 30.0
    metric: str = "mattes"
    histogram_bins: int = 32
    sampling_fraction: float = 0.5
    max_samples: int = 20000
    seed: int = 1
    shrink_factors: tuple[int, ...] = (4, 2, 1)
    smoothing_sigmas_mm: tuple[float, ...] = (4.0, 2.0, 0.0)
    iterations: int = 200
    min_ncc: float = 0.7
    min_dice: float = 0.5
    max_centroid_shift_mm: float = 10.0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"registration.metric: {self.metric!r}; use one of {METRICS}")
        if not self.mask_margin_mm > 0:
            raise ValueError(f"registration.mask_margin_mm: must be > 0, got "
                             f"{self.mask_margin_mm}")
        if not 0 < self.sampling_fraction <= 1:
            raise ValueError(f"registration.sampling_fraction: must be in (0, 1], got "
                             f"{self.sampling_fraction}")
        if isinstance(self.max_samples, bool) or not isinstance(self.max_samples, int) or \
                self.max_samples < 1:
            raise ValueError(f"registration.max_samples: an integer >= 1, got "
                             f"{self.max_samples!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 1:
            raise ValueError(f"registration.seed: an integer >= 1 (0 would seed from the "
                             f"clock), got {self.seed!r}")
        if len(self.shrink_factors) != len(self.smoothing_sigmas_mm) or \
                not self.shrink_factors or min(self.shrink_factors) < 1:
            raise ValueError("registration: shrink_factors (>= 1) and smoothing_sigmas_mm "
                             "need one entry per resolution level")

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> RegistrationSettings:
        """From the config section ``registration`` (keys of this class; others ignored)."""
        keys = cls.__dataclass_fields__
        kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)
                              for k, v in cfg.items() if k in keys}
        return cls(**kw)


@dataclass(frozen=True)
class RegistrationQC:
    """Quality record of a registration.

    Attributes
    ----------
    passed : bool
    reasons : list of str
        Why it failed (empty when passed).
    metric_before, metric_after : float
        The registration metric (lower is better: negative mutual information or
        negative correlation) at the initial (identity) and final transform.
    ncc_before, ncc_after : float
        Normalised cross-correlation of the baseline and the resampled follow-up image
        inside the mask (identity transform; registered).
    dice : dict
        Lesion label -> Dice of the baseline ROI and the mapped follow-up ROI (labels in
        both ROIs only).
    """

    passed: bool
    reasons: list[str]
    metric_before: float
    metric_after: float
    ncc_before: float
    ncc_after: float
    dice: dict[int, float]


@dataclass(frozen=True)
class Registration:
    """Result of :func:`register_rigid`.

    Attributes
    ----------
    matrix_ras : ndarray, shape (4, 4)
        Maps a baseline world point (RAS mm) to the follow-up world point of the same
        anatomy.
    rotation_deg : ndarray, shape (3,)
        Rotation angles (deg) about the RAS x (left-right), y (posterior-anterior) and z
        (inferior-superior) axes, ``R = Rz Ry Rx`` (x applied first).
    translation_mm : ndarray, shape (3,)
        Translation column of ``matrix_ras`` (the image of the world origin, mm).
    centre_mm : ndarray, shape (3,)
        Centre of rotation (RAS mm; the baseline lesion centroid).
    centre_displacement_mm : ndarray, shape (3,)
        Displacement of that centre (mm): ``matrix_ras @ centre - centre``.
    transform : SimpleITK.Euler3DTransform
        The ITK transform (LPS; fixed = baseline, moving = follow-up).
    qc : RegistrationQC
    iterations : int
        Optimiser iterations of the last level.
    stop : str
        The optimiser's stopping condition.
    """

    matrix_ras: _FloatArray
    rotation_deg: _FloatArray
    translation_mm: _FloatArray
    centre_mm: _FloatArray
    centre_displacement_mm: _FloatArray
    transform: Any = field(repr=False)
    qc: RegistrationQC
    iterations: int
    stop: str

    def record(self) -> dict[str, Any]:
        """The transform as a JSON-ready dict (``matrix_ras`` row-major, angles, mm)."""
        return {
            "matrix_ras": [[float(v) for v in row] for row in self.matrix_ras],
            "direction": ("matrix_ras maps a point of the baseline session's world (RAS+, "
                          "mm, the NIfTI affines' frame) to the point of the same anatomy in "
                          "the follow-up session's world; sample a follow-up image at "
                          "matrix_ras @ x to put it onto the baseline grid"),
            "rotation_deg": [float(v) for v in self.rotation_deg],
            "rotation_convention": ("angles about RAS x, y, z (deg), R = Rz Ry Rx "
                                    "(x applied first), right-handed"),
            "translation_mm": [float(v) for v in self.translation_mm],
            "centre_mm": [float(v) for v in self.centre_mm],
            "centre_displacement_mm": [float(v) for v in self.centre_displacement_mm],
        }

    def qc_record(self) -> dict[str, Any]:
        """The quality record as a JSON-ready dict."""
        q = self.qc
        return {"passed": q.passed, "reasons": list(q.reasons),
                "metric_before": q.metric_before, "metric_after": q.metric_after,
                "ncc_before": q.ncc_before, "ncc_after": q.ncc_after,
                "dice": {str(k): v for k, v in q.dice.items()},
                "iterations": self.iterations, "stop": self.stop}


# --------------------------------------------------------------------------- geometry


def _affine(affine: ArrayLike, what: str) -> _FloatArray:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: need a finite 4x4 affine, got shape {a.shape}")
    return a


def _voxel_mm(affine: _FloatArray) -> _FloatArray:
    return np.asarray(np.linalg.norm(affine[:3, :3], axis=0))


def _world(affine: _FloatArray, shape: tuple[int, ...]) -> _FloatArray:
    """RAS coordinates (mm) of every voxel centre, shape ``(*shape, 3)``."""
    idx = np.stack(np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape),
                               indexing="ij"), axis=-1)
    return np.asarray(idx @ affine[:3, :3].T + affine[:3, 3])


def rotation_angles_deg(rotation: ArrayLike) -> _FloatArray:
    """Angles (deg) about x, y, z of a rotation matrix ``R = Rz Ry Rx``.

    Parameters
    ----------
    rotation : array_like, shape (3, 3)

    Returns
    -------
    ndarray, shape (3,)
    """
    r = np.asarray(rotation, dtype=np.float64)
    ax = np.arctan2(r[2, 1], r[2, 2])
    ay = -np.arcsin(np.clip(r[2, 0], -1.0, 1.0))
    az = np.arctan2(r[1, 0], r[0, 0])
    return np.degrees(np.array([ax, ay, az]))


def lesion_mask(lesions: ArrayLike, affine: ArrayLike, margin_mm: float) -> NDArray[np.bool_]:
    """Voxels within ``margin_mm`` (Euclidean, mm) of a lesion ROI voxel.

    Parameters
    ----------
    lesions : array_like, 3-D
        Lesion labels (> 0 inside).
    affine : array_like, shape (4, 4)
        Voxel to RAS mm (its column norms give the voxel size).
    margin_mm : float

    Returns
    -------
    ndarray of bool
    """
    from scipy.ndimage import distance_transform_edt

    lab = np.asarray(lesions) > 0
    if not lab.any():
        raise ValueError("lesion ROI: no lesion voxel (no registration mask)")
    dist = distance_transform_edt(~lab, sampling=_voxel_mm(_affine(affine, "lesion ROI")))
    return np.asarray(dist <= margin_mm)


def flatten_receive_field(image: ArrayLike, affine: ArrayLike, sigma_mm: float
                          ) -> _FloatArray:
    """The image with a smooth multiplicative field removed (the registration's input).

    ``log(I) - G(log I)`` inside the body (``I`` above 10 % of its 99th percentile), ``G``
    a Gaussian of ``sigma_mm`` (isotropic in mm) by normalised convolution over the body
    voxels; 0 outside the body.

    Parameters
    ----------
    image : array_like, 3-D
        Positive image (signal units; NaN treated as background).
    affine : array_like, shape (4, 4)
        Voxel to RAS mm.
    sigma_mm : float
        > 0.

    Returns
    -------
    ndarray of float64
    """
    from scipy.ndimage import gaussian_filter

    img = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
    top = float(np.percentile(img, 99))
    if not top > 0:
        raise ValueError("image: no positive signal to register")
    body = img > 0.1 * top
    sig = float(sigma_mm) / _voxel_mm(_affine(affine, "image"))
    log = np.where(body, np.log(np.maximum(img, 1e-12 * top)), 0.0)
    num = gaussian_filter(log, sig, mode="constant")
    den = gaussian_filter(body.astype(np.float64), sig, mode="constant")
    return np.asarray(np.where(body, log - num / np.maximum(den, 1e-12), 0.0))


def resample_to_baseline(data: ArrayLike, affine: ArrayLike, baseline_shape: tuple[int, ...],
                         baseline_affine: ArrayLike, matrix_ras: ArrayLike, *,
                         kind: str = "linear") -> _FloatArray:
    """A follow-up map on the baseline grid.

    Parameters
    ----------
    data : array_like, 3-D
        The follow-up map (NaN where undefined).
    affine : array_like, shape (4, 4)
        Its voxel-to-RAS affine.
    baseline_shape : tuple of int
        Grid of the baseline session.
    baseline_affine : array_like, shape (4, 4)
    matrix_ras : array_like, shape (4, 4)
        Baseline world -> follow-up world (:attr:`Registration.matrix_ras`).
    kind : {"linear", "nearest"}
        Trilinear interpolation (continuous maps; a voxel next to an undefined one, with
        non-zero weight, is NaN) or nearest neighbour (labels, status codes).

    Returns
    -------
    ndarray of float64
        On the baseline grid; NaN outside the follow-up field of view.
    """
    from scipy.ndimage import map_coordinates

    if kind not in ("linear", "nearest"):
        raise ValueError(f"kind: 'linear' or 'nearest', got {kind!r}")
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"resample_to_baseline: need a 3-D map, got shape {arr.shape}")
    a_f, a_b = _affine(affine, "follow-up"), _affine(baseline_affine, "baseline")
    m = _affine(matrix_ras, "matrix_ras")
    vox = np.linalg.inv(a_f) @ m @ a_b        # baseline voxel -> follow-up voxel
    idx = _world(vox, tuple(baseline_shape))  # follow-up voxel coordinates
    coords = np.moveaxis(idx, -1, 0).reshape(3, -1)
    n = np.asarray(arr.shape, dtype=np.float64)[:, None]
    tol = 1e-6
    inside = np.all((coords >= -0.5 - tol) & (coords <= n - 0.5 + tol), axis=0)
    if kind == "nearest":
        near = np.clip(np.rint(coords), 0, n - 1).astype(np.intp)
        out = arr[near[0], near[1], near[2]]
    else:
        finite = np.isfinite(arr)
        clip = np.clip(coords, 0.0, n - 1)    # half a voxel at the edges: edge values
        val = map_coordinates(np.where(finite, arr, 0.0), clip, order=1, mode="nearest")
        bad = map_coordinates((~finite).astype(np.float64), clip, order=1, mode="nearest")
        out = np.where(bad > 1e-9, np.nan, val)
    out = np.where(inside, out, np.nan)
    return np.asarray(out.reshape(tuple(baseline_shape)))


def dice_by_label(baseline: ArrayLike, mapped: ArrayLike) -> dict[int, float]:
    """Dice of each label present in both label maps (same grid; NaN = 0).

    Parameters
    ----------
    baseline, mapped : array_like
        Label maps on the same grid.

    Returns
    -------
    dict
        label -> Dice, for the labels > 0 present in both.
    """
    b = np.asarray(baseline)
    f = np.nan_to_num(np.asarray(mapped, dtype=np.float64), nan=0.0)
    f = np.rint(f).astype(np.int64)
    out: dict[int, float] = {}
    for lab in sorted(set(np.unique(b[b > 0]).tolist()) & set(np.unique(f[f > 0]).tolist())):
        x, y = b == lab, f == lab
        out[int(lab)] = float(2.0 * np.sum(x & y) / (np.sum(x) + np.sum(y)))
    return out


def normalised_correlation(a: ArrayLike, b: ArrayLike, mask: ArrayLike) -> float:
    """Pearson correlation of two images over the mask voxels where both are finite."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    sel = np.asarray(mask, dtype=bool) & np.isfinite(x) & np.isfinite(y)
    if sel.sum() < 3:
        return float("nan")
    xs, ys = x[sel] - x[sel].mean(), y[sel] - y[sel].mean()
    den = float(np.sqrt(np.sum(xs * xs) * np.sum(ys * ys)))
    return float(np.sum(xs * ys) / den) if den > 0 else float("nan")


# --------------------------------------------------------------------------- ITK


def _itk_image(data: ArrayLike, affine: _FloatArray) -> Any:
    """A 3-D array in (i, j, k) order with a voxel-to-RAS affine -> SimpleITK image (LPS)."""
    import SimpleITK as sitk

    arr = np.asarray(data, dtype=np.float32)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    spacing = _voxel_mm(affine)
    lps = _FLIP[:3, :3] @ affine[:3, :3]
    direction = lps / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise ValueError("affine: the voxel axes are not orthogonal (sheared grid); "
                         "registration needs an orthogonal grid")
    img.SetSpacing([float(s) for s in spacing])
    img.SetDirection([float(v) for v in direction.ravel()])
    img.SetOrigin([float(v) for v in _FLIP[:3, :3] @ affine[:3, 3]])
    return img


def _centroid_ras(labels: NDArray[Any], affine: _FloatArray, which: list[int]) -> _FloatArray:
    sel = np.isin(labels, which)
    idx = np.argwhere(sel).astype(np.float64)
    return np.asarray(affine[:3, :3] @ idx.mean(axis=0) + affine[:3, 3])


def _centre_deviation(transform: Any, start: Any, centre_ras: _FloatArray) -> float:
    """Distance (mm) between the images of the lesion centre under two transforms."""
    c = np.append(_FLIP[:3, :3] @ centre_ras, 1.0)
    return float(np.linalg.norm((_matrix_lps(transform) @ c - _matrix_lps(start) @ c)[:3]))


def _matrix_lps(transform: Any) -> _FloatArray:
    r = np.asarray(transform.GetMatrix(), dtype=np.float64).reshape(3, 3)
    c = np.asarray(transform.GetCenter(), dtype=np.float64)
    t = np.asarray(transform.GetTranslation(), dtype=np.float64)
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = t + c - r @ c
    return m


def _sampling_fractions(mask: NDArray[np.bool_], s: RegistrationSettings) -> list[float]:
    """Sampled fraction of the mask per resolution level: ``sampling_fraction``, lowered
    to about ``max_samples`` mask voxels where the level (in-plane shrink) has more."""
    return [min(s.sampling_fraction,
                s.max_samples / max(1, int(np.count_nonzero(mask[::k, ::k]))))
            for k in s.shrink_factors]


def _register(fix: _FloatArray, a_b: _FloatArray, mov: _FloatArray, a_f: _FloatArray,
              mask_img: Any, init: Any, s: RegistrationSettings,
              fractions: list[float]) -> tuple[Any, Any]:
    """One multi-resolution registration from ``init``: (Euler3DTransform, method);
    ``fractions``: the sampled fraction per level (:func:`_sampling_fractions`)."""
    import SimpleITK as sitk

    fixed, moving = _itk_image(fix, a_b), _itk_image(mov, a_f)
    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(1)
    if s.metric == "mattes":
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(s.histogram_bins))
    else:
        reg.SetMetricAsCorrelation()
    reg.SetMetricFixedMask(mask_img)
    if any(f < s.sampling_fraction for f in fractions):   # max_samples caps a level
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentagePerLevel([float(f) for f in fractions], int(s.seed))
    elif s.sampling_fraction < 1:
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(float(s.sampling_fraction), int(s.seed))
    else:
        reg.SetMetricSamplingStrategy(reg.NONE)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-4, numberOfIterations=int(s.iterations),
        relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([int(f) for f in s.shrink_factors])
    reg.SetSmoothingSigmasPerLevel([float(v) for v in s.smoothing_sigmas_mm])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=False)
    out = reg.Execute(fixed, moving)
    if isinstance(out, sitk.CompositeTransform):
        out = out.GetBackTransform()
    return sitk.Euler3DTransform(out), reg


def receive_field_ratio(fixed: ArrayLike, affine: ArrayLike, mapped: ArrayLike,
                        mask: ArrayLike, centre_mm: ArrayLike, degree: int,
                        flat_fraction: float = 1.0) -> _FloatArray:
    """Smooth ratio of the fixed image to the mapped moving image (receive fields, gain).

    ``exp(poly(x))``, ``poly`` a polynomial of total degree ``degree`` in the RAS
    coordinates (centred on ``centre_mm``, in units of 50 mm) fitted by least squares to
    ``log(fixed / mapped)`` over the mask voxels where both are above 10 % of their 99th
    percentile.

    Parameters
    ----------
    fixed : array_like, 3-D
        Baseline image.
    affine : array_like, shape (4, 4)
        Its voxel-to-RAS affine.
    mapped : array_like, 3-D
        The follow-up image on the baseline grid (NaN outside its field of view).
    mask : array_like of bool
        Voxels of the fit.
    centre_mm : array_like, shape (3,)
    degree : int
        0 (a gain), 1, 2, ...
    flat_fraction : float
        Fit only the fraction of those voxels with the smallest gradient of the log
        images (either image; Gaussian derivative of 1 voxel): inside tissues, away from
        edges where a residual misalignment leaves structure in the ratio. 1: all.

    Returns
    -------
    ndarray of float64
        The ratio on the whole grid (divide ``fixed`` by it).
    """
    f, g = np.asarray(fixed, dtype=np.float64), np.asarray(mapped, dtype=np.float64)
    xyz = (_world(_affine(affine, "image"), f.shape) - np.asarray(centre_mm)) / 50.0
    terms = [np.ones(f.shape)]
    for dx in range(degree + 1):
        for dy in range(degree + 1 - dx):
            for dz in range(degree + 1 - dx - dy):
                if dx + dy + dz:
                    terms.append(xyz[..., 0] ** dx * xyz[..., 1] ** dy * xyz[..., 2] ** dz)
    basis = np.stack(terms, axis=-1)
    from scipy.ndimage import gaussian_gradient_magnitude

    gf = np.where(np.isfinite(g), g, 0.0)
    sel = (np.asarray(mask, dtype=bool) & (f > 0.1 * np.percentile(f, 99))
           & (gf > 0.1 * np.percentile(gf, 99)))
    if flat_fraction < 1 and sel.any():
        # inside tissues only: away from edges, where a residual misalignment would
        # leave image structure in the ratio
        grad = np.zeros(f.shape)
        for img in (f, gf):
            lg = np.log(np.maximum(img, 1e-12 * float(np.percentile(img, 99))))
            gm = gaussian_gradient_magnitude(lg, 1.0)
            grad = np.maximum(grad, gm)
        sel &= grad <= np.quantile(grad[sel], flat_fraction)
    if sel.sum() < 4 * basis.shape[-1]:
        return np.ones(f.shape)
    coef, *_ = np.linalg.lstsq(basis[sel], np.log(f[sel] / gf[sel]), rcond=None)
    return np.asarray(np.exp(basis @ coef))


def register_rigid(baseline: ArrayLike, baseline_affine: ArrayLike,
                   baseline_lesions: ArrayLike, followup: ArrayLike,
                   followup_affine: ArrayLike, followup_lesions: ArrayLike | None = None,
                   settings: RegistrationSettings | None = None) -> Registration:
    """Rigidly register a follow-up image to the baseline image (module notes).

    Parameters
    ----------
    baseline : array_like, 3-D
        Baseline image (the pre-contrast mean of the DCE series).
    baseline_affine : array_like, shape (4, 4)
        Its voxel-to-RAS affine (mm).
    baseline_lesions : array_like, 3-D
        Baseline lesion labels (> 0) on the baseline grid: the mask and the rotation
        centre.
    followup, followup_affine
        The follow-up image and its affine (its own grid).
    followup_lesions : array_like, optional
        Follow-up lesion labels on the follow-up grid: initial translation and the Dice
        of the quality control.
    settings : RegistrationSettings, optional

    Returns
    -------
    Registration

    Raises
    ------
    ValueError
        Bad shapes or affines, an empty baseline lesion ROI.
    """
    import SimpleITK as sitk

    s = settings or RegistrationSettings()
    a_b, a_f = _affine(baseline_affine, "baseline"), _affine(followup_affine, "follow-up")
    fix, mov = np.asarray(baseline, dtype=np.float64), np.asarray(followup, dtype=np.float64)
    les_b = np.asarray(baseline_lesions)
    if fix.ndim != 3 or mov.ndim != 3 or les_b.shape != fix.shape:
        raise ValueError(f"register_rigid: need 3-D images and a baseline ROI on the baseline "
                         f"grid; got {fix.shape}, {mov.shape}, ROI {les_b.shape}")
    les_f = None if followup_lesions is None else np.asarray(followup_lesions)
    if les_f is not None and les_f.shape != mov.shape:
        raise ValueError(f"register_rigid: follow-up ROI shape {les_f.shape} differs from "
                         f"the follow-up image {mov.shape}")
    mask = lesion_mask(les_b, a_b, s.mask_margin_mm)

    labels_b = sorted(int(v) for v in np.unique(les_b[les_b > 0]))
    shared = labels_b if les_f is None else \
        [lab for lab in labels_b if np.any(les_f == lab)]
    centre = _centroid_ras(les_b, a_b, labels_b)
    shift = np.zeros(3)
    if les_f is not None and shared:
        shift = _centroid_ras(les_f, a_f, shared) - _centroid_ras(les_b, a_b, shared)

    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    # one thread for every ITK filter and metric (the method's own setting does not reach
    # the metric's threader or the pyramid filters): identical results across runs
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        return _register_pair(fix, a_b, les_b, mov, a_f, les_f, mask, centre, shift,
                              shared, s)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _register_pair(fix: _FloatArray, a_b: _FloatArray, les_b: NDArray[Any],
                   mov: _FloatArray, a_f: _FloatArray, les_f: NDArray[Any] | None,
                   mask: NDArray[np.bool_], centre: _FloatArray, shift: _FloatArray,
                   shared: list[int], s: RegistrationSettings) -> Registration:
    import SimpleITK as sitk

    mask_img = sitk.Cast(_itk_image(mask.astype(np.float32), a_b), sitk.sitkUInt8)
    fractions = _sampling_fractions(mask, s)
    transform = sitk.Euler3DTransform()
    transform.SetCenter([float(v) for v in _FLIP[:3, :3] @ centre])
    transform.SetTranslation([float(v) for v in _FLIP[:3, :3] @ shift])
    raw_fix, raw_mov = np.nan_to_num(fix), np.nan_to_num(mov)
    initial = transform
    if s.bias_sigma_mm > 0:   # stage 1: on the flattened images
        fix = flatten_receive_field(raw_fix, a_b, s.bias_sigma_mm)
        mov = flatten_receive_field(raw_mov, a_f, s.bias_sigma_mm)
        start = transform
        transform, _ = _register(fix, a_b, mov, a_f, mask_img, start, s, fractions)
        if _centre_deviation(transform, start, centre) > s.max_centroid_shift_mm:
            transform = start   # stage 1 ran away (seen with far-apart lesions): restart
    for _ in range(s.bias_passes):  # then: the receive-field ratio fitted, raw images
        m_ras = _FLIP @ _matrix_lps(transform) @ _FLIP
        fix = raw_fix / receive_field_ratio(
            raw_fix, a_b, resample_to_baseline(raw_mov, a_f, raw_fix.shape, a_b, m_ras),
            mask, centre, s.bias_degree, s.bias_flat_fraction)
        mov = raw_mov
        transform, reg = _register(fix, a_b, mov, a_f, mask_img, transform, s, fractions)
    if not s.bias_passes:
        transform, reg = _register(fix, a_b, mov, a_f, mask_img, transform, s, fractions)
    final = transform
    fixed, moving = _itk_image(fix, a_b), _itk_image(mov, a_f)
    identity = sitk.Euler3DTransform()
    identity.SetCenter(final.GetCenter())
    reg.SetInitialTransform(identity, inPlace=False)
    metric_before = float(reg.MetricEvaluate(fixed, moving))
    reg.SetInitialTransform(final, inPlace=False)
    # the similarity at full resolution (the last level), comparable with metric_before
    metric_after = float(reg.MetricEvaluate(fixed, moving))

    m_ras = _FLIP @ _matrix_lps(final) @ _FLIP
    eye = np.eye(4)
    ncc_before = normalised_correlation(
        fix, resample_to_baseline(mov, a_f, fix.shape, a_b, eye), mask)
    ncc_after = normalised_correlation(
        fix, resample_to_baseline(mov, a_f, fix.shape, a_b, m_ras), mask)
    dice: dict[int, float] = {}
    if les_f is not None:
        mapped = resample_to_baseline(les_f, a_f, fix.shape, a_b, m_ras, kind="nearest")
        dice = {lab: d for lab, d in dice_by_label(les_b, mapped).items() if lab in shared}
        dice.update({lab: 0.0 for lab in shared if lab not in dice})
    reasons = []
    if not (metric_after < metric_before and ncc_after > ncc_before):
        reasons.append(f"the similarity did not improve (metric {metric_before:.4f} -> "
                       f"{metric_after:.4f}, NCC {ncc_before:.3f} -> {ncc_after:.3f})")
    if not ncc_after >= s.min_ncc:
        reasons.append(f"normalised correlation in the lesion mask after registration "
                       f"{ncc_after:.3f} < registration.min_ncc {s.min_ncc}")
    if les_f is not None and shared:
        dev = _centre_deviation(final, initial, centre)
        if dev > s.max_centroid_shift_mm:
            reasons.append(f"the registration moved the lesion centroid {dev:.1f} mm away "
                           f"from the follow-up ROI's centroid > registration."
                           f"max_centroid_shift_mm {s.max_centroid_shift_mm}")
    low = {lab: d for lab, d in dice.items() if d < s.min_dice}
    if low:
        reasons.append("lesion ROI overlap after mapping below registration.min_dice "
                       f"{s.min_dice}: " + ", ".join(f"lesion {k} Dice {v:.2f}"
                                                     for k, v in sorted(low.items())))
    qc = RegistrationQC(passed=not reasons, reasons=reasons, metric_before=metric_before,
                        metric_after=metric_after, ncc_before=ncc_before,
                        ncc_after=ncc_after, dice=dice)
    c_h = np.append(centre, 1.0)
    return Registration(
        matrix_ras=m_ras, rotation_deg=rotation_angles_deg(m_ras[:3, :3]),
        translation_mm=m_ras[:3, 3].copy(), centre_mm=centre,
        centre_displacement_mm=(m_ras @ c_h)[:3] - centre, transform=final, qc=qc,
        iterations=int(reg.GetOptimizerIteration()),
        stop=str(reg.GetOptimizerStopConditionDescription()))
