"""`make bench` / `make bench-quick` check what they need before the first section."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLOSED = "127.0.0.1:9"  # nothing listens on the discard port


def bench(path: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {
        **os.environ,
        "PATH": str(path),
        "BENCH_PG_ADMIN_URL": f"postgresql://postgres@{CLOSED}/postgres",
        "BENCH_REDIS_URL": f"redis://{CLOSED}/0",
    }
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - start


def test_missing_tools_stop_the_run_at_once_in_one_line(tmp_path):
    result, seconds = bench(tmp_path)  # an empty PATH: no wrk, no apt-get
    assert result.returncode == 2
    assert seconds < 1.0
    (line,) = result.stderr.splitlines()
    assert line.startswith("bench: missing ")
    assert "wrk for serving (apt-get install wrk)" in line
    assert f"PostgreSQL at {CLOSED}" in line and f"Redis at {CLOSED}" in line
    assert "bench: ingestion ..." not in result.stderr  # no section started


def test_only_the_chosen_sections_tools_are_asked_for(tmp_path):
    result, _ = bench(tmp_path, "--only", "ingestion")
    assert result.returncode == 2
    assert "wrk" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root")
def test_a_missing_tool_is_installed_with_apt_get_as_root(tmp_path):
    log = tmp_path / "apt.log"
    apt = tmp_path / "apt-get"
    # A stand-in apt-get that "installs" wrk into the same directory.
    apt.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\n'
        f'if [ "$1" = install ]; then printf "#!/bin/sh\\n" > {tmp_path}/wrk; '
        f"/bin/chmod +x {tmp_path}/wrk; fi\n"
    )
    apt.chmod(0o755)
    result, _ = bench(tmp_path, "--only", "serving")
    assert "installing wrk (apt-get install -y wrk)" in result.stderr
    assert log.read_text().split("\n")[0] == "install -y -qq wrk"
    assert "wrk" not in result.stderr.splitlines()[-1]  # found after the install
    assert result.returncode == 2  # still stopped: PostgreSQL and Redis are not there
