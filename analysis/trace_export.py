"""``latlab trace export RUN_ID``: a run's recorded calls as a replayable trace (latlab's JSONL,
runner/config/traces.py), so a session recorded on one provider can be replayed on another.

The calls come from the rows' ``request_body`` (kept with ``workload.capture_bodies=true``),
measured rows only, in send order. Each line keeps the exact request (``model`` for reference,
``max_tokens``, ``system``, ``tools``, ``messages``), the session and its turn, ``offset_s``
(send time after the run's first call) and ``gap_s``: the time from the end of the session's
previous call to this one, where its tools and think time ran, so that a replay waits as long.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from latlab.analysis.query import known_run_ids, open_results
from latlab.runner.core.errors import ResultsError

CALLS_SQL = """
SELECT session_id, started_at, total_ms, request_body FROM measured
WHERE request_body IS NOT NULL ORDER BY started_at
"""


def trace_lines(rows: Sequence[tuple[str | None, datetime, float | None, str]]) -> list[str]:
    """One JSON line per call: the body, its session and turn, offset and gap."""
    start = rows[0][1]
    ends: dict[str, datetime] = {}
    turns: dict[str, int] = {}
    lines = []
    for session, started, total_ms, body in rows:
        key = session or ""
        entry: dict[str, Any] = {"offset_s": round((started - start).total_seconds(), 6),
                                 "session_id": session, "turn": turns.get(key, 0)}
        if key in ends:
            entry["gap_s"] = round(max((started - ends[key]).total_seconds(), 0.0), 6)
        entry.update(json.loads(body))
        lines.append(json.dumps(entry, ensure_ascii=False))
        turns[key] = turns.get(key, 0) + 1
        ends[key] = started + _ms(total_ms)
    return lines


def _ms(value: float | None) -> timedelta:
    return timedelta(milliseconds=value or 0.0)


def trace_export_command(results_dir: Path, run_id: str | None) -> str:
    """The trace of ``run_id`` (default: the latest run), one JSON line per call."""
    wanted = [run_id] if run_id else known_run_ids(results_dir)[-1:]
    con = open_results(results_dir, wanted or None, needs=["measured"])  # CALLS_SQL's view
    rows = con.execute(CALLS_SQL).fetchall()
    if not rows:
        raise ResultsError(f"run {wanted[0] if wanted else '?'}: no request bodies; record "
                           "it with workload.capture_bodies=true")
    return "\n".join(trace_lines(rows))
