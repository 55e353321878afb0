"""The one interface every provider implements. The runner owns it.

A provider is built once per (run, provider config) with an injected HTTP
client, then ``send`` is awaited once per request. ``send`` never raises for
request-level failures: it returns a ``Measurement`` with ``error_type`` set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from latlab.runner.core.records import Measurement


@dataclass(frozen=True)
class RequestSpec:
    """Everything a provider needs to make one request."""

    model_id: str
    messages: list[dict[str, Any]]
    max_tokens: int
    stream: bool
    timeout_s: float
    system: str | list[dict[str, Any]] | None = None
    api: str = "messages"
    guardrail: dict[str, Any] | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    """A wire protocol client that times requests."""

    async def send(self, spec: RequestSpec) -> Measurement:
        """Perform one request and return its timing record. Never raises on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
