"""Command-line pieces of the emulator, shared by ``python -m latlab.providers.emulator`` and
``latlab emulator serve``: the arguments, the profile they select, and the serve loop."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from latlab.providers.emulator import serve_forever
from latlab.providers.emulator.profile import EmulatorProfile
from latlab.providers.emulator.state import PACING
from latlab.runner.core.paths import conf_dir
from latlab.runner.core.timing import new_event_loop

DEFAULT_PROFILE = "default"


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--host --port --profile`` and the fixed-timing override flags."""
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="bind port; 0 = ephemeral (default)")
    parser.add_argument(
        "--profile",
        default=None,
        metavar="PATH",
        help="profile YAML, or a profile name from conf/profile (default: default)",
    )
    fixed = parser.add_argument_group(
        "fixed timings", "each given value replaces that distribution for every model (sigma 0)"
    )
    fixed.add_argument("--ttfb-ms", type=float, default=None, help="time to headers, ms")
    fixed.add_argument("--ttft-ms", type=float, default=None, help="time to first token, ms")
    fixed.add_argument("--itl-ms", type=float, default=None, help="inter-token gap, ms")
    fixed.add_argument("--output-tokens", type=int, default=None, help="tokens per response")
    fixed.add_argument("--error-rate", type=float, default=None, help="share of failing requests")
    fixed.add_argument("--seed", type=int, default=None, help="seed of all latency/fault draws")
    parser.add_argument("--spin-margin-us", type=float, default=None, metavar="US",
                        help="busy-wait this long before each send instant (default "
                             f"{PACING.spin_margin_ns / 1000:g}; 0: never spin, less CPU)")


def profile_dir() -> Path:
    """``conf/profile``: the bundled latency profiles."""
    return conf_dir() / "profile"


def load_profile(ref: str | None) -> EmulatorProfile:
    """A profile from a YAML path, or by name from :func:`profile_dir` (None = default)."""
    ref = ref or DEFAULT_PROFILE
    path = Path(ref)
    if path.is_file():
        return EmulatorProfile.load(path)
    if path.suffix in ("", ".yaml", ".yml") and len(path.parts) == 1:
        name = path.stem if path.suffix else ref
        candidate = profile_dir() / f"{name}.yaml"
        if candidate.is_file():
            return EmulatorProfile.from_yaml(candidate.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"emulator profile not found: {ref}")


def profile_from_args(args: argparse.Namespace) -> EmulatorProfile:
    """The profile selected by ``--profile`` with the fixed-timing flags applied."""
    profile = load_profile(getattr(args, "profile", None))
    return profile.with_overrides(
        ttfb_ms=getattr(args, "ttfb_ms", None),
        ttft_ms=getattr(args, "ttft_ms", None),
        itl_ms=getattr(args, "itl_ms", None),
        output_tokens=getattr(args, "output_tokens", None),
        error_rate=getattr(args, "error_rate", None),
        seed=getattr(args, "seed", None),
    )


def _print_ready(base_url: str) -> None:
    sys.stdout.write(base_url + "\n")
    sys.stdout.flush()


async def _serve_until_signal(profile: EmulatorProfile, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve_forever(profile, host, port, _print_ready, stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; the base URL is the first line on stdout. Exit status."""
    try:
        profile = profile_from_args(args)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"emulator: {exc}\n")
        return 2
    if getattr(args, "spin_margin_us", None) is not None:
        PACING.spin_margin_ns = round(args.spin_margin_us * 1000)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve_until_signal(profile, args.host, args.port))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m latlab.providers.emulator",
        description="Local Anthropic Messages API emulator with latency profiles and faults.",
    )
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))
