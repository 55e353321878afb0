"""Capacity search (``workload.search``, ``experiment=capacity_search``): the highest open-loop
rate (or closed-loop concurrency) at which the SLO's goodput holds.

Goodput is the share of a step's requests that succeeded within ``ttft_ms`` (default: the SLO's
grade-A ``ttft_p99_ms``) and, if set, a mean inter-token gap within ``tpot_ms``. A step passes
when the Wilson 95 % interval of its goodput lies at or above ``goodput`` (e.g. 0.95), fails when
it lies below; while the interval straddles the target the step is extended (another run at the
same load, counts pooled), at most ``max_extensions`` times, and then counts as failed. A step
fails at once, without extensions, on saturation: more errors than the target allows, or a TTFT
median that keeps rising (the last quarter's over the first's at least ``saturation_rise``).

Search: ``high`` is measured first (passing: the knee is above the range), then ``low``
(failing: below it); then bisection of [highest pass, lowest fail] until its width is at most
``precision`` of its lower end, or ``max_steps`` steps. The knee is the highest passing load, its
interval [highest pass, lowest fail]. Every step is a normal run (``run_name``
NAME-search-rate=R), so the dataset keeps them all (``load_levels``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from latlab.analysis.capacity import StepCounts, step_counts, wilson_interval
from latlab.runner.app.run import RunContext, run_experiment
from latlab.runner.core.errors import ConfigError

PARAMS = ("rate", "concurrency")


@dataclass(frozen=True)
class SearchSpec:
    """The ``workload.search`` block, checked."""

    low: float
    high: float
    param: str = "rate"
    goodput: float = 0.95
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    requests: int = 100
    precision: float = 0.05
    max_steps: int = 12
    max_extensions: int = 2
    saturation_rise: float = 2.0

    @classmethod
    def parse(cls, block: Mapping[str, Any], slo: Mapping[str, Any]) -> SearchSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            raise ConfigError(f"workload.search.{unknown[0]}: unknown key "
                              f"(keys: {', '.join(sorted(known))})")
        try:
            spec = cls(**{k: v for k, v in block.items() if v is not None or k in known})
        except TypeError as exc:
            raise ConfigError(f"workload.search: needs low and high ({exc})") from exc
        spec.check()
        ttft = spec.ttft_ms or float(slo["thresholds"]["A"]["ttft_p99_ms"])
        return SearchSpec(**{**spec.__dict__, "ttft_ms": ttft})

    def check(self) -> None:
        if self.param not in PARAMS:
            raise ConfigError(f"workload.search.param: {self.param!r}; use rate or concurrency")
        if not 0 < self.low < self.high:
            raise ConfigError("workload.search.low/high: need 0 < low < high")
        if not 0 < self.goodput < 1:
            raise ConfigError("workload.search.goodput: a share between 0 and 1, e.g. 0.95")
        if self.requests < 10 or self.precision <= 0:
            raise ConfigError("workload.search.requests/precision: need requests >= 10 and "
                              "precision > 0")


@dataclass
class Step:
    """One load level: its runs, pooled counts and verdict (pass, fail or saturated)."""

    value: float
    run_ids: list[str] = field(default_factory=list)
    counts: StepCounts = field(default_factory=StepCounts)
    verdict: str = "undecided"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.counts.good, self.counts.n)


@dataclass
class SearchResult:
    spec: SearchSpec
    steps: list[Step]
    knee: float | None  # highest passing load; None: even ``low`` failed
    above: float | None  # lowest failing load; None: even ``high`` passed


def verdict(counts: StepCounts, spec: SearchSpec) -> str:
    """pass / fail by the goodput interval; saturated at once; else undecided."""
    if counts.errors > (1 - spec.goodput) * counts.n or (
            counts.ttft_rise is not None and counts.ttft_rise >= spec.saturation_rise):
        return "saturated"
    low, high = wilson_interval(counts.good, counts.n)
    if low >= spec.goodput:
        return "pass"
    return "fail" if high < spec.goodput else "undecided"


def load_value(spec: SearchSpec, value: float) -> float | int:
    return value if spec.param == "rate" else round(value)


def step_name(cfg: Mapping[str, Any], spec: SearchSpec, value: float) -> str:
    return f"{cfg.get('run_name') or 'capacity'}-search-{spec.param}={load_value(spec, value):g}"


def apply_step(cfg: Mapping[str, Any], spec: SearchSpec, value: float,
               name: str) -> dict[str, Any]:
    """A copy of ``cfg`` at the step's load: ``requests`` measured requests, no warm-up."""
    step = copy.deepcopy(dict(cfg))
    step["workload"].update({spec.param: load_value(spec, value), "iterations": spec.requests,
                             "warmup": 0, "search": None})
    step["run_name"] = name
    return step


