"""The command Ctrl-C prints to continue an interrupted run: shell-quoted and complete, so it
pastes back as printed (``latlab run``'s own flags included)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

RUN_FLAGS: list[str] = []  # ``latlab run``'s own flags (--experiments-dir DIR), set by the CLI


def resume_command(overrides: Sequence[str], run_id: str) -> str:
    """The command that continues run ``run_id``."""
    kept = [o for o in overrides if not o.startswith("resume=")]
    return shlex.join(["latlab", "run", *RUN_FLAGS, *kept, f"resume={run_id}"])
