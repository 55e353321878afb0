"""Damaged results are named, never silently read: for each kind of damage, every analysis
command either refuses with one line naming the bad file, or skips it with a one-line
warning naming it and answers exactly as if that file were not there.

A table of damage kinds × a table of commands, driven through the real ``latlab`` entry
point in this process (fast: no interpreter per case).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.test_analysis import NEW, OLD, make_results

Damage = Callable[[Path], list[Path]]  # damages results, returns the files it names


def part(results: Path, run: str = OLD, n: str = "0000") -> Path:
    return results / "requests" / run / f"part-{n}.parquet"


def rewrite(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def retype(column: str, values: Callable[[pa.Array], pa.Array]) -> Damage:
    def damage(results: Path) -> list[Path]:
        path = part(results)
        rewrite(path, lambda t: t.set_column(t.schema.get_field_index(column), column,
                                             values(t.column(column).combine_chunks())))
        return [path]

    return damage


def as_text(array: pa.Array) -> pa.Array:
    return pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())


def zero_bytes(results: Path) -> list[Path]:
    part(results).write_bytes(b"")
    return [part(results)]


def truncated(results: Path) -> list[Path]:
    data = part(results).read_bytes()
    part(results).write_bytes(data[: len(data) // 2])
    return [part(results)]


def bad_footer(results: Path) -> list[Path]:
    data = bytearray(part(results).read_bytes())
    data[-12:-4] = b"\xff" * 8  # footer length garbage, magic intact
    part(results).write_bytes(bytes(data))
    return [part(results)]


def not_parquet(results: Path) -> list[Path]:
    part(results).write_text("run_id,cell\nbbb111,fast\n")
    return [part(results)]


def foreign_columns(results: Path) -> list[Path]:
    extra = part(results, n="0009")
    pq.write_table(pa.table({"run_id": [OLD], "temperature": [21.5]}), extra)
    return [extra]


def no_run_id(results: Path) -> list[Path]:
    extra = part(results, n="0009")
    pq.write_table(pa.table({"cell": ["fast"], "ttft_ms": [1.0]}), extra)
    return [extra]


def orphan_part(results: Path) -> list[Path]:
    folder = results / "requests" / "ccc333"
    folder.mkdir()
    shutil.copy(part(results, NEW), folder / "part-0000.parquet")
    return [folder / "part-0000.parquet"]


def runs_zero_bytes(results: Path) -> list[Path]:
    (results / "runs" / f"{NEW}.parquet").write_bytes(b"")
    return [results / "runs" / f"{NEW}.parquet", part(results, NEW)]


def runs_wrong_type(results: Path) -> list[Path]:
    path = results / "runs" / f"{NEW}.parquet"
    rewrite(path, lambda t: t.set_column(t.schema.get_field_index("requests"), "requests",
                                         as_text(t.column("requests").combine_chunks())))
    return [path, part(results, NEW)]


def runs_missing(results: Path) -> list[Path]:
    (results / "runs" / f"{NEW}.parquet").unlink()
    return [part(results, NEW), results / "runs" / f"{NEW}.parquet"]


DAMAGES: dict[str, Damage] = {
    "zero-byte-part": zero_bytes,
    "truncated-part": truncated,
    "bad-footer": bad_footer,
    "csv-named-parquet": not_parquet,
    "number-as-text": retype("ttft_ms", as_text),
    "bool-as-text": retype("warmup", as_text),
    "timestamp-as-text": retype("started_at", as_text),
    "list-of-text": retype("itl_ms", lambda a: pa.array(
        [None if v is None else [str(x) for x in v] for v in a.to_pylist()],
        pa.list_(pa.string()))),
    "int-as-float-text": retype("output_tokens", as_text),
    "foreign-columns": foreign_columns,
    "no-run-id": no_run_id,
    "part-without-runs-record": orphan_part,
    "runs-record-zero-bytes": runs_zero_bytes,
    "runs-record-wrong-type": runs_wrong_type,
    "runs-record-missing": runs_missing,
}
COMMANDS = {
    "sql": ["sql", "SELECT run_id, cell, count(*) AS n, round(avg(ttft_ms), 3) AS t FROM "
            "requests GROUP BY ALL ORDER BY ALL", "--format", "csv"],
    "grade": ["grade", "--format", "csv"],
    "compare": ["compare", OLD, NEW, "--format", "csv"],
    "budget": ["budget", "--format", "csv"],
    "report": ["report", "--format", "json"],
}


def latlab(argv: list[str], results: Path,
           capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    main = entry_points(group="console_scripts")["latlab"].load()
    code = 0
    try:
        main([*argv, "--results", str(results)])
    except SystemExit as stop:
        code = int(stop.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_tables_are_large() -> None:
    assert len(DAMAGES) >= 10


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind", list(DAMAGES))
def test_damage_is_named_and_never_changes_numbers_silently(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, command: str) -> None:
    damaged = make_results(tmp_path / "damaged")
    named = DAMAGES[kind](damaged)
    code, out, err = latlab(COMMANDS[command], damaged, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("latlab: ") for line in lines), err
    assert "Traceback" not in err
    for path in named[:1]:  # nothing said: the command did not read it (another run)
        assert not lines or any(str(path) in line for line in lines), (path, err)
    if code != 0:
        assert code == 2 and len(lines) == 1, err
        return
    assert len(lines) <= len(named), err  # one warning per skipped file
    clean = make_results(tmp_path / "clean")
    for path in named:  # what the answer must equal: the results without the named files
        (clean / path.relative_to(damaged)).unlink(missing_ok=True)
    for folder in (clean / "requests").iterdir():  # a run left with no parts: no run
        if not any(folder.iterdir()):
            folder.rmdir()
    clean_code, clean_out, _ = latlab(COMMANDS[command], clean, capsys)
    if clean_code == 0:  # (else a run named on the command line is gone altogether)
        assert out.replace(str(damaged), "") == clean_out.replace(str(clean), "")
