"""The figures of ``bench/fidelity_run.py``, defined once for latlab's rows and every peer's.

Each tool's per-request output is first turned into ``Req`` records (latlab's Parquet rows in
``fidelity_run.py``, a peer's own export in ``peer_<name>.py``); ``score`` then computes the
same figures from them against the emulator's fixed schedule:

- TTFT error = TTFT − (``TTFT_MS`` + the emulator's median send lag of that run), over the
  measured (non-warm-up) successful requests: p50, p99, max; steady = the same without the
  requests that opened a connection;
- gap error = |gap − ``ITL_MS``| p99, per inter-token gap where the tool records each gap,
  else per request over its mean gap (``Req.gaps_ms`` is then ``None``; ``RunResult.gaps``
  says which);
- CPU µs/token = the client's process tree CPU (``CpuTrace``) from the first request's start
  to the last one's end, over the content tokens of the requests in that span;
- streams held = mean requests in flight between the first and the last measured start.
"""

from __future__ import annotations

import bisect
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

TTFB_MS, TTFT_MS, ITL_MS, TOKENS = 5.0, 150.0, 10.0, 50


@dataclass(frozen=True)
class Req:
    """One request as a tool recorded it (times in s since the epoch, durations in ms)."""

    start_s: float
    end_s: float
    ttft_ms: float | None  # None: no content token arrived (failed)
    gaps_ms: tuple[float, ...] | None  # every inter-token gap, or None if not recorded
    mean_gap_ms: float | None  # the per-request mean gap (for tools without per-gap times)
    tokens: int  # content tokens received
    ok: bool
    warmup: bool
    new_connection: bool


@dataclass(frozen=True)
class Peer:
    """A peer load tool: the command for one level, and how to read its per-request export.

    ``command(exe, base, level, waves, workdir, tokenizer)`` -> (argv, extra environment);
    ``read(workdir)`` -> its requests, warm-up included where it exports them.
    ``needs_accepts``: the export does not say which requests opened a connection, so the
    emulator's accept log decides (``mark_new_connections``).
    """

    name: str
    command: Callable[[str, str, int, int, Path, Path], tuple[list[str], dict[str, str]]]
    read: Callable[[Path], list[Req]]
    gaps: str  # "per gap" or what the tool gives instead
    needs_accepts: bool = False


@dataclass
class RunResult:
    """One tool's run at one level (times in ms)."""

    tool: str
    concurrency: int
    requests: int
    errors: int
    new_connections: int
    server_accepts: int  # connections the emulator accepted during the run (warm-up included)
    ttft_err_p50: float
    ttft_err_p99: float
    ttft_err_max: float
    steady_n: int
    steady_err_p50: float
    steady_err_p99: float
    steady_err_max: float
    gap_err_p99: float
    gaps: str
    cpu_us_per_token: float
    loop_lag_p99: float
    loop_lag_max: float
    streams_held: float
    server_lag_p50: float
    server_lag_p99: float
    loadavg: str
    wall_s: float


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ------------------------------------------------------------------------------ client CPU


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def tree_cpu_seconds(pid: int) -> float:
    """utime+stime+cutime+cstime of ``pid`` and every live descendant (``/proc``, Linux):
    worker processes count while they run, and through their parent's cutime once reaped."""
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    todo = [pid]
    while todo:
        one = todo.pop()
        try:
            fields = _stat_fields(one)
            todo.extend(_children(one))
        except (OSError, IndexError):
            if one == pid:
                raise
            continue
        total += sum(int(f) for f in fields[11:15])
    return total / tick


@dataclass
class CpuTrace:
    """(wall-clock s, CPU s) samples of one process tree, taken by a thread while it runs."""

    pid: int
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    def sample(self) -> bool:
        try:
            cpu = tree_cpu_seconds(self.pid)
        except (OSError, IndexError, ValueError):
            return False
        self.walls.append(time.time())
        self.cpus.append(cpu)
        return True

    def at(self, wall: float) -> float:
        """CPU seconds at ``wall``, linearly interpolated between samples."""
        i = bisect.bisect_left(self.walls, wall)
        if i <= 0:
            return self.cpus[0]
        if i >= len(self.walls):
            return self.cpus[-1]
        w0, w1, c0, c1 = self.walls[i - 1], self.walls[i], self.cpus[i - 1], self.cpus[i]
        return c0 + (c1 - c0) * (wall - w0) / (w1 - w0) if w1 > w0 else c1


