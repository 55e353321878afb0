"""The analysis commands of ``latlab``: each converts its arguments and calls a typed
function in ``latlab.analysis.commands``. ``runner/app/cli.py`` registers them with
``register_analysis_commands``; every command that prints data takes the shared
output options (``--format table|csv|json``, ``--results DIR``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from latlab.analysis import OUTPUT_FORMATS
from latlab.runner.core.errors import LatlabError
from latlab.runner.core.paths import conf_file

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_output_options(parser: argparse.ArgumentParser, default_format: str = "table") -> None:
    """The shared options of every command that prints data."""
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default=default_format,
                        help=f"output format (default: {default_format})")
    parser.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                        help="results directory (default: ./results)")


def add_wide_option(parser: argparse.ArgumentParser) -> None:
    """``--wide``: every column in the table (by default, the columns that fit 100)."""
    parser.add_argument("--wide", action="store_true",
                        help="every column in the table (default: the chosen ones that fit "
                        "a 100-column terminal; csv and json always have every column)")


def cmd_sql(args: argparse.Namespace) -> None:
    from latlab.analysis.commands import sql_command

    emit(sql_command(args.query, args.results, args.run, args.format))


def cmd_grade(args: argparse.Namespace) -> None:
    from latlab.analysis.commands import grade_command

    emit(grade_command(args.results, args.run_ids or None, args.format,
                        load_slo(args.slo), args.wide))


def load_slo(name_or_path: str) -> dict[str, object]:
    """An SLO by name (conf/slo/NAME.yaml: the package latlab.conf, which is the checkout's
    conf/ in an editable install) or by path to a YAML file."""
    import yaml

    path = Path(name_or_path)
    if not path.is_file():
        path = conf_file("slo", f"{name_or_path}.yaml")
    if not path.is_file():
        raise LatlabError(f"--slo: no SLO named {name_or_path!r} and no such file")
    return dict(yaml.safe_load(path.read_text()))


class ViewsHelp(argparse.Action):
    """``latlab sql --help``: the help and every view, read from analysis/*.sql only then
    (that imports DuckDB: the other commands' start-up need not)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        import textwrap

        from latlab.analysis.query import view_names

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
    from latlab.analysis.commands import tool_timings_command

    emit(tool_timings_command(args.results, args.run_ids or None, args.format,
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

    from latlab.analysis.statusline import statusline_command

    text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    emit(statusline_command(args.results, text, args.format, os.environ))


def _add_statusline(commands: Subcommands) -> None:
    line = commands.add_parser(
        "statusline", help="one-line session summary for Claude Code's statusline",
        description="Print [D]/[BR]/[VX] provider tag, model, elapsed, Bash/CLI/MCP tool time "
        "and last TTFT of the current agent session (Claude Code's statusline JSON on stdin "
        "names it; else the latest session in the results).")
    add_output_options(line)
    line.set_defaults(handler=cmd_statusline)


def cmd_otlp_export(args: argparse.Namespace) -> None:
    from latlab.analysis.otlp import export_command

    emit(export_command(args.results, args.run_ids or None, args.endpoint))


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


def emit(text: str) -> None:
    """Print a command's text; a reader that went away ends the output quietly."""
    import os
    import sys

    try:
        print(text)  # noqa: T201
        sys.stdout.flush()
    except BrokenPipeError:  # `latlab export cells | head`: the reader is gone, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def cmd_budget(args: argparse.Namespace) -> None:
    from latlab.analysis.budget import budget_command

    emit(budget_command(args.results, args.run_ids or None, args.format, args.stat,
                        args.deltas, args.wide))


def _add_budget(commands: Subcommands) -> None:
    p = commands.add_parser(
        "budget", help="where every millisecond goes, per cell",
        description="Per cell, the mean (or median) of each phase of a request: connect + "
        "TLS, time to headers, the rest of the time to first token, generation and the tail "
        "after the last token, with the provider's own reported latency beside them; then "
        "what each cell adds over a cell that differs in one axis (view budget_delta). "
        "Default: the latest run.")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    p.add_argument("--stat", default="mean", help="mean (adds up to the total) or p50")
    p.add_argument("--deltas", action="store_true",
                   help="print the per-phase deltas between cells (view budget_delta)")
    add_output_options(p)
    add_wide_option(p)
    p.set_defaults(handler=cmd_budget)


def cmd_compare(args: argparse.Namespace) -> None:
    from latlab.analysis.compare import CompareOptions, compare_command

    results, run_ids = args.results, list(args.targets)
    if run_ids and Path(run_ids[0]).is_dir():
        results, run_ids = Path(run_ids[0]), run_ids[1:]
    opts = CompareOptions(metrics=args.metric or ("ttft_ms", "total_ms", "output_tps"),
                          detect=args.detect, seed=args.seed)
    emit(compare_command(results, run_ids, args.format, args.latest, args.by, opts,
                         args.wide))


def _add_compare(commands: Subcommands) -> None:
    p = commands.add_parser(
        "compare", help="compare runs or cells: deltas, 95%% CIs, verdicts",
        description="Compare the same cell across runs (the first run named is the "
        "baseline; with --latest N, the oldest of them), or, with --by AXIS, cells of one "
        "run that differ in that axis only. For each metric: medians, delta, ratio, a 95% "
        "bootstrap confidence interval of the median difference, a verdict (faster, slower, "
        "within noise, too few requests) and, when the interval is too wide, the requests "
        "per cell needed to resolve a difference of --detect x the baseline median.")
    p.add_argument("targets", nargs="*", metavar="RUN_ID|DIR",
                   help="run ids (unique prefixes), or a results directory first")
    p.add_argument("--latest", type=int, metavar="N", help="the N most recent runs")
    p.add_argument("--by", metavar="AXIS",
                   help="compare cells within a run: provider, model, prompt, guardrail, "
                   "stream or a matrix key")
    p.add_argument("--metric", action="append",
                   help="ttft_ms, total_ms, ttfb_ms, output_tps (repeatable; default: "
                   "ttft_ms, total_ms, output_tps)")
    p.add_argument("--detect", type=float, default=0.05,
                   help="difference worth resolving, share of the baseline median (0.05)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    add_output_options(p)
    add_wide_option(p)
    p.set_defaults(handler=cmd_compare)


def cmd_export(args: argparse.Namespace) -> None:
    from latlab.analysis.export import export_command

    emit(export_command(args.view, args.results, args.run, args.format, args.output))


def _add_export(commands: Subcommands) -> None:
    p = commands.add_parser(
        "export", help="export any view as CSV or JSON",
        description="Print (or write with --output) every row of one view or table of "
        "analysis/*.sql: requests, runs, cells, grades, budget, budget_phases, budget_delta, "
        "comparison, advice, …")
    p.add_argument("view", help="the view's name, e.g. cells")
    p.add_argument("--run", action="append", metavar="RUN_ID",
                   help="only this run (repeatable; a unique prefix is enough)")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write to FILE")
    add_output_options(p, default_format="csv")
    p.set_defaults(handler=cmd_export)


def cmd_advise(args: argparse.Namespace) -> None:
    from latlab.analysis.advise import advise_command

    emit(advise_command(args.results, args.run_ids or None, args.format, load_slo(args.slo)))


def _add_advise(commands: Subcommands) -> None:
    p = commands.add_parser(
        "advise", help="what to change, with the evidence",
        description="Rules over the measured views (view advice): large uncached prompts "
        "with high TTFT -> prompt caching; Opus on short tasks -> a smaller model; an "
        "indirect provider's overhead dominating -> route to the direct API; many new "
        "connections -> reuse clients; slow non-streamed calls -> stream; timeouts -> raise "
        "the timeout; requests refused for the rate limit, or a limit nearly used up -> lower "
        "the concurrency, spread the traffic or raise the limit. Each row names the cell and "
        "the figures. Default: the latest run.")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    p.add_argument("--slo", default="default", help="SLO name in conf/slo or a YAML path")
    add_output_options(p)
    p.set_defaults(handler=cmd_advise)


def cmd_report(args: argparse.Namespace) -> None:
    from latlab.analysis.report import report_command

    if args.since is not None:  # the history of a monitor (analysis/history.py)
        from latlab.analysis.history import history_command

        emit(history_command(args.results, args.since, load_slo(args.slo), args.format,
                             args.html))
        return

    emit(report_command(args.results, args.run_ids or None, args.latest, args.html,
                          args.markdown, load_slo(args.slo), args.format))


def _add_report(commands: Subcommands) -> None:
    p = commands.add_parser(
        "report", help="Markdown and self-contained HTML report with plots",
        description="A report over the views: run metadata, grades, the budget, comparisons "
        "(95% bootstrap CIs), advice; the HTML file adds interactive Plotly plots (TTFT "
        "ECDF per cell, box plots of TTFT, total and tokens/s, the budget as stacked bars, "
        "TTFT over time with the run's schedule, comparison intervals; plotly.js inlined, "
        "nothing fetched). Prints the Markdown unless --markdown FILE. Default: the latest "
        "run.")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    p.add_argument("--latest", type=int, metavar="N", help="the N most recent runs")
    p.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report to FILE")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write the Markdown to FILE")
    p.add_argument("--since", metavar="DURATION", help="history instead of runs: each cell's "
                   "TTFT over the last DURATION (24h, 7d) by time and by hour of day, and that "
                   "window against the one before (bootstrap CI)")
    p.add_argument("--slo", default="default", help="SLO name in conf/slo or a YAML path")
    p.add_argument("--format", choices=("markdown", "html", "json"), default="markdown",
                   help="what to print: markdown (default), the html page, or json (the "
                   "tables and notes, no plots); tables of one view: latlab export")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results directory (default: ./results)")
    p.set_defaults(handler=cmd_report)


def cmd_trace_export(args: argparse.Namespace) -> None:
    from latlab.analysis.trace_export import trace_export_command

    emit(trace_export_command(args.results, args.run_id))


def _add_trace(commands: Subcommands) -> None:
    trace = commands.add_parser(
        "trace", help="recorded calls as a replayable trace",
        description="Traces of recorded runs, for workload=replay.")
    actions = trace.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "export", help="print a run's recorded calls as a replay trace (JSONL)",
        description="One JSON line per measured call of the run (recorded with "
        "workload.capture_bodies=true): the exact request (model, max_tokens, system, tools, "
        "messages), session_id, turn, offset_s and gap_s (the time after the session's "
        "previous call ended). Replay it: latlab run workload=replay workload.trace=FILE. "
        "Default: the latest run.")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="a run id or unique prefix")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results directory (default: ./results)")
    p.set_defaults(handler=cmd_trace_export)


def register_analysis_commands(commands: Subcommands) -> None:
    """Add every analysis subcommand to ``latlab``'s parser."""
    _add_sql(commands)
    _add_grade(commands)
    _add_budget(commands)
    _add_compare(commands)
    _add_export(commands)
    _add_advise(commands)
    _add_report(commands)
    _add_tool_timings(commands)
    _add_statusline(commands)
    _add_otlp_export(commands)
    _add_trace(commands)
    _add_alerts(commands)


def cmd_alerts(args: argparse.Namespace) -> None:
    from latlab.analysis.alerts import alerts_command

    emit(alerts_command(args.results, load_slo(args.slo) if args.slo else None, args.monitor,
                        args.format, args.all))


def _add_alerts(commands: Subcommands) -> None:
    p = commands.add_parser(
        "alerts", help="SLO burn-rate alerts over a monitor's history: what fires and why",
        description="Evaluate the multi-window multi-burn-rate alerts (conf/slo: objectives, "
        "burn_alerts) over the recent rounds of `latlab monitor` and print each firing alert "
        "with its numbers, then the burn rates.")
    p.add_argument("--monitor", metavar="ID", help="only this monitor id (default: all)")
    p.add_argument("--slo", default=None, help="SLO name in conf/slo or a YAML path (default: "
                   "the SLO the monitor ran with)")
    p.add_argument("--all", action="store_true", help="list every alert, not only firing ones")
    add_output_options(p)
    p.set_defaults(handler=cmd_alerts)
