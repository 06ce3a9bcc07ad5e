"""Rule kinetics: the converted DCE of one session -> T1 maps, concentration, arterial input
function, tracer-kinetic fit; one job (why: workflow/rules/kinetics.smk).

1. T1 maps: the B1 factor on the DCE grid (sheet ``b1_map`` or converted B1 series,
   dce.io.b1), then T10 and M0 from the VFA series (B1-corrected) or a fixed T10
   (``t1.missing_vfa: fixed``; ``error`` fails the job); sidecars record the sources.
2. Concentration, from the T10 (+ M0, + B1 factor) maps as written. Voxels whose conversion
   failed (dce.signal.STATUS_CONC) are NaN at every phase; the status map says why. A
   session where fewer than 1 % of the voxels convert (MIN_CONVERTED_FRACTION: a blank
   baseline, a broken export) is refused with the counts. The 4-D concentration stays in
   memory (written only with ``outputs.keep_intermediates``); its sidecar is the record.
3. AIF: the choice (aortic AIF with QC, population fallback or error, population mode,
   blood T10, delay by phases) is dce.aif_auto.AIFPolicy from the ``aif`` configuration;
   the aorta mask from the sessions.tsv column ``aif.mask_column``, the lesion/marrow ROIs
   for the anterior prior. Table, QC record and voxel mask (the QC figure is drawn from
   them by the rule roi, the job that draws the session's figures: this one then needs no
   matplotlib).
4. Fit (a model of dce.registry.KINETIC_MODELS) of every voxel whose concentration is
   finite at all phases, with the AIF as written (the table's values); other voxels are NaN
   with status -1. One NIfTI map per output of the model (labels, units and data types from
   dce.registry). Delay (``aif.delay: fit``): candidates ``model.delay_grid_s`` (start,
   stop, step), each voxel's delay chosen on the mean curve of its
   ``model.delay_neighbourhood`` box (null or all ones: the voxel's own curve). Curves
   that do not enhance (``model.enhancement_z``) get status 5 with Ktrans = vp = 0; kep at
   a search limit gets the nested model (status 6, 7). The policy in force is written to
   every map's sidecar (``FitPolicy``).
"""

# ruff: noqa: E402  (the imports after serial_blas())
from dce._threads import serial_blas

# before numpy is imported: BLAS on one thread; the job's threads are the fit kernels'
# (dce._threads; Snakemake sets OPENBLAS_NUM_THREADS etc. to the job's threads)
serial_blas()

import json
from logging import Logger
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dce.aif_auto import AIFPolicy
from dce.fit import fitter_from_config, status_codes, status_counts
from dce.io.b1 import read_b1_output, session_b1, write_b1_output
from dce.io.derivatives import derived_sources
from dce.io.jobs import job, write_json, write_tsv_columns
from dce.io.maps import map_precision, read_roi, round_significand, write_map
from dce.io.nifti import (
    DynamicContents,
    NiftiContents,
    read_dynamic,
    read_nifti,
    write_nifti,
    write_sidecar,
)
from dce.registry import FIT_STATUS_MAP, output_map
from dce.signal import MIN_CONVERTED_FRACTION, STATUS_CONC, signal_to_concentration
from dce.t1 import STATUS_MEANINGS, VFAModel

sm = snakemake  # type: ignore[name-defined]  # noqa: F821


