"""latlab's runner: plan → schedule → time → write.

- ``runner.config``   compose + validate the Hydra config (JSON Schema, preflight)
- ``runner.plan``     expand the ``matrix`` into cells and each cell into requests
- ``runner.schedule`` order and pace requests (interleaved / sequential, closed loop)
- ``runner.timing``   a monotonic clock and the phase definitions every provider uses
- ``runner.write``    append rows to Parquet in small, atomically renamed files
- ``runner.guard``    check every job of ``latlab run`` before Hydra writes anything
- ``runner.rules``    config rules JSON Schema cannot state (NaN, URLs, provider.api, SLO order)
- ``runner.launch``   start Hydra: its errors as one line, no folder left by a refused run
- ``runner.app``      the Hydra main behind ``latlab run``
- ``runner.cli``      the ``latlab`` command
"""

# the C module, loaded with the interpreter: the handler is set before any import time
import _signal  # type: ignore[import-not-found]
import sys as _sys

if _sys.argv[0].rsplit("/", 1)[-1] == "latlab":  # Ctrl-C while starting: see runner/cli.py
    _signal.signal(_signal.SIGINT, lambda *_: _sys.exit(130))

__version__ = "0.1.0"
