"""Live progress (completed/total, errors, running TTFT median) and the end-of-run tables."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from latlab.runner.engine.execute import RunStats
from latlab.runner.engine.lag import CPU_LIMIT_PCT, client_bound

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
    """One line naming the figures and the fix, if the client was the bottleneck."""
    share = stats.late_sends / stats.done if stats.done else 0.0
    if not client_bound(stats.load, share, stats.limit_ms):
        return None
    load = stats.load
    return (f"latlab: WARNING: the client was the bottleneck (limit {stats.limit_ms:g} ms, "
            f"{CPU_LIMIT_PCT:.0f}% CPU): {stats.late} of {stats.done} rows client_late; "
            f"send delay > limit on {stats.late_sends} (max {stats.send_delay_max_ms:.2f} ms), "
            f"loop lag p99 {_figure(load.loop_lag_p99_ms, ' ms')} "
            f"(max {_figure(load.loop_lag_max_ms, ' ms')}), "
            f"client CPU {_figure(load.cpu_pct, '%')} of a core, workers={workers}; "
            f"fix: more workers (workload.workers={workers + 1}) or a lower rate/concurrency")


def warn_if_client_bound(stats: RunStats, workers: int) -> None:
    """Print the client-bottleneck warning (stderr) at the end of a run."""
    warning = client_warning(stats, workers)
    if warning is not None:
        console.print(warning, style="bold red", markup=False, highlight=False,
                      soft_wrap=True)
