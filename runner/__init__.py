"""latlab's runner: plan → schedule → time → write.

- ``runner.config``   compose + validate the Hydra config (JSON Schema, preflight)
- ``runner.plan``     expand the ``matrix`` into cells and each cell into requests
- ``runner.schedule`` order and pace requests (interleaved / sequential, closed loop)
- ``runner.timing``   a monotonic clock and the phase definitions every provider uses
- ``runner.write``    append rows to Parquet in small, atomically renamed files
- ``runner.app``      the Hydra main behind ``latlab run``
- ``runner.cli``      the ``latlab`` command
"""

import os as _os
import signal as _signal
import sys as _sys

__version__ = "0.1.0"

if _os.path.basename(_sys.argv[0]) == "latlab":  # Ctrl-C while starting: see runner/cli.py
    _signal.signal(_signal.SIGINT, lambda *_: _sys.exit(130))
