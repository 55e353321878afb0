"""CLI of the issue-4 analysis commands: budget, compare, export, check, advise, report.

Registered by ``analysis.cli.register_analysis_commands``; each handler converts its
arguments and calls one typed function, printing the text it returns.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from analysis.cli import add_output_options

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _print(text: str) -> None:
    print(text)  # noqa: T201


def cmd_budget(args: argparse.Namespace) -> None:
    from analysis.budget import budget_command

    _print(budget_command(args.results, args.run_ids or None, args.format, args.stat,
                          args.deltas))


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
    p.set_defaults(handler=cmd_budget)


def cmd_compare(args: argparse.Namespace) -> None:
    from analysis.compare import CompareOptions, compare_command

    results, run_ids = args.results, list(args.targets)
    if run_ids and Path(run_ids[0]).is_dir():
        results, run_ids = Path(run_ids[0]), run_ids[1:]
    opts = CompareOptions(metrics=args.metric or ("ttft_ms", "total_ms", "output_tps"),
                          detect=args.detect, seed=args.seed)
    _print(compare_command(results, run_ids, args.format, args.latest, args.by, opts))


def _add_compare(commands: Subcommands) -> None:
    p = commands.add_parser(
        "compare", help="compare runs or cells: deltas, 95%% CIs, verdicts",
        description="Compare the same cell across runs (the first run named is the "
        "baseline; with --latest N, the oldest of them), or, with --by AXIS, cells of one "
        "run that differ in that axis only. For each metric: medians, delta, ratio, a 95%% "
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
    p.set_defaults(handler=cmd_compare)


def register_view_commands(commands: Subcommands) -> None:
    """Add budget, compare, export, check, advise and report."""
    _add_budget(commands)
    _add_compare(commands)
