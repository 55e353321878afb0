"""latlab's httpx client over real sockets: httpx's API, cookies kept as httpx keeps them."""

from __future__ import annotations

import asyncio
import contextvars
import json

import pytest
from aiohttp import web

from latlab.providers.http import (
    make_http_client,
    open_stream,
    raw_reader,
    read_stream,
)
from latlab.runner.core.timing import StreamClock


async def cookie_app() -> tuple[web.AppRunner, str]:
    async def set_cookie(request: web.Request) -> web.Response:
        response = web.Response(text="ok")
        response.set_cookie("route", "b-7")
        return response

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="data: 1\n\ndata: 2\n\n")

    app = web.Application()
    app.router.add_get("/set", set_cookie)
    app.router.add_get("/plain", plain)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def exchange(transport: str) -> tuple[dict[str, str], dict[str, str], bytes]:
    runner, base = await cookie_app()
    client = make_http_client(transport)
    try:
        await client.get(base + "/plain")
        before = dict(client.cookies)
        await client.get(base + "/set")
        after = dict(client.cookies)
        body = b""
        async with open_stream(client, "GET", base + "/plain") as response:
            read = raw_reader(response)
            while chunk := await read():
                body += chunk
        return before, after, body
    finally:
        await client.aclose()
        await runner.cleanup()


def test_a_response_that_sets_a_cookie_is_kept_one_without_is_skipped() -> None:
    for transport in ("aiohttp", "httpcore"):
        before, after, body = asyncio.run(exchange(transport))
        assert before == {} and after == {"route": "b-7"}, transport
        assert body == b"data: 1\n\ndata: 2\n\n", transport


READER: contextvars.ContextVar[str] = contextvars.ContextVar("reader", default="elsewhere")


class Recorder:
    """A stream interpreter that keeps what it is fed; finished at ``data: end``."""

    def __init__(self, got_first: asyncio.Event, reader: str) -> None:
        self.chunks: list[bytes] = []
        self.reader = reader
        self.got_first, self.closed = got_first, False

    @property
    def finished(self) -> bool:
        return b"".join(self.chunks).endswith(b"data: end\n\n")

    def feed(self, chunk: bytes, arrival_ns: int) -> None:
        assert READER.get() == self.reader  # fed in the reading task's context
        self.chunks.append(chunk)
        self.got_first.set()

    def close(self) -> None:
        self.closed = True


async def stream_in_two(transport: str) -> list[bytes]:
    """The server sends its second piece only once the client was fed the first."""
    got_first = asyncio.Event()

    async def pieces(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"data: 1\n\n")
        await asyncio.wait_for(got_first.wait(), 5)
        await response.write(b"data: end\n\n")
        return response

    app = web.Application()
    app.router.add_get("/pieces", pieces)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    client = make_http_client(transport)
    try:
        bodies = []
        for stream in range(2):  # the second on the connection the first opened
            got_first.clear()
            events, clock = Recorder(got_first, f"stream {stream}"), StreamClock()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/pieces"
            READER.set(events.reader)
            async with open_stream(client, "GET", url) as response:
                await read_stream(response, events, clock)
            assert events.closed and clock.t_done is not None
            bodies.append(b"".join(events.chunks))
        return bodies
    finally:
        await client.aclose()
        await runner.cleanup()


def test_chunks_are_fed_as_they_arrive_not_at_the_end() -> None:
    for transport in ("aiohttp", "httpcore"):
        assert asyncio.run(stream_in_two(transport)) == [b"data: 1\n\ndata: end\n\n"] * 2


async def echo_both() -> list[tuple[dict[str, str], bytes]]:
    """One JSON request through httpx (httpcore transport) and one sent by aiohttp directly."""

    async def echo(request: web.Request) -> web.Response:
        kept = {k.lower(): v for k, v in request.headers.items()
                if k.lower() not in ("host", "content-length")}
        return web.json_response({"headers": kept, "body": (await request.read()).decode()})

    app = web.Application()
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/echo"
    seen = []
    try:
        for transport in ("httpcore", "aiohttp"):
            client = make_http_client(transport)
            assert (client.direct is not None) == (transport == "aiohttp")
            async with open_stream(client, "POST", url, json={"q": "é", "n": [1, 2.5]},
                                   headers={"X-Key": "k"}) as response:
                echoed = json.loads(await response.aread())
            await client.aclose()
            seen.append((echoed["headers"], echoed["body"].encode()))
        return seen
    finally:
        await runner.cleanup()


def test_a_request_sent_directly_is_the_one_httpx_sends() -> None:
    via_httpx, direct = asyncio.run(echo_both())
    assert direct == via_httpx and direct[1] == '{"q":"é","n":[1,2.5]}'.encode()
    assert direct[0]["x-key"] == "k" and direct[0]["user-agent"].startswith("python-httpx")


def test_a_proxy_in_the_environment_keeps_requests_on_httpx(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def direct_session() -> bool:
        client = make_http_client("aiohttp")
        await client.aclose()
        return client.direct is not None

    assert asyncio.run(direct_session())
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert not asyncio.run(direct_session())
