"""The standalone emulator with a log of the connections it accepts (bench only).

    python bench/emulator_accepts.py LOGFILE [emulator arguments]

Runs ``latlab.providers.emulator``'s command line after wrapping aiohttp's
``RequestHandler.connection_made`` (``aiohttp/web_protocol.py``) so that each accepted
connection appends its wall-clock time (epoch s) as one line to LOGFILE. Peers whose
per-request export does not say which requests opened a connection are marked from it
(``fidelity_figures.mark_new_connections``). Truncate the file between runs.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from aiohttp import web_protocol

from latlab.providers.emulator.cli import main

ORIGINAL = web_protocol.RequestHandler.connection_made


def logging_accepts(log: TextIO) -> None:
    """Make every accepted connection write its time to ``log`` first."""

    def connection_made(self: web_protocol.RequestHandler,
                        transport: asyncio.BaseTransport) -> None:
        log.write(f"{time.time():.6f}\n")
        ORIGINAL(self, transport)

    web_protocol.RequestHandler.connection_made = connection_made  # type: ignore[method-assign]


if __name__ == "__main__":
    with open(sys.argv[1], "a", buffering=1) as accepts:
        logging_accepts(accepts)
        raise SystemExit(main(sys.argv[2:]))
