"""Live progress (completed/total, errors, running TTFT median) and the end-of-run tables."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from latlab.runner.engine.execute import RunStats
from latlab.runner.engine.lag import (
    BLOCKED,
    BUSY_MACHINE,
    CPU_LIMIT_PCT,
    SATURATED,
    ClientLoad,
    diagnose,
)

console = Console(stderr=True)


def _status(stats: RunStats) -> str:
    median = stats.ttft_median()
    ttft = f"{median:.0f} ms" if median is not None else "–"
    return f"errors {stats.errors}  TTFT p50 {ttft}"


@contextlib.asynccontextmanager
async def live_progress(stats: RunStats, label: str) -> AsyncIterator[None]:
    """Show a progress bar refreshed from ``stats`` while the body runs."""
    progress = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                        console=console, transient=False)
    task = progress.add_task(label, total=stats.total, status=_status(stats))

    async def refresh() -> None:
        while True:
            progress.update(task, completed=stats.done, status=_status(stats))
            await asyncio.sleep(0.2)

    with progress:
        refresher = asyncio.create_task(refresh())
        try:
            yield
        finally:
            refresher.cancel()
            progress.update(task, completed=stats.done, status=_status(stats))


def _figure(value: float | None, unit: str) -> str:
    return "–" if value is None else f"{value:.1f}{unit}"


def client_warning(stats: RunStats, workers: int) -> str | None:
    """One line: how late the timings may be, which cause (engine/lag.py ``diagnose``), the
    figures that tell, and advice that fits that cause; None if the client kept time."""
    share = stats.late_sends / stats.done if stats.done else 0.0
    case = diagnose(stats.load, share, stats.limit_ms)
    if case is None:
        return None
    load = stats.load
    return (f"latlab: WARNING: timings may be inflated by up to "
            f"{_figure(load.loop_lag_p99_ms, ' ms')} at p99, {_figure(load.loop_lag_max_ms, ' ms')}"
            f" at worst (event-loop lag; send delay max {stats.send_delay_max_ms:.1f} ms); cause: "
            f"{CAUSES[case]}. {_machine(load)}. {stats.late} of {stats.done} rows client_late "
            f"(over {stats.limit_ms:g} ms; exclude with WHERE NOT client_late). "
            f"Advice: {_advice(case, stats.streams, workers)}")


CAUSES = {
    SATURATED: "the client was saturated (its CPU near a core)",
    BUSY_MACHINE: "the machine was busy with other processes",
    BLOCKED: "latlab's own code blocked its event loop (low CPU, idle machine)",
}


def _machine(load: ClientLoad) -> str:
    return (f"Client CPU {_figure(load.cpu_pct, '%')} of a core (saturated from "
            f"{CPU_LIMIT_PCT:.0f}%); its loop waited for a CPU {_figure(load.loop_wait_pct, '%')}"
            f" of the time; other processes kept {_figure(load.others_cores, '')} of "
            f"{load.cpus or '?'} CPUs busy (load average {_figure(load.loadavg, '')}, steal "
            f"{_figure(load.steal_pct, '%')})")


def _advice(case: str, streams: int, workers: int) -> str:
    if case == SATURATED and streams > workers:
        return (f"more load processes where a core is free (workload.workers={workers + 1}), "
                "or a lower concurrency/rate")
    if case == SATURATED:
        return "a lower rate, or a faster machine (one stream cannot be split across workers)"
    if case == BUSY_MACHINE:
        return ("rerun on a quieter machine or give the client a core of its own (taskset); "
                "more workers would not help: the CPUs are taken")
    return "report it with the output of bench/stall_probe.py (it shows what held the loop)"


def warn_if_client_bound(stats: RunStats, workers: int) -> None:
    """Print the client-bottleneck warning (stderr) at the end of a run."""
    warning = client_warning(stats, workers)
    if warning is not None:
        console.print(warning, style="bold red", markup=False, highlight=False,
                      soft_wrap=True)
