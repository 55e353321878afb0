"""The emulator's HTTP server: one aiohttp app speaking every provider's wire protocol.

``build_app`` gives each app its own ``EmulatorState`` (state.py: the profile, its seeded
generator, the statistics) and registers every protocol's routes: Anthropic Messages
(anthropic_routes.py), Bedrock Runtime (bedrock_routes.py), OpenAI-compatible
(openai_routes.py) and Vertex AI (vertex_routes.py), plus the emulator's own ``/_latlab/*``
endpoints here. ``start_site`` binds and starts serving. How a request is planned and paced
is in state.py, how it is sent in send.py.
"""

from __future__ import annotations

from aiohttp import web

from latlab.providers.emulator import anthropic_wire as wire
from latlab.providers.emulator.anthropic_routes import add_anthropic_routes
from latlab.providers.emulator.bedrock_routes import add_bedrock_routes
from latlab.providers.emulator.openai_routes import add_openai_routes
from latlab.providers.emulator.profile import EmulatorProfile
from latlab.providers.emulator.send import error_response
from latlab.providers.emulator.state import STATE_KEY, EmulatorState
from latlab.providers.emulator.vertex_routes import add_vertex_routes

LISTEN_BACKLOG = 4096  # aiohttp's default 128 drops SYNs when hundreds of streams open at once


async def handle_stats(request: web.Request) -> web.StreamResponse:
    """``GET /_latlab/stats``: counters and send-lag statistics (ms)."""
    return web.json_response(request.app[STATE_KEY].snapshot())


async def handle_stats_reset(request: web.Request) -> web.StreamResponse:
    """``POST /_latlab/stats/reset``."""
    request.app[STATE_KEY].stats.reset()
    return web.json_response({"ok": True})


async def handle_health(request: web.Request) -> web.StreamResponse:
    """``GET /_latlab/health``: readiness probe."""
    return web.json_response({"ok": True})


async def handle_not_found(request: web.Request) -> web.StreamResponse:
    return error_response(404, wire.new_request_id(), f"{request.method} {request.path} not found")


def build_app(profile: EmulatorProfile) -> web.Application:
    """The aiohttp application for one emulator (its own seeded generator and stats)."""
    app = web.Application()
    app[STATE_KEY] = EmulatorState(profile)
    add_anthropic_routes(app)  # Anthropic: /v1/messages, /v1/messages/count_tokens
    app.router.add_get("/_latlab/stats", handle_stats)
    app.router.add_post("/_latlab/stats/reset", handle_stats_reset)
    app.router.add_get("/_latlab/health", handle_health)
    add_bedrock_routes(app)  # Bedrock Runtime: /model/{modelId}/invoke, converse, …
    add_openai_routes(app)  # OpenAI-compatible: /v1/chat/completions, /v1/models
    add_vertex_routes(app)  # Vertex AI: …/publishers/anthropic/models/{model}:[stream]rawPredict
    app.router.add_route("*", "/{tail:.*}", handle_not_found)
    return app


def base_url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Bind and start accepting connections; returns the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(runner.addresses[0][1])
    return runner, base_url_for(host, bound_port)
