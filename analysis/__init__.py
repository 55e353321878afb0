"""latlab's analysis: DuckDB views over the Parquet results (``analysis/*.sql``).

- ``latlab.analysis.query``    open a results dir as views, validate SLOs, run SQL, render rows
- ``latlab.analysis.commands`` what ``latlab sql`` and ``latlab grade`` print

Every metric is defined once, in the SQL files; docs/columns.md documents them.
"""

OUTPUT_FORMATS = ("table", "csv", "json")  # every printing command's --format
