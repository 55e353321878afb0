"""Plan: expand the config's ``matrix`` into cells, and cells into planned requests.

A cell is one fully composed configuration (provider × model × prompt × guardrail ×
workload options). Its name lists every axis so cells from different runs (and from
Hydra multirun jobs) with the same settings share a name and can be compared.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from latlab.runner.core.errors import ConfigError
from latlab.runner.engine.traffic import is_replay, replay_plan

Composer = Callable[[list[str]], dict[str, Any]]


@dataclass(frozen=True)
class Cell:
    """One configuration of the matrix."""

    name: str
    config: dict[str, Any]
    axes: tuple[tuple[str, str], ...] = ()

    @property
    def workload(self) -> dict[str, Any]:
        return dict(self.config["workload"])


@dataclass(frozen=True)
class PlannedRequest:
    """One request to make: which cell, which iteration, warm-up or measured."""

    cell: Cell
    iteration: int
    warmup: bool
    offset_ns: int | None = None  # replay: due this long after the group's start
    calls: tuple[tuple[int, float], ...] | None = None  # replayed session: (entry, gap s) each


def cell_name(cfg: Mapping[str, Any], extra_axes: Sequence[tuple[str, str]] = ()) -> str:
    """``provider/model/prompt/guardrail/stream|block`` plus any other matrix axes."""
    mode = "stream" if cfg["workload"]["stream"] else "block"
    parts = [cfg["provider"]["name"], cfg["model"]["name"], cfg["prompt"]["name"],
             cfg["guardrail"]["name"], mode]
    parts += [f"{key.split('.')[-1]}={value}" for key, value in extra_axes
              if key not in ("workload.stream", "workload.task")]
    parts += kind_label(cfg["workload"])
    return "/".join(str(p) for p in parts)


def kind_label(workload: Mapping[str, Any]) -> list[str]:
    """The cell name's last part for workloads other than plain requests."""
    kind = str(workload.get("kind", "requests"))
    if kind == "requests":
        return []
    if kind == "replay":
        return [f"replay={PurePath(str(workload.get('trace'))).stem}"]
    if kind == "conversation":
        return [f"conversation={workload.get('turns')}"]
    return [f"{kind}={workload.get('task', 'simple')}"]  # agent sessions: the task


def flatten_matrix(matrix: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested axes (``++matrix.workload.stream=[..]`` gives ``{workload: {stream: [..]}}``)
    become dotted keys (``workload.stream``)."""
    flat: dict[str, Any] = {}
    for key, value in matrix.items():
        if isinstance(value, Mapping):
            flat.update(flatten_matrix(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def matrix_overrides(matrix: Mapping[str, Any]) -> list[list[tuple[str, str]]]:
    """Every combination of the matrix axes, as (key, value) pairs, in declaration order."""
    matrix = flatten_matrix(matrix)
    if not matrix:
        return [[]]
    keys = list(matrix)
    values = [[_override_value(v) for v in matrix[k]] for k in keys]
    return [list(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def _override_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _named_axes(combo: list[tuple[str, str]]) -> list[tuple[str, str]]:
    named = ("provider", "model", "prompt", "guardrail")
    return [(k, v) for k, v in combo if k not in named]


def excluded(combo: Sequence[tuple[str, str]], exclude: Sequence[Mapping[str, Any]]) -> bool:
    """True if some ``matrix_exclude`` entry matches ``combo`` on every axis it names.

    An entry's value is one value or a list of values (any of them matches).
    """
    values = dict(combo)
    for entry in exclude:
        flat = flatten_matrix(entry)
        if flat and all(values.get(axis) in _allowed(wanted) for axis, wanted in flat.items()):
            return True
    return False


def _allowed(wanted: Any) -> set[str]:
    items = wanted if isinstance(wanted, list | tuple) else [wanted]
    return {_override_value(v) for v in items}


def check_exclude(matrix: Mapping[str, Any], exclude: Sequence[Mapping[str, Any]]) -> None:
    """ConfigError naming a ``matrix_exclude`` axis that is not a ``matrix`` axis."""
    axes = set(flatten_matrix(matrix))
    for i, entry in enumerate(exclude):
        for axis in flatten_matrix(entry):
            if axis not in axes:
                raise ConfigError(f"matrix_exclude[{i}].{axis}: not a matrix axis "
                                  f"(axes: {', '.join(sorted(axes)) or 'none'})")


def matrix_combos(base: Mapping[str, Any]) -> list[list[tuple[str, str]]]:
    """The matrix's combinations minus those ``matrix_exclude`` names."""
    matrix, exclude = base.get("matrix") or {}, base.get("matrix_exclude") or []
    check_exclude(matrix, exclude)
    combos = [c for c in matrix_overrides(matrix) if not excluded(c, exclude)]
    if not combos:
        raise ConfigError("matrix_exclude: excludes every combination of the matrix")
    return combos


def expand_cells(base: dict[str, Any], compose: Composer) -> list[Cell]:
    """The run's cells: the base config alone, or one composed config per combination."""
    combos = matrix_combos(base)
    if combos == [[]]:
        return [Cell(cell_name(base), base)]
    cells = []
    for combo in combos:
        config = compose([f"{key}={value}" for key, value in combo])
        axes = _named_axes(combo)
        cells.append(Cell(cell_name(config, axes), config, tuple(combo)))
    return cells


def plan_requests(cells: Sequence[Cell], schedule: str) -> list[PlannedRequest]:
    """All requests in send order: warm-ups first, then measured ones.

    ``interleaved``: round-robin across cells (A B A B ...), so drift hits all alike.
    ``sequential``: every request of cell A, then of cell B.
    """
    per_cell = [_cell_requests(cell) for cell in cells]
    if schedule == "sequential":
        return [request for requests in per_cell for request in requests]
    warmups = _round_robin([[r for r in reqs if r.warmup] for reqs in per_cell])
    measured = _round_robin([[r for r in reqs if not r.warmup] for reqs in per_cell])
    return warmups + measured


def warmup_count(workload: Mapping[str, Any]) -> int:
    """Warm-up requests of a cell: ``warmup`` per stream in a closed loop (its C streams
    start together, so C connections are open before the first measured request; one
    warm-up would leave C − 1 streams to open theirs inside measured TTFTs), else ``warmup``."""
    warmup = int(workload["warmup"])
    return warmup if workload.get("rate") else warmup * int(workload.get("concurrency", 1))


def _cell_requests(cell: Cell) -> list[PlannedRequest]:
    workload = cell.workload
    if is_replay(workload):  # one request per trace entry, at its recorded time
        return [PlannedRequest(cell, i, False, offset, calls)
                for i, (offset, calls) in enumerate(replay_plan(workload))]
    warm = [PlannedRequest(cell, i, True) for i in range(warmup_count(workload))]
    measured = [PlannedRequest(cell, i, False) for i in range(int(workload["iterations"]))]
    return warm + measured


def _round_robin(lists: Sequence[Sequence[PlannedRequest]]) -> list[PlannedRequest]:
    merged: list[PlannedRequest] = []
    for group in itertools.zip_longest(*lists):
        merged.extend(r for r in group if r is not None)
    return merged