def measure(cfg: Mapping[str, Any], context: RunContext, spec: SearchSpec,
            value: float) -> Step:
    """Run one load level (extended while undecided) and judge it."""
    step, name = Step(value), step_name(cfg, spec, value)
    overrides = [f"workload.{spec.param}={load_value(spec, value):g}", f"run_name={name}"]
    sub = RunContext(lambda o: apply_step(context.compose(o), spec, value, name),
                     context.overrides + overrides, context.choices, context.sweep_job)
    for _ in range(1 + spec.max_extensions):
        summary = run_experiment(apply_step(cfg, spec, value, name), sub)
        step.run_ids.append(summary.run_id)
        step.counts = step.counts.plus(step_counts(Path(cfg["results_dir"]), [summary.run_id],
                                                   float(spec.ttft_ms or 0), spec.tpot_ms))
        step.verdict = verdict(step.counts, spec)
        if step.verdict != "undecided":
            return step
    step.verdict = "fail"  # still straddling the target: not shown to hold
    return step


def run_search(cfg: Mapping[str, Any], context: RunContext) -> SearchResult:
    """Measure ``high``, ``low``, then bisect between the highest pass and the lowest fail."""
    spec = SearchSpec.parse(cfg["workload"]["search"], cfg["slo"])
    steps = [measure(cfg, context, spec, spec.high)]
    if steps[0].passed:
        return SearchResult(spec, steps, spec.high, None)
    steps.append(measure(cfg, context, spec, spec.low))
    if not steps[1].passed:
        return SearchResult(spec, steps, None, spec.low)
    low, high = spec.low, spec.high
    while (high - low) / low > spec.precision and len(steps) < spec.max_steps:
        middle = (low + high) / 2 if spec.param == "rate" else float(round((low + high) / 2))
        if middle in (low, high):
            break
        steps.append(measure(cfg, context, spec, middle))
        low, high = (middle, high) if steps[-1].passed else (low, middle)
    return SearchResult(spec, steps, low, high)


def search_report(result: SearchResult) -> str:
    """The steps in the order run, and the knee with its interval."""
    unit = "req/s" if result.spec.param == "rate" else "in flight"
    lines = [f"{'step':>4}  {result.spec.param:>11}  {'n':>5}  {'goodput':>7}  "
             f"{'95% CI':>15}  {'TTFT rise':>9}  verdict    runs"]
    for i, step in enumerate(result.steps, start=1):
        c, (lo, hi) = step.counts, step.interval
        rise = f"{c.ttft_rise:.2f}" if c.ttft_rise is not None else "-"
        lines.append(f"{i:>4}  {step.value:>11.4g}  {c.n:>5}  {c.good / max(c.n, 1):>7.3f}  "
                     f"[{lo:.3f}, {hi:.3f}]  {rise:>9}  {step.verdict:<9}  "
                     f"{' '.join(step.run_ids)}")
    lines.append(knee_line(result, unit))
    return "\n".join(lines)


def knee_line(result: SearchResult, unit: str) -> str:
    target = f"goodput >= {result.spec.goodput:g} within TTFT {result.spec.ttft_ms:g} ms"
    if result.spec.tpot_ms is not None:
        target += f" and TPOT {result.spec.tpot_ms:g} ms"
    if result.knee is None:
        return f"knee: below {result.above:g} {unit} ({target} fails at the low end)"
    if result.above is None:
        return f"knee: at or above {result.knee:g} {unit} ({target} holds at the high end)"
    return (f"knee: {result.knee:.4g} {unit}, in [{result.knee:.4g}, {result.above:.4g}) "
            f"({target})")
