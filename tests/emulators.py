"""The emulators tests share (session-scoped fixtures in conftest.py), and their fixed timings.

A test module that needs a profile of its own (faults, capacity, a Bedrock layer, other
timings) starts its own emulator; the others use one of these, started once per xdist worker.
"""

from __future__ import annotations

from latlab.providers.emulator import EmulatorProfile

# ``emulator``: the providers' timing checks (Anthropic, OpenAI-compatible, Vertex, SDK clients)
TTFB_MS, TTFT_MS, ITL_MS, TOKENS = 15.0, 40.0, 4.0, 12
# ``quick_emulator``: the recording proxies (in-process and ``latlab proxy``)
QUICK_TTFB_MS, QUICK_TTFT_MS, QUICK_ITL_MS, QUICK_TOKENS = 5.0, 20.0, 2.0, 10


def provider_profile() -> EmulatorProfile:
    return EmulatorProfile.fixed(TTFB_MS, TTFT_MS, ITL_MS, TOKENS)


def quick_profile() -> EmulatorProfile:
    return EmulatorProfile.fixed(QUICK_TTFB_MS, QUICK_TTFT_MS, QUICK_ITL_MS, QUICK_TOKENS)
