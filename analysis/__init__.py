"""latlab's analysis: DuckDB views over the Parquet results (``analysis/*.sql``).

- ``analysis.query``    open a results dir as views, validate SLOs, run SQL, render rows
- ``analysis.commands`` what ``latlab sql`` and ``latlab grade`` print

Every metric is defined once, in the SQL files; docs/columns.md documents them.
"""