def cpu_per_token(reqs: Sequence[Req], trace: CpuTrace) -> float:
    """Client CPU µs per content token, over the span its requests were in flight."""
    lo, hi = min(r.start_s for r in reqs), max(r.end_s for r in reqs)
    streamed = sum(r.tokens for r in reqs if r.ok)
    return (trace.at(hi) - trace.at(lo)) * 1e6 / max(streamed, 1)


# ----------------------------------------------------------------------------- connections


def read_accepts(path: Path) -> list[float]:
    """The accept times (epoch s) ``bench/emulator_accepts.py`` logged."""
    return [float(line) for line in path.read_text().split()]


def mark_new_connections(reqs: Sequence[Req], accepts: Sequence[float]) -> list[Req]:
    """For tools that do not record it: each connection the emulator accepted (epoch s) was
    opened by the latest request started before it that is not already marked."""
    order = sorted(range(len(reqs)), key=lambda i: reqs[i].start_s)
    starts = [reqs[i].start_s for i in order]
    marked: set[int] = set()
    for accepted in sorted(accepts):
        j = bisect.bisect_right(starts, accepted) - 1
        while j >= 0 and order[j] in marked:
            j -= 1
        if j >= 0:
            marked.add(order[j])
    return [replace(r, new_connection=i in marked) for i, r in enumerate(reqs)]


# -------------------------------------------------------------------------------- figures


def streams_held(reqs: Sequence[Req]) -> float:
    """Mean requests in flight between the first and the last measured start."""
    measured = [r.start_s for r in reqs if not r.warmup]
    lo, hi = min(measured), max(measured)
    if hi <= lo:
        return float(len(measured))
    inside = sum(max(0.0, min(r.end_s, hi) - max(r.start_s, lo)) for r in reqs)
    return inside / (hi - lo)


def _gap_errors(ok: Sequence[Req]) -> list[float]:
    if all(r.gaps_ms is not None for r in ok):
        return [abs(g - ITL_MS) for r in ok for g in r.gaps_ms or ()]
    return [abs(r.mean_gap_ms - ITL_MS) for r in ok if r.mean_gap_ms is not None]


@dataclass(frozen=True)
class Context:
    """What a run's figures need besides its requests."""

    tool: str
    level: int
    gaps: str
    server: dict[str, Any]  # the emulator's /_latlab/stats after the run
    loop_lag: tuple[float, float] = (math.nan, math.nan)  # p99, max (latlab's run record)
    wall_s: float = math.nan
    accepts: int = 0  # connections the emulator accepted during the run


def score(reqs: Sequence[Req], trace: CpuTrace, ctx: Context) -> RunResult:
    """Every figure of one run, from its requests (warm-up included) and its CPU trace."""
    measured = [r for r in reqs if not r.warmup]
    ok = [r for r in measured if r.ok and r.ttft_ms is not None]
    lag = ctx.server["lag_ms_by_event"].get("chunk", {})
    lag_p50 = float(lag.get("p50") or 0.0)
    errs = [(r.ttft_ms or 0.0) - TTFT_MS - lag_p50 for r in ok]
    steady = [(r.ttft_ms or 0.0) - TTFT_MS - lag_p50 for r in ok if not r.new_connection]
    return RunResult(
        tool=ctx.tool, concurrency=ctx.level, requests=len(measured),
        errors=len(measured) - len(ok),
        new_connections=sum(r.new_connection for r in measured), server_accepts=ctx.accepts,
        ttft_err_p50=quantile(errs, 0.5), ttft_err_p99=quantile(errs, 0.99),
        ttft_err_max=max(errs, default=math.nan), steady_n=len(steady),
        steady_err_p50=quantile(steady, 0.5), steady_err_p99=quantile(steady, 0.99),
        steady_err_max=max(steady, default=math.nan),
        gap_err_p99=quantile(_gap_errors(ok), 0.99), gaps=ctx.gaps,
        cpu_us_per_token=cpu_per_token(reqs, trace),
        loop_lag_p99=ctx.loop_lag[0], loop_lag_max=ctx.loop_lag[1],
        streams_held=streams_held(reqs), server_lag_p50=lag_p50,
        server_lag_p99=float(lag.get("p99") or 0.0), loadavg=loadavg(), wall_s=ctx.wall_s)


