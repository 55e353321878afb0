"""The HTTP client every httpx-based provider gets by injection.

latlab keeps httpx's API but picks the transport that keeps timings true under
load (see bench/fidelity.py and docs/benchmarks.md):

- ``aiohttp`` (default): httpx over ``httpx-aiohttp``; connection opening is timed
  by the connector (TCP connect and TLS together, in ``connect_ms``).
- ``httpcore``: plain httpx; connect and TLS are timed separately from httpx's
  ``trace`` extension.

Per-request connection timing travels through a ``ContextVar``: each request runs
in its own task, so trace callbacks write to the record of the request that
opened the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json as jsonlib
import sys
import types
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream

from latlab.providers.failures import classify_failure, describe
from latlab.runner.core.records import Measurement
from latlab.runner.core.timing import StreamClock, now_ns, output_tps


@dataclass
class ConnectionTiming:
    """Connection phases of one request; all None when a pooled connection was reused."""

    connect_ms: float | None = None
    tls_ms: float | None = None

    @property
    def new_connection(self) -> bool:
        return self.connect_ms is not None


K = TypeVar("K")

current_connection: contextvars.ContextVar[ConnectionTiming | None] = contextvars.ContextVar(
    "latlab_connection_timing", default=None
)


class _TimedConnector(aiohttp.TCPConnector):
    """Times each new connection (TCP connect and TLS) into the requesting task's record.
    aiohttp's TraceConfig would do it too, but a session with any trace config awaits a
    signal for every event of every request (~6% of a run's CPU; docs/benchmarks.md)."""

    async def _create_connection(self, *args: Any, **kwargs: Any) -> Any:
        timing, start_ns = current_connection.get(), now_ns()
        protocol = await super()._create_connection(*args, **kwargs)
        if timing is not None:
            timing.connect_ms = (now_ns() - start_ns) / 1e6
        return protocol


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], pending: Any) -> Generator[Any, Any, Any]:
    """Hand a coroutine already suspended on ``pending`` to the task that awaits this."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - cancellation is passed on, not handled
            outcome = _step(coro, error=exc)
        else:
            outcome = _step(coro, value=sent)
        if isinstance(outcome, StopIteration):
            return outcome.value
        pending = outcome


def _step(coro: Coroutine[Any, Any, Any], value: Any = None,
          error: BaseException | None = None) -> Any:
    """One step of ``coro``: what it awaits next, or the StopIteration that ends it."""
    try:
        return coro.send(value) if error is None else coro.throw(error)
    except StopIteration as stop:
        return stop


async def _finished(value: Any = None, error: BaseException | None = None) -> Any:
    if error is not None:
        raise error
    return value


class _EagerBodyRequest(aiohttp.ClientRequest):
    """Writes the request body before ``send`` returns, as aiohttp does on Python >= 3.12.

    On 3.11 aiohttp hands the body (and the buffered headers) to a new task, so a request
    reaches the wire only after every other ready task has run: when many requests start
    together, each waits for the whole burst and its TTFT gains that wait. Running the
    writer's first step here (a small body completes in it) sends the request from the
    requesting task itself; a writer that must wait (drain) continues in the task.
    """

    def write_bytes(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, None]:
        coro = super().write_bytes(*args, **kwargs)
        try:
            pending = coro.send(None)
        except StopIteration as stop:
            return _finished(stop.value)
        except BaseException as exc:  # noqa: BLE001 - surfaces in the writer task as before
            return _finished(error=exc)
        return _resume(coro, pending)


# aiohttp starts the body writer eagerly itself from Python 3.12 on.
_REQUEST_CLASS = _EagerBodyRequest if sys.version_info < (3, 12) else aiohttp.ClientRequest


def _aiohttp_session(max_connections: int, reuse: bool) -> aiohttp.ClientSession:
    connector = _TimedConnector(limit=max_connections, force_close=not reuse)
    return aiohttp.ClientSession(connector=connector, request_class=_REQUEST_CLASS)


class _CookiesIfSet(httpx.Cookies):
    """httpx builds urllib stand-ins of every response and its request to look for cookies
    (most of a millisecond of CPU per request under load); only a response with a
    ``Set-Cookie`` header can set one, so only such a response is looked at."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class HttpClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` itself (same API, cookies kept the same), minus the cookie
    search in responses that set none.

    ``direct``: set by ``make_http_client`` on its aiohttp transport, the aiohttp session
    under it, which ``open_stream`` calls itself for the providers' exchanges (the same
    pool, headers and connection timing; httpx's request and response objects skipped).
    Not set when the environment names a proxy (httpx's own mounts then carry requests)."""

    direct: aiohttp.ClientSession | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cookies = self._cookies

    @property
    def cookies(self) -> httpx.Cookies:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = _CookiesIfSet(cookies)


def make_http_client(
    transport: str = "aiohttp", max_connections: int = 0, reuse_connections: bool = True
) -> HttpClient:
    """An ``httpx.AsyncClient`` on the chosen transport. ``max_connections=0``: unbounded."""
    if transport == "aiohttp":
        session = _aiohttp_session(max_connections, reuse_connections)
        client = HttpClient(transport=AiohttpTransport(client=session), timeout=None)
        if not urllib.request.getproxies():  # httpx routes through a proxy from the environment
            client.direct = session
        return client
    limit = max_connections or None
    keepalive = limit if reuse_connections else 0
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=keepalive)
    return HttpClient(limits=limits, timeout=None)


