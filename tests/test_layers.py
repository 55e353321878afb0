"""The layers of docs/architecture.md hold: import-linter's contracts (pyproject.toml) are kept
and no two modules of latlab import each other, directly or around a loop (lazy and
type-checking imports included)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout and " KEPT" in done.stdout


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []
    for root in sorted(edges):
        if root not in index:
            _strong_connect(root, edges, index, low, stack, cycles)
    return cycles


def _strong_connect(root: str, edges: dict[str, list[str]], index: dict[str, int],
                    low: dict[str, int], stack: list[str], cycles: list[list[str]]) -> None:
    work = [(root, 0)]
    while work:
        node, i = work.pop()
        if i == 0:
            index[node] = low[node] = len(index)
            stack.append(node)
        successors = edges[node]
        if i < len(successors):
            work.append((node, i + 1))
            nxt = successors[i]
            if nxt not in index:
                work.append((nxt, 0))
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
            continue
        if work and work[-1][0] != node:
            parent = work[-1][0]
            low[parent] = min(low[parent], low[node])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))


def test_no_import_cycles() -> None:
    assert import_cycles(grimp.build_graph("latlab", cache_dir=None)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert import_cycles(graph) == [["pkg.a", "pkg.b"]]