# ---------------------------------------------------------------------------------- tables

COLUMNS = [("tool", "{}"), ("concurrency", "{}"), ("requests", "{}"), ("errors", "{}"),
           ("new_connections", "{}"), ("server_accepts", "{}"), ("ttft_err_p50", "{:+.2f}"),
           ("ttft_err_p99", "{:+.2f}"),
           ("ttft_err_max", "{:+.2f}"), ("steady_err_p50", "{:+.2f}"),
           ("steady_err_p99", "{:+.2f}"), ("steady_err_max", "{:+.2f}"),
           ("gap_err_p99", "{:.2f}"), ("gaps", "{}"), ("cpu_us_per_token", "{:.1f}"),
           ("loop_lag_p99", "{:.1f}"), ("loop_lag_max", "{:.1f}"), ("streams_held", "{:.1f}"),
           ("server_lag_p50", "{:.2f}"), ("server_lag_p99", "{:.2f}"), ("loadavg", "{}")]


def cell(value: Any, fmt: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return fmt.format(value)


def table(results: Sequence[RunResult]) -> str:
    """A Markdown table, one line per run."""
    head = "| " + " | ".join(name for name, _ in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    lines = ["| " + " | ".join(cell(getattr(r, name), fmt) for name, fmt in COLUMNS) + " |"
             for r in results]
    return "\n".join([head, rule, *lines])


def medians(results: Sequence[RunResult]) -> list[RunResult]:
    """Per (tool, level): the median of each figure over the repeats."""
    keys = sorted({(r.tool, r.concurrency) for r in results}, key=lambda k: (k[1], k[0]))
    out = []
    for tool, level in keys:
        group = [r for r in results if (r.tool, r.concurrency) == (tool, level)]
        fields = {k: statistics.median(getattr(r, k) for r in group)
                  for k, v in asdict(group[0]).items() if isinstance(v, int | float)}
        out.append(RunResult(**{**asdict(group[0]), **fields, "loadavg": group[-1].loadavg}))
    return out


def goal(results: Sequence[RunResult], ours: str = "latlab") -> list[str]:
    """Issue 18's goal per level: ``ours``' TTFT error p99 no worse than the best peer's, and
    its CPU per token at most a quarter of the best peer's (one line per level with peers)."""
    lines = []
    for level in sorted({r.concurrency for r in results}):
        mine = [r for r in results if r.concurrency == level and r.tool == ours]
        peers = [r for r in results if r.concurrency == level and r.tool != ours]
        if mine and peers:
            lines.append(f"{level} streams: " + _against(mine[0], peers))
    return lines


def _against(mine: RunResult, peers: Sequence[RunResult]) -> str:
    p99 = min(peers, key=lambda r: r.ttft_err_p99)
    cpu = min(peers, key=lambda r: r.cpu_us_per_token)
    ratio = mine.cpu_us_per_token / cpu.cpu_us_per_token
    return (f"TTFT err p99 {mine.ttft_err_p99:+.2f} vs best peer {p99.tool} "
            f"{p99.ttft_err_p99:+.2f} ({_met(mine.ttft_err_p99 <= p99.ttft_err_p99)}); "
            f"CPU {mine.cpu_us_per_token:.1f} vs best peer {cpu.tool} "
            f"{cpu.cpu_us_per_token:.1f} µs/token = {ratio:.2f}x ({_met(ratio <= 0.25)}: <= 0.25x)")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"