def t1_maps(dce: DynamicContents, log: Logger) -> None:
    """Write the B1 factor, T10 and M0 maps (outputs b1, t1, m0) on the DCE grid."""
    cfg, b1cfg = sm.params.t1, sm.params.b1
    record = json.loads(Path(sm.input.record).read_text(encoding="utf-8"))
    shape, affine = dce.data.shape[:3], dce.affine
    b1 = session_b1(sm.input.record, sm.input.b1[0] if sm.input.b1 else None, shape, affine,
                    convention=b1cfg["units"])
    log.info("B1: %s", b1.sidecar())  # B1 first: a bad map fails before the fit
    write_b1_output(sm.output.b1, b1, shape, affine)
    b1_map, b1_side = b1.applied(b1cfg["correct"])
    if record.get("vfa"):
        vfa_path = Path(sm.input.record).with_name(record["vfa"])
        vfa = read_nifti(vfa_path, require_sidecar=True)
        if vfa.data.shape[:3] != shape or not np.allclose(vfa.affine, affine, atol=1e-3):
            raise ValueError(f"{vfa_path}: the VFA grid {vfa.data.shape[:3]} differs from the "
                             f"DCE grid {shape} (affines differ); resampling is not supported")
        fas = np.asarray(vfa.sidecar["FlipAngles_deg"], dtype=float)
        tr = float(vfa.sidecar["RepetitionTime"])
        fit = VFAModel(fas, tr, method=cfg["method"], t1_range_s=tuple(cfg["t1_range_s"]),
                       b1=b1_map).fit(vfa.data)
        counts = {STATUS_MEANINGS[int(k)]: int(n)
                  for k, n in zip(*np.unique(fit.status, return_counts=True), strict=True)}
        log.info("VFA fit (%s, %d flip angles, TR %.4g s): %s", cfg["method"], fas.size, tr,
                 counts)
        t1, m0 = fit.t1_s.astype(np.float32), fit.m0.astype(np.float32)
        side = {"Source": "VFA", "Method": cfg["method"], "FlipAngles_deg": fas.tolist(),
                "RepetitionTime": tr, "T1Range_s": list(cfg["t1_range_s"]),
                "VoxelStatusCounts": counts, "Units": "s", **b1_side,
                "Description": "pre-contrast T1 (T10); NaN where the VFA fit failed"}
    else:
        if cfg["missing_vfa"] == "error":
            raise ValueError(f"{sm.input.record}: the session has no VFA series and "
                             "t1.missing_vfa is 'error' (set it to 'fixed' to use "
                             f"t1.fallback_t10_s = {cfg['fallback_t10_s']} s)")
        t10 = float(cfg["fallback_t10_s"])
        log.warning("no VFA series: fixed T10 = %g s in every voxel", t10)
        t1, m0 = np.full(shape, t10, dtype=np.float32), np.full(shape, np.nan, dtype=np.float32)
        side = {"Source": "fixed", "FixedT10_s": t10, "Units": "s", **b1_side,
                "Reason": "no VFA series in the session (t1.missing_vfa: fixed)",
                "Description": "pre-contrast T1 (T10), a configured constant"}
    side["Sources"] = derived_sources([vfa_path if record.get("vfa") else sm.input.dce],
                                      sm.config["results"])
    bits = sm.params.map_significant_bits       # lossy map storage (config), or None
    if bits is not None:
        t1, m0 = round_significand(t1, bits), round_significand(m0, bits)
    side.update(map_precision(bits))
    write_nifti(sm.output.m0, m0, affine, {"Source": side["Source"], "Units": "signal units",
                "Sources": side["Sources"], "Description": "M0 from the VFA fit (NaN: none)",
                **map_precision(bits)})
    write_nifti(sm.output.t1, t1, affine, side)


def concentration(dce: DynamicContents, t1: NiftiContents, log: Logger) -> NDArray[np.float32]:
    """The concentration (mM; NaN where the conversion failed) from the DCE signal and the
    T10 (``t1``), M0 and B1 maps as written (the values a rerun would read); writes the
    status map and the concentration's sidecar (the volume too if it is an output)."""
    p, nb = sm.params, int(sm.params.n_baseline)
    m0_source, m0 = p.m0, None
    if m0_source == "vfa" and t1.sidecar.get("Source") != "VFA":
        log.warning("concentration.m0 = vfa but the session has no VFA fit: M0 from the "
                    "baseline phases instead")
        m0_source = "baseline"
    elif m0_source == "vfa":
        m0 = read_nifti(sm.output.m0).data
    b1, b1_side = read_b1_output(sm.output.b1, use=p.b1["correct"])  # on the DCE grid
    src = derived_sources([sm.input.dce, sm.output.t1]
                          + ([sm.output.m0] if m0 is not None else [])
                          + ([sm.output.b1] if b1 is not None else []), sm.config["results"])
    res = signal_to_concentration(dce.data, t10_s=t1.data, tr_s=dce.tr_s,
                                  flip_angle_deg=dce.flip_angle_deg, r1_per_mM_per_s=p.r1,
                                  m0=m0, baseline=nb if m0 is None else None, b1=b1,
                                  dtype=np.float32)  # float64 arithmetic, rounded once
    ok, counts = res.status == 0, res.status_counts()
    log.info("conversion: FA %g deg, TR %.4g s, r1 %g /mM/s, M0 %s, B1 %s; voxels: %s",
             dce.flip_angle_deg, dce.tr_s, p.r1, m0_source, b1_side, counts)
    no_base = int(np.count_nonzero(res.status == 1))
    if ok.mean() < MIN_CONVERTED_FRACTION:
        raise ValueError(
            f"{sm.input.dce}: only {int(ok.sum())} of {ok.size} voxels give a concentration "
            f"({no_base} have a zero or non-finite baseline signal in the first {nb} phases "
            f"(acquisition.n_baseline); status counts {counts}): check the export (blank or "
            "missing first phases?) and acquisition.n_baseline")
    if no_base > ok.size // 2:
        log.warning("%d of %d voxels have a zero or non-finite baseline signal (NaN "
                    "concentration there)", no_base, ok.size)
    write_nifti(sm.output.status, res.status.astype(np.int8), dce.affine,
                {"Description": "voxel status of the signal-to-concentration conversion",
                 "Codes": {str(k): v for k, v in STATUS_CONC.items()}, "Sources": src})
    conc = res.conc_mM                                  # float32, filled in place
    conc[~ok] = np.nan
    side = {
        "Units": "mM", "Quantity": "contrast agent concentration (OSIPI: C)",
        "VolumeTiming": dce.t_s.tolist(), "FlipAngle": dce.flip_angle_deg,
        "RepetitionTime": dce.tr_s, "Relaxivity_per_mM_per_s": float(p.r1),
        "M0Source": m0_source, "BaselinePhases": nb, "T10Source": t1.sidecar.get("Source"),
        "VoxelStatusCounts": counts, **b1_side, "Sources": src,
        "Description": "NaN in voxels whose conversion failed (see the _concstatus map)"}
    if hasattr(sm.output, "conc"):         # outputs.keep_intermediates
        write_nifti(sm.output.conc, conc, dce.affine, side)
    else:
        write_sidecar(p.conc, side)
    return conc


