"""Results on S3-compatible object storage: ``results_dir=s3://bucket/prefix``.

Writing goes through pyarrow's ``S3FileSystem``; one Parquet file is one PUT, and an
object appears whole or not at all, so the local write-then-rename is not needed there.
Reading lists the run's objects and reads them with pyarrow datasets into DuckDB
(DuckDB's ``httpfs`` extension has to be downloaded, which an offline machine cannot do).

Endpoint and credentials come from the environment, as for the AWS tools:
``AWS_ENDPOINT_URL`` (e.g. ``http://127.0.0.1:9000`` for MinIO or moto; unset = AWS),
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``.

The rest of the runner passes results locations around as ``Path``; ``Path`` folds
``s3://bucket/p`` into ``s3:/bucket/p``, which :func:`remote_url` turns back into a URL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from latlab.runner.core.errors import ResultsError
from latlab.runner.core.records import PARQUET_COMPRESSION
from latlab.runner.results.layout import PER_RUN_FOLDERS

SCHEME = "s3:"


def remote_url(location: Path | str) -> str | None:
    """``s3://bucket/key`` if ``location`` is on object storage, else None."""
    text = str(location)
    if not text.startswith(SCHEME):
        return None
    return "s3://" + text[len(SCHEME):].lstrip("/")


def is_remote(location: Path | str) -> bool:
    return remote_url(location) is not None


def filesystem() -> pafs.S3FileSystem:
    """An S3 filesystem from the environment (endpoint override for S3-compatible stores)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    options: dict[str, Any] = {"region": os.environ.get("AWS_REGION")
                               or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
    if endpoint:
        scheme, _, host = endpoint.rpartition("://")
        options.update(endpoint_override=host or endpoint, scheme=scheme or "https")
    return pafs.S3FileSystem(**options)


def _key(location: Path | str) -> str:
    url = remote_url(location)
    assert url is not None
    return url.removeprefix("s3://")


def put_table(table: pa.Table, location: Path | str) -> None:
    """Write one Parquet object (a single PUT: atomic)."""
    try:
        pq.write_table(table, _key(location), filesystem=filesystem(),
                       compression=PARQUET_COMPRESSION)
    except OSError as exc:
        raise ResultsError(f"results_dir: cannot write {remote_url(location)}: {exc}") from exc


def check_writable(location: Path | str) -> None:
    """Fail before the first request if the bucket cannot be listed or written."""
    probe = f"{_key(location)}/.latlab-write-probe-{os.getpid()}"
    try:
        fs = filesystem()
        with fs.open_output_stream(probe) as out:
            out.write(b"ok")
        fs.delete_file(probe)
    except OSError as exc:
        raise ResultsError(f"results_dir: {remote_url(location)} is not writable: "
                           f"{exc}") from exc


def _parquet_under(fs: pafs.FileSystem, key: str) -> list[str]:
    try:
        infos = fs.get_file_info(pafs.FileSelector(key, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise ResultsError(f"cannot list s3://{key}: {exc}") from exc
    return sorted(i.path for i in infos if i.is_file and i.path.endswith(".parquet"))


def run_ids(location: Path | str) -> list[str]:
    """Run ids with request objects or a runs object under ``location``."""
    fs, root = filesystem(), _key(location)
    ids = {p.split("/")[-2] for p in _parquet_under(fs, f"{root}/requests")}
    ids |= {p.split("/")[-1].removesuffix(".parquet") for p in _parquet_under(fs, f"{root}/runs")}
    return sorted(ids)


def read_source(location: Path | str, name: str, ids: list[str],
                schema: pa.Schema) -> pa.Table:
    """Every ``requests`` or ``runs`` row of the runs ``ids``, in ``schema`` (older files:
    missing columns are null)."""
    fs, root = filesystem(), _key(location)
    files = [p for p in _parquet_under(fs, f"{root}/{name}")
             if (p.split("/")[-2] if name in PER_RUN_FOLDERS
                 else p.split("/")[-1][:-8]) in ids]
    if not files:
        return schema.empty_table()
    import pyarrow.dataset as ds  # here: it imports pandas when installed (0.5 s per command)

    try:
        return ds.dataset(files, filesystem=fs, format="parquet", schema=schema).to_table()
    except (OSError, pa.ArrowInvalid) as exc:
        raise ResultsError(f"results under {remote_url(location)} are unreadable: "
                           f"{str(exc).splitlines()[0]}") from exc
