"""Run many ``latlab`` command lines in ONE Python process (a refusal costs milliseconds,
not an interpreter start), each in its own fresh folder: exit code, stderr, files written.

The entry point is the installed ``latlab`` console script's, so this drives the real CLI
whatever the package layout. Used by tests/test_bad_input.py and tests/test_secret_leaks.py:

    python tests/cli_batch.py CASES.json  →  one JSON result per case on stdout
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any


def run_case(main: Any, case: dict[str, Any], folder: Path) -> dict[str, Any]:
    """One command line in ``folder`` (its files written first), stderr captured at fd 2."""
    for name, text in case.get("files", {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    before = {p for p in folder.rglob("*")}
    os.chdir(folder)
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    saved = os.dup(1), os.dup(2)
    sys.stdout.flush()
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    code: Any = 0
    try:
        main([str(a).replace("{dir}", str(folder)) for a in case["argv"]])
    except SystemExit as stop:
        code = stop.code
    except BaseException as exc:  # noqa: BLE001 - report, never stop the batch
        code = f"raised {type(exc).__name__}: {exc}"
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in enumerate(saved, start=1):
            os.dup2(copy, fd)
            os.close(copy)
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p not in before)
    return {"code": code, "stdout": read_back(out), "stderr": read_back(err), "written": written}


def run_cases(cases: list[dict[str, Any]], folder: Path,
              timeout_s: float) -> dict[str, dict[str, Any]]:
    """Every case through this script in one fresh process; each case's result by its id."""
    table = folder / "cases.json"
    table.write_text(json.dumps(cases))
    done = subprocess.run([sys.executable, __file__, str(table)], capture_output=True,
                          text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {r["id"]: r for r in results}


def read_back(file: Any) -> str:
    file.seek(0)
    return str(file.read().decode(errors="replace"))


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    entry = entry_points(group="console_scripts")["latlab"].load()
    from hydra.core.global_hydra import GlobalHydra

    for case in cases:
        folder = Path(tempfile.mkdtemp(prefix="latlab-case-"))
        for key, value in case.get("env", {}).items():
            os.environ[key] = value
        result = run_case(entry, case, folder)
        for key in case.get("env", {}):
            os.environ.pop(key, None)
        GlobalHydra.instance().clear()
        print(json.dumps({"id": case["id"], "folder": str(folder), **result}),  # noqa: T201
              flush=True)


if __name__ == "__main__":
    main()
