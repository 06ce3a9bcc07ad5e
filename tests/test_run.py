"""Tests of ``dce run`` (dce.run, dce.cli): options, validation messages, the Snakemake
command line it builds, and dry runs of the workflow.

Unit layer: option parsing and validation (exit code 2, one ``error: ...`` line, nothing
run), the argument list as Snakemake's own parser reads it, no Snakemake import by
``import dce``/``dce.cli``, the message of an install without the workflow files.
Workflow layer (marked): a dry run on a small hand-written cohort (the DAG only, nothing
executed), and a dry run on the shared run of the test cohort showing that ``dce run``
finds its per-session results up to date.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dce import run as dr
from dce.cli import main

REPO = Path(__file__).resolve().parents[1]


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_cohort(root: Path) -> tuple[Path, Path]:
    """Sheets of a 2-patient cohort whose files exist (empty DICOM folders, empty ROI
    files): enough for the workflow to plan its jobs, not to run them."""
    rows = []
    for subject, session, day in (("P01", "pre", -7), ("P01", "fu1", 90),
                                  ("P02", "pre", -3), ("P02", "fu1", 84)):
        (root / subject / session / "dicom").mkdir(parents=True)
        (root / subject / session / "lesion.nii.gz").touch()
        rows.append(f"{subject}\t{session}\t{day}\t{subject}/{session}/dicom\t"
                    f"{subject}/{session}/lesion.nii.gz")
    sessions = root / "sessions.tsv"
    sessions.write_text("subject\tsession\tdays_from_rt\tdicom_dir\tlesion_roi\n"
                        + "\n".join(rows) + "\n", encoding="utf-8")
    lesions = root / "lesions.tsv"
    lesions.write_text("subject\tlesion\tlevel\trecurrence\trecurrence_day\n"
                       "P01\t1\tL2\t0\t\nP02\t1\tT11\t1\t240\n", encoding="utf-8")
    return sessions, lesions


@pytest.fixture()
def sheets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    s, les = write_cohort(tmp_path / "cohort")
    return s.relative_to(tmp_path), les.relative_to(tmp_path)


def assert_one_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


# --------------------------------------------------------------------------- overrides


def test_overrides_nested_and_typed() -> None:
    cfg = dr.parse_overrides(["aif.mode=population", "acquisition.hematocrit=0.42",
                              "semiquant.iauc_windows_s=[60, 90]", "model.name=tofts",
                              "outputs.keep_intermediates=true", "cohort.cv_cutoff=null",
                              "aif.delay=fit"])
    assert cfg == {"aif": {"mode": "population", "delay": "fit"},
                   "acquisition": {"hematocrit": 0.42},
                   "semiquant": {"iauc_windows_s": [60, 90]}, "model": {"name": "tofts"},
                   "outputs": {"keep_intermediates": True}, "cohort": {"cv_cutoff": None}}
    assert isinstance(cfg["acquisition"]["hematocrit"], float)


@pytest.mark.parametrize(("entry", "message"), [
    ("aif.mode", "expected KEY=VALUE"),
    ("=3", "expected KEY=VALUE"),
    ("aif..mode=x", "is not a setting name"),
    ("1aif=x", "is not a setting name"),
    ("sessions=x.tsv", "use --sessions"),
    ("results=out", "use --out"),
    ("aif.mode=[unclosed", "not valid YAML"),
])
def test_bad_overrides(entry: str, message: str) -> None:
    with pytest.raises(dr.RunError, match=re.escape(message)):
        dr.parse_overrides([entry])


def test_override_given_twice_or_as_value_and_settings() -> None:
    with pytest.raises(dr.RunError, match="given twice"):
        dr.parse_overrides(["aif.mode=auto", "aif.mode=population"])
    with pytest.raises(dr.RunError, match="given a value and settings"):
        dr.parse_overrides(["aif=1", "aif.mode=population"])


def test_run_config_turns_the_demo_off() -> None:
    opts = dr.RunOptions(Path("c/sessions.tsv"), Path("c/lesions.tsv"), Path("out/"),
                         config=("demo.seed=3", "aif.mode=population"))
    cfg = dr.run_config(opts)
    assert cfg == {"sessions": "c/sessions.tsv", "lesions": "c/lesions.tsv",
                   "results": "out", "demo": {"seed": 3, "enabled": False},
                   "aif": {"mode": "population"}}
    with pytest.raises(dr.RunError, match="demo cohort is `make demo`"):
        dr.run_config(dr.RunOptions(Path("s"), Path("l"), Path("o"),
                                    config=("demo.enabled=true",)))


# --------------------------------------------------------------------------- profiles, install


def test_profiles(tmp_path: Path) -> None:
    assert dr.resolve_profile(None, REPO) == REPO / "profiles" / "default"
    assert dr.resolve_profile("slurm", REPO) == REPO / "profiles" / "slurm"
    own = tmp_path / "site"
    own.mkdir()
    (own / "config.yaml").write_text("executor: local\ncores: 3\n", encoding="utf-8")
    assert dr.resolve_profile(str(own), REPO) == own.resolve()
    dr.check_executor(own)
    with pytest.raises(dr.RunError, match=r"unknown profile: .*default, slurm"):
        dr.resolve_profile("slrum", REPO)
    with pytest.raises(dr.RunError, match="unknown profile"):
        dr.resolve_profile(str(tmp_path / "empty"), REPO)
    (own / "config.yaml").write_text("executor: nosuchcluster\n", encoding="utf-8")
    with pytest.raises(dr.RunError, match="snakemake-executor-plugin-nosuchcluster, which "
                                          "is not installed"):
        dr.check_executor(own)


def test_workflow_found_next_to_the_package(tmp_path: Path) -> None:
    assert dr.find_workflow() == REPO
    assert dr.find_workflow(REPO) == REPO
    with pytest.raises(dr.RunError, match="no Snakefile there"):
        dr.find_workflow(tmp_path)


def test_non_editable_install_says_what_is_missing(tmp_path: Path) -> None:
    """A copy of the package without the repository around it (what a non-editable
    install puts into site-packages)."""
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "dce", site / "dce",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = ("from dce.run import find_workflow, RunError\n"
            "try:\n    find_workflow()\nexcept RunError as e:\n    print(e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": ""}, cwd=tmp_path, check=True,
                         timeout=120)
    assert "not next to the installed package" in res.stdout
    assert "pip install -e ." in res.stdout and "--workflow" in res.stdout


def test_import_dce_needs_no_snakemake() -> None:
    code = ("import sys, dce, dce.cli; dce.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'snakemake'))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert res.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the command


def test_run_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--sessions", "--lesions", "--out", "--cores", "--profile", "--config",
                 "--configfile", "--dry-run", "--report", "--workflow", "Exit codes"):
        assert word in text
    with pytest.raises(SystemExit) as exc:
        main(["run", "--sessions", "s.tsv"])        # --lesions, --out missing
    assert exc.value.code == 2
    assert "the following arguments are required: --lesions, --out" in capsys.readouterr().err


def test_input_errors_exit_2_before_snakemake(sheets: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    s, les = sheets
    base = ["run", "--sessions", s, "--lesions", les, "--out", "results"]
    assert_one_error(*cli(capsys, "run", "--sessions", "nope.tsv", "--lesions", les,
                          "--out", "r")[::2], "--sessions nope.tsv: no such file")
    assert_one_error(*cli(capsys, "run", "--sessions", s, "--lesions", "cohort/l.tsv",
                          "--out", "r")[::2], "--lesions cohort/l.tsv: no such file")
    assert_one_error(*cli(capsys, *base, "--configfile", "study.yaml")[::2],
                     "--configfile study.yaml: no such file")
    assert_one_error(*cli(capsys, *base, "--config", "aif.mode")[::2],
                     "--config 'aif.mode': expected KEY=VALUE")
    assert_one_error(*cli(capsys, *base, "--config", "aiff.mode=auto")[::2],
                     "--config: unknown setting 'aiff'")
    assert_one_error(*cli(capsys, *base, "--profile", "slrum")[::2],
                     "--profile slrum: unknown profile")
    assert_one_error(*cli(capsys, *base, "forceall")[::2],
                     "unrecognized arguments: forceall (Snakemake arguments go after '--')")
    with pytest.raises(SystemExit) as exc:      # argparse's own message
        main([str(a) for a in (*base, "--unlock")])
    assert exc.value.code == 2
    assert "unrecognized arguments: --unlock" in capsys.readouterr().err
    (tmp_path / "afile").touch()
    assert_one_error(*cli(capsys, "run", "--sessions", s, "--lesions", les,
                          "--out", "afile")[::2], "--out afile: exists and is not a folder")
    assert not (tmp_path / "results").exists() and not (tmp_path / ".snakemake").exists()


def test_snakemake_reads_the_command_line(sheets: tuple[Path, Path], tmp_path: Path) -> None:
    """The argument list as Snakemake's own parser reads it (no workflow is run)."""
    s, les = sheets
    study = tmp_path / "study.yaml"
    study.write_text("aif: {mode: population}\n", encoding="utf-8")
    opts = dr.RunOptions(s, les, Path("results"), cores=3, configfiles=(study,),
                         config=("acquisition.hematocrit=0.42",), dry_run=True,
                         extra=("--forceall",))
    root, cfg = dr.prepare(opts)
    assert root == REPO
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    argv = dr.snakemake_argv(opts, root, run_yaml)
    from snakemake.cli import parse_args

    _, args = parse_args(argv)
    assert Path(args.snakefile) == REPO / "Snakefile"
    assert Path(args.directory) == tmp_path
    assert Path(args.workflow_profile) == REPO / "profiles" / "default"
    assert [Path(f) for f in args.configfile] == [REPO / "config" / "config.yaml", study,
                                                  run_yaml]
    assert args.cores == 3 and args.dryrun and args.forceall
    assert args.keep_going      # from the workflow profile
    loaded = yaml.safe_load(run_yaml.read_text(encoding="utf-8"))
    assert loaded["acquisition"] == {"hematocrit": 0.42}
    assert loaded["demo"] == {"enabled": False}
    report = dr.snakemake_argv(dr.RunOptions(s, les, Path("out"), report=True), root, run_yaml)
    assert report[-3:] == ["--report", "out/report.html", "--report-after-run"]