def aif(dce: DynamicContents, t1: NiftiContents, log: Logger) -> None:
    """Write the AIF table, its QC record and voxel mask (outputs aif_*; the QC figure is
    drawn by the rule roi, from these files)."""
    policy = AIFPolicy.from_config(sm.params.aif)
    shape = dce.data.shape[:3]
    vfa_t10 = policy.blood_t10_s == "vfa" and t1.sidecar.get("Source") == "VFA"
    mask = spine = None
    if sm.input.aorta:                          # any ROI format (dce.io.rois): union
        aorta, notes = read_roi(sm.input.aorta[0], shape, dce.affine)
        mask = aorta > 0
        for note in notes:
            log.warning("%s", note)
        log.info("aorta mask %s: %d voxels", sm.input.aorta[0], int(mask.sum()))
    if policy.anterior_prior:
        spine = np.zeros(shape, dtype=bool)
        les = sm.params.lesions                 # ROI notes are logged by rule roi
        for path, sel in [(sm.input.lesion_roi, {"labels": les["labels"], "names": les["names"]}),
                          *[(m, {}) for m in sm.input.marrow_roi]]:
            spine |= read_roi(path, shape, dce.affine, **sel)[0] > 0
    try:
        choice = policy.select(
            dce.data, dce.t_s, tr_s=dce.tr_s, flip_angle_deg=dce.flip_angle_deg,
            r1_per_mM_per_s=float(sm.params.r1), n_baseline=int(sm.params.n_baseline),
            hematocrit=float(sm.params.hematocrit),
            field_strength_t=dce.sidecar.get("MagneticFieldStrength"),
            vfa_t10_s=t1.data if vfa_t10 else None,
            mask=mask, spine_mask=spine, affine=dce.affine)
    except ValueError as exc:                  # name the image the policy was applied to
        raise ValueError(f"{sm.input.dce}: {exc}") from None
    res, qc = choice.result, choice.qc
    src = derived_sources([sm.input.dce] + ([sm.output.t1] if policy.blood_t10_s == "vfa"
                                            else []), sm.config["results"])
    vox = res.voxel_mask(shape)
    write_tsv_columns(res.columns(), sm.output.aif_tsv)
    write_json({**qc, "Sources": src}, sm.output.aif_qc)
    write_nifti(sm.output.aif_voxels, vox, dce.affine,
                {"Description": "voxels averaged into the automatic AIF (1)",
                 "Source": qc["source"], "Sources": src})


def fit(conc: NDArray[np.float32], t_s: NDArray[np.float64], affine: NDArray[np.float64],
        log: Logger) -> None:
    """Write the parameter maps of the model (outputs named by ``params.fit_maps``)."""
    p, m = sm.params, sm.params.model
    # the AIF table as written (the values a rerun reads): columns t_s, cp_mM, ... ("n/a":
    # NaN); numpy's reader, the job needs no pandas
    aif = np.genfromtxt(sm.output.aif_tsv, delimiter="\t", names=True, dtype=float,
                        encoding="utf-8")
    if not np.allclose(aif["t_s"], t_s, atol=1e-3):
        raise ValueError(f"{sm.output.aif_tsv}: AIF times differ from the phase times of "
                         f"{sm.input.dce}")
    model = fitter_from_config(t_s, aif["cp_mM"], m, fit_delay=bool(p.fit_delay),
                               image_ndim=conc.ndim - 1)
    mask = np.all(np.isfinite(conc), axis=-1)
    maps = model.fit(conc, mask=mask).maps()
    counts = status_counts(maps["status"])
    log.info("%s (%s, fit_delay %s) on %d voxels: %s", m["name"], m["method"], p.fit_delay,
             int(mask.sum()), counts)
    side = {"Model": m["name"], "Method": m["method"], "FitDelay": bool(p.fit_delay),
            "AIF": "sub-..._aif.tsv (cp_mM)", "VoxelStatusCounts": counts,
            "FitPolicy": model.policy(),
            "Sources": derived_sources([p.conc, sm.output.aif_tsv], sm.config["results"])}
    for name in p.fit_maps:
        extra = {"Codes": status_codes()} if name == FIT_STATUS_MAP else {}
        write_map(getattr(sm.output, name), name, maps[output_map(name).column], affine,
                  {**side, **extra}, significant_bits=p.map_significant_bits)


# the concentration's sidecar (named by its image path), removed with the outputs on an error
with job(sm, extra_outputs=[sm.params.conc]) as log:
    image = read_dynamic(sm.input.dce)
    t1_maps(image, log)
    t1_written = read_nifti(sm.output.t1, require_sidecar=True)
    conc_mM = concentration(image, t1_written, log)
    aif(image, t1_written, log)
    fit(conc_mM, np.asarray(image.t_s, dtype=np.float64), image.affine, log)
