"""``latlab statusline``: a one-line summary of an agent session for Claude Code's statusline.

Claude Code runs the statusline command with a JSON object on stdin (``session_id``,
``model``, …). The line shows the provider tag (``[D]`` direct API, ``[BR]`` Bedrock,
``[VX]`` Vertex), the model, the session's elapsed time, time in Bash/CLI/MCP tools and the
last TTFT, from latlab's spans of that session (matched by Claude Code's session id), else of
the latest session in the results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from latlab.analysis.query import open_results, render

SESSION_SQL = """
SELECT t.session_id, t.provider, t.model, t.total_ms, t.bash_ms, t.cli_ms, t.mcp_ms,
       t.file_ms, t.tool_ms, t.model_ms,
       (SELECT ttft_ms FROM spans m WHERE m.session_id = t.session_id AND m.kind = 'model_call'
          AND m.ttft_ms IS NOT NULL ORDER BY m.started_at DESC LIMIT 1) AS last_ttft_ms,
       (SELECT any_value(name) FROM spans m WHERE m.session_id = t.session_id
          AND m.kind = 'model_call') AS call_model
FROM session_times t JOIN spans s ON s.session_id = t.session_id AND s.kind = 'session'
WHERE $cli_id IS NULL OR t.session_id = $cli_id
   OR json_extract_string(s.attributes, '$.cli_session_id') = $cli_id
ORDER BY t.started_at DESC LIMIT 1
"""
# A session still running (latlab proxy): no session span yet, only its calls' spans.
LIVE_SQL = """
SELECT session_id, any_value(provider), any_value(model) FILTER (WHERE kind = 'model_call'),
       max(epoch_ms(started_at) + coalesce(duration_ms, 0)) - min(epoch_ms(started_at)),
       sum(duration_ms) FILTER (WHERE kind = 'tool_call' AND category = 'bash'),
       sum(duration_ms) FILTER (WHERE kind = 'tool_call' AND category = 'cli'),
       sum(duration_ms) FILTER (WHERE kind = 'tool_call' AND category = 'mcp'),
       sum(duration_ms) FILTER (WHERE kind = 'tool_call' AND category = 'file'),
       sum(duration_ms) FILTER (WHERE kind = 'tool_call'),
       sum(duration_ms) FILTER (WHERE kind = 'model_call'),
       arg_max(ttft_ms, started_at) FILTER (WHERE kind = 'model_call' AND ttft_ms IS NOT NULL),
       any_value(name) FILTER (WHERE kind = 'model_call')
FROM spans WHERE session_id = $cli_id GROUP BY session_id
"""
NEEDS = ("session_times", "spans")  # what SESSION_SQL and LIVE_SQL read
COLUMNS = ["session_id", "provider", "model", "total_ms", "bash_ms", "cli_ms", "mcp_ms",
           "file_ms", "tool_ms", "model_ms", "last_ttft_ms", "call_model"]


def provider_tag(provider: str | None, env: Mapping[str, str] | None = None) -> str:
    """``[BR]`` for Bedrock, ``[VX]`` for Vertex, else ``[D]`` (the direct API)."""
    name = (provider or "").lower()
    env = env or {}
    if "bedrock" in name or env.get("CLAUDE_CODE_USE_BEDROCK") == "1":
        return "[BR]"
    if "vertex" in name or env.get("CLAUDE_CODE_USE_VERTEX") == "1":
        return "[VX]"
    return "[D]"


def duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f}ms" if ms < 1000 else f"{ms / 1000:.1f}s"


def status_line(row: Mapping[str, Any], stdin_model: str | None,
                env: Mapping[str, str] | None = None) -> str:
    model = stdin_model or row.get("call_model") or row.get("model") or "?"
    parts = [f"{provider_tag(row.get('provider'), env)} {model}", duration(row.get("total_ms")),
             f"bash {duration(row.get('bash_ms'))}", f"cli {duration(row.get('cli_ms'))}",
             f"mcp {duration(row.get('mcp_ms'))}", f"TTFT {duration(row.get('last_ttft_ms'))}"]
    return " · ".join(parts)


def parse_stdin(text: str) -> tuple[str | None, str | None]:
    """(Claude Code's session id, model display name) from the statusline JSON, if any."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    model = data.get("model")
    name = model.get("display_name") or model.get("id") if isinstance(model, dict) else model
    return data.get("session_id"), str(name) if name else None


def statusline_command(results_dir: Path, stdin_text: str, fmt: str,
                       env: Mapping[str, str] | None = None) -> str:
    cli_id, model = parse_stdin(stdin_text)
    con = open_results(results_dir, needs=NEEDS)
    try:
        found = con.execute(SESSION_SQL, {"cli_id": cli_id}).fetchall()
        if not found and cli_id is not None:  # a session still running behind latlab proxy
            found = con.execute(LIVE_SQL, {"cli_id": cli_id}).fetchall()
        if not found and cli_id is not None:
            found = con.execute(SESSION_SQL, {"cli_id": None}).fetchall()
    finally:
        con.close()
    if not found:
        return f"{provider_tag(None, env)} {model or '?'} · no latlab session yet"
    row = dict(zip(COLUMNS, found[0], strict=True))
    if fmt == "table":
        return status_line(row, model, env)
    return render((COLUMNS, [found[0]]), fmt)