def httpcore_trace(timing: ConnectionTiming) -> Any:
    """An httpx ``trace`` extension callback filling ``timing`` (httpcore transport only)."""
    marks: dict[str, int] = {}

    async def trace(event: str, info: dict[str, Any]) -> None:
        name, _, phase = event.rpartition(".")
        if phase == "started":
            marks[name] = now_ns()
        elif phase == "complete" and name in marks:
            elapsed = (now_ns() - marks[name]) / 1e6
            if name.endswith("connect_tcp"):
                timing.connect_ms = elapsed
            elif name.endswith("start_tls"):
                timing.tls_ms = elapsed

    return trace


Exchange = Callable[[StreamClock, Measurement, ConnectionTiming], Awaitable[None]]
Finish = Callable[[Measurement, StreamClock, ConnectionTiming], None]


class StreamEvents(Protocol):
    """A provider's stream interpreter: fed raw chunks with their arrival time."""

    @property
    def finished(self) -> bool: ...

    def feed(self, chunk: bytes, arrival_ns: int) -> None: ...

    def close(self) -> None: ...


class StreamResponse(Protocol):
    """What a provider reads of a response: httpx's ``Response`` or a ``DirectResponse``."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def aread(self) -> bytes: ...


@dataclass
class DirectResponse:
    """An aiohttp response read the way providers read httpx's (``open_stream``)."""

    response: aiohttp.ClientResponse

    @property
    def status_code(self) -> int:
        return self.response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    async def aread(self) -> bytes:
        return await self.response.read()


def open_stream(client: httpx.AsyncClient, method: str, url: str | httpx.URL,
                **kwargs: Any) -> contextlib.AbstractAsyncContextManager[StreamResponse]:
    """``client.stream(method, url, json=|content=, headers=)``: on a client of
    ``make_http_client``'s aiohttp transport sent by its aiohttp session directly (httpx's
    request, response and transport wrappers cost ~a third of a request's CPU:
    docs/benchmarks.md), else through httpx."""
    session = client.direct if isinstance(client, HttpClient) else None
    if session is not None and not kwargs.get("extensions") and DIRECT_ARGS.issuperset(kwargs):
        return _direct_stream(session, dict(client.headers), method, str(url), **kwargs)
    return _httpx_stream(client, method, url, **kwargs)


DIRECT_ARGS = frozenset({"json", "content", "headers", "extensions"})
NO_TIMEOUT = aiohttp.ClientTimeout()  # the exchange's own deadline applies (timed_exchange)


