"""latlab's httpx client over real sockets: httpx's API, cookies kept as httpx keeps them."""

from __future__ import annotations

import asyncio

from aiohttp import web

from latlab.providers.http import make_http_client, open_stream, raw_reader


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