# --------------------------------------------------------------------------- dry runs


def job_counts(text: str) -> dict[str, int]:
    """The ``Job stats`` table of Snakemake's output: rule -> count."""
    block = text.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", block, re.MULTILINE)}


@pytest.mark.workflow
def test_dry_run_plans_the_cohort(sheets: tuple[Path, Path], tmp_path: Path,
                                  capfd: pytest.CaptureFixture[str]) -> None:
    s, les = sheets
    code = main(["run", "--sessions", str(s), "--lesions", str(les), "--out", "out",
                 "--cores", "2", "--dry-run", "--config", "aif.mode=population"])
    out, err = capfd.readouterr()
    assert code == 0, err[-3000:]
    jobs = job_counts(out + err)
    for rule in ("convert", "kinetics", "roi", "provenance"):
        assert jobs[rule] == 4, (rule, jobs)
    assert "demo_cohort" not in jobs
    assert jobs["cohort_table"] == 1
    assert not (tmp_path / "out").exists()     # a dry run writes no result


@pytest.mark.workflow
def test_dry_run_on_existing_results(run: Path, monkeypatch: pytest.MonkeyPatch,
                                     capfd: pytest.CaptureFixture[str]) -> None:
    """The shared run of the test cohort (demo sheets, plain Snakemake): ``dce run`` on its
    sheets and results folder plans no per-session job again (a dry run, so the shared
    results stay untouched)."""
    cfg = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    monkeypatch.chdir(run)
    code = main(["run", "--sessions", cfg["sessions"], "--lesions", cfg["lesions"],
                 "--out", cfg["results"], "--configfile", str(REPO / ".test/config/config.yaml"),
                 "--cores", "2", "--dry-run"])
    out, err = capfd.readouterr()
    assert code == 0, err[-3000:]
    text = out + err
    jobs = job_counts(text) if "Job stats:" in text else {}
    for rule in ("demo_cohort", "convert", "kinetics", "roi"):
        assert rule not in jobs, (rule, jobs)
