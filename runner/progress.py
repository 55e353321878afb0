"""Live progress (completed/total, errors, running TTFT median) and the end-of-run tables."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runner.execute import RunStats

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
