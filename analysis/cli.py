"""The analysis commands of ``latlab``: each converts its arguments and calls a typed
function in ``analysis.commands``. ``runner/cli.py`` registers them with
``register_analysis_commands``; every command that prints data takes the shared
output options (``--format table|csv|json``, ``--results DIR``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from runner.errors import LatlabError

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """The shared options of every command that prints data."""
    from analysis.formats import OUTPUT_FORMATS

    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="table",
                        help="output format (default: table)")
    parser.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                        help="results directory (default: ./results)")


def add_wide_option(parser: argparse.ArgumentParser) -> None:
    """``--wide``: every column in the table (by default, the columns that fit 100)."""
    parser.add_argument("--wide", action="store_true",
                        help="every column in the table (default: the chosen ones that fit "
                        "a 100-column terminal; csv and json always have every column)")


def cmd_sql(args: argparse.Namespace) -> None:
    from analysis.commands import sql_command

    print(sql_command(args.query, args.results, args.run, args.format))  # noqa: T201


def cmd_grade(args: argparse.Namespace) -> None:
    from analysis.commands import grade_command

    print(grade_command(args.results, args.run_ids or None, args.format,  # noqa: T201
                        load_slo(args.slo), args.wide))


def load_slo(name_or_path: str) -> dict[str, object]:
    """An SLO by name (conf/slo/NAME.yaml: the package runner.conf, which is the checkout's
    conf/ in an editable install) or by path to a YAML file."""
    import yaml

    path = Path(name_or_path)
    if path.is_file():
        return dict(yaml.safe_load(path.read_text()))
    from importlib import resources  # not runner.app: it imports Hydra and the runner (1 s)

    bundled = resources.files("runner.conf") / "slo" / f"{name_or_path}.yaml"
    if not bundled.is_file():
        raise LatlabError(f"--slo: no SLO named {name_or_path!r} and no such file")
    return dict(yaml.safe_load(bundled.read_text()))


class ViewsHelp(argparse.Action):
    """``latlab sql --help``: the help and every view, read from analysis/*.sql only then
    (that imports DuckDB: the other commands' start-up need not)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        import textwrap

        from analysis.query import view_names

        views = textwrap.fill(", ".join(view_names()), 78, initial_indent="  ",
                              subsequent_indent="  ")
        parser.epilog = f"views (SELECT * FROM NAME; also: SHOW TABLES, DESCRIBE NAME):\n{views}"
        parser.print_help()
        parser.exit()


def _add_sql(commands: Subcommands) -> None:
    sql = commands.add_parser("sql", help="run DuckDB SQL over the results", add_help=False,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              description="Run DuckDB SQL over the views of the results "
                              "(listed below; columns: docs/columns.md).")
    sql.add_argument("-h", "--help", action=ViewsHelp, nargs=0,
                     help="show this help and every view, then exit")
    sql.add_argument("query", help='the SQL, e.g. "SELECT * FROM cells"')
    sql.add_argument("--run", action="append", metavar="RUN_ID",
                     help="only this run (repeatable; a unique prefix is enough)")
    add_output_options(sql)
    sql.set_defaults(handler=cmd_sql)


def _add_grade(commands: Subcommands) -> None:
    grade = commands.add_parser("grade", help="SLO grades A–F per cell",
                                description="Grade each cell of the given runs (default: the "
                                "latest run) against an SLO.")
    grade.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    grade.add_argument("--slo", default="default", help="SLO name in conf/slo or a YAML path")
    add_output_options(grade)
    add_wide_option(grade)
    grade.set_defaults(handler=cmd_grade)


def cmd_tool_timings(args: argparse.Namespace) -> None:
    from analysis.commands import tool_timings_command

    print(tool_timings_command(args.results, args.run_ids or None, args.format,  # noqa: T201
                               args.by))


def _add_tool_timings(commands: Subcommands) -> None:
    timings = commands.add_parser(
        "tool-timings", help="agent sessions: model vs tool time (Bash, CLI, MCP, file)",
        description="Time in model calls vs each tool category of agent sessions, counts and "
        "shares: per provider (mean per session), per session, the session-level delta "
        "across providers, HTTP calls per session by endpoint, or Claude Code's own figures "
        "beside the proxy's (cli). Default: the latest run.")
    timings.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    timings.add_argument("--by", choices=("provider", "session", "delta", "endpoints", "cli"),
                         default="provider", help="one row per ... (default: provider)")
    add_output_options(timings)
    timings.set_defaults(handler=cmd_tool_timings)


def cmd_statusline(args: argparse.Namespace) -> None:
    import os
    import sys

    from analysis.statusline import statusline_command

    text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    print(statusline_command(args.results, text, args.format, os.environ))  # noqa: T201


def _add_statusline(commands: Subcommands) -> None:
    line = commands.add_parser(
        "statusline", help="one-line session summary for Claude Code's statusline",
        description="Print [D]/[BR]/[VX] provider tag, model, elapsed, Bash/CLI/MCP tool time "
        "and last TTFT of the current agent session (Claude Code's statusline JSON on stdin "
        "names it; else the latest session in the results).")
    add_output_options(line)
    line.set_defaults(handler=cmd_statusline)


def cmd_otlp_export(args: argparse.Namespace) -> None:
    from analysis.otlp import export_command

    print(export_command(args.results, args.run_ids or None, args.endpoint))  # noqa: T201


def _add_otlp_export(commands: Subcommands) -> None:
    export = commands.add_parser(
        "otlp-export", help="send spans and request rows to an OTLP/HTTP collector",
        description="Export the runs' spans (and request rows without a span) as OTLP/HTTP "
        "JSON traces with GenAI semantic-convention attributes. Default: the latest run.")
    export.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    export.add_argument("--endpoint", default="http://127.0.0.1:4318",
                        help="OTLP/HTTP base URL (default: http://127.0.0.1:4318)")
    export.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                        help="results directory (default: ./results)")
    export.set_defaults(handler=cmd_otlp_export)


def register_analysis_commands(commands: Subcommands) -> None:
    """Add every analysis subcommand to ``latlab``'s parser."""
    _add_sql(commands)
    _add_grade(commands)
    from analysis.cli_views import register_view_commands

    register_view_commands(commands)
    _add_tool_timings(commands)
    _add_statusline(commands)
    _add_otlp_export(commands)
