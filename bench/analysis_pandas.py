"""The pandas baseline of bench/analysis.py: grade, budget and compare as a pandas user
would write them (read the needed columns from Parquet, drop warm-ups, groupby), with the
same definitions as analysis/*.sql. Output goes to CSV text like latlab's, then is
discarded. pandas and numpy are bench extras only (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GRADES = {"A": (500, 1500, 80, 0.0), "B": (800, 2500, 60, 0.01), "C": (1200, 4000, 40, 0.05),
          "D": (2000, 6000, 20, 0.10)}  # conf/slo/default.yaml
REPLICATES = 2000


def read(folder: Path, runs: list[str], columns: list[str]) -> pd.DataFrame:
    files = [str(f) for r in runs for f in sorted((folder / "requests" / r).glob("*.parquet"))]
    df = pd.concat([pd.read_parquet(f, columns=["warmup", *columns]) for f in files],
                   ignore_index=True)
    return df[~df["warmup"]].drop(columns="warmup")


def _letter(value: float, index: int, lower_is_better: bool) -> int:
    for rank, thresholds in enumerate(GRADES.values()):
        t = thresholds[index]
        if value == value and (value <= t if lower_is_better else value >= t):
            return rank
    return len(GRADES)


def grade(folder: Path, runs: list[str]) -> str:
    df = read(folder, runs, ["run_id", "cell", "error_type", "ttft_ms", "output_tps"])
    keys = ["run_id", "cell"]
    counts = df.groupby(keys).agg(n=("cell", "size"), errors=("error_type", "count"))
    ok = df[df["error_type"].isna()].groupby(keys)
    stats = pd.DataFrame({"ttft_p50_ms": ok["ttft_ms"].quantile(0.5),
                          "ttft_p99_ms": ok["ttft_ms"].quantile(0.99),
                          "output_tps_mean": ok["output_tps"].mean()})
    out = counts.join(stats)
    out["error_rate"] = out["errors"] / out["n"]
    ranks = pd.DataFrame({
        "p50": out["ttft_p50_ms"].map(lambda v: _letter(v, 0, True)),
        "p99": out["ttft_p99_ms"].map(lambda v: _letter(v, 1, True)),
        "tps": out["output_tps_mean"].map(lambda v: _letter(v, 2, False)),
        "err": out["error_rate"].map(lambda v: _letter(v, 3, True))})
    out["grade"] = ranks.max(axis=1).map(lambda r: ([*GRADES, "F"])[r])
    return out.reset_index().to_csv(index=False)


PHASES = ["connect", "headers", "first_token", "generation", "tail", "total", "server",
          "outside_server"]


def budget(folder: Path, runs: list[str]) -> str:
    df = read(folder, runs, ["run_id", "cell", "error_type", "connect_ms", "tls_ms", "ttfb_ms",
                             "ttft_ms", "generation_ms", "total_ms", "server_latency_ms",
                             "new_connection"])
    df = df[df["error_type"].isna()]
    c = df["connect_ms"].fillna(0) + df["tls_ms"].fillna(0)
    g = df["generation_ms"].fillna(0)
    ttfb = df["ttfb_ms"].fillna(df["ttft_ms"])
    phases = pd.DataFrame({
        "run_id": df["run_id"], "cell": df["cell"], "connect": c, "headers": ttfb - c,
        "first_token": df["ttft_ms"] - ttfb, "generation": g,
        "tail": df["total_ms"] - df["ttft_ms"] - g, "total": df["total_ms"],
        "server": df["server_latency_ms"],
        "outside_server": df["total_ms"] - df["server_latency_ms"]})
    grouped = phases.groupby(["run_id", "cell"])
    out = pd.concat([grouped[PHASES].mean().add_suffix("_mean_ms"),
                     grouped[PHASES].median().add_suffix("_p50_ms")], axis=1)
    out["n"] = grouped.size()
    new = (c > 0) | df["new_connection"].fillna(False).astype(bool)
    out["new_connections"] = new.groupby([df["run_id"], df["cell"]]).sum()
    return out.reset_index().to_csv(index=False)


def _boot_medians(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same order-statistic bootstrap as analysis/bootstrap.py, vectorised."""
    n = len(values)
    m = (n + 1) // 2
    u1 = rng.beta(m, n - m + 1, REPLICATES)
    k1 = np.clip(np.ceil(n * u1).astype(int) - 1, 0, n - 1)
    if n % 2:
        return values[k1]
    u2 = u1 + (1 - u1) * rng.beta(1, n - m, REPLICATES)
    k2 = np.clip(np.ceil(n * u2).astype(int) - 1, 0, n - 1)
    return (values[k1] + values[k2]) / 2


def compare(folder: Path, runs: list[str]) -> str:
    metrics = ["ttft_ms", "total_ms", "output_tps"]
    df = read(folder, runs, ["run_id", "cell", "error_type", *metrics])
    df = df[df["error_type"].isna()]
    long = df.melt(id_vars=["run_id", "cell"], value_vars=metrics, var_name="metric").dropna()
    groups = {key: np.sort(g["value"].to_numpy()) for key, g in
              long.groupby(["run_id", "cell", "metric"])}
    rng = np.random.default_rng(0)
    boots = {key: _boot_medians(v, rng) for key, v in groups.items()}
    base_run, rows = runs[0], []
    for (run, cell, metric), values in groups.items():
        base = groups.get((base_run, cell, metric))
        if run == base_run or base is None:
            continue
        diff = boots[(run, cell, metric)] - boots[(base_run, cell, metric)]
        low, high = np.percentile(diff, [2.5, 97.5])
        delta = np.median(values) - np.median(base)
        verdict = "within noise" if low <= 0 <= high else ("slower" if low > 0 else "faster")
        rows.append((cell, base_run, run, metric, len(base), len(values), np.median(base),
                     np.median(values), delta, low, high, verdict))
    return pd.DataFrame(rows).to_csv(index=False)
