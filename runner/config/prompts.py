"""Prompts: a fixed text, a synthetic text of an exact input-token length, or a JSONL set.

- ``text``: one fixed user message.
- ``synthetic_tokens: N``: a user message of N tokens as the emulator counts them (4
  characters each: a space and a three-letter word; common three-letter words are about one
  token each in Claude's tokenizer too, so real counts come close).
- ``input_tokens: {mean, stddev, min, max}``: a synthetic message per iteration, its length
  drawn (runner/config/lengths.py; the engine builds them, runner/engine/traffic.py).
- ``path: FILE.jsonl``: one prompt per line, ``{"text": ..., "label": ...}`` (label optional);
  iteration *i* of a cell sends prompt *i mod n*. Relative paths are looked up in the working
  directory, then in the bundled ``conf/prompt/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latlab.runner.core.errors import ConfigError
from latlab.runner.core.paths import conf_file

WORDS = ("the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her",
         "was", "one", "our", "out", "day", "get", "has", "him", "his", "how", "man", "new")


@dataclass(frozen=True)
class Prompt:
    text: str
    label: str | None = None


def synthetic_text(tokens: int) -> str:
    """Exactly ``tokens`` four-character units (" the and for ...")."""
    return "".join(f" {WORDS[i % len(WORDS)]}" for i in range(tokens))


def _prompt_file(path: str) -> Path:
    for candidate in (Path(path), conf_file("prompt", path)):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"prompt.path: {path} not found (working directory or conf/prompt/)")


def read_prompt_set(path: str) -> list[Prompt]:
    """The prompts of a JSONL file; ConfigError naming the line that is not a prompt."""
    prompts = []
    try:
        lines = _prompt_file(path).read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"prompt.path: {path} is not a readable UTF-8 text file "
                          f"({type(exc).__name__}); save it as UTF-8 JSONL") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            prompts.append(prompt_of(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"prompt.path: {path} line {number}: not a JSON object with "
                              f"a string \"text\" and an optional string \"label\" "
                              f"({exc})") from exc
    if not prompts:
        raise ConfigError(f"prompt.path: {path} has no prompts")
    return prompts


def prompt_of(item: Any) -> Prompt:
    """One JSONL line's prompt: text and label must be strings (a row stores them as such;
    a number or list would fail the writer after requests were sent)."""
    if not isinstance(item, dict):
        raise TypeError(f"a {type(item).__name__}, not an object")
    text, label = item["text"], item.get("label")
    if not isinstance(text, str) or not text:
        raise TypeError(f"text is {type(text).__name__}")
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label is {type(label).__name__}")
    return Prompt(text, label)


def load_prompts(prompt: Mapping[str, Any]) -> list[Prompt]:
    """The user messages a cell cycles through."""
    if prompt.get("path"):
        return read_prompt_set(str(prompt["path"]))
    if prompt.get("synthetic_tokens"):
        return [Prompt(synthetic_text(int(prompt["synthetic_tokens"])))]
    if prompt.get("input_tokens"):  # drawn per iteration (runner/config/lengths.py)
        return [Prompt(synthetic_text(round(float(prompt["input_tokens"]["mean"]))))]
    return [Prompt(str(prompt["text"]))]
