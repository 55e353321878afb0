"""latlab's runner: the engine behind ``latlab run``, one subpackage per layer of the data flow.

    core      shared types, imported by every other layer and importing none of them:
              errors, timing phases and the clock, records and their Arrow schemas,
              the provider protocol, secrets, agent tasks
    config    compose and validate the Hydra config before anything is written
    results   where results live (layout), the Parquet writer, resume, object storage
    engine    plan → schedule → send through a provider → timing record → writer
    agents    agent sessions: the built-in loop, Claude Code, the recording proxy, MCP
    app       the composition root: the ``latlab`` command and the Hydra app behind ``run``

Lower layers never import higher ones (import-linter contracts in pyproject.toml).
"""
