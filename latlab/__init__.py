"""latlab: declarative experiment runner for LLM API latency.

The package's parts live in the repository's top-level folders, mapped in pyproject.toml:

    latlab.runner     runner/     config → plan → schedule → send → record → write (the engine)
    latlab.providers  providers/  one module per wire protocol, and the emulator
    latlab.analysis   analysis/   DuckDB views over the Parquet results, and the analysis commands
    latlab.conf       conf/       the bundled Hydra config groups

docs/architecture.md draws the layers and says where to add a provider, a metric or a command.
"""

__version__ = "0.1.0"
