"""Traffic shapes: the requests of a cell whose workload is not one fixed prompt.

- ``kind: replay`` (runner/config/traces.py): one request per trace entry, due at its recorded
  offset divided by ``workload.speed``; full messages are sent as recorded, token counts
  become synthetic prompts (runner/config/synthetic.py). The leading ``hash_ids`` a request
  shares with any other request of the trace are sent as one text block, the rest as a
  second; with ``workload.cache_prefix: true`` the first carries ``cache_control`` (the
  breakpoint), so the provider's prompt cache hits wherever the prefix repeats.
- ``prompt.input_tokens`` / ``workload.output_tokens`` distributions (runner/config/lengths.py):
  one request per iteration with its drawn lengths (a synthetic prompt, ``max_tokens``).

Recorded sessions (entries with ``gap_s``, as ``latlab trace export`` writes them) are planned
one per session, due at the session's first call; engine/replay.py sends its calls in order,
each ``gap_s`` (divided by ``workload.speed``) after the previous one ended.

Each request's extra row columns (``session_id``, ``turn``, ``planned_input_tokens``,
``planned_output_tokens``) travel beside its spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from latlab.runner.config.lengths import cell_distributions, drawn_lengths
from latlab.runner.config.prompts import Prompt
from latlab.runner.config.synthetic import prefix_and_tail, seeded_text, shared_blocks
from latlab.runner.config.traces import TraceEntry, load_trace
from latlab.runner.core.bodies import body_json
from latlab.runner.core.protocol import RequestSpec

Fields = dict[str, Any]
CACHE_MARK = {"type": "ephemeral"}


def is_replay(workload: Mapping[str, Any]) -> bool:
    return str(workload.get("kind", "requests")) == "replay"


Calls = tuple[tuple[int, float], ...]  # a recorded session: (entry index, gap in s) per call


def session_groups(entries: tuple[TraceEntry, ...]) -> list[list[int]] | None:
    """Recorded sessions (entries with ``gap_s``): each session's entry indices in order, the
    sessions by their first call; None when the trace has no gaps (plain offsets)."""
    if all(e.gap_s is None for e in entries):
        return None
    groups: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(entry.session_id or f"#{i}", []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def replay_plan(workload: Mapping[str, Any]) -> list[tuple[int, Calls | None]]:
    """What a replay plans, at ``workload.speed``: (due offset in ns, None) per entry, or
    (the first call's offset, its calls with their gaps) per recorded session."""
    speed = float(workload.get("speed", 1.0))
    entries = load_trace(workload)
    groups = session_groups(entries)
    if groups is None:
        return [(round(e.offset_s / speed * 1e9), None) for e in entries]
    return [(round(entries[g[0]].offset_s / speed * 1e9),
             tuple((i, (entries[i].gap_s or 0.0) / speed) for i in g)) for g in groups]


def captured_body(workload: Mapping[str, Any], spec: RequestSpec) -> str | None:
    """``workload.capture_bodies``: the request, provider-neutral JSON, secrets masked."""
    if not workload.get("capture_bodies"):
        return None
    return body_json({"model": spec.model_id, "max_tokens": spec.max_tokens,
                      "system": spec.system, "tools": spec.extra_body.get("tools"),
                      "messages": spec.messages})


def synthetic_content(entry: TraceEntry, index: int, shared: int,
                      workload: Mapping[str, Any]) -> Any:
    """A user message of ``entry.input_tokens`` tokens: the blocks it shares with other
    requests (one text block, the cache breakpoint), then the rest."""
    prefix, tail = prefix_and_tail(int(workload.get("seed", 0)), index,
                                   int(entry.input_tokens or 1), entry.hash_ids,
                                   int(workload.get("block_tokens", 512)), shared)
    if not prefix:
        return tail
    blocks: list[dict[str, Any]] = [{"type": "text", "text": prefix}]
    if workload.get("cache_prefix"):
        blocks[0]["cache_control"] = dict(CACHE_MARK)
    if tail:
        blocks.append({"type": "text", "text": tail})
    return blocks


def entry_spec(base: RequestSpec, entry: TraceEntry, index: int, shared: int,
               workload: Mapping[str, Any]) -> RequestSpec:
    """The cell's request with the entry's messages (or synthetic prompt) and length."""
    if entry.messages is not None:
        messages = [dict(m) for m in entry.messages]
    else:
        content = synthetic_content(entry, index, shared, workload)
        messages = [{"role": "user", "content": content}]
    extra = {**base.extra_body, **({"tools": list(entry.tools)} if entry.tools else {})}
    return replace(base, messages=messages, max_tokens=entry.output_tokens or base.max_tokens,
                   system=entry.system if entry.messages is not None else base.system,
                   extra_body=extra)


def entry_fields(entry: TraceEntry) -> Fields:
    return {"session_id": entry.session_id, "turn": entry.turn,
            "planned_input_tokens": entry.input_tokens,
            "planned_output_tokens": entry.output_tokens}


def replay_requests(cfg: Mapping[str, Any], base: RequestSpec
                    ) -> tuple[list[Prompt], list[RequestSpec], list[Fields]]:
    workload = cfg["workload"]
    entries = load_trace(workload)
    shared = shared_blocks([e.hash_ids for e in entries])
    specs = [entry_spec(base, e, i, k, workload)
             for i, (e, k) in enumerate(zip(entries, shared, strict=True))]
    return [Prompt("")] * len(entries), specs, [entry_fields(e) for e in entries]


def drawn_requests(cfg: Mapping[str, Any], prompts: list[Prompt], base: RequestSpec
                   ) -> tuple[list[Prompt], list[RequestSpec], list[Fields]]:
    """One request per iteration with drawn lengths (the cell's prompt where none is drawn)."""
    inputs, outputs = cell_distributions(cfg)
    count, seed = int(cfg["workload"]["iterations"]), int(cfg["workload"].get("seed", 0))
    ins = drawn_lengths(inputs, count, seed, "input") if inputs else [None] * count
    outs = drawn_lengths(outputs, count, seed, "output") if outputs else [None] * count
    drawn_prompts = [Prompt(seeded_text(n, f"{seed}:input:{i}")) if n else prompts[0]
                     for i, n in enumerate(ins)]
    specs = [replace(base, messages=[{"role": "user", "content": p.text}],
                     max_tokens=out or base.max_tokens)
             for p, out in zip(drawn_prompts, outs, strict=True)]
    fields = [{"planned_input_tokens": n, "planned_output_tokens": out}
              for n, out in zip(ins, outs, strict=True)]
    return drawn_prompts, specs, fields


def shaped_requests(cfg: Mapping[str, Any], prompts: list[Prompt], specs: list[RequestSpec]
                    ) -> tuple[list[Prompt], list[RequestSpec], list[Fields]]:
    """The cell's prompts, specs and per-spec row fields, shaped by its workload."""
    if is_replay(cfg["workload"]):
        return replay_requests(cfg, specs[0])
    if any(cell_distributions(cfg)):
        return drawn_requests(cfg, prompts, specs[0])
    return prompts, specs, []


def check_traffic(cfg: Mapping[str, Any]) -> None:
    """Before anything is written: the trace reads, the length distributions parse."""
    if is_replay(cfg["workload"]):
        load_trace(cfg["workload"])
    cell_distributions(cfg)
