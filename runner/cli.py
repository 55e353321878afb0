"""The ``latlab`` command. Each subcommand converts its arguments and calls one typed function.

    latlab run [--experiments-dir DIR] [HYDRA OVERRIDES ...]   run an experiment (Hydra app)
    latlab emulator serve [--port N] [--ttft-ms ...]         the emulator, standalone
    latlab sql "SELECT ..."                                  DuckDB SQL over the results
    latlab grade [RUN_ID ...]                                SLO grades A–F per cell
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted_early(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C while latlab is still starting (importing): one line, no traceback."""
    print("latlab: interrupted", file=sys.stderr)  # noqa: T201
    sys.exit(130)


if os.path.basename(sys.argv[0]) == "latlab":  # the console script; main() restores Ctrl-C
    signal.signal(signal.SIGINT, _interrupted_early)

import argparse  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

from analysis.cli import register_analysis_commands  # noqa: E402
from runner.errors import LatlabError  # noqa: E402

Handler = Callable[[argparse.Namespace], None]
RUN_HELP = """Run an experiment: a Hydra app. Everything after `run` is Hydra's command line:
group overrides (provider=anthropic model=sonnet-4-5), key overrides
(workload.iterations=20), experiment=NAME, -m/--multirun for sweeps, --cfg job, --help."""


def experiments_searchpath(directory: Path) -> str:
    """A Hydra search-path override that makes DIR/*.yaml selectable as experiment=NAME."""
    if not directory.is_dir():
        raise LatlabError(f"--experiments-dir: {directory} is not a directory")
    root = Path(tempfile.mkdtemp(prefix="latlab-experiments-"))
    (root / "experiment").symlink_to(directory.resolve(), target_is_directory=True)
    return f"hydra.searchpath=[file://{root}]"


def cmd_run(args: argparse.Namespace) -> None:
    from runner import launch
    from runner.app import config_path
    from runner.guard import check_run_or_refuse

    overrides: list[str] = list(args.hydra_args)
    if args.experiments_dir is not None:
        overrides.append(experiments_searchpath(args.experiments_dir))
        launch.RUN_FLAGS[:] = ["--experiments-dir", str(args.experiments_dir.absolute())]
    folders = check_run_or_refuse(config_path(), overrides)  # before Hydra writes
    launch.run_hydra(overrides, folders)


def cmd_emulator_serve(args: argparse.Namespace) -> None:
    import asyncio

    from providers.emulator import serve_forever
    from providers.emulator.cli import profile_from_args

    def announce(url: str) -> None:
        print(url, flush=True)  # noqa: T201

    profile = profile_from_args(args)
    try:
        asyncio.run(serve_forever(profile, args.host, args.port, announce))
    except KeyboardInterrupt:
        pass


def cmd_proxy(args: argparse.Namespace) -> None:
    import asyncio

    from runner.live_proxy import serve

    def announce(line: str) -> None:
        print(line, flush=True)  # noqa: T201

    try:
        asyncio.run(serve(args.upstream, args.host, args.port, args.results, args.provider,
                          announce))
    except KeyboardInterrupt:
        pass


def _add_proxy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    proxy = commands.add_parser(
        "proxy", help="recording proxy for agent sessions you drive yourself",
        description="Forward every request to --upstream and record it as spans at once "
        "(one session per X-Claude-Code-Session-Id): point ANTHROPIC_BASE_URL at the URL "
        "printed first. Stop with Ctrl-C.")
    proxy.add_argument("--upstream", required=True, help="the API base URL to forward to")
    proxy.add_argument("--host", default="127.0.0.1", help="address to listen on")
    proxy.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    proxy.add_argument("--provider", default="anthropic",
                       help="provider name on the spans (statusline tag; default anthropic)")
    proxy.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                       help="results directory (default: ./results)")
    proxy.set_defaults(handler=cmd_proxy)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latlab", description="LLM API latency experiments.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run an experiment (Hydra app)", description=RUN_HELP)
    run.add_argument("--experiments-dir", type=Path, metavar="DIR",
                     help="also find experiment=NAME in DIR/NAME.yaml")
    run.set_defaults(handler=cmd_run)
    _add_emulator(commands)
    register_analysis_commands(commands)
    _add_proxy(commands)
    return parser


def _add_emulator(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from providers.emulator.cli import add_serve_arguments

    emulator = commands.add_parser("emulator", help="the provider emulator",
                                   description="The local provider emulator.")
    actions = emulator.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve until interrupted; prints the base URL first",
                               description="Serve the emulator until interrupted. The first "
                               "line of output is its base URL.")
    add_serve_arguments(serve)
    serve.set_defaults(handler=cmd_emulator_serve)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``latlab`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    signal.signal(signal.SIGINT, _interrupted_early)  # still starting: quietly
    if args_list[:1] == ["run"]:
        args = parser.parse_args(["run", *_run_own_flags(args_list[1:])[0]])
        args.hydra_args = _run_own_flags(args_list[1:])[1]
    else:
        args = parser.parse_args(args_list)
    handler: Handler = args.handler
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt from here
        handler(args)
    except LatlabError as exc:
        from runner.app import exit_with

        exit_with(exc)
    except KeyboardInterrupt:
        print("latlab: interrupted", file=sys.stderr)  # noqa: T201
        sys.exit(130)


def _run_own_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``latlab run``'s own flags (--experiments-dir) from Hydra's arguments."""
    own: list[str] = []
    rest: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--experiments-dir":
            own += [item, next(items, "")]
        elif item.startswith("--experiments-dir="):
            own.append(item)
        else:
            rest.append(item)
    return own, rest


if __name__ == "__main__":
    main()
