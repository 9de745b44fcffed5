"""What the benchmarks need, checked before the first section runs.

`make bench` / `make bench-quick` used to find a missing tool minutes in, after the
sections before it. `missing()` names every missing need in well under a second: the
shared OULAD copy, PostgreSQL and Redis (every section), and the tools some sections run
(wrk for serving). A missing tool that Debian packages is installed with `apt-get install -y`
when we are root and apt-get is there; otherwise the run stops with one line naming it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from urllib.parse import urlparse

from bench.common import PG_ADMIN_URL, REDIS_URL, SHARED_OULAD

# Command-line tools by section: (command, Debian package).
TOOLS: dict[str, list[tuple[str, str]]] = {
    "serving": [("wrk", "wrk")],
}
CONNECT_TIMEOUT = 0.5  # seconds per service


def reachable(url: str, default_port: int) -> str | None:
    """None when something listens at the URL's host and port, else why not."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return None
    except OSError as exc:
        return f"{host}:{port} ({exc.strerror or exc})"


def apt_install(package: str) -> bool:
    """`apt-get install -y package` as root (an `apt-get update` first if that fails)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    print(f"bench: installing {package} (apt-get install -y {package})", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", package]
    for step in ([install], [["apt-get", "update", "-qq"], install]):
        if all(
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=False).returncode == 0
            for cmd in step
        ):
            return True
    return False


def missing(sections: Iterable[str], *, install: bool = True) -> list[str]:
    """Every unmet need of these sections, each as a short phrase (empty: all there)."""
    sections = list(sections)
    problems: list[str] = []
    if not (SHARED_OULAD / "courses.csv").exists():
        problems.append(f"the shared OULAD copy ({SHARED_OULAD})")
    for section in sections:
        for command, package in TOOLS.get(section, []):
            if shutil.which(command) is None and not (
                install and apt_install(package) and shutil.which(command)
            ):
                problems.append(f"{command} for {section} (apt-get install {package})")
    if (why := reachable(PG_ADMIN_URL, 5432)) is not None:
        problems.append(f"PostgreSQL at {why}")
    if (why := reachable(REDIS_URL, 6379)) is not None:
        problems.append(f"Redis at {why}")
    return problems
