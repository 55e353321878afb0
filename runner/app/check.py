"""``latlab check``: a quick probe — a few requests per provider through the real provider
code, printed at once with the grade the cell would get.

A provider with credentials (ANTHROPIC_API_KEY, the AWS chain or AWS_BEARER_TOKEN_BEDROCK)
is called for real; one without goes to the embedded emulator (``--emulator`` forces that,
``--real`` refuses to fall back). Each provider is one small run written to a temporary
results directory (or ``--results DIR`` to keep it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from latlab.analysis.query import check_format, open_results, render
from latlab.runner.app.guard import check_run_or_refuse
from latlab.runner.app.hydra_app import cell_composer
from latlab.runner.app.run import RunContext, endpoint_for, run_experiment
from latlab.runner.config.compose import compose_plain, composed, hydra_initialised
from latlab.runner.core.errors import ConfigError, CredentialsError

MODES = ("auto", "emulator", "real")
MAX_REQUESTS = 20
COLUMNS = ["provider", "emulated", "iteration", "ttfb_ms", "ttft_ms", "total_ms",
           "output_tokens", "output_tps", "request_id", "grade", "error_type"]

ROWS_SQL = """
SELECT r.provider, r.emulated, r.iteration, r.ttfb_ms, r.ttft_ms, r.total_ms, r.output_tokens,
       r.output_tps, r.request_id, g.grade, r.error_type
FROM requests AS r JOIN grades AS g USING (run_id, cell)
ORDER BY list_position($order, r.run_id), r.iteration
"""


def base_overrides(provider: str, model: str, requests: int, results: Path,
                   extra: Sequence[str]) -> list[str]:
    return [f"provider={provider}", f"model={model}", f"workload.iterations={requests}",
            "workload.warmup=0", f"results_dir={results}", *extra]


def wants_emulator(cfg: Mapping[str, Any], mode: str) -> bool:
    """Emulate when asked to, or (auto) when the provider has no credentials."""
    if mode == "emulator" or cfg["provider"].get("emulate"):
        return True
    try:
        endpoint_for(cfg, None)
    except CredentialsError:
        if mode == "real":
            raise
        return True
    return False


def probe(provider: str, model: str, requests: int, results: Path, mode: str,
          extra: Sequence[str]) -> str:
    """One small run for ``provider``; returns its run id."""
    overrides = base_overrides(provider, model, requests, results, extra)
    check_run_or_refuse(overrides)  # bad names or keys: one line, exit 2
    with hydra_initialised():
        cfg = composed(overrides)  # the guard composed it already
        overrides.append(f"emulate={str(wants_emulator(cfg, mode)).lower()}")
        cfg = compose_plain(overrides)
        context = RunContext(cell_composer(overrides), overrides, {"provider": provider})
        return run_experiment(cfg, context).run_id


def check_options(providers: Sequence[str], requests: int, mode: str) -> None:
    if not providers:
        raise ConfigError("check: name at least one provider, e.g. `latlab check anthropic`")
    if not 1 <= requests <= MAX_REQUESTS:
        raise ConfigError(f"-n: between 1 and {MAX_REQUESTS} requests, got {requests}")
    if mode not in MODES:
        raise ConfigError(f"--mode: unknown mode {mode!r}; use {', '.join(MODES)}")


def check_command(providers: Sequence[str], fmt: str, requests: int = 1,
                  model: str = "haiku-4-5", mode: str = "auto", results: Path | None = None,
                  slo: Mapping[str, Any] | None = None, extra: Sequence[str] = ()) -> str:
    """Probe each provider; one line per request: timings, tokens/s, request id, grade."""
    check_format(fmt)
    check_options(providers, requests, mode)
    if mode == "auto":  # no instance-metadata probe off EC2 (it is not loopback); --real does
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    with tempfile.TemporaryDirectory(prefix="latlab-check-") as tmp:
        out = results or Path(tmp)
        run_ids = [probe(p, model, requests, out, mode, extra) for p in providers]
        con = open_results(out, run_ids, slo, needs=("requests", "grades"))  # ROWS_SQL's
        try:
            return render((COLUMNS, con.execute(ROWS_SQL, {"order": run_ids}).fetchall()), fmt)
        finally:
            con.close()