@contextlib.asynccontextmanager
async def _direct_stream(session: aiohttp.ClientSession, defaults: dict[str, str],
                         method: str, url: str, json: Any = None, content: bytes | None = None,
                         headers: Mapping[str, str] | None = None,
                         extensions: Any = None) -> AsyncIterator[StreamResponse]:
    """The request httpx would send (its default headers, JSON encoded as httpx does)."""
    sent = {**defaults, **{k.lower(): v for k, v in (headers or {}).items()}}
    if json is not None:
        content = json_bytes(json)
        sent.setdefault("content-type", "application/json")
    async with session.request(method, url, data=content, headers=sent, allow_redirects=False,
                               timeout=NO_TIMEOUT) as response:
        yield DirectResponse(response)


def json_bytes(body: Any) -> bytes:
    """A JSON body as httpx encodes ``json=`` (compact, UTF-8, no NaN)."""
    return jsonlib.dumps(body, ensure_ascii=False, separators=(",", ":"),
                         allow_nan=False).encode()


class EncodedBodies(Generic[K]):
    """Request bodies as JSON bytes (``json_bytes``), encoded once per key object: a run
    sends the same few specs thousands of times. Keyed by identity (the key is held, so its
    id is not reused); at most ``limit`` kept (conversations make a spec per turn)."""

    def __init__(self, body: Callable[[K], Any], limit: int = 256) -> None:
        self.body, self.limit = body, limit
        self.encoded: dict[int, tuple[K, bytes]] = {}

    def __call__(self, key: K) -> bytes:
        hit = self.encoded.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        if len(self.encoded) >= self.limit:
            self.encoded.clear()
        encoded = json_bytes(self.body(key))
        self.encoded[id(key)] = (key, encoded)
        return encoded


@contextlib.asynccontextmanager
async def _httpx_stream(client: httpx.AsyncClient, method: str, url: str | httpx.URL,
                        **kwargs: Any) -> AsyncIterator[StreamResponse]:
    """``client.stream(...)``, then the response let go of its body stream: httpx links the
    two both ways (a reference cycle), so every request left ~50 objects (aiohttp's response,
    headers, trace) that only the cyclic collector could free; their full collections
    stalled the timing loop for 30-120 ms mid-run (docs/benchmarks.md, "Fidelity of latlab
    run"). Freed by reference counting instead, the moment the exchange ends."""
    response: httpx.Response | None = None
    try:
        async with client.stream(method, url, **kwargs) as response:
            yield response
    finally:
        if response is not None:
            response.stream = _EMPTY


_EMPTY = httpx.ByteStream(b"")


def raw_reader(response: StreamResponse) -> Callable[[], Awaitable[bytes]]:
    """The next raw chunk of the body (b"" at its end) through the fewest async layers: on the
    aiohttp transport aiohttp's own stream, which httpx reaches through three nested async
    generators per chunk (``aiter_raw`` → its bound stream → httpx-aiohttp's), else httpx's
    ``aiter_raw``. aiohttp's errors are classified as httpx's are (providers/failures.py)."""
    aiohttp_response = _aiohttp_response(response)
    if aiohttp_response is not None:
        return aiohttp_response.content.readany
    assert isinstance(response, httpx.Response)
    chunks = response.aiter_raw()
    return partial(anext, chunks, b"")


async def read_stream(response: StreamResponse, events: StreamEvents, clock: StreamClock) -> None:
    """Feed each chunk, stamped the moment its read returns (before parsing); stamp the end
    at the terminal event, then read the body's end too (as the SDKs do), so the pool can
    reuse the connection. On the aiohttp transport the chunks are fed from the socket's own
    read callback (``_BodyTap``); elsewhere through ``raw_reader``."""
    feed = partial(_feed, events, clock)
    aiohttp_response = _aiohttp_response(response)
    if aiohttp_response is not None and aiohttp_response.connection is not None:
        await _BodyTap(aiohttp_response, feed).read()
    else:
        read = raw_reader(response)
        while chunk := await read():
            feed(chunk, now_ns())
    if clock.t_done is None:
        clock.done()
    events.close()


