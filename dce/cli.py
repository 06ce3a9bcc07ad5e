"""The ``dce`` command line: convert DICOM visits to NIfTI, T1 maps and concentrations
(with B1 correction), write the demo cohort.

::

    dce convert <dicom_dir> <out_dir> [--subject S --session T] [--dce-pattern RE]
                [--vfa-pattern RE] [--b1-pattern RE] [--require-vfa]
    dce t1map <vfa.nii.gz> <T1map.nii.gz> [--b1 B1.nii.gz] [--b1-units U] [--method M]
              [--flip-angles-deg A ...] [--tr-s TR]
    dce conc <dce.nii.gz> <conc.nii.gz> (--t1 T1map.nii.gz | --t10-s T) [--b1 B1.nii.gz]
             [--b1-units U] [--r1-per-mM-per-s R] [--n-baseline N] [--flip-angle-deg A]
             [--tr-s TR]
    dce demo <out_dir> [--patients N] [--seed S] [--matrix X Y Z] [--phases N]
             [--vendors V ...]
    dce run --sessions sessions.tsv --lesions lesions.tsv --out results/ [--cores N]
            [--profile P] [--config KEY=VALUE ...] [--configfile F ...] [--dry-run]
            [--report] [--workflow DIR] [-- SNAKEMAKE_ARGS ...]
    dce --version

A thin layer over :func:`dce.io.convert.convert_visit`, :class:`dce.t1.VFAModel`,
:func:`dce.signal.signal_to_concentration`, :func:`dce.io.b1.read_b1_map`,
:func:`dce.phantom.make_cohort` and :func:`dce.io.dicom_write.write_cohort_dicom`;
``dce run`` runs the Snakemake workflow (:mod:`dce.run`, imported only by that command:
the rest of the package needs no Snakemake).
Physical values are range-checked with unit hints (``--t10-s 1000``: "looks like ms;
T10 is in s").  Errors in the input (bad DICOM,
invalid series, bad arguments) end with exit code 2 and one line
``error: <file, series or folder>: <problem>`` on stderr, without a traceback and
without partial output; a ``dce run`` whose workflow fails ends with exit code 1.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dce import __version__
from dce._checks import check_flip_angle, check_relaxivity, check_t10, check_tr

__all__ = ["main"]

_EPILOG_CONVERT = """\
Output files (in OUT_DIR):
  sub-<S>_ses-<T>_dce.nii.gz + .json   4-D DCE signal; sidecar with phase times
                                       (VolumeTiming), FA, TR, TE, field strength
  sub-<S>_ses-<T>_vfa.nii.gz + .json   variable-flip-angle volumes; FlipAngles_deg
                                       (when the visit has VFA series)
  sub-<S>_ses-<T>_desc-raw_B1map.nii.gz + .json
                                       B1 map as stored, own grid; B1Convention
                                       (when the visit has a B1 map series)

Series are found from their headers (DCE: >= 2 phases, one flip angle; VFA:
single-phase series on the DCE grid with >= 2 flip angles; B1: B1/flip-angle map
ImageType or name); the --*-pattern options override that by SeriesDescription.
A visit without VFA converts with a WARNING on stderr (--require-vfa: error).
Invalid DICOM times and an inconsistent timeline are errors naming file, tag and
value; a documented fallback is printed as WARNING and kept in the sidecar
(TimingWarnings).

