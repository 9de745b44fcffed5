"""The Makefile's install sets: `make demo` (and `make serve`) install requirements.txt
only, under a stamp of their own; `make test`, `make lint` and `make bench` the dev set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dry_run(target: str) -> str:
    """The commands `make` would run for `target` with every file out of date."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("target", ["demo", "serve"])
def test_demo_and_serve_install_the_runtime_set_only(target):
    commands = dry_run(target)
    assert "pip install --quiet -r requirements.txt" in commands
    assert "requirements-dev.txt" not in commands
    assert "touch .venv/.installed-runtime" in commands
    assert "touch .venv/.installed\n" not in commands


@pytest.mark.parametrize("target", ["test", "lint", "bench", "bench-quick"])
def test_test_lint_and_bench_install_the_dev_set(target):
    commands = dry_run(target)
    assert "pip install --quiet -r requirements-dev.txt" in commands
    assert "touch .venv/.installed\n" in commands


def test_serve_runs_the_procfile_with_honcho():
    commands = dry_run("serve")
    assert "honcho start -f Procfile" in commands
    procfile = (ROOT / "Procfile").read_text()
    names = [line.split(":", 1)[0] for line in procfile.splitlines() if line[:1].isalpha()]
    assert names == ["web", "worker-training", "worker", "beat"]
    assert "-Q training " in procfile and "-Q scoring,default " in procfile
