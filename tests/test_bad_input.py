"""Bad input: every malformed spec exits 2 with ONE line naming the key (and the fix), and
writes NOTHING: no results/, no Hydra job folder, no saved overrides.

A table of specs, run through the real ``latlab`` entry point, all in one Python process
(tests/cli_batch.py): a refusal takes milliseconds, so the table can be long.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_batch import run_cases

# one worker runs the table (the module fixture), not both: a group (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("bad_input")

EXP = "exps"  # a user's --experiments-dir
BEDROCK = ["provider=bedrock", "emulate=true"]
SESSION = ["workload=session"]


def exp(name: str, text: str) -> dict[str, str]:
    return {f"{EXP}/{name}.yaml": "# @package _global_\n" + text}


def jsonl(text: str) -> dict[str, str]:
    return {"set.jsonl": text}


PROMPT_SET = ["+prompt.path=set.jsonl", "~prompt.text"]

# (id, argv after `latlab run`, files, what the one line must contain)
SPECS: list[tuple[str, list[str], dict[str, str], str]] = [
    # unknown keys and options: named, with the nearest valid spelling
    ("typo-key", ["workload.iteration=5"], {}, "did you mean workload.iterations"),
    ("typo-group", ["models=haiku-4-5"], {}, "did you mean model"),
    ("typo-add-key", ["+workload.iteration=5"], {}, "did you mean workload.iterations"),
    ("typo-provider-key", ["provider.bse_url=http://x"], {}, "provider.bse_url"),
    ("typo-concurrency", ["workload.concurency=2"], {}, "workload.concurrency"),
    ("bare-word", ["quickstart"], {}, "did you mean experiment=quickstart"),
    ("unknown-model", ["model=haiku"], {}, "model=haiku"),
    ("unknown-provider", ["provider=antropic"], {}, "did you mean provider=anthropic"),
    ("unknown-experiment", ["experiment=nosuch"], {}, "experiment=nosuch"),
    ("unknown-prompt", ["prompt=nosuch"], {}, "prompt=nosuch"),
    ("unknown-slo", ["slo=nosuch"], {}, "slo=nosuch"),
    ("unknown-profile-key", ["+profile.colour=1"], {}, "profile.colour"),
    ("unknown-faults-key", ["+profile.faults.eror_rate=0.1"], {}, "eror_rate"),
    ("unknown-fault-kind", ["+profile.faults.kinds.melt=1"], {}, "melt"),
    ("unknown-model-profile-key", ["+profile.models.haiku.ttft=1"], {}, "profile.models"),
    ("unknown-rate-limit", ["+profile.rate_limits={rpm:5}"], {},
     "profile.rate_limits.rpm: unknown key"),
    ("plus-experiment", ["+experiment=quickstart"], {}, "experiment"),
    # wrong types and ranges
    ("iterations-text", ["workload.iterations=abc"], {}, "workload.iterations"),
    ("iterations-zero", ["workload.iterations=0"], {}, "workload.iterations"),
    ("concurrency-negative", ["workload.concurrency=-1"], {}, "workload.concurrency"),
    ("stream-maybe", ["workload.stream=maybe"], {}, "workload.stream"),
    ("schedule-unknown", ["workload.schedule=random"], {}, "workload.schedule"),
    ("retries-huge", ["workload.retries=99"], {}, "workload.retries"),
    ("workers-zero", ["workload.workers=0"], {}, "workload.workers"),
    ("kind-unknown", ["workload.kind=nosuch"], {}, "workload.kind"),
    ("results-dir-list", ["results_dir=[a,b]"], {}, "results_dir"),
    ("resume-bad-id", ["resume=yesterday"], {}, "resume"),
    # NaN and infinity
    ("timeout-nan", ["workload.timeout_s=nan"], {}, "workload.timeout_s"),
    ("timeout-inf", ["workload.timeout_s=inf"], {}, "workload.timeout_s"),
    ("rate-nan", ["+workload.rate=nan"], {}, "workload.rate"),
    ("lag-nan", ["+workload.max_client_lag_ms=nan"], {}, "workload.max_client_lag_ms"),
    ("error-rate-nan", ["profile.faults.error_rate=nan"], {}, "profile.faults.error_rate"),
    ("rate-limit-zero", ["+profile.rate_limits={requests_per_minute:0}"], {},
     "profile.rate_limits.requests_per_minute"),
    ("rate-limit-text", ["+profile.rate_limits={tokens_per_minute:lots}"], {},
     "profile.rate_limits.tokens_per_minute"),
    ("rate-limits-scalar", ["+profile.rate_limits=5"], {}, "profile.rate_limits"),
    ("slo-nan", ["slo.thresholds.A.ttft_p50_ms=nan"], {}, "slo.thresholds.A.ttft_p50_ms"),
    # values that were silently ignored or sent as garbage
    ("api-anthropic", ["provider.api=chat"], {}, "provider.api"),
    ("api-openai", ["provider=openai_compat", "emulate=true", "provider.api=messages"], {},
     "provider.api"),
    ("api-bedrock", [*BEDROCK, "provider.api=invoke_streaming"], {}, "provider.api"),
    ("slo-p99-below-p50", ["slo.thresholds.A.ttft_p99_ms=1"], {}, "ttft_p99_ms"),
    ("guardrail-no-id", [*BEDROCK, "guardrail=content_filter", "guardrail.identifier=null"], {},
     "guardrail.identifier"),
    ("guardrail-no-version", [*BEDROCK, "guardrail=content_filter", "guardrail.version=null"],
     {}, "guardrail.version"),
    ("guardrail-wrong-provider", ["guardrail=content_filter"], {}, "guardrail"),
    ("synthetic-absurd", ["+prompt.synthetic_tokens=1000000000000", "~prompt.text"], {},
     "prompt.synthetic_tokens"),
    # where things go
    ("results-dir-empty", ["results_dir="], {}, "results_dir"),
    ("results-dir-under-file", ["results_dir=f/x"], {"f": "a file"}, "results_dir"),
    ("run-dir-under-file", ["hydra.run.dir=f/x"], {"f": "a file"}, "hydra.run.dir"),
    ("run-dir-proc", ["hydra.run.dir=/proc/latlab"], {}, "hydra.run.dir"),
    ("launcher-unknown", ["-m", "hydra/launcher=nosuch"], {}, "hydra/launcher=nosuch"),
    ("sweep-second-bad", ["-m", "workload.iterations=1,abc"], {}, "workload.iterations"),
    ("sweep-second-model", ["-m", "model=haiku-4-5,nosuch"], {}, "model=nosuch"),
    ("sweep-second-nan", ["-m", "workload.timeout_s=5,nan"], {}, "workload.timeout_s"),
    # interpolations
    ("interp-env", ["run_name=${oc.env:LATLAB_SURELY_UNSET}"], {}, "run_name"),
    ("interp-key", ["run_name=${workload.nope}"], {}, "run_name"),
    # matrix
    ("matrix-axis-unknown", ["++matrix.workload.nope=[1,2]"], {}, "workload.nope"),
    ("matrix-model-unknown", ["++matrix.model=[haiku-4-5,nosuch]"], {}, "nosuch"),
    ("matrix-bool", ["++matrix.workload.stream=[true,maybe]"], {}, "workload.stream"),
    ("matrix-axis-bad-name", ["++matrix.colour=[a,b]"], {}, "matrix"),
    ("matrix-exclude-axis", ["++matrix.model=[haiku-4-5,sonnet-4-5]",
                             "+matrix_exclude=[{workload.stream: true}]"], {}, "matrix_exclude"),
    # a user's own experiment files
    ("exp-yaml-error", ["--experiments-dir", EXP, "experiment=mine"],
     exp("mine", "workload:\n  iterations: [1\n"), "mine"),
    ("exp-unknown-key", ["--experiments-dir", EXP, "experiment=mine"],
     exp("mine", "workload:\n  iteration: 1\n"), "workload.iteration"),
    ("exp-api-key", ["--experiments-dir", EXP, "experiment=mine"],
     exp("mine", "provider:\n  api_key: not-a-real-key-123\n"), "api_key"),
    ("exp-matrix-model", ["--experiments-dir", EXP, "experiment=mine"],
     exp("mine", "matrix:\n  model: [haiku-4-5, nosuch]\n"), "nosuch"),
    ("exp-matrix-bool", ["--experiments-dir", EXP, "experiment=mine"],
     exp("mine", "matrix:\n  workload.stream: [true, maybe]\n"), "workload.stream"),
    ("exp-nan", ["--experiments-dir", EXP, "experiment=mine"],
     exp("mine", "workload:\n  timeout_s: .nan\n"), "workload.timeout_s"),
    ("exp-dir-missing", ["--experiments-dir", "nowhere", "experiment=mine"], {},
     "--experiments-dir"),
    # prompt sets
    ("jsonl-not-utf8", PROMPT_SET, jsonl('{"text": "caf\udce9"}\n'), "prompt.path"),
    ("jsonl-label-number", PROMPT_SET, jsonl('{"text": "hi", "label": 3}\n'), "label"),
    ("jsonl-label-list", PROMPT_SET, jsonl('{"text": "hi", "label": ["a"]}\n'), "label"),
    ("jsonl-text-number", PROMPT_SET, jsonl('{"text": 5}\n'), "prompt.path"),
    ("jsonl-no-text", PROMPT_SET, jsonl('{"label": "a"}\n'), "prompt.path"),
    ("jsonl-not-json", PROMPT_SET, jsonl("hello\n"), "prompt.path"),
    ("jsonl-list-line", PROMPT_SET, jsonl('["hi"]\n'), "prompt.path"),
    ("jsonl-empty", PROMPT_SET, jsonl("\n"), "prompt.path"),
    ("jsonl-missing", ["+prompt.path=none.jsonl", "~prompt.text"], {}, "prompt.path"),
    # agent tasks
    ("task-yaml-error", [*SESSION, "workload.task={dir}/task.yaml"],
     {"task.yaml": "prompt: [unclosed\n"}, "workload.task"),
    ("task-unknown", [*SESSION, "workload.task=nosuch"], {}, "workload.task"),
    ("task-not-utf8", [*SESSION, "workload.task={dir}/task.yaml"],
     {"task.yaml": "prompt: caf\udce9\n"}, "workload.task"),
    ("task-a-list", [*SESSION, "workload.task={dir}/task.yaml"], {"task.yaml": "- a\n"},
     "workload.task"),
    ("task-script-shape", [*SESSION, "workload.task={dir}/task.yaml"],
     {"task.yaml": "prompt: hi\nscript: [read]\n"}, "workload.task"),
    ("iterations-absurd", ["workload.iterations=5000000"], {}, "workload.iterations"),
    ("output-tokens-absurd", ["profile.models.default.output_tokens=5000000"], {},
     "output_tokens"),
    ("exp-not-utf8", ["--experiments-dir", EXP, "experiment=mine"],
     {f"{EXP}/mine.yaml": "# @package _global_\nrun_name: caf\udce9\n"}, "mine"),
    # credentials
    ("url-userinfo", ["provider=anthropic", "provider.base_url=http://u:pw@127.0.0.1:9"], {},
     "provider.base_url"),
    ("url-query-key", ["provider=anthropic", "provider.base_url=http://127.0.0.1:9/?api_key=x"],
     {}, "provider.base_url"),
    ("boto3-bearer", [*BEDROCK, "provider.client=boto3"], {}, "provider.client"),
]
ENV = {"boto3-bearer": {"AWS_BEARER_TOKEN_BEDROCK": "ABSKlatlabFakeBearer0123456789"}}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    cases = [{"id": i, "argv": ["run", *argv], "files": files, "env": ENV.get(i, {})}
             for i, argv, files, _ in SPECS]
    return run_cases(cases, tmp_path_factory.mktemp("specs"), timeout_s=600)


def test_the_table_is_large() -> None:
    assert len(SPECS) >= 60
    assert len({s[0] for s in SPECS}) == len(SPECS)


@pytest.mark.parametrize(("case", "argv", "files", "named"), SPECS, ids=[s[0] for s in SPECS])
def test_a_bad_spec_exits_2_with_one_line_and_writes_nothing(
        outcomes: dict[str, dict[str, Any]], case: str, argv: list[str],
        files: dict[str, str], named: str) -> None:
    result = outcomes[case]
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert result["code"] == 2, result
    assert len(lines) == 1, result["stderr"]
    assert lines[0].startswith("latlab: error: "), lines[0]
    assert named.lower() in lines[0].lower(), lines[0]
    assert result["written"] == [], result["written"]


def test_hydra_flags_with_values_are_not_bare_words(tmp_path: Path) -> None:
    latlab = str(Path(sys.executable).with_name("latlab"))
    done = subprocess.run([latlab, "run", "--cfg", "job", "workload.iterations=3"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "iterations: 3" in done.stdout, done.stderr
    assert not list(tmp_path.iterdir())
