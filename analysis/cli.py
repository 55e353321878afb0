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
    from analysis.query import OUTPUT_FORMATS

    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="table",
                        help="output format (default: table)")
    parser.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                        help="results directory (default: ./results)")


def cmd_sql(args: argparse.Namespace) -> None:
    from analysis.commands import sql_command

    print(sql_command(args.query, args.results, args.run, args.format))  # noqa: T201


def cmd_grade(args: argparse.Namespace) -> None:
    from analysis.commands import grade_command

    print(grade_command(args.results, args.run_ids or None, args.format,  # noqa: T201
                        load_slo(args.slo)))


def load_slo(name_or_path: str) -> dict[str, object]:
    """An SLO by name (conf/slo/NAME.yaml) or by path to a YAML file."""
    import yaml

    from runner.app import CHECKOUT_CONF

    path = Path(name_or_path)
    if not path.is_file():
        path = CHECKOUT_CONF / "slo" / f"{name_or_path}.yaml"
    if not path.is_file():
        from importlib import resources

        bundled = resources.files("runner.conf") / "slo" / f"{name_or_path}.yaml"
        if not bundled.is_file():
            raise LatlabError(f"--slo: no SLO named {name_or_path!r} and no such file")
        return dict(yaml.safe_load(bundled.read_text()))
    return dict(yaml.safe_load(path.read_text()))


def _add_sql(commands: Subcommands) -> None:
    sql = commands.add_parser("sql", help="run DuckDB SQL over the results",
                              description="Run SQL over the views requests, runs, cells, grades.")
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
    grade.set_defaults(handler=cmd_grade)


def register_analysis_commands(commands: Subcommands) -> None:
    """Add every analysis subcommand to ``latlab``'s parser."""
    _add_sql(commands)
    _add_grade(commands)
    from analysis.cli_views import register_view_commands

    register_view_commands(commands)
