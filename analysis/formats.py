"""The output formats of every command that prints data (``--format``): here, apart from
analysis.query, so that building the command line imports neither DuckDB nor pyarrow."""

OUTPUT_FORMATS = ("table", "csv", "json")
