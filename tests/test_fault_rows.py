"""Each injected fault becomes the typed row it is, on every client path: a table of
(provider, client, mode, fault) → the error_type every measured row must carry.
Driven through the real ``latlab`` entry point, all cases in one process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.cli_batch import run_cases

# one worker runs the table (the module fixture), not both: a group (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("fault_rows")

BASE = ["emulate=true", "profile=fast", "workload.iterations=2", "workload.warmup=0",
        "workload.retries=0", "workload.timeout_s=1", "profile.faults.error_rate=1.0",
        "~profile.faults.kinds.overloaded"]
NO_AWS = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
          "AWS_EC2_METADATA_DISABLED": "true"}

# (id, overrides, the error_type of every row)
FAULTS: list[tuple[str, list[str], str | None]] = [
    ("openai-block-truncate", ["provider=openai_compat", "workload.stream=false",
                               "+profile.faults.kinds.truncate=1"], "truncated"),
    ("openai-stream-truncate", ["provider=openai_compat", "+profile.faults.kinds.truncate=1"],
     "truncated"),
    ("boto3-stream-stall", ["provider=bedrock", "provider.client=boto3",
                            "+profile.faults.kinds.stall=1"], "timeout"),
    ("boto3-block-stall", ["provider=bedrock", "provider.client=boto3", "workload.stream=false",
                           "+profile.faults.kinds.stall=1"], "timeout"),
    ("httpx-bedrock-stall", ["provider=bedrock", "+profile.faults.kinds.stall=1"], "timeout"),
    ("anthropic-block-truncate", ["workload.stream=false", "+profile.faults.kinds.truncate=1"],
     "truncated"),
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cases = [{"id": i, "argv": ["run", *BASE, *argv], "env": NO_AWS} for i, argv, _ in FAULTS]
    return run_cases(cases, tmp_path_factory.mktemp("faults"), timeout_s=600)


@pytest.mark.parametrize(("case", "argv", "error_type"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_fault_is_a_row_of_its_type(outcomes: dict[str, Any], case: str, argv: list[str],
                                      error_type: str | None) -> None:
    result = outcomes[case]
    assert result["code"] == 0, result["stderr"][-2000:]
    files = sorted(Path(result["folder"]).glob("results/requests/*/*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    assert len(rows) == 2 and {r["error_type"] for r in rows} == {error_type}, rows
