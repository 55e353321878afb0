"""CLI of the issue-4 analysis commands: budget, compare, export, check, advise, report.

Registered by ``analysis.cli.register_analysis_commands``; each handler converts its
arguments and calls one typed function, printing the text it returns.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from analysis.cli import add_output_options, add_wide_option

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _print(text: str) -> None:
    import os
    import sys

    try:
        print(text)  # noqa: T201
        sys.stdout.flush()
    except BrokenPipeError:  # `latlab export cells | head`: the reader is gone, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def cmd_budget(args: argparse.Namespace) -> None:
    from analysis.budget import budget_command

    _print(budget_command(args.results, args.run_ids or None, args.format, args.stat,
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
    from analysis.compare import CompareOptions, compare_command

    results, run_ids = args.results, list(args.targets)
    if run_ids and Path(run_ids[0]).is_dir():
        results, run_ids = Path(run_ids[0]), run_ids[1:]
    opts = CompareOptions(metrics=args.metric or ("ttft_ms", "total_ms", "output_tps"),
                          detect=args.detect, seed=args.seed)
    _print(compare_command(results, run_ids, args.format, args.latest, args.by, opts,
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


def register_view_commands(commands: Subcommands) -> None:
    """Add budget, compare, export, check, advise and report."""
    _add_budget(commands)
    _add_compare(commands)
    _add_check(commands)
    _add_export(commands)
    _add_advise(commands)
    _add_report(commands)


def cmd_check(args: argparse.Namespace) -> None:
    from analysis.check import check_command
    from analysis.cli import load_slo

    mode = "emulator" if args.emulator else "real" if args.real else "auto"
    _print(check_command(args.providers, args.format, args.n, args.model, mode,
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
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format (default: table)")
    p.set_defaults(handler=cmd_check)


def provider_names() -> list[str]:
    """Every provider config (conf/provider/NAME.yaml), checkout or installed package."""
    from importlib import resources

    folder = resources.files("runner.conf") / "provider"
    return sorted(f.name.removesuffix(".yaml") for f in folder.iterdir()
                  if f.name.endswith(".yaml"))


def cmd_export(args: argparse.Namespace) -> None:
    from analysis.export import export_command

    _print(export_command(args.view, args.results, args.run, args.format, args.output))


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
    add_output_options(p)
    p.set_defaults(handler=cmd_export, format="csv")
    for action in p._actions:
        if action.dest == "format":
            action.default, action.help = "csv", "output format (default: csv)"


def cmd_advise(args: argparse.Namespace) -> None:
    from analysis.advise import advise_command
    from analysis.cli import load_slo

    _print(advise_command(args.results, args.run_ids or None, args.format, load_slo(args.slo)))


def _add_advise(commands: Subcommands) -> None:
    p = commands.add_parser(
        "advise", help="what to change, with the evidence",
        description="Rules over the measured views (view advice): large uncached prompts "
        "with high TTFT -> prompt caching; Opus on short tasks -> a smaller model; an "
        "indirect provider's overhead dominating -> route to the direct API; many new "
        "connections -> reuse clients; slow non-streamed calls -> stream; timeouts -> raise "
        "the timeout. Each row names the cell and the figures. Default: the latest run.")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    p.add_argument("--slo", default="default", help="SLO name in conf/slo or a YAML path")
    add_output_options(p)
    p.set_defaults(handler=cmd_advise)


def cmd_report(args: argparse.Namespace) -> None:
    from analysis.cli import load_slo
    from analysis.report import report_command

    _print(report_command(args.results, args.run_ids or None, args.latest, args.html,
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
    p.add_argument("--slo", default="default", help="SLO name in conf/slo or a YAML path")
    p.add_argument("--format", choices=("markdown", "html", "json"), default="markdown",
                   help="what to print: markdown (default), the html page, or json (the "
                   "tables and notes, no plots); tables of one view: latlab export")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results directory (default: ./results)")
    p.set_defaults(handler=cmd_report)
