"""latlab works as an installed, non-editable wheel run from another directory."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Not part of a source tree: a stale build/ would put yesterday's files in today's wheel.
# Only at the top: runner/results/ is source.
TOP_NOT_SOURCE = {"build", "dist", ".venv", ".tools", ".git", "results", "outputs", "multirun"}
ANYWHERE_NOT_SOURCE = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache")


def NOT_SOURCE(folder: str, names: list[str]) -> set[str]:
    top = TOP_NOT_SOURCE.intersection(names) if Path(folder) == ROOT else set()
    return top | set(ANYWHERE_NOT_SOURCE(folder, names))


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_wheel_finds_bundled_conf_and_experiments(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "-w", tmp_path / "dist", ".", cwd=source)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("latlab-*.whl")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    nested_site = next((venv / "lib").glob("python*/site-packages"))
    installed = run(sys.executable, "-m", "pip", "install", "--no-deps", "--target",
                    nested_site, wheel)
    assert installed.returncode == 0, installed.stderr[-2000:]
    # The dependencies come from the test environment, appended after the wheel's own files.
    (nested_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    python = venv / "bin" / "python"
    where = run(python, "-c", "import latlab.runner; print(latlab.runner.__file__)", cwd=work)
    assert str(nested_site) in where.stdout, where.stdout + where.stderr
    (top_level,) = nested_site.glob("latlab-*.dist-info/top_level.txt")
    assert top_level.read_text().split() == ["latlab"]  # no generic runner/providers/analysis
    assert not {"runner", "providers", "analysis", "conf"} & {p.name for p in nested_site.iterdir()}
    done = run(python, "-m", "latlab", "run", "experiment=quickstart", "profile=fast",
               "workload.iterations=2", "workload.warmup=0", cwd=work)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "emulator/sonnet-4-5/count20/none/stream" in done.stdout
    assert list((work / "results" / "requests").glob("*/*.parquet"))
    helped = run(python, "-m", "latlab", "run", "--help", cwd=work)  # conf/hydra/help
    assert helped.stdout.startswith("latlab run: run one latency experiment"), helped.stderr
    report = run(python, "-m", "latlab", "report", "--html", work / "r.html", cwd=work)
    assert report.returncode == 0 and "Plotly.newPlot" in (work / "r.html").read_text()
    assert "report_boxes" in run(python, "-m", "latlab", "sql", "--help", cwd=work).stdout
