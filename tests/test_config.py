"""Every committed YAML composes and validates; bad specs fail naming the key path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from latlab.runner.app.run import validate
from latlab.runner.config.compose import compose_plain, hydra_initialised
from latlab.runner.config.validate import check_overrides_for_secrets, find_secrets
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.paths import conf_dir
from latlab.runner.engine.plan import expand_cells

CHECKOUT_CONF = conf_dir()
GROUPS = ["provider", "model", "prompt", "guardrail", "workload", "slo", "profile", "pricing",
          "batch"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CHECKOUT_CONF / g).glob("*.yaml"))]
EXPERIMENTS = sorted(p.stem for p in (CHECKOUT_CONF / "experiment").glob("*.yaml"))
README = (CHECKOUT_CONF.parent / "README.md").read_text()
CONF_GROUPS = sorted(p.name for p in CHECKOUT_CONF.iterdir()
                     if p.is_dir() and not p.name.startswith(("_", ".")))


@pytest.fixture(scope="module")
def hydra_init() -> Iterator[None]:
    with hydra_initialised():
        yield


def composed(overrides: list[str]) -> dict[str, Any]:
    return compose_plain(overrides)


def compatible_overrides(group: str, name: str) -> list[str]:
    """Options that need a particular provider get it (e.g. a guardrail needs bedrock)."""
    if group == "guardrail" and name != "none":
        return [f"{group}={name}", "provider=bedrock"]
    if group == "model" and name == "gemma3-270m":  # a local model: OpenAI-compatible id only
        return [f"{group}={name}", "provider=local"]
    return [f"{group}={name}"]


@pytest.mark.parametrize(("group", "name"), OPTIONS, ids=[f"{g}={n}" for g, n in OPTIONS])
def test_every_group_option_composes_and_validates(hydra_init: None, group: str,
                                                   name: str) -> None:
    cfg = composed(compatible_overrides(group, name))
    validate(cfg)
    assert cfg[group]["name"] == name


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_expands(hydra_init: None, name: str) -> None:
    text = (CHECKOUT_CONF / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_"), "experiments are global packages"
    cfg = composed([f"experiment={name}"])
    validate(cfg)
    cells = expand_cells(cfg, lambda extra: composed([f"experiment={name}", *extra]))
    assert cells and len({c.name for c in cells}) == len(cells)
    for cell in cells:
        validate(cell.config)


@pytest.mark.parametrize(("overrides", "key_path"), [
    (["workload.iterations=0"], "workload.iterations"),
    (["workload.concurrency=-1"], "workload.concurrency"),
    (["workload.schedule=random"], "workload.schedule"),
    (["workload.stream=maybe"], "workload.stream"),
    (["+workload.itertions=5"], "workload.itertions"),
    (["+provider.api_key=abc"], "provider.api_key"),
    (["provider.base_url=ftp://x"], "provider.base_url"),
    (["slo.thresholds.B.ttft_p50_ms=100"], "slo.thresholds.B.ttft_p50_ms"),
    (["slo.thresholds.C.output_tps_mean=500"], "slo.thresholds.C.output_tps_mean"),
    (["model.ids.anthropic=null"], "model.ids.anthropic"),
    (["+matrix.colour=[red]"], "colour"),
    (["+results_dir_typo=x"], "results_dir_typo"),
    (["workload.warmup=-1"], "workload.warmup"),
    (["workload.max_tokens=0"], "workload.max_tokens"),
    (["workload.timeout_s=0"], "workload.timeout_s"),
    (["workload.retries=-2"], "workload.retries"),
    (["workload.retries=99"], "workload.retries"),
    (["workload.rate=0"], "workload.rate"),
    (["workload.rate=-5"], "workload.rate"),
    (["workload.arrival=bursty"], "workload.arrival"),
    (["workload.max_in_flight=0"], "workload.max_in_flight"),
    (["workload.iterations=1.5"], "workload.iterations"),
    (["workload.concurrency=abc"], "workload.concurrency"),
    (["provider.transport=curl"], "provider.transport"),
    (["provider.max_connections=-1"], "provider.max_connections"),
    (["provider.api_key_env=lower-case"], "provider.api_key_env"),
    (["provider.kind=carrier-pigeon"], "provider.kind"),
    (["+provider.colour=blue"], "provider.colour"),
    (["prompt.text=''"], "prompt.text"),
    (["slo.thresholds.A.error_rate=2"], "slo.thresholds.A.error_rate"),
    (["slo.thresholds.A.ttft_p50_ms=-1"], "slo.thresholds.A.ttft_p50_ms"),
    (["~slo.thresholds.D"], "slo.thresholds"),
    (["results_dir=''"], "results_dir"),
    (["resume=yesterday"], "resume"),
    (["+matrix.model=[]"], "matrix.model"),
    (["guardrail.name=content_filter", "guardrail.identifier=gr-1"], "guardrail"),
    (["model.name='has space'"], "model.name"),
])
def test_bad_spec_names_the_key(hydra_init: None, overrides: list[str], key_path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(composed(overrides))
    assert key_path in str(caught.value)
    assert "\n" not in str(caught.value)


def test_secret_shaped_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="credential"):
        check_overrides_for_secrets(["provider.base_url=http://x", "+provider.token=abc123"])
    with pytest.raises(ConfigError, match="credential"):
        check_overrides_for_secrets(["run_name=sk-ant-api03-abcdefghijklmnop"])
    check_overrides_for_secrets(["provider.api_key_env=MY_KEY", "workload.iterations=3"])


def test_find_secrets_walks_nested_values() -> None:
    found = find_secrets({"a": {"b": ["ok", "AKIAABCDEFGHIJKLMNOP"]}, "token": "x"})
    assert found == ["a.b[1]", "token"]


def test_installed_package_data_lists_every_group() -> None:
    names = {p.name for p in Path(CHECKOUT_CONF).iterdir()}
    assert set(GROUPS) | {"experiment", "config.yaml"} <= names


@pytest.mark.parametrize("group", CONF_GROUPS)
def test_readme_lists_every_option_of_every_group(group: str) -> None:
    """The README's config-group table has a row per group naming each option file (the
    experiments, in their own table, are named somewhere in the README)."""
    row = next((line for line in README.splitlines() if line.startswith(f"| `{group}` |")), "")
    assert row, f"README's config-group table has no row for {group!r}"
    where = README if group == "experiment" else row
    missing = [p.stem for p in sorted((CHECKOUT_CONF / group).glob("*.yaml"))
               if f"`{p.stem}`" not in where]
    assert not missing, f"README does not name {group} options {missing}"