Without --subject/--session the IDs are taken from OUT_DIR when it ends in
sub-<S>/ses-<T> (the workflow layout, e.g. results/sub-P01/ses-pre).
No patient, institution, date, clock time or UID is written or printed.
Exit codes: 0 success, 2 invalid input (one-line 'error: ...' on stderr, no output).
"""

_EPILOG_DEMO = """\
Writes a deterministic synthetic cohort (same seed -> identical files):
  sessions.tsv, lesions.tsv, truth/*.tsv, <subject>/<session>/dicom/ (DCE + VFA series),
  <subject>/<session>/roi/*.nii.gz (lesion, marrow and tissue labels),
  <subject>/<session>/truth/ (true parameter maps and AIF).
--matrix keeps the default field of view (the voxel size changes with the matrix).
"""


class _Parser(argparse.ArgumentParser):
    """argparse with the ``error: ...`` one-liner (plus usage) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _checked(check: Callable[[float], object]) -> Callable[[str], float]:
    """argparse type: a number passed through a range check with a unit hint."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:
            check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
        return value

    return parse


_B1_HELP = ("B1 map NIfTI (any grid: matched in world coordinates; actual flip angle = "
            "B1 factor x nominal)")
_B1_UNITS_HELP = ("unit of the B1 map: auto (the map's sidecar B1Convention, else from the "
                  "value range), factor (1 = nominal), percent (100 = nominal), "
                  "siemens_tfl_b1map (value / 800); default auto")


def _add_b1_options(p: argparse.ArgumentParser) -> None:
    from dce.b1 import CONVENTIONS

    p.add_argument("--b1", type=Path, metavar="B1", help=_B1_HELP)
    p.add_argument("--b1-units", choices=CONVENTIONS, default="auto", help=_B1_UNITS_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``dce`` command."""
    parser = _Parser(
        prog="dce",
        description="DCE-MRI pipeline for spinal bone lesions: the whole workflow on a "
                    "cohort (run), DICOM conversion, T1 and concentration maps, and the "
                    "synthetic demo cohort.",
        epilog="Run 'dce <command> --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True,
                                parser_class=_Parser)

    conv = sub.add_parser(
        "convert", help="convert the DCE, VFA and B1 series of one visit to NIfTI + JSON",
        description=textwrap.fill(
            "Find the DCE series, the variable-flip-angle (VFA) series and a B1 map of "
            "one visit under DICOM_DIR (searched recursively) from their headers, "
            "validate them (complete slice x phase grid, no duplicates, valid DICOM times, "
            "a timeline consistent with TemporalPositionIdentifier / AcquisitionNumber / "
            "InstanceNumber, one flip angle and TR in the DCE series) and write NIfTI "
            "images with de-identified JSON sidecars.  Prints what it found.", 79),
        epilog=_EPILOG_CONVERT, formatter_class=argparse.RawDescriptionHelpFormatter)
    conv.add_argument("dicom_dir", type=Path, help="folder with the visit's DICOM files")
    conv.add_argument("out_dir", type=Path, help="output folder (created)")
    conv.add_argument("--subject", metavar="S", help="subject ID ([A-Za-z0-9]+)")
    conv.add_argument("--session", metavar="T", help="session ID ([A-Za-z0-9]+)")
    conv.add_argument("--dce-pattern", metavar="RE",
                      help="SeriesDescription regex of the DCE series (case-insensitive); "
                           "overrides the header detection")
    conv.add_argument("--vfa-pattern", metavar="RE",
                      help="SeriesDescription regex of the VFA series (one series with all "
                           "flip angles or one per angle); overrides the header detection")
    conv.add_argument("--b1-pattern", metavar="RE",
                      help="SeriesDescription regex of the B1 map series; overrides the "
                           "header detection")
    conv.add_argument("--require-vfa", action="store_true",
                      help="a visit without VFA series is an error (default: convert "
                           "without and warn, as the workflow does)")
    conv.add_argument("--no-vfa-ok", action="store_true",
                      help="accepted for old scripts: converting without VFA is the "
                           "default now")
    conv.set_defaults(func=_cmd_convert)

    t1 = sub.add_parser(
        "t1map", help="T1 (T10) and M0 maps from a VFA NIfTI, optionally B1-corrected",
        description=textwrap.fill(
            "Fit T1 and M0 in every voxel of a variable-flip-angle NIfTI (the last axis: "
            "flip angles; dce.t1.VFAModel). Flip angles and TR come from the sidecar "
            "(FlipAngles_deg, RepetitionTime) unless given. Writes the T1 map (s) and, "
            "next to it, the M0 map (..._M0map).", 79))
    t1.add_argument("vfa", type=Path, help="VFA NIfTI (4-D) with its JSON sidecar")
    t1.add_argument("out", type=Path, help="output T1 map (.nii.gz)")
    _add_b1_options(t1)
    t1.add_argument("--method", choices=["nonlinear", "linear"], default="nonlinear",
                    help="VFA fit (default nonlinear)")
    t1.add_argument("--flip-angles-deg", type=float, nargs="+", metavar="A",
                    help="nominal flip angles in degrees (default: sidecar; checked as a "
                         "list: all <= 1.6 is taken for radians)")
    t1.add_argument("--tr-s", type=_checked(check_tr), metavar="TR",
                    help="repetition time in s (default: sidecar)")
    t1.set_defaults(func=_cmd_t1map)

    cc = sub.add_parser(
        "conc", help="contrast agent concentration (mM) from a DCE NIfTI",
        description=textwrap.fill(
            "Convert the DCE signal to concentration with the SPGR equation "
            "(dce.signal.signal_to_concentration): M0 from the baseline phases and T10 (a "
            "T1 map or one value), actual flip angle = B1 factor x nominal with --b1. Flip "
            "angle and TR come from the sidecar unless given.", 79))
    cc.add_argument("dce", type=Path, help="DCE NIfTI (4-D) with its JSON sidecar")
    cc.add_argument("out", type=Path, help="output concentration (.nii.gz)")
    t10 = cc.add_mutually_exclusive_group(required=True)
    t10.add_argument("--t1", type=Path, metavar="T1MAP", help="T10 map NIfTI (s) on the DCE grid")
    t10.add_argument("--t10-s", type=_checked(check_t10), metavar="T",
                     help="one T10 in s for every voxel (e.g. 1.2, not 1200)")
    _add_b1_options(cc)
    cc.add_argument("--r1-per-mM-per-s", type=_checked(check_relaxivity), default=4.5,
                    metavar="R", help="relaxivity per mM per s (default 4.5)")
    cc.add_argument("--n-baseline", type=_positive, default=4, metavar="N",
                    help="leading pre-contrast phases (default 4)")
    cc.add_argument("--flip-angle-deg", type=_checked(check_flip_angle), metavar="A",
                    help="nominal flip angle in degrees (default: sidecar)")
    cc.add_argument("--tr-s", type=_checked(check_tr), metavar="TR",
                    help="repetition time in s (default: sidecar)")
    cc.set_defaults(func=_cmd_conc)

    demo = sub.add_parser(
        "demo", help="write the synthetic demo cohort as DICOM (+ ROIs and truth)",
        description=textwrap.fill(
            "Generate the synthetic spine DCE cohort (dce.phantom) and write it as DICOM in "
            "GE, Siemens, Philips or enhanced multi-frame style, with ROI label maps, cohort "
            "tables and the generator's truth.", 79),
        epilog=_EPILOG_DEMO, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("out_dir", type=Path, help="output folder (created)")
    demo.add_argument("--patients", type=_positive, default=10, metavar="N",
                      help="number of patients (default 10)")
    demo.add_argument("--seed", type=_non_negative, default=0, metavar="S",
                      help="cohort seed (default 0)")
    demo.add_argument("--matrix", type=_positive, nargs=3, metavar=("X", "Y", "Z"),
                      help="matrix: anterior-posterior, superior-inferior, slices "
                           "(default 96 96 10)")
    demo.add_argument("--phases", type=_positive, metavar="N",
                      help="number of dynamic phases, 5 s apart (default 60)")
    demo.add_argument("--vendors", nargs="+", metavar="V", default=["ge", "siemens", "philips"],
                      choices=["ge", "siemens", "philips", "enhanced"],
                      help="DICOM styles cycled over patients: ge, siemens, philips, "
                           "enhanced (default ge siemens philips)")
    demo.set_defaults(func=_cmd_demo)
    _add_run_parser(sub)
    return parser


_EPILOG_RUN = """\
Examples:
  dce run --sessions cohort/sessions.tsv --lesions cohort/lesions.tsv --out results
  dce run ... --dry-run                       # list the jobs, run nothing
  dce run ... --config aif.mode=population --config acquisition.hematocrit=0.42
  dce run ... --configfile study.yaml --profile slurm --report

Configuration, merged in this order (later wins, nested keys merge):
  <workflow>/config/config.yaml, each --configfile, then --sessions/--lesions/--out,
  demo.enabled=false and each --config KEY=VALUE (KEY with dots for nested settings,
  VALUE read as YAML). Every setting: config/README.md.
Profile: <workflow>/profiles/<P> (default: 'default'; 'slurm' submits jobs to SLURM,
  needs pip install -e ".[slurm]"), or a folder with a Snakemake profile config.yaml.
Work directory: the current folder (Snakemake keeps its .snakemake/ records there);
  relative paths are relative to it. Arguments after '--' go to Snakemake unchanged
  (e.g. -- --unlock after an interrupted run).
The workflow files are found next to the dce package (an editable install of a clone,
  pip install -e .); otherwise give --workflow <folder of a clone>.
Exit codes: 0 success, 1 the workflow failed (failed jobs' logs under <out>/logs/),
  2 invalid input (one 'error: ...' line; nothing was run).
"""


def _add_run_parser(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="run the whole workflow on a cohort (sheets -> results/, report)",
        description=textwrap.fill(
            "Run the DCE-MRI workflow (Snakemake) on the sessions and lesions of a cohort: "
            "conversion, T1 maps, concentration, AIF, model fit, ROI statistics of each "
            "session, then the cohort analysis, figures and tables. Finished jobs are "
            "kept: running the same command again redoes only what is missing or "
            "changed.", 79),
        epilog=_EPILOG_RUN, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--sessions", type=Path, required=True, metavar="TSV",
                     help="session sheet (workflow/schemas/sessions.schema.yaml)")
    run.add_argument("--lesions", type=Path, required=True, metavar="TSV",
                     help="lesion sheet (workflow/schemas/lesions.schema.yaml)")
    run.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="results folder (created; a BIDS derivatives dataset)")
    run.add_argument("--cores", type=_positive, metavar="N",
                     help="CPU cores to use at most (default: the profile's; the default "
                          "profile uses all)")
    run.add_argument("--profile", metavar="P",
                     help="workflow profile: default, slurm, or a profile folder "
                          "(default: default)")
    run.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                     help="override one setting, e.g. aif.mode=population (repeatable)")
    run.add_argument("--configfile", action="append", type=Path, default=[], metavar="F",
                     help="YAML file of settings merged over config/config.yaml, e.g. a "
                          "study preset (repeatable)")
    run.add_argument("-n", "--dry-run", action="store_true",
                     help="list the jobs that would run; run nothing")
    run.add_argument("--report", action="store_true",
                     help="after a successful run, write the HTML report <out>/report.html")
    run.add_argument("--workflow", type=Path, metavar="DIR",
                     help="folder of the workflow (a clone of the repository; default: the "
                          "one the dce package is installed from)")
    run.add_argument("snakemake_args", nargs=argparse.REMAINDER, metavar="-- ARGS",
                     help="further Snakemake arguments, after '--'")
    run.set_defaults(func=_cmd_run)


# --------------------------------------------------------------------------- commands


def _ids_from_path(out_dir: Path) -> tuple[str | None, str | None]:
    subject = session = None
    for part in out_dir.parts:
        if m := re.fullmatch(r"sub-([A-Za-z0-9]+)", part):
            subject = m.group(1)
        if m := re.fullmatch(r"ses-([A-Za-z0-9]+)", part):
            session = m.group(1)
    return subject, session


def _cmd_convert(args: argparse.Namespace) -> int:
    from dce.io.convert import convert_visit

    subject, session = args.subject, args.session
    if subject is None or session is None:
        sub_p, ses_p = _ids_from_path(args.out_dir)
        subject, session = subject or sub_p, session or ses_p
    if subject is None or session is None:
        raise ValueError(f"{args.out_dir}: cannot tell the subject and session: pass "
                         "--subject and --session, or use an output folder "
                         ".../sub-<S>/ses-<T>")
    if args.require_vfa and args.no_vfa_ok:
        raise ValueError("--require-vfa and --no-vfa-ok contradict each other")

    def report(line: str) -> None:
        if line.lstrip().startswith("WARNING"):
            print(line.strip(), file=sys.stderr)
        else:
            print(line)

    convert_visit(args.dicom_dir, args.out_dir, subject=subject, session=session,
                  dce_pattern=args.dce_pattern, vfa_pattern=args.vfa_pattern,
                  b1_pattern=args.b1_pattern, require_vfa=args.require_vfa,
                  report=report)
    return 0


def _b1_on_grid(args: argparse.Namespace, shape: tuple[int, ...], affine: Any
                ) -> tuple[Any, dict[str, Any]]:
    from dce.io.b1 import SessionB1, read_b1_map

    b1 = (SessionB1(factor=None) if args.b1 is None else
          read_b1_map(args.b1, shape, affine, convention=args.b1_units))
    if b1.factor is not None:
        print(f"B1: {args.b1} ({b1.convention}), median factor {b1.info['B1Median']:g}, "
              f"{b1.info['B1VoxelsOutsideMap']} voxels outside the map")
    return b1.factor, b1.sidecar()


def _cmd_t1map(args: argparse.Namespace) -> int:
    import numpy as np

    from dce.io.nifti import read_nifti, write_nifti
    from dce.t1 import STATUS_MEANINGS, VFAModel

    vfa = read_nifti(args.vfa, require_sidecar=args.flip_angles_deg is None
                     or args.tr_s is None)
    try:
        fas = args.flip_angles_deg or vfa.sidecar["FlipAngles_deg"]
        tr = args.tr_s if args.tr_s is not None else vfa.sidecar["RepetitionTime"]
    except KeyError as exc:
        raise ValueError(f"{args.vfa}: sidecar lacks {exc}: give --flip-angles-deg and "
                         "--tr-s") from None
    b1, b1_side = _b1_on_grid(args, vfa.data.shape[:3], vfa.affine)
    fit = VFAModel(fas, tr, method=args.method, b1=b1).fit(vfa.data)
    counts = {STATUS_MEANINGS[int(k)]: int(n)
              for k, n in zip(*np.unique(fit.status, return_counts=True), strict=True)}
    side = {"Source": "VFA", "Method": args.method, "FlipAngles_deg": [float(a) for a in fas],
            "RepetitionTime": float(tr), "VoxelStatusCounts": counts, "Units": "s",
            **b1_side, "B1Applied": b1 is not None}
    m0_path = Path(str(args.out).replace("T1map", "M0map")) if "T1map" in args.out.name \
        else args.out.with_name("M0map_" + args.out.name)
    write_nifti(m0_path, fit.m0.astype(np.float32), vfa.affine,
                {"Source": "VFA", "Units": "signal units"})
    write_nifti(args.out, fit.t1_s.astype(np.float32), vfa.affine, side)
    print(f"T1 map: {args.out} (M0: {m0_path}); voxels: {counts}")
    return 0


def _cmd_conc(args: argparse.Namespace) -> int:
    import numpy as np

    from dce.io.nifti import read_nifti, write_nifti
    from dce.signal import signal_to_concentration

    dce = read_nifti(args.dce, require_sidecar=args.flip_angle_deg is None or args.tr_s is None)
    try:
        fa = (args.flip_angle_deg if args.flip_angle_deg is not None
              else float(dce.sidecar["FlipAngle"]))
        tr = args.tr_s if args.tr_s is not None else float(dce.sidecar["RepetitionTime"])
    except KeyError as exc:
        raise ValueError(f"{args.dce}: sidecar lacks {exc}: give --flip-angle-deg and "
                         "--tr-s") from None
    shape = dce.data.shape[:3]
    if args.t1 is not None:
        t1 = read_nifti(args.t1)
        if t1.data.shape[:3] != shape or not np.allclose(t1.affine, dce.affine, atol=1e-3):
            raise ValueError(f"{args.t1}: the T1 map grid differs from the DCE grid of "
                             f"{args.dce}")
        t10: Any = np.asarray(t1.data, dtype=float)
    else:
        t10 = args.t10_s
    b1, b1_side = _b1_on_grid(args, shape, dce.affine)
    res = signal_to_concentration(dce.data, t10_s=t10, tr_s=tr, flip_angle_deg=fa,
                                  r1_per_mM_per_s=args.r1_per_mM_per_s,
                                  baseline=args.n_baseline, b1=b1)
    ok = res.status == 0
    conc = np.where(ok[..., None], res.conc_mM, np.nan).astype(np.float32)
    write_nifti(args.out, conc, dce.affine, {
        "Units": "mM", "FlipAngle": fa, "RepetitionTime": tr,
        "Relaxivity_per_mM_per_s": args.r1_per_mM_per_s, "BaselinePhases": args.n_baseline,
        "VoxelStatusCounts": res.status_counts(), **b1_side, "B1Applied": b1 is not None})
    print(f"concentration: {args.out}; voxels: {res.status_counts()}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from dce.io.dicom_write import write_cohort_dicom
    from dce.phantom import demo_cohort

    cohort = demo_cohort(args.patients, seed=args.seed, matrix=args.matrix,
                         n_phases=args.phases)
    acq = next(iter(cohort.specs.values())).acquisition
    n_sessions = len(cohort)
    print(f"demo cohort: {args.patients} patients, {n_sessions} sessions, seed {args.seed}; "
          f"matrix {' x '.join(map(str, acq.matrix))}, voxel "
          f"{' x '.join(f'{v:g}' for v in acq.voxel_mm)} mm, {acq.n_phases} phases "
          f"every {acq.dt_s:g} s")
    table = write_cohort_dicom(args.out_dir, cohort, vendors=args.vendors)
    out = Path(args.out_dir)
    for row in table.itertuples(index=False):
        print(f"  {row.subject} {row.session} (day {row.days_from_rt:g}, {row.vendor}): "
              f"{out / str(row.dicom_dir)}")
    print(f"wrote {out / 'sessions.tsv'}, {out / 'lesions.tsv'}, {out / 'truth'}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from dce.run import RunOptions, run_workflow

    extra = list(args.snakemake_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    elif extra:
        raise ValueError(f"unrecognized arguments: {' '.join(extra)} (Snakemake arguments go "
                         "after '--')")
    return run_workflow(RunOptions(
        sessions=args.sessions, lesions=args.lesions, out=args.out, cores=args.cores,
        profile=args.profile, config=tuple(args.config), configfiles=tuple(args.configfile),
        dry_run=args.dry_run, report=args.report, workflow=args.workflow, extra=tuple(extra)))


# --------------------------------------------------------------------------- entry point


def _one_line(exc: BaseException) -> str:
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dce`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit code: 0 on success, 2 on invalid input or arguments, 1 when the workflow of
        ``dce run`` fails.
    """
    from dce.io.dicom import DicomError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (DicomError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
