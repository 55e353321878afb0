"""What stalls ``latlab run``'s event loop? Run the CLI in this process with probes attached.

    python bench/stall_probe.py [--threshold-ms 5] [--out FILE] -- run provider=... (Hydra args)

Probes (nothing is mocked; the run is the real one):

- the run's lag ticker (runner/engine/lag.py) ticks every 1 ms instead of 10 ms, so every stall
  longer than ~1 ms shows with its instant;
- ``gc.callbacks`` times every collection (generation, duration, instant);
- a watchdog thread polls every 0.5 ms; when the loop's last tick is older than the
  threshold it takes ``sys._current_frames()`` once per stall: the loop thread's stack and
  every other thread's (a writer thread holding the GIL shows there).

At the end it prints the worst stalls, each with the collections and stacks that overlap it,
and writes everything to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import sys
import threading
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emulator_process import ROOT

sys.path.insert(0, str(ROOT))

from latlab.runner.engine import lag  # noqa: E402

TICK_S = 0.001
POLL_S = 0.0005
STACK_DEPTH = 14


@dataclass
class Stall:
    """One watchdog catch: when, how old the last tick was, and every thread's stack."""

    at_ns: int
    age_ms: float
    stacks: dict[str, list[str]]


@dataclass
class Series:
    """One thread's samples: instant, CPU ns on its own clock, and ns it was runnable but
    waiting for a CPU (other processes had the core: /proc/self/task/TID/schedstat).
    Arrays, not lists of objects: the probe gives the collector nothing to walk."""

    at: array[int] = field(default_factory=lambda: array("q"))
    cpu: array[int] = field(default_factory=lambda: array("q"))
    wait: array[int] = field(default_factory=lambda: array("q"))


def sample(series: dict[str, Series]) -> None:
    now = time.perf_counter_ns()
    for thread in threading.enumerate():
        if thread.ident is None or thread.native_id is None:
            continue
        try:
            cpu = time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))
            stat = Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text().split()
        except (OSError, ProcessLookupError):
            continue
        one = series.setdefault(thread.name, Series())
        one.at.append(now)
        one.cpu.append(cpu)
        one.wait.append(int(stat[1]))


@dataclass
class Probe:
    threshold_ms: float
    monitor: lag.LagMonitor | None = None
    gcs: list[tuple[int, float, int]] = field(default_factory=list)  # (end ns, ms, generation)
    stalls: list[Stall] = field(default_factory=list)
    samples: dict[str, Series] = field(default_factory=dict)
    census: list[list[tuple[str, int]]] = field(default_factory=list)
    _gc_start: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter_ns()
        if phase == "start":
            if info["generation"] == 2 and self.monitor is not None:
                self.census.append(census())
            self._gc_start = time.perf_counter_ns()
        else:
            self.gcs.append((now, (now - self._gc_start) / 1e6, int(info["generation"])))

    def watch(self, loop_thread: int) -> None:
        caught_tick = -1
        while not self._stop.wait(POLL_S):
            sample(self.samples)
            monitor = self.monitor
            if monitor is None or not monitor.ends_ns:
                continue
            ticks, last = len(monitor.ends_ns), monitor.ends_ns[-1]
            age_ms = (time.perf_counter_ns() - last) / 1e6 - TICK_S * 1e3
            if age_ms > self.threshold_ms and ticks != caught_tick:
                caught_tick = ticks
                self.stalls.append(Stall(time.perf_counter_ns(), age_ms, stacks(loop_thread)))


def census() -> list[tuple[str, int]]:
    """What a full collection walks: the commonest types in generation 2 (not frozen)."""
    return Counter(type(o).__name__ for o in gc.get_objects(2)).most_common(8)


def stacks(loop_thread: int) -> dict[str, list[str]]:
    names = {t.ident: t.name for t in threading.enumerate()}
    out = {}
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        label = ("LOOP " if ident == loop_thread else "") + names.get(ident, str(ident))
        out[label] = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}"
                      for f in traceback.extract_stack(frame)[-STACK_DEPTH:]]
    return out


def usage(samples: dict[str, Series], start: int, end: int) -> str:
    """CPU ms and runqueue-wait ms of each thread over [start, end] (nearest samples)."""
    parts = []
    for name, one in samples.items():
        i = max(0, bisect.bisect_right(one.at, start) - 1)
        j = min(len(one.at) - 1, bisect.bisect_left(one.at, end))
        if j > i:
            parts.append(f"{name} cpu {(one.cpu[j] - one.cpu[i]) / 1e6:.1f} "
                         f"wait {(one.wait[j] - one.wait[i]) / 1e6:.1f} "
                         f"over {(one.at[j] - one.at[i]) / 1e6:.1f}")
    return ", ".join(parts)


def attach(probe: Probe) -> None:
    lag.TICK_S = TICK_S
    original = lag.LagMonitor.running

    def running(self: lag.LagMonitor) -> Any:
        probe.monitor = self
        return original(self)

    lag.LagMonitor.running = running  # type: ignore[method-assign]
    gc.callbacks.append(probe.on_gc)


def report(probe: Probe, top: int) -> str:
    """The worst stalls, with the collections and watchdog stacks that overlap them."""
    monitor = probe.monitor
    if monitor is None:
        return "no lag monitor ran"
    ticks = sorted(zip(monitor.overshoot_ms, monitor.ends_ns, strict=True), reverse=True)[:top]
    lines = [f"ticks {len(monitor.ends_ns)}; gc runs {len(probe.gcs)} "
             f"(gen2 {sum(g == 2 for *_, g in probe.gcs)}, "
             f"max {max((ms for _, ms, _ in probe.gcs), default=0):.1f} ms); "
             f"watchdog catches {len(probe.stalls)}", f"gen2 census: {probe.census}",
             "whole run: " + usage(probe.samples, monitor.ends_ns[0], monitor.ends_ns[-1])]
    for over, end in ticks:
        start = end - int((over + TICK_S * 1e3) * 1e6)
        gcs = [f"gen{g} {ms:.1f}ms" for e, ms, g in probe.gcs if start <= e <= end]
        lines.append(f"- lag {over:.1f} ms at t={(end - monitor.ends_ns[0]) / 1e9:.3f}s "
                     f"gc: {gcs or '-'}; {usage(probe.samples, start, end)}")
        for stall in (s for s in probe.stalls if start <= s.at_ns <= end):
            for name, stack in stall.stacks.items():
                lines.append(f"    [{name}] " + " <- ".join(reversed(stack[-6:])))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold-ms", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", type=Path)
    parser.add_argument("cli", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    probe = Probe(args.threshold_ms)
    attach(probe)
    threading.Thread(target=probe.watch, args=(threading.get_ident(),), daemon=True).start()
    from latlab.runner.app.cli import main as latlab

    try:
        latlab([a for a in args.cli if a != "--"])
    except SystemExit:
        pass
    finally:
        probe._stop.set()
        sys.stdout.write(report(probe, args.top) + "\n")
        if args.out:
            m = probe.monitor
            args.out.write_text(json.dumps({
                "ticks": list(zip(m.ends_ns, m.overshoot_ms, strict=True)) if m else [],
                "gc": probe.gcs, "stalls": [asdict(s) for s in probe.stalls]}))


if __name__ == "__main__":
    main()
