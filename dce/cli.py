"""The ``dce`` command line: convert DICOM visits to NIfTI, write the demo cohort.

::

    dce convert <dicom_dir> <out_dir> [--subject S --session T] [--dce-pattern RE]
                [--vfa-pattern RE] [--b1-pattern RE] [--require-vfa]
    dce demo <out_dir> [--patients N] [--seed S] [--matrix X Y Z] [--phases N]
             [--vendors V ...]
    dce --version

A thin layer over :func:`dce.io.convert.convert_visit`, :func:`dce.phantom.make_cohort`
and :func:`dce.io.dicom_write.write_cohort_dicom`.  Errors in the input (bad DICOM,
invalid series, bad arguments) end with exit code 2 and one line
``error: <file, series or folder>: <problem>`` on stderr, without a traceback and
without partial output.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from dce import __version__

__all__ = ["main"]

_EPILOG_CONVERT = """\
Output files (in OUT_DIR):
  sub-<S>_ses-<T>_dce.nii.gz + .json   4-D DCE signal; sidecar with phase times
                                       (AcquisitionTimes_s), FA, TR, TE, field strength
  sub-<S>_ses-<T>_vfa.nii.gz + .json   variable-flip-angle volumes; FlipAngles_deg
                                       (when the visit has VFA series)
  sub-<S>_ses-<T>_B1map_raw.nii.gz + .json
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``dce`` command."""
    parser = _Parser(
        prog="dce",
        description="DCE-MRI pipeline for spinal bone lesions: DICOM conversion and the "
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
    return parser


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


def _cmd_demo(args: argparse.Namespace) -> int:
    from dce.io.dicom_write import write_cohort_dicom
    from dce.phantom import Acquisition, make_cohort

    acq = Acquisition()
    if args.matrix is not None:
        fov = [m * v for m, v in zip(acq.matrix, acq.voxel_mm, strict=True)]
        acq = replace(acq, matrix=tuple(args.matrix),
                      voxel_mm=tuple(round(f / m, 6) for f, m in zip(fov, args.matrix,
                                                                     strict=True)))
    if args.phases is not None:
        acq = replace(acq, n_phases=args.phases)
    cohort = make_cohort(args.patients, seed=args.seed, acquisition=acq)
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
        Exit code: 0 on success, 2 on invalid input or arguments.
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
