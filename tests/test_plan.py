"""Matrix expansion and request ordering."""

from __future__ import annotations

from typing import Any

import pytest

from latlab.runner.core.errors import ConfigError
from latlab.runner.engine.plan import Cell, cell_name, expand_cells, matrix_overrides, plan_requests
from latlab.runner.engine.schedule import load_groups


def config(**workload: Any) -> dict[str, Any]:
    base = {"warmup": 1, "iterations": 2, "concurrency": 1, "stream": True}
    return {"provider": {"name": "emulator"}, "model": {"name": "haiku-4-5"},
            "prompt": {"name": "count20"}, "guardrail": {"name": "none"},
            "workload": {**base, **workload}, "matrix": {}}


def test_matrix_overrides_is_the_cross_product_in_order() -> None:
    combos = matrix_overrides({"model": ["a", "b"], "workload.stream": [True, False]})
    assert combos == [
        [("model", "a"), ("workload.stream", "true")],
        [("model", "a"), ("workload.stream", "false")],
        [("model", "b"), ("workload.stream", "true")],
        [("model", "b"), ("workload.stream", "false")],
    ]


def test_cell_name_lists_every_axis() -> None:
    cfg = config(stream=False)
    assert cell_name(cfg) == "emulator/haiku-4-5/count20/none/block"
    assert cell_name(cfg, [("workload.max_tokens", "64")]).endswith("/block/max_tokens=64")


def test_expand_cells_composes_each_combination() -> None:
    seen: list[list[str]] = []

    def compose(overrides: list[str]) -> dict[str, Any]:
        seen.append(overrides)
        cfg = config()
        cfg["model"]["name"] = overrides[0].split("=")[1]
        return cfg

    base = config()
    base["matrix"] = {"model": ["haiku-4-5", "sonnet-4-5"]}
    cells = expand_cells(base, compose)
    assert seen == [["model=haiku-4-5"], ["model=sonnet-4-5"]]
    assert [c.name.split("/")[1] for c in cells] == ["haiku-4-5", "sonnet-4-5"]


def test_interleaved_plan_alternates_cells_warmups_first() -> None:
    a, b = Cell("A", config()), Cell("B", config())
    order = [(r.cell.name, r.iteration, r.warmup) for r in plan_requests([a, b], "interleaved")]
    assert order == [("A", 0, True), ("B", 0, True), ("A", 0, False), ("B", 0, False),
                     ("A", 1, False), ("B", 1, False)]


def test_sequential_plan_runs_cells_in_turn() -> None:
    a, b = Cell("A", config()), Cell("B", config())
    order = [r.cell.name for r in plan_requests([a, b], "sequential")]
    assert order == ["A", "A", "A", "B", "B", "B"]


def test_concurrency_levels_run_as_groups() -> None:
    a, b = Cell("A", config(concurrency=4)), Cell("B", config(concurrency=1))
    groups = load_groups(plan_requests([a, b], "interleaved"))
    assert [(key[1], len(reqs)) for key, reqs in groups] == [(1, 3), (4, 6)]


def test_a_closed_loop_warms_one_request_per_stream_an_open_loop_as_asked() -> None:
    closed = plan_requests([Cell("A", config(concurrency=4, warmup=2))], "interleaved")
    assert [r.warmup for r in closed] == [True] * 8 + [False] * 2
    opened = plan_requests([Cell("A", config(concurrency=4, warmup=2, rate=5.0))], "interleaved")
    assert [r.warmup for r in opened] == [True] * 2 + [False] * 2


def test_matrix_exclude_drops_combinations_matching_every_named_axis() -> None:
    def compose(overrides: list[str]) -> dict[str, Any]:
        cfg = config()
        values = dict(o.split("=") for o in overrides)
        cfg["provider"]["name"], cfg["guardrail"]["name"] = values["provider"], values["guardrail"]
        return cfg

    base = config()
    base["matrix"] = {"provider": ["anthropic", "bedrock"], "guardrail": ["none", "content_filter"]}
    base["matrix_exclude"] = [{"provider": "anthropic", "guardrail": "content_filter"}]
    names = [c.name.split("/")[0] + "+" + c.name.split("/")[3] for c in expand_cells(base, compose)]
    assert names == ["anthropic+none", "bedrock+none", "bedrock+content_filter"]
    base["matrix_exclude"] = [{"guardrail": ["none", "content_filter"]}]
    with pytest.raises(ConfigError, match="excludes every combination"):
        expand_cells(base, compose)
    base["matrix_exclude"] = [{"model": "haiku-4-5"}]
    with pytest.raises(ConfigError, match=r"matrix_exclude\[0\]\.model: not a matrix axis"):
        expand_cells(base, compose)
