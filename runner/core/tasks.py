"""Agent tasks (conf/tasks/NAME.yaml): the prompt, files seeded into the work directory, and
the emulator's script (which tools each turn calls, so a session on the emulator is
reproducible). The prompt carries markers the emulator reads: ``[latlab-task: NAME]`` and
``[latlab-workdir: DIR]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from latlab.runner.core.errors import ConfigError
from latlab.runner.core.paths import conf_dir, conf_file

TASK_MARKER = re.compile(r"\[latlab-task: ([A-Za-z0-9_.-]+)\]")
WORKDIR_MARKER = re.compile(r"\[latlab-workdir: ([^\]]+)\]")
LOGICAL_TOOLS = ("bash", "read", "write", "edit", "mcp")


@dataclass(frozen=True)
class Task:
    name: str
    prompt: str
    files: dict[str, str] = field(default_factory=dict)
    script: list[list[dict[str, Any]]] = field(default_factory=list)
    final: str = "Done."

    def render_prompt(self, workdir: Path) -> str:
        """The user message: the task's prompt and the markers for the emulator."""
        return f"{self.prompt}\n\n[latlab-task: {self.name}] [latlab-workdir: {workdir}]"

    def seed(self, workdir: Path) -> None:
        for relative, text in self.files.items():
            path = workdir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

    @property
    def tool_calls(self) -> int:
        return sum(len(turn) for turn in self.script)


def _task_text(name: str) -> str:
    bundled = conf_file("tasks", f"{name}.yaml")
    if bundled.is_file():
        return bundled.read_text(encoding="utf-8")
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path.read_text(encoding="utf-8")
    raise ConfigError(f"workload.task: no task named {name!r} (conf/tasks/*.yaml: "
                      f"{', '.join(known_tasks())}) and no such YAML file")


def known_tasks() -> list[str]:
    folder = conf_dir() / "tasks"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


@cache
def load_task(name: str) -> Task:
    """The task ``name`` (conf/tasks/NAME.yaml, or a path to a task YAML)."""
    try:
        data = yaml.safe_load(_task_text(name))
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"workload.task: {name!r} is not a readable UTF-8 file "
                          f"({type(exc).__name__}); fix the file") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"workload.task: {name!r}{line}: not valid YAML "
                          f"({getattr(exc, 'problem', None) or exc}); fix the file") from exc
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise ConfigError(f"workload.task: {name!r} needs a `prompt` string")
    script = data.get("script") or []
    if not isinstance(script, list) or not all(
            isinstance(turn, list) and all(isinstance(c, dict) for c in turn) for turn in script):
        raise ConfigError(f"workload.task: {name!r}: `script` is a list of turns, each a list "
                          "of {tool: ...} calls")
    for turn in script:
        for call in turn:
            if call.get("tool") not in LOGICAL_TOOLS:
                raise ConfigError(f"workload.task: {name!r}: script tool {call.get('tool')!r} "
                                  f"is not one of {', '.join(LOGICAL_TOOLS)}")
    return Task(name=str(data.get("name", name)), prompt=data["prompt"],
                files=dict(data.get("files") or {}), script=script,
                final=str(data.get("final", "Done.")))
