"""The ``latlab`` command. Each subcommand converts its arguments and calls one typed function.

    latlab run [--experiments-dir DIR] [HYDRA OVERRIDES ...]   run an experiment (Hydra app)
    latlab emulator serve [--port N] [--ttft-ms ...]         the emulator, standalone
    latlab sql "SELECT ..."                                  DuckDB SQL over the results
    latlab grade [RUN_ID ...]                                SLO grades A–F per cell
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from latlab import interrupted_early
from latlab.analysis import OUTPUT_FORMATS
from latlab.analysis.cli import Subcommands, emit, load_slo, register_analysis_commands
from latlab.runner.core.errors import LatlabError
from latlab.runner.core.paths import HYDRA_CONFIG_PATH, conf_dir

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


def run_help(argv: Sequence[str]) -> None:
    """``latlab run --help``: Hydra prints latlab's help page (conf/hydra/help/latlab.yaml)
    without importing the runner (1.3 s): the task never runs."""
    import hydra

    from latlab.runner.config.compose import HYDRA_VERSION_BASE

    sys.argv = ["latlab run", *argv]
    hydra.main(version_base=HYDRA_VERSION_BASE, config_path=HYDRA_CONFIG_PATH,
               config_name="config")(lambda cfg: None)()


def cmd_run(args: argparse.Namespace) -> None:
    from latlab.runner.app import resume_hint
    from latlab.runner.app.guard import check_run_or_refuse
    from latlab.runner.app.launch import run_hydra

    overrides: list[str] = list(args.hydra_args)
    if args.experiments_dir is not None:
        overrides.append(experiments_searchpath(args.experiments_dir))
        resume_hint.RUN_FLAGS[:] = ["--experiments-dir", str(args.experiments_dir.absolute())]
    if "--help" in overrides or "-h" in overrides:
        run_help(overrides)
        return
    folders = check_run_or_refuse(overrides)  # before Hydra writes anything
    run_hydra(overrides, folders)


def cmd_emulator_serve(args: argparse.Namespace) -> None:
    import asyncio

    from latlab.providers.emulator import serve_forever
    from latlab.providers.emulator.cli import profile_from_args

    def announce(url: str) -> None:
        print(url, flush=True)  # noqa: T201

    profile = profile_from_args(args)
    try:
        asyncio.run(serve_forever(profile, args.host, args.port, announce))
    except KeyboardInterrupt:
        pass


def cmd_proxy(args: argparse.Namespace) -> None:
    import asyncio

    from latlab.runner.app.live_proxy import serve

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


def build_parser(emulator_arguments: bool = True) -> argparse.ArgumentParser:
    """latlab's parser; without ``emulator_arguments``, ``emulator serve`` has none (they
    import the emulator, 0.3 s: only ``latlab emulator ...`` needs them)."""
    parser = argparse.ArgumentParser(prog="latlab", description="LLM API latency experiments.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run an experiment (Hydra app)", description=RUN_HELP)
    run.add_argument("--experiments-dir", type=Path, metavar="DIR",
                     help="also find experiment=NAME in DIR/NAME.yaml")
    run.set_defaults(handler=cmd_run)
    _add_emulator(commands, emulator_arguments)
    register_analysis_commands(commands)
    _add_check(commands)
    _add_proxy(commands)
    _add_monitor(commands)
    _add_compact(commands)
    return parser


COMPACT_HELP = """Merge the small files of finished runs into one file per UTC day and dataset
(<results>/compacted/DAY/), keeping every row and column: a year of 5-minute monitor rounds is
~365 day files instead of ~105 k run files, and `latlab alerts` or `report --since 7d` open
only the days they need. `latlab monitor` does this by itself once an hour. Safe to kill at
any moment; superseded files are removed once their replacement is --grace old (readers
ignore them meanwhile)."""


def cmd_compact(args: argparse.Namespace) -> None:
    from latlab.runner.results.compact import compact_command

    emit(compact_command(args.results, args.older_than, args.grace))


def _add_compact(commands: Subcommands) -> None:
    p = commands.add_parser("compact", help="merge finished runs into one file per day "
                            "(a long monitor history stays fast)", description=COMPACT_HELP)
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results directory (default: ./results)")
    p.add_argument("--older-than", default="1h", metavar="DURATION",
                   help="merge runs started at least this long ago (default: 1h)")
    p.add_argument("--grace", default="10m", metavar="DURATION",
                   help="remove superseded files once their replacement is this old "
                   "(default: 10m; 0: at once)")
    p.set_defaults(handler=cmd_compact)


MONITOR_HELP = """Run an experiment again and again (a probe): every round is a normal run in
the results, linked by its monitor id (runs.monitor_id, monitor_round). Takes the same Hydra
overrides as `latlab run`, plus the monitor group: monitor.every=5m monitor.jitter=0.1
monitor.duration=24h monitor.rounds=N monitor.max_rps=1 monitor.id=NAME monitor.webhook=URL.
The first Ctrl-C or SIGTERM stops after the current round; a second one stops at once."""


def cmd_monitor(args: argparse.Namespace) -> None:
    from latlab.runner.app.guard import check_run_or_refuse
    from latlab.runner.app.monitor import monitor_command

    overrides: list[str] = list(args.overrides)
    for flag, key in (("metrics_port", "metrics_port"), ("monitor_id", "id"),
                      ("webhook", "webhook")):
        if getattr(args, flag) is not None:
            overrides.append(f"monitor.{key}={getattr(args, flag)}")
    if args.experiments_dir is not None:
        overrides.append(experiments_searchpath(args.experiments_dir))
    check_run_or_refuse(overrides)
    monitor_command(overrides)


def _add_monitor(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("monitor", help="continuous synthetic probes: rounds, /metrics, "
                            "burn-rate alerts", description=MONITOR_HELP)
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                   help="Hydra overrides, e.g. experiment=probe monitor.every=1m")
    p.add_argument("--metrics-port", type=int, metavar="N",
                   help="serve Prometheus /metrics on 127.0.0.1:N (monitor.metrics_port)")
    p.add_argument("--monitor-id", metavar="ID", help="monitor id to continue or start "
                   "(monitor.id; default: run_name, else the experiment name)")
    p.add_argument("--webhook", metavar="URL", help="POST firing/resolved alerts here, "
                   "Alertmanager webhook JSON (monitor.webhook)")
    p.add_argument("--experiments-dir", type=Path, metavar="DIR",
                   help="also find experiment=NAME in DIR/NAME.yaml")
    p.set_defaults(handler=cmd_monitor)


def _add_emulator(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                  arguments: bool) -> None:
    emulator = commands.add_parser("emulator", help="the provider emulator",
                                   description="The local provider emulator.")
    actions = emulator.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve until interrupted; prints the base URL first",
                               description="Serve the emulator until interrupted. The first "
                               "line of output is its base URL.")
    if arguments:
        from latlab.providers.emulator.cli import add_serve_arguments

        add_serve_arguments(serve)
    serve.set_defaults(handler=cmd_emulator_serve)


def cmd_check(args: argparse.Namespace) -> None:
    from latlab.runner.app.check import check_command

    mode = "emulator" if args.emulator else "real" if args.real else "auto"
    emit(check_command(args.providers, args.format, args.n, args.model, mode,
                         args.keep, load_slo(args.slo), args.overrides or ()))


def _add_check(commands: Subcommands) -> None:
    p = commands.add_parser(
        "check", help="quick probe: a few requests per provider, printed at once",
        description="Send one (or -n) requests to each named provider through latlab's "
        "provider code and print TTFB, TTFT, total, tokens/s, the request id and the grade "
        "the cell would get. A provider without credentials (or, for vertex, a project) is "
        "probed on the embedded emulator (column emulated); --real refuses that, --emulator "
        "forces it.")
    p.add_argument("providers", nargs="*", metavar="PROVIDER",
                   help=f"provider config names: {', '.join(provider_names())}")
    p.add_argument("-n", type=int, default=1, help="requests per provider (1-20, default 1)")
    p.add_argument("--model", default="haiku-4-5", help="model config name (haiku-4-5)")
    p.add_argument("--slo", default="default", help="SLO name in conf/slo or a YAML path")
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--real", action="store_true", help="real APIs only: no credentials "
                       "is an error")
    modes.add_argument("--emulator", action="store_true", help="every provider on the emulator")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="write the probe's rows under DIR (default: a temporary directory)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="an extra config override, e.g. --set provider.region=eu-west-1")
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="table",
                   help="output format (default: table)")
    p.set_defaults(handler=cmd_check)


def provider_names() -> list[str]:
    """Every provider config (conf/provider/NAME.yaml)."""
    return sorted(p.stem for p in (conf_dir() / "provider").glob("*.yaml"))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``latlab`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(emulator_arguments=args_list[:1] == ["emulator"])
    signal.signal(signal.SIGINT, interrupted_early)  # still starting: quietly
    if args_list[:1] == ["run"]:
        args = parser.parse_args(["run", *_run_own_flags(args_list[1:])[0]])
        args.hydra_args = _run_own_flags(args_list[1:])[1]
    elif args_list[:1] == ["monitor"] and not {"-h", "--help"} & set(args_list):
        own, rest = _run_own_flags(args_list[1:], MONITOR_FLAGS)
        args = parser.parse_args(["monitor", *own])
        args.overrides = rest  # Hydra overrides, before or after the flags
    else:
        args = parser.parse_args(args_list)
    handler: Handler = args.handler
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt from here
        handler(args)
    except LatlabError as exc:
        from latlab.runner.app.hydra_app import exit_with

        exit_with(exc)
    except KeyboardInterrupt:
        print("latlab: interrupted", file=sys.stderr)  # noqa: T201
        sys.exit(130)


MONITOR_FLAGS = ("--experiments-dir", "--metrics-port", "--monitor-id", "--webhook")


def _run_own_flags(argv: list[str], flags: Sequence[str] = ("--experiments-dir",)
                   ) -> tuple[list[str], list[str]]:
    """Split a command's own flags (each taking a value) from Hydra's arguments."""
    own: list[str] = []
    rest: list[str] = []
    items = iter(argv)
    for item in items:
        if item in flags:
            own += [item, next(items, "")]
        elif item.partition("=")[0] in flags:
            own.append(item)
        else:
            rest.append(item)
    return own, rest


if __name__ == "__main__":
    main()
