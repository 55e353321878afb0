"""Where results live under ``results_dir``: the one definition of the layout.

    requests/<run_id>/part-<seq>-<pid>-<rand>.parquet   one row per request (results/write.py)
    spans/<run_id>/part-<seq>-<pid>-<rand>.parquet      one row per session step (span_writer.py)
    runs/<run_id>.parquet                               the run record
    summaries/<run_id>/<fingerprint>.parquet            per-run metric summaries (analysis)

``results_dir`` is a local folder or ``s3://bucket/prefix`` (results/storage.py).
"""

from __future__ import annotations

from pathlib import Path

REQUESTS, SPANS, RUNS, SUMMARIES = "requests", "spans", "runs", "summaries"
PER_RUN_FOLDERS = (REQUESTS, SPANS)  # datasets kept as a folder of part files per run


def requests_folder(results_dir: Path | str, run_id: str) -> Path:
    return Path(results_dir) / REQUESTS / run_id


def spans_folder(results_dir: Path | str, run_id: str) -> Path:
    return Path(results_dir) / SPANS / run_id


def runs_folder(results_dir: Path | str) -> Path:
    return Path(results_dir) / RUNS


def run_record_path(results_dir: Path | str, run_id: str) -> Path:
    return runs_folder(results_dir) / f"{run_id}.parquet"


def summaries_folder(results_dir: Path | str, run_id: str) -> Path:
    return Path(results_dir) / SUMMARIES / run_id


def dataset_folder(results_dir: Path | str, dataset: str, run_id: str) -> Path:
    """The part-file folder of ``run_id`` in a per-run dataset (requests or spans)."""
    return Path(results_dir) / dataset / run_id
