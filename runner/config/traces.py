"""Traces: recorded requests to replay open loop at their recorded times (``workload=replay``).

Two formats, one request per line (``workload.format: auto`` tells them apart by the first
line: ``input_length`` means Mooncake):

- latlab's JSONL. Time: ``offset_s`` (seconds after the trace's start) or ``timestamp``
  (seconds, any origin, or an ISO 8601 string). The prompt: ``messages`` (the Messages API's
  list, with optional ``system`` and ``tools``) or ``input_tokens`` (a synthetic prompt of
  that length). Optional: ``output_tokens`` (sent as max_tokens), ``hash_ids``,
  ``session_id``, ``turn``, ``model`` (kept for reference: the cell's model is sent), and
  ``gap_s``: the time from the end of the session's previous call to this one (the think
  and tool time of a recorded agent session; ``latlab trace export`` writes it).
- Mooncake (the FAST'25 traces): ``timestamp`` (ms), ``input_length``, ``output_length``,
  ``hash_ids`` (one per ``workload.block_tokens``-token block, 512 in Mooncake: equal ids
  are equal blocks, so requests sharing leading ids share a prompt prefix).

Entries are sorted by time; offsets start at 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from latlab.runner.core.errors import ConfigError
from latlab.runner.core.paths import conf_file

FORMATS = ("auto", "latlab", "mooncake")


@dataclass(frozen=True)
class TraceEntry:
    """One recorded request: when (after the trace's start) and what."""

    offset_s: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    messages: tuple[Any, ...] | None = None  # full Messages API messages (latlab format)
    system: Any = None
    tools: tuple[Any, ...] | None = None
    hash_ids: tuple[int, ...] = ()
    session_id: str | None = None
    turn: int | None = None
    gap_s: float | None = None  # sessions: sent this long after the session's previous call ended


def trace_file(path: str) -> Path:
    """``path`` in the working directory, else bundled in conf/workload/."""
    for candidate in (Path(path), conf_file("workload", path)):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"workload.trace: {path} not found (working directory or "
                      "conf/workload/); set workload.trace=FILE.jsonl")


def _seconds(value: Any) -> float:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"timestamp {value!r} is not a number or an ISO 8601 string")
    return float(value)


def _optional_int(item: Mapping[str, Any], key: str) -> int | None:
    return None if item.get(key) is None else int(item[key])


def latlab_entry(item: Mapping[str, Any]) -> TraceEntry:
    """One line of latlab's format (offset not yet relative to the first entry)."""
    if "offset_s" in item:
        offset = float(item["offset_s"])
    else:
        offset = _seconds(item["timestamp"])
    messages = item.get("messages")
    if messages is None and item.get("input_tokens") is None:
        raise ValueError("needs \"messages\" or \"input_tokens\"")
    tools = item.get("tools")
    return TraceEntry(offset, _optional_int(item, "input_tokens"),
                      _optional_int(item, "output_tokens") or _optional_int(item, "max_tokens"),
                      tuple(messages) if messages is not None else None, item.get("system"),
                      tuple(tools) if tools else None,
                      tuple(int(h) for h in item.get("hash_ids") or ()),
                      None if item.get("session_id") is None else str(item["session_id"]),
                      _optional_int(item, "turn"),
                      None if item.get("gap_s") is None else float(item["gap_s"]))


def mooncake_entry(item: Mapping[str, Any]) -> TraceEntry:
    """One line of a Mooncake trace (timestamp in ms)."""
    return TraceEntry(float(item["timestamp"]) / 1000, int(item["input_length"]),
                      int(item["output_length"]),
                      hash_ids=tuple(int(h) for h in item.get("hash_ids") or ()))


def _detect(first: Mapping[str, Any]) -> str:
    return "mooncake" if "input_length" in first else "latlab"


def parse_trace(lines: list[str], fmt: str, where: str) -> list[TraceEntry]:
    """The entries of a trace's lines, sorted by time, offsets from 0."""
    entries: list[TraceEntry] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
            fmt = _detect(item) if fmt == "auto" else fmt
            entries.append(mooncake_entry(item) if fmt == "mooncake" else latlab_entry(item))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"workload.trace: {where} line {number}: not a {fmt} trace "
                              f"entry ({exc}); see the README's trace format") from exc
    if not entries:
        raise ConfigError(f"workload.trace: {where} has no requests")
    return _from_zero(entries)


def _from_zero(entries: list[TraceEntry]) -> list[TraceEntry]:
    ordered = sorted(entries, key=lambda e: e.offset_s)
    start = ordered[0].offset_s
    return [replace(e, offset_s=e.offset_s - start) for e in ordered]


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"workload.format: unknown trace format {fmt!r}; "
                          f"use one of {', '.join(FORMATS)}")
    return fmt


@lru_cache(maxsize=8)
def _read(path: Path, mtime_ns: int, fmt: str, limit: int | None) -> tuple[TraceEntry, ...]:
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = parse_trace(lines, fmt, str(path))
    return tuple(entries[:limit] if limit else entries)


def load_trace(workload: Mapping[str, Any]) -> tuple[TraceEntry, ...]:
    """The replay workload's entries (``workload.limit``: only the first N); read once."""
    if not workload.get("trace"):
        raise ConfigError("workload.trace: missing; set workload.trace=FILE.jsonl")
    path = trace_file(str(workload["trace"]))
    fmt = check_format(str(workload.get("format", "auto")))
    limit = workload.get("limit")
    return _read(path, path.stat().st_mtime_ns, fmt, int(limit) if limit else None)
