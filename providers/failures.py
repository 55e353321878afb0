"""Turn what went wrong in a request into one of latlab's closed ``error_type`` values.

The list and its meanings live in ``latlab.runner.core.errors.ERROR_TYPES``.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx

from latlab.runner.core.secrets import clip

_STATUS_TYPES = {429: "rate_limited", 529: "overloaded", 401: "access_denied", 403: "access_denied"}


def error_type_for_status(status: int) -> str:
    """The error type of a non-2xx HTTP status."""
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    return "server_error" if status >= 500 else "client_error"


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _classify_one(exc: BaseException) -> str | None:
    if isinstance(exc, (aiohttp.ClientConnectorError, httpx.ConnectError, ConnectionRefusedError)):
        return "connect_error"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException)):
        return "timeout"
    if isinstance(exc, (aiohttp.ServerTimeoutError,)):
        return "timeout"
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return "connection_reset"
    if isinstance(exc, (aiohttp.ClientOSError, httpx.ReadError, httpx.RemoteProtocolError)):
        return "connection_reset"
    if isinstance(exc, (httpx.WriteError, ConnectionError)):
        return "connection_reset"
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError, KeyError, ValueError)):
        return "protocol_error"
    return None


def classify_exception(exc: BaseException) -> str:
    """Map an exception raised while sending/reading to an error type.

    httpx-aiohttp re-raises aiohttp errors as httpx ones and sometimes picks a
    misleading class (a server disconnect becomes ``ConnectTimeout``), so the
    original aiohttp cause, when there is one, decides.
    """
    chain = _cause_chain(exc)
    preferred = [e for e in chain if isinstance(e, aiohttp.ClientError)] + chain
    for candidate in preferred:
        found = _classify_one(candidate)
        if found is not None:
            return found
    return "connection_reset" if isinstance(exc, httpx.TransportError) else "protocol_error"


def classify_failure(exc: BaseException, status: int | None, headers_seen: bool) -> str:
    """Like ``classify_exception``, but a 200 stream that breaks after it started is
    ``truncated`` (reset mid-stream), while a reset before the headers stays
    ``connection_reset``."""
    error_type = classify_exception(exc)
    if error_type == "connection_reset" and headers_seen and status == 200:
        return "truncated"
    return error_type


def describe(exc: BaseException) -> str:
    """A short, secret-free message for the row."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return clip(f"{type(exc).__name__}: {text}")
