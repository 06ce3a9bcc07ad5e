"""Speed and memory of converting one DCE visit from DICOM to NIfTI (``convert_visit``).

A phantom session (:func:`dce.phantom.make_session`, seed 1) of 128 x 128 x 12 voxels
(1.8 x 1.8 x 5 mm) and 60 phases at 5 s is written as GE-style classic DICOM (one file
per slice and phase, InstanceNumber shuffled) together with a five-flip-angle VFA
series (one series per angle), into a fresh temporary folder.  Then
:func:`dce.io.convert.convert_visit` (discovery, validation, stacking of DCE and VFA,
two compressed NIfTI files with sidecars) runs in a freshly spawned Python process, so
that its peak resident memory is not inflated by the phantom generation.

Prints ``key=value`` lines:

* ``write_dicom_seconds``: writing all DICOM files (DCE + VFA);
* ``n_files``: number of DICOM files (``n_dce_files`` of them DCE);
* ``convert_seconds``: wall time of ``convert_visit`` (median of ``--repeats`` runs,
  each in a new process; files are in the page cache after writing);
* ``peak_rss_mb``: peak resident set size of the converting process (includes the
  interpreter and imported libraries, reported alone as ``baseline_rss_mb``);
* ``dce_array_mb``: size of the float32 4-D DCE array; ``nifti_mb``: output size;

Run: ``python benchmarks/bench_convert.py`` (``--matrix 64 64 12 --phases 20`` for a
quick check).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _rss_mb() -> float:
    """Peak resident set size of this process (MB).

    Linux: ``VmHWM`` of ``/proc/self/status`` (the address space's high-water mark, reset
    at exec; ``ru_maxrss`` of a spawned child may still hold the parent's size at fork).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


def _convert_child(dicom_dir: str, out_dir: str, queue: Any) -> None:
    from dce.io.convert import convert_visit

    baseline = _rss_mb()
    t0 = time.perf_counter()
    paths = convert_visit(dicom_dir, out_dir, subject="B1", session="pre", require_vfa=True)
    seconds = time.perf_counter() - t0
    queue.put({"seconds": seconds, "peak_rss_mb": _rss_mb(), "baseline_rss_mb": baseline,
               "nifti_bytes": sum(p.stat().st_size for p in paths.values())})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=int, nargs=3, default=[128, 128, 12])
    parser.add_argument("--phases", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from dce.io.dicom_write import write_series, write_vfa
    from dce.phantom import Acquisition, make_session

    acq = Acquisition(matrix=tuple(args.matrix), voxel_mm=(1.8, 1.8, 5.0),
                      n_phases=args.phases)
    t0 = time.perf_counter()
    s = make_session(seed=1, acquisition=acq)
    render = time.perf_counter() - t0
    assert s.vfa_signal is not None

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="dce_bench_convert_") as tmp:
        dicom = Path(tmp) / "dicom"
        ident: dict[str, Any] = {"patient_name": "BENCH^PHANTOM", "patient_id": "BENCH1",
                                 "tr_s": acq.tr_s, "te_s": acq.te_s, "vendor": "ge"}
        t0 = time.perf_counter()
        vfa_files = write_vfa(dicom, s.vfa_signal, s.vfa_flip_angles_deg, s.affine,
                              series_description="Sag VFA T1", series_number=3,
                              series_offset_s=60.0, **ident)   # acquired before the DCE
        dce_files = write_series(dicom, s.signal, s.t_s, s.affine,
                                 flip_angle_deg=acq.flip_angle_deg,
                                 series_description="Sag DCE LAVA", series_number=20,
                                 series_offset_s=300.0, **ident)
        write_s = time.perf_counter() - t0
        dicom_bytes = sum(p.stat().st_size for p in [*vfa_files, *dce_files])

        runs = []
        for r in range(args.repeats):
            queue = ctx.Queue()
            proc = ctx.Process(target=_convert_child,
                               args=(str(dicom), str(Path(tmp) / f"out{r}"), queue))
            proc.start()
            proc.join()
            if proc.exitcode != 0:
                raise SystemExit(f"conversion process failed with exit code {proc.exitcode}")
            runs.append(queue.get(timeout=60))

    print(f"shape={'x'.join(map(str, s.signal.shape))}")
    print(f"render_phantom_seconds={render:.3f}")
    print(f"write_dicom_seconds={write_s:.3f}")
    print(f"n_files={len(vfa_files) + len(dce_files)}")
    print(f"n_dce_files={len(dce_files)}")
    print(f"dicom_mb={dicom_bytes / 1e6:.1f}")
    print(f"dce_array_mb={s.signal.astype('float32').nbytes / 1e6:.1f}")
    print(f"convert_seconds={statistics.median(r['seconds'] for r in runs):.3f}")
    all_s = ",".join(f"{r['seconds']:.3f}" for r in runs)
    print(f"convert_seconds_all={all_s}")
    print(f"peak_rss_mb={max(r['peak_rss_mb'] for r in runs):.1f}")
    print(f"baseline_rss_mb={statistics.median(r['baseline_rss_mb'] for r in runs):.1f}")
    print(f"nifti_mb={runs[0]['nifti_bytes'] / 1e6:.1f}")


if __name__ == "__main__":
    main()
