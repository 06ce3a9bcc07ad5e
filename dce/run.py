"""``dce run``: the whole workflow on a cohort, without writing a Snakemake command.

Imported only by the ``run`` subcommand of :mod:`dce.cli` (``import dce`` and the rest of
the package stay free of Snakemake). The workflow files (``Snakefile``, ``workflow/``,
``config/``, ``profiles/``) are not part of the installed package: they are found next to
the package's folder, which is the repository for an editable install (``pip install -e
.``, as ``make demo`` does). From a non-editable install they are missing and ``dce run``
stops with a message saying so; ``--workflow <clone>`` names a repository checkout.

What a run is, in Snakemake terms (:func:`snakemake_argv`):

* working directory: the current directory (Snakemake keeps its ``.snakemake/`` records
  there; relative paths of the options are relative to it);
* configuration: ``<workflow>/config/config.yaml``, then each ``--configfile`` (e.g. a
  study preset), then the options of ``dce run`` (``sessions``, ``lesions``, ``results``,
  ``demo.enabled: false`` and each ``--config KEY=VALUE``), merged in that order (nested
  keys merge, later files win), the last as a YAML file in a temporary folder;
* profile: ``<workflow>/profiles/<name>`` (``default`` unless ``--profile``; or a folder
  or YAML file of your own) as Snakemake's ``--workflow-profile``.

Snakemake 9 reads profiles only on its command line, so the run goes through Snakemake's
own argument parser (:func:`snakemake.cli.parse_args`) and :func:`snakemake.cli.args_to_api`,
which drives :class:`snakemake.api.SnakemakeApi` (workflow -> DAG -> execution) exactly as
the ``snakemake`` command does: profiles, executor plugins, groups and resources behave
the same.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "RunError",
    "RunOptions",
    "find_workflow",
    "parse_overrides",
    "resolve_profile",
    "run_workflow",
    "snakemake_argv",
]

#: Configuration keys set by options of their own (not by ``--config``).
OPTION_KEYS = {"sessions": "--sessions", "lesions": "--lesions", "results": "--out"}
#: Executors built into Snakemake (no plugin to install).
BUILTIN_EXECUTORS = ("local", "dryrun", "touch")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RunError(ValueError):
    """Invalid ``dce run`` input (a missing file, a bad option): one line, exit code 2."""


@dataclass(frozen=True)
class RunOptions:
    """The options of ``dce run`` (paths as given, relative to the current directory)."""

    sessions: Path
    lesions: Path
    out: Path
    cores: int | None = None
    profile: str | None = None
    config: Sequence[str] = ()
    configfiles: Sequence[Path] = ()
    dry_run: bool = False
    report: bool = False
    workflow: Path | None = None
    extra: Sequence[str] = field(default_factory=tuple)


def find_workflow(workflow: Path | None = None) -> Path:
    """The folder holding the ``Snakefile`` (the repository of an editable install).

    Parameters
    ----------
    workflow : path, optional
        A repository checkout given by the user; default: the folder above the ``dce``
        package.

    Raises
    ------
    RunError
        No ``Snakefile`` there (e.g. a non-editable install: the workflow files are not
        installed with the package).
    """
    if workflow is not None:
        root = Path(workflow)
        if not (root / "Snakefile").is_file():
            raise RunError(f"--workflow {root}: no Snakefile there: give the folder of a "
                           "clone of the dce repository")
        return root.resolve()
    package = Path(__file__).resolve().parent
    root = package.parent
    if not (root / "Snakefile").is_file() or not (root / "workflow").is_dir():
        raise RunError(
            f"the workflow files (Snakefile, workflow/, config/, profiles/) are not next to "
            f"the installed package {package}: dce run needs a clone of the repository "
            "installed with `pip install -e .` (make demo does that), or --workflow "
            "<folder of a clone>")
    return root


def parse_overrides(entries: Sequence[str]) -> dict[str, Any]:
    """``--config`` entries ``KEY=VALUE`` as a nested configuration dictionary.

    ``KEY`` may name a nested setting with dots (``aif.mode=population``); ``VALUE`` is
    read as YAML (``0.4`` a number, ``false`` a boolean, ``[60, 90]`` a list, ``null``).

    Raises
    ------
    RunError
        An entry without ``=``, a malformed key, a value that is not YAML, a key that has
        an option of its own (``sessions``, ``lesions``, ``results``) or the same key twice.
    """
    import yaml

    out: dict[str, Any] = {}
    for entry in entries:
        key, sep, text = entry.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RunError(f"--config {entry!r}: expected KEY=VALUE, e.g. aif.mode=population "
                           "or acquisition.hematocrit=0.42")
        parts = key.split(".")
        if not all(_KEY.fullmatch(p) for p in parts):
            raise RunError(f"--config {entry!r}: the key {key!r} is not a setting name "
                           "(names separated by dots, e.g. aif.mode)")
        if parts[0] in OPTION_KEYS:
            raise RunError(f"--config {entry!r}: use {OPTION_KEYS[parts[0]]} to set "
                           f"{parts[0]!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise RunError(f"--config {entry!r}: the value is not valid YAML "
                           f"({str(exc).splitlines()[0]})") from None
        node = out
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise RunError(f"--config {entry!r}: {p!r} is given a value and settings")
            node = child
        if parts[-1] in node:
            raise RunError(f"--config {entry!r}: {key!r} is given twice")
        node[parts[-1]] = value
    return out


def _check_top_keys(overrides: dict[str, Any], root: Path) -> None:
    """Top-level keys of ``--config`` must be keys of the configuration schema (nested
    keys are checked by the workflow's own validation)."""
    import yaml

    schema = yaml.safe_load((root / "workflow" / "schemas" / "config.schema.yaml")
                            .read_text(encoding="utf-8"))
    known = sorted(schema.get("properties", {}))
    for key in overrides:
        if key not in known:
            raise RunError(f"--config: unknown setting {key!r} (settings: "
                           f"{', '.join(known)}; see config/README.md)")


def resolve_profile(profile: str | None, root: Path) -> Path:
    """The workflow profile folder or file: ``<root>/profiles/<name>`` for a name
    (default ``default``), else an existing folder with a ``config.yaml`` or a YAML file.

    Raises
    ------
    RunError
        Neither a profile of the workflow nor an existing profile folder or file.
    """
    name = profile or "default"
    shipped = sorted(p.name for p in (root / "profiles").iterdir()
                     if (p / "config.yaml").is_file()) if (root / "profiles").is_dir() else []
    if name in shipped:
        return root / "profiles" / name
    path = Path(name)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return path.resolve()
    if path.is_dir() and any((path / f).is_file() for f in ("config.yaml", "profile.yaml")):
        return path.resolve()
    raise RunError(f"--profile {name}: unknown profile: give one of the workflow's profiles "
                   f"({', '.join(shipped) or 'none found'}, in {root / 'profiles'}) or a folder "
                   "holding a config.yaml (Snakemake profile)")


def _profile_file(profile: Path) -> Path:
    if profile.is_file():
        return profile
    return next(profile / f for f in ("config.yaml", "profile.yaml")
                if (profile / f).is_file())


def check_executor(profile: Path) -> None:
    """The profile's executor (``executor:``) must be built in or have its plugin
    installed (``snakemake-executor-plugin-<name>``)."""
    import yaml

    settings = yaml.safe_load(_profile_file(profile).read_text(encoding="utf-8")) or {}
    executor = str(settings.get("executor") or "local")
    module = "snakemake_executor_plugin_" + executor.replace("-", "_")
    if executor not in BUILTIN_EXECUTORS and importlib.util.find_spec(module) is None:
        extra = ' (pip install -c constraints.txt -e ".[slurm]" in the repository)' \
            if executor == "slurm" else ""
        raise RunError(f"--profile {profile}: its executor {executor!r} needs the package "
                       f"snakemake-executor-plugin-{executor}, which is not installed{extra}")


def check_inputs(opts: RunOptions) -> None:
    """The sheets and configuration files exist and the core count is valid."""
    for option, path in (("--sessions", opts.sessions), ("--lesions", opts.lesions)):
        if not Path(path).is_file():
            raise RunError(f"{option} {path}: no such file (the {option[2:]} sheet, TSV; "
                           "see config/README.md)")
    for path in opts.configfiles:
        if not Path(path).is_file():
            raise RunError(f"--configfile {path}: no such file")
    if Path(opts.out).exists() and not Path(opts.out).is_dir():
        raise RunError(f"--out {opts.out}: exists and is not a folder")
    if opts.cores is not None and opts.cores < 1:
        raise RunError(f"--cores {opts.cores}: expected a positive integer")


def run_config(opts: RunOptions) -> dict[str, Any]:
    """The configuration ``dce run`` merges last: the sheets, the results folder, the demo
    off, and the ``--config`` overrides."""
    cfg: dict[str, Any] = {"sessions": str(opts.sessions), "lesions": str(opts.lesions),
                           "results": str(opts.out).rstrip("/") or "."}
    overrides = parse_overrides(opts.config)
    demo = overrides.pop("demo", {})
    if not isinstance(demo, dict):
        raise RunError("--config demo: give its settings, e.g. demo.enabled=false")
    if demo.get("enabled"):
        raise RunError("--config demo.enabled=true: dce run analyses the sheets given by "
                       "--sessions and --lesions; the demo cohort is `make demo`")
    cfg["demo"] = {**demo, "enabled": False}
    cfg.update(overrides)
    return cfg


def snakemake_argv(opts: RunOptions, root: Path, config_file: Path) -> list[str]:
    """The Snakemake command line (without the program name) of a run.

    ``config_file`` is the YAML file holding :func:`run_config` (written by the caller).
    """
    argv = ["--snakefile", str(root / "Snakefile"), "--directory", str(Path.cwd()),
            "--workflow-profile", str(resolve_profile(opts.profile, root)),
            "--configfile", str(root / "config" / "config.yaml"),
            *(str(Path(p).resolve()) for p in opts.configfiles), str(config_file)]
    if opts.cores is not None:
        argv += ["--cores", str(opts.cores)]
    if opts.dry_run:   # the table of jobs per rule, without each job's details
        argv += ["--dry-run", "--quiet", "rules"]
    elif opts.report:
        argv += ["--report", str(Path(opts.out) / "report.html"), "--report-after-run"]
    return argv + list(opts.extra)


def prepare(opts: RunOptions) -> tuple[Path, dict[str, Any]]:
    """Every check that needs no Snakemake: returns the workflow folder and the run's
    configuration (:func:`run_config`)."""
    root = find_workflow(opts.workflow)
    check_inputs(opts)
    cfg = run_config(opts)
    _check_top_keys({k: v for k, v in cfg.items() if k not in OPTION_KEYS}, root)
    check_executor(resolve_profile(opts.profile, root))
    return root, cfg


def run_workflow(opts: RunOptions) -> int:
    """Run (or dry-run) the workflow; returns the exit code (0 success, 1 failed run).

    Raises
    ------
    RunError
        Invalid input found before Snakemake starts (exit code 2 in :mod:`dce.cli`).
    """
    import yaml

    root, cfg = prepare(opts)
    print(f"dce run: workflow {root}; sessions {opts.sessions}, lesions {opts.lesions}, "
          f"results {cfg['results']}; profile {opts.profile or 'default'}"
          + (f"; configfiles {', '.join(map(str, opts.configfiles))}" if opts.configfiles
             else "") + ("; dry run" if opts.dry_run else ""), flush=True)
    with tempfile.TemporaryDirectory(prefix="dce-run-") as tmp:
        config_file = Path(tmp) / "dce_run.yaml"
        config_file.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        argv = snakemake_argv(opts, root, config_file)
        from snakemake.cli import args_to_api, parse_args

        try:
            parser, args = parse_args(argv)
            ok = args_to_api(args, parser)
        except SystemExit as exc:          # Snakemake's parser exits on its own errors
            return int(exc.code or 0) if isinstance(exc.code, int) else 1
    if not ok:
        print(f"dce run: Snakemake stopped with an error (above): a configuration or sheet "
              f"error stops it before any job runs; a failed job's log is under "
              f"{cfg['results']}/logs/ and the cohort analysis of the other sessions lists "
              f"it in {cfg['results']}/cohort/exclusions.tsv. Fix the input and run the same "
              "command again: finished jobs are kept.", file=sys.stderr)
        return 1
    return 0
