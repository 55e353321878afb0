"""``latlab export VIEW``: any view or table of analysis/*.sql as CSV, JSON or a table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from latlab.analysis.query import check_format, open_results, render
from latlab.runner.core.errors import ConfigError, ResultsError


def view_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every view and table latlab defined (DuckDB's catalog and latlab_* plumbing excluded)."""
    rows = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal "
        "UNION SELECT table_name FROM duckdb_tables() WHERE NOT internal "
        "EXCEPT SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'latlab\\_%' "
        "ESCAPE '\\' ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def export_command(view: str, results_dir: Path, run_ids: Sequence[str] | None, fmt: str,
                   output: Path | None = None) -> str:
    """The rows of ``view`` in ``fmt``; written to ``output`` if given (then a one-line note)."""
    check_format(fmt)
    con = open_results(results_dir, run_ids)
    try:
        known = view_names(con)
        if view not in known:
            raise ConfigError(f"export: unknown view {view!r}; known: {', '.join(known)}")
        rel = con.sql(f'SELECT * FROM "{view}"')
        columns, rows = list(rel.columns), rel.fetchall()
    finally:
        con.close()
    text = render((columns, rows), fmt)
    if output is None:
        return text if rows or fmt != "table" else f"{view}: no rows"
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"--output: cannot write {output}: {exc.strerror}") from exc
    return f"{view}: {len(rows)} rows -> {output}"