def _feed(events: StreamEvents, clock: StreamClock, chunk: bytes, arrival_ns: int) -> None:
    """One chunk to the interpreter (none after the terminal event, which stamps the end)."""
    if events.finished:
        return
    events.feed(chunk, arrival_ns)
    if events.finished:
        clock.done()


def _aiohttp_response(response: StreamResponse) -> aiohttp.ClientResponse | None:
    """The aiohttp response under ``response``, if aiohttp sent it."""
    if isinstance(response, DirectResponse):
        return response.response
    inner = getattr(response, "stream", None)
    inner = getattr(inner, "_stream", None)
    return inner._aiohttp_response if isinstance(inner, AiohttpResponseStream) else None


class _BodyTap(asyncio.Protocol):
    """Stands in for an aiohttp connection's protocol while one body streams: each read is
    stamped, handed to aiohttp's parser (chunked framing, decompression) as before, and
    what the parser added to the body goes to ``feed`` at once, in the read's own callback.
    Per chunk this saves the reading task's wake-up, a future and ``readany``'s frames
    (bench/provider_cpu.py; docs/benchmarks.md). ``feed`` runs in the reading task's context
    (its context variables, e.g. providers/capture.py's). The task waits for the body's end
    only; a connection error or a failure in ``feed`` ends that wait with the exception."""

    def __init__(self, response: aiohttp.ClientResponse, feed: Callable[[bytes, int], None]):
        connection = response.connection
        assert connection is not None and connection.protocol is not None
        self.protocol, self.transport = connection.protocol, connection.transport
        self.content, self.feed = response.content, feed
        self.context = contextvars.copy_context()

    async def read(self) -> None:
        """Feed what is buffered already, then every later read, until the body ends."""
        self._drain(now_ns())
        transport = self.transport
        if transport is None or self.content.is_eof():
            await self.content.wait_eof()
            return
        transport.set_protocol(self)
        try:
            await self.content.wait_eof()
        finally:
            if transport.get_protocol() is self:
                transport.set_protocol(self.protocol)

    def _drain(self, arrival_ns: int) -> None:
        try:
            chunk = self.content.read_nowait()
            if chunk:
                self.feed(chunk, arrival_ns)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting task, which raises it
            self.content.set_exception(exc)

    def data_received(self, data: bytes) -> None:
        arrival_ns = now_ns()
        before = self.content.total_bytes
        self.protocol.data_received(data)
        if self.content.total_bytes != before:
            self.context.run(self._drain, arrival_ns)

    def eof_received(self) -> bool | None:
        self.protocol.eof_received()
        return None  # close the transport, as aiohttp's protocol does

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()


def finish_measurement(m: Measurement, clock: StreamClock, conn: ConnectionTiming) -> None:
    """Derive the phase durations from the clock's instants (definitions: runner/core/timing.py)."""
    m.connect_ms, m.tls_ms, m.new_connection = conn.connect_ms, conn.tls_ms, conn.new_connection
    m.ttfb_ms, m.ttft_ms, m.total_ms = clock.ttfb_ms(), clock.ttft_ms(), clock.total_ms()
    m.generation_ms = clock.generation_ms()
    m.itl_ms = clock.itl_ms()
    m.output_tps = output_tps(m.output_tokens, m.generation_ms)
    if m.usage_source is None and m.output_tokens is not None:
        m.usage_source = "api"


async def timed_exchange(exchange: Exchange, timeout_s: float,
                         finish: Finish = finish_measurement) -> Measurement:
    """Run one request exchange under a timeout; every failure becomes the row's error."""
    measurement, clock, conn = Measurement(), StreamClock(), ConnectionTiming()
    token = current_connection.set(conn)
    try:
        async with asyncio.timeout(timeout_s):
            await exchange(clock, measurement, conn)
    except Exception as exc:  # noqa: BLE001 - inside a sweep every failure is a row
        measurement.error_type = classify_failure(exc, measurement.status,
                                                  clock.t_headers is not None)
        measurement.error_message = describe(exc)
    finally:
        current_connection.reset(token)
    if clock.t_done is None:
        clock.done()
    finish(measurement, clock, conn)
    return measurement
