"""The one interface every provider implements. The runner owns it.

A provider is built once per (run, provider config) with an injected HTTP
client, then ``send`` is awaited once per request. ``send`` never raises for
request-level failures: it returns a ``Measurement`` with ``error_type`` set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from latlab.runner.core.records import Measurement

DUMMY_KEY = "latlab-emulator-dummy-key"  # the credential every provider sends to the emulator


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to send: resolved before the first request.

    ``api_key`` is a bearer/API key where the protocol uses one; ``credentials`` holds
    anything richer (botocore credentials for SigV4). Neither is ever written anywhere.
    """

    base_url: str
    api_key: str | None
    emulated: bool
    credentials: Any = None


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (a local server needs no real credentials)."""
    host = urlparse(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


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
