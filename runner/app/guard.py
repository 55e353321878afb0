"""Check a whole ``latlab run`` before Hydra writes anything: one line, exit 2, no files.

Hydra creates its job folder (``.hydra/config.yaml``, ``overrides.yaml``, ``hydra.yaml``)
before the task runs, so everything that can refuse a run is checked here first:

1. overrides: credentials (by key or value), bare words (``latlab run quickstart``);
2. Hydra's own settings: the launcher, the run/sweep folder (writable, not at ``/``);
3. every job of a multirun (all of them, up to ``MAX_JOBS``; beyond that each sweep value
   on its own), each composed, resolved (interpolations) and validated like the job would
   be: schema, rules, matrix cells, prompts, tasks, batch extras and the emulator profile.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from latlab.runner.config.compose import (
    cell_overrides,
    compose_plain,
    compose_with_hydra,
    hydra_initialised,
    is_hydra_key,
    keeps_search_path,
)
from latlab.runner.core.errors import ConfigError, LatlabError, ResultsError
from latlab.runner.core.paths import conf_dir

MAX_JOBS = 64  # a multirun with more jobs is checked one sweep value at a time
HYDRA_FLAGS = ("-m", "--multirun")


def check_run(overrides: Sequence[str]) -> list[Path]:
    """Every check that needs no network, for every job; ConfigError/ResultsError.
    Returns the folders the run will create (Hydra's, the results), for ``Footprint``."""
    from latlab.runner.config.validate import check_overrides_for_secrets

    check_overrides_for_secrets(overrides)
    if any(o.startswith("-") and o not in HYDRA_FLAGS for o in overrides):
        return []  # --cfg job, --help, --info ...: Hydra prints and runs nothing
    check_bare_words(overrides)
    user = [o for o in overrides if not o.startswith("-") and not is_hydra_key(o)]
    hydra = [o for o in overrides if is_hydra_key(o)]
    multirun = any(o in HYDRA_FLAGS for o in overrides)
    with hydra_initialised():
        folders = check_hydra_settings(user, hydra, multirun)
        search = search_path(hydra)
        for job in jobs_of(user):
            check_job(job + search)
    return folders


def check_run_or_refuse(overrides: Sequence[str]) -> list[Path]:
    """``check_run``; anything it did not foresee in a spec is refused as one line too (the
    traceback with ``LATLAB_DEBUG=1``), never a traceback before Hydra even starts."""
    try:
        return check_run(overrides)
    except (LatlabError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("LATLAB_DEBUG"):
            raise
        raise ConfigError(f"spec: cannot be checked ({type(exc).__name__}: "
                          f"{first_line(exc)[:200]}); LATLAB_DEBUG=1 shows where") from exc


def compose_checked(overrides: list[str]) -> dict[str, Any]:
    """The composed, resolved config as plain data; ConfigError with one line naming the key."""
    with compose_errors(overrides):
        return compose_plain(overrides)


@contextmanager
def compose_errors(overrides: Sequence[str] = ()) -> Iterator[None]:
    """Hydra's and OmegaConf's errors (and a config file's YAML error) as one line."""
    try:
        yield
    except Exception as exc:
        raise translated(exc, overrides) from exc


def translated(exc: Exception, overrides: Sequence[str] = ()) -> BaseException:
    """The one-line ConfigError ``exc`` means (KeyboardInterrupt if Ctrl-C caused it)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from latlab.runner.config.hydra_errors import one_line

    if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
        return KeyboardInterrupt()  # Ctrl-C inside Hydra's parser: not a bad spec
    if isinstance(exc, UnicodeDecodeError):
        chosen = [o for o in overrides if "=" in o and "." not in o.partition("=")[0]]
        return ConfigError(f"config file: a file selected by {', '.join(chosen) or 'the config'} "
                           f"is not UTF-8 ({exc.reason} at byte {exc.start}); save it as UTF-8")
    if isinstance(exc, OmegaConfBaseException):
        return ConfigError(interpolation_line(exc))
    if isinstance(exc, HydraException | ValueError):
        return ConfigError(with_hint(one_line(str(exc))))
    return ConfigError(f"config file: {first_line(exc)}")  # a YAML error, an unreadable file


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else type(exc).__name__


def interpolation_line(exc: Any) -> str:
    """An OmegaConf error (unresolvable ``${oc.env:X}`` / ``${a.b}``) naming the key."""
    key = getattr(exc, "full_key", None) or "config"
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{key}: {message} (fix the interpolation or set what it refers to)"


def hydra_folder(job: list[str], hydra: list[str], key: str) -> tuple[str, str]:
    """Hydra's run (or sweep) folder and ``results_dir`` for the job's overrides and Hydra's
    (composing with Hydra's own config checks its launcher and sweeper options too; the
    composition is kept for the job's own check)."""
    from omegaconf import OmegaConf

    with compose_errors(job + hydra):
        cfg = compose_with_hydra(job + hydra, job + search_path(hydra))
        return str(OmegaConf.select(cfg, key) or ""), str(cfg.get("results_dir"))


def search_path(hydra: list[str]) -> list[str]:
    """Of Hydra's settings, the ones every job composes with (the search path)."""
    return [o for o in hydra if keeps_search_path(o)]


def check_hydra_settings(user: list[str], hydra: list[str], multirun: bool) -> list[Path]:
    """Hydra's launcher/sweeper options exist and its output folder can be created;
    returns that folder and the results folder."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder, results_dir = hydra_folder(jobs_of(user)[0], hydra, key)
    folder = folder.strip()
    if not folder or Path(folder).resolve() == Path("/"):
        raise ConfigError(f"{key}: {folder!r} would put Hydra's folder at the filesystem root; "
                          "set results_dir (or hydra.run.dir) to a directory")
    results = Path(results_dir or ".")
    if "://" not in results_dir:
        check_creatable(results, "results_dir")
    check_creatable(Path(folder), key)
    return [Path(folder), results]


def check_creatable(folder: Path, key: str) -> None:
    """The folder exists as a writable directory, or its nearest existing parent is one:
    checked without creating anything."""
    probe = folder.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ResultsError(f"{key}: cannot create {folder} ({probe} is not a writable "
                           "directory); choose another directory")


def jobs_of(user: list[str]) -> list[list[str]]:
    """The override list of every job of a (multi)run: the product of the sweeps, or each
    sweep value on its own when the product is larger than ``MAX_JOBS``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with compose_errors():
        parsed = OverridesParser.create().parse_overrides(user)
    choices: list[list[str]] = []
    for override in parsed:
        key = override.get_key_element()
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() \
            else None
        choices.append([f"{key}={v}" for v in values] if values else [str(override.input_line)])
    total = 1
    for options in choices:
        total *= len(options)
    if total <= MAX_JOBS:
        return [list(combo) for combo in itertools.product(*choices)]
    firsts = [options[0] for options in choices]
    return [firsts] + [firsts[:i] + [alt] + firsts[i + 1:]
                       for i, options in enumerate(choices) for alt in options[1:]]


def check_job(overrides: list[str]) -> None:
    """Compose one job and run every check its run would, before any request."""
    from latlab.runner.app.run import RunContext, check_job_config

    cfg = compose_checked(overrides)
    kept = [o for o in overrides if keeps_search_path(o) or not is_hydra_key(o)]
    check_job_config(cfg, RunContext(cell_composer(kept), kept))


def cell_composer(base: list[str]) -> Any:
    """Compose one matrix cell (the job's overrides, the cell's axis values replacing theirs)."""
    def compose(cell: list[str]) -> dict[str, Any]:
        try:
            return compose_checked(cell_overrides(base, cell))
        except ConfigError as exc:
            raise ConfigError(f"matrix ({', '.join(cell)}): {exc}") from exc

    return compose


def with_hint(message: str) -> str:
    """``message`` plus the nearest valid spelling of an unknown key or group option."""
    option = re.match(r"^([\w/.-]+)=(\S+): no such option; available: (.*)$", message)
    if option:
        group, name, listed = option.groups()
        close = difflib.get_close_matches(name, listed.split(", "), n=1, cutoff=0.6)
        return f"{message}; did you mean {group}={close[0]}?" if close else message
    unknown = re.match(r"^([\w.-]+): unknown key", message)
    if unknown and unknown.group(1) in schema_keys():
        key = unknown.group(1)
        return f"{key}: not in this config by default; add it with +{key}=VALUE"
    if unknown:
        close = difflib.get_close_matches(unknown.group(1), known_keys(), n=1, cutoff=0.6)
        if close:
            return f"{unknown.group(1)}: unknown key; did you mean {close[0]}?"
    return message


@functools.cache
def known_keys() -> list[str]:
    """Every key path of the default config (``model``, ``workload.iterations`` ...)."""
    from latlab.runner.config.rules import walk

    cfg = compose_checked([])
    paths = {path.split("[")[0] for path, _ in walk(cfg)}
    return sorted(paths | {p.rsplit(".", i)[0] for p in paths for i in (1, 2) if "." in p})


@functools.cache
def schema_keys() -> set[str]:
    """Every key path the config schema knows (optional keys included)."""
    from latlab.runner.config.validate import config_schema

    schema = config_schema()
    keys: set[str] = set()

    def visit(node: dict[str, Any], path: str) -> None:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node
        for name, sub in node.get("properties", {}).items():
            keys.add(f"{path}{name}")
            if isinstance(sub, dict):
                visit(sub, f"{path}{name}.")

    visit(schema, "")
    return keys


def check_bare_words(overrides: Sequence[str]) -> None:
    """``latlab run quickstart``: a word that is no override and no flag."""
    for word in overrides:
        if word.startswith(("-", "~")) or "=" in word:
            continue
        hint = suggest_group_option(word)
        raise ConfigError(f"{word!r}: not an override (KEY=VALUE); {hint}")


def suggest_group_option(word: str) -> str:
    for group in ("experiment", "provider", "model", "prompt", "workload", "profile", "slo"):
        options = [p.stem for p in (conf_dir() / group).glob("*.yaml")]
        close = difflib.get_close_matches(word, options, n=1, cutoff=0.75)
        if close:
            return f"did you mean {group}={close[0]}?"
    return "e.g. experiment=quickstart or workload.iterations=5"



class Footprint:
    """What a refused run leaves behind, removed: Hydra's new job folders (its saved configs
    hold the overrides) and the folders created for them, unless some job started a run
    (a new ``runs/*.parquet``: its saved configs belong to its results)."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = [f.absolute() for f in folders]
        self.roots = [existing_ancestor(f.parent) for f in self.folders]
        self.before = {root: children(root) for root in self.roots}
        self.runs = self.run_records()
        self.existed = {p for f in self.folders for p in (f, *f.parents) if p.exists()}

    def run_records(self) -> set[Path]:
        return {p for f in self.folders[1:] for p in (f / "runs").glob("*.parquet")}

    def remove_if_refused(self) -> None:
        import shutil

        if self.run_records() - self.runs:
            return
        for root in self.roots:
            for new in children(root) - self.before[root]:
                if new.is_dir() and (new.resolve() in {f.resolve() for f in self.folders}
                                     or is_hydra_output(new)):
                    shutil.rmtree(new, ignore_errors=True)
        for folder in self.folders:
            prune_empty(folder, self.existed)


def existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def children(folder: Path) -> set[Path]:
    try:
        return set(folder.iterdir())
    except OSError:
        return set()


def is_hydra_output(folder: Path) -> bool:
    """A folder Hydra wrote for a run or a multirun (or the start of one)."""
    return any(folder.rglob(".hydra")) or (folder / "multirun.yaml").exists() \
        or not any(folder.iterdir())


def prune_empty(folder: Path, existed: set[Path]) -> None:
    """Remove ``folder`` and its parents while empty, stopping at one that existed before."""
    path = folder
    while path not in existed and path != path.parent:
        try:
            path.rmdir()
        except OSError:
            pass
        path = path.parent


def scrub_saved_configs(output_dir: Path) -> None:
    """Hydra's saved files of this job (``.hydra/*.yaml``, the sweep's ``multirun.yaml``)
    with every known secret redacted: a second line of defence behind the refusals above."""
    from latlab.runner.core.secrets import redact

    for path in [*output_dir.glob(".hydra/*.yaml"), output_dir.parent / "multirun.yaml"]:
        try:
            text = path.read_text(encoding="utf-8")
            clean = redact(text)
            if clean != text:
                path.write_text(clean or "", encoding="utf-8")
        except OSError:
            continue
