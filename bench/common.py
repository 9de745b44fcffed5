"""Shared plumbing of the benchmarks: a scratch PostgreSQL database, machine facts, results."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import platform
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED_OULAD = ROOT.parent / "shared" / "datasets" / "oulad"
RESULTS = ROOT / "docs" / "bench"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB = os.environ.get("BENCH_DB", "eduplatform_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def database_url(name: str = BENCH_DB) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def recreate_database(name: str = BENCH_DB) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def django_env(name: str = BENCH_DB) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="eduplatform.settings.dev",
        DATABASE_URL=database_url(name),
        REDIS_URL=REDIS_URL,
        DEBUG="false",
        PYTHONPATH=str(ROOT),
        ARTIFACT_DIR=str(ROOT / "var" / "bench-artifacts"),
    )
    return env


def setup_django(name: str = BENCH_DB) -> None:
    os.environ.update(django_env(name))
    import django

    django.setup()


def manage(
    *args: str, name: str = BENCH_DB, check: bool = True, **extra_env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", *args],
        cwd=ROOT,
        env={**django_env(name), **extra_env},
        capture_output=True,
        text=True,
        check=check,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workers: int = 2, root: Path = ROOT) -> Iterator[str]:
    """The product served as in production (gunicorn sync workers) on a free
    loopback port: yields the base URL once /healthz answers, stops it on exit. `root`:
    the code tree served (another checkout, e.g. a commit's worktree, compared in one
    run; this tree's virtualenv)."""
    import requests

    port = free_port()
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "eduplatform.wsgi",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=root,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                requests.get(base + "/healthz", timeout=5)
                break
            except requests.RequestException:  # not listening yet, or still importing
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def machine() -> dict[str, Any]:
    # The same reading as eduplatform.ml.compress.timing.cpu_model, not imported: that
    # package loads torch (1.8 s), and the tool check must answer within the first second.
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // (1024 * 1024)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    # Uncommitted changes outside docs/ (the results themselves) mean the
    # figures are not those of `commit` alone: say so.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", ":(exclude)docs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if commit and dirty:
        commit += " + uncommitted changes"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
    }


@dataclass
class Section:
    """One benchmark's result: a markdown body and its raw figures."""

    name: str
    title: str
    body: str
    figures: dict[str, Any] = field(default_factory=dict)
    mode: str = "quick"

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        here = machine()
        payload = {
            "name": self.name,
            "title": self.title,
            "body": self.body,
            "figures": self.figures,
            "mode": self.mode,
            "machine": here,
            "other_cpus": other_cpus(path, here["cpu"]),
        }
        path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
        return path


def other_cpus(path: Path, cpu: str) -> dict[str, dict[str, Any]]:
    """The latest earlier run of a section on each CPU other than `cpu`, by CPU.

    Sessions get boxes of different speed (the same code ran about 2x slower on
    one than on another, and on one box from one day to the next), so a new run
    replaces the last one of its own CPU only; the others stay beside it, text
    and machine, figures dropped.
    """
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    runs = dict(old.get("other_cpus", {}))
    runs[old["machine"]["cpu"]] = {key: old[key] for key in ("body", "mode", "machine")}
    runs.pop(cpu, None)
    return runs


def _run_line(machine: dict[str, Any], mode: str) -> str:
    return (
        f"{machine['date']}, commit {machine['commit']}, {machine['cores']} cores "
        f"({machine['cpu']}), {machine['memory_gib']} GiB, Python {machine['python']}, "
        f"{mode} run"
    )


def render_markdown() -> str:
    """docs/benchmarks.md from every saved section, each with its own machine and date."""
    parts = [
        "# Benchmarks",
        "",
        "Made by `make bench` (or `make bench-quick`); each section says when, where and at which",
        "commit it ran, and compares with its baseline measured in the same run. Model quality",
        "on OULAD against the peers is in [churn-model.md](churn-model.md) (`evaluate_churn`),",
        "[recommender-model.md](recommender-model.md) (`evaluate_recommender`); compression by",
        "`manage.py compression_report` ([compression.md](compression.md)). The machine is a",
        "shared 2-core box, and sections re-run in different sessions may come from different",
        "CPUs (each section's first line names it), and the speed of one box drifts too (the",
        "AMD EPYC box ran the same code about 2x slower on 2026-12-03 than on 2026-12-04, and",
        "within an hour its bare view went from 3,068 to 3,914 requests/s): compare figures",
        "within a section (same run), not across sections.",
        "Targets not met are said so in their section. Sections:",
        "",
    ]
    # Benchmark sections only: docs/bench/ also keeps result files of the evaluate commands
    # (churn_folds.json, recommender_folds.json, ...) that the model docs cite.
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    sections = [r for r in results if isinstance(r, dict) and "name" in r and "title" in r]
    order = [
        "ingestion",
        "xapi",
        "partitions",
        "replica_lag",
        "features",
        "retraining",
        "churn_quality",
        "churn_ceiling",
        "recommender_quality",
        "recommender_serving",
        "compression",
        "serving",
        "scale",
        "scale_generator",
        "parallel",
        "fuzz",
    ]
    sections.sort(key=lambda s: order.index(s["name"]) if s["name"] in order else 99)
    for s in sections:
        parts.append(f"- [{s['title']}](#{s['name']})")
    for s in sections:
        parts += [
            "",
            f'<a id="{s["name"]}"></a>',
            f"## {s['title']}",
            "",
            f"*{_run_line(s['machine'], s['mode'])}.*",
            "",
            s["body"].rstrip(),
        ]
        for other in s.get("other_cpus", {}).values():
            parts += [
                "",
                "<details><summary>The latest run on another CPU: "
                f"{_run_line(other['machine'], other['mode'])}</summary>",
                "",
                other["body"].rstrip(),
                "",
                "</details>",
            ]
    return "\n".join(parts) + "\n"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class RawCopy:
    seconds: float
    rows: int
    raw_bytes: int  # the unlogged table on disk
    stream_bytes: int


def raw_event_copy(conn: Any, where: str = "", fmt: str = "binary") -> RawCopy:
    """COPY the event rows (every column, `where` to choose them) out in `fmt` and back into
    an unlogged table of the same columns without indexes: writing exactly these rows, and
    nothing else, as fast as PostgreSQL takes them (the limit imports are compared with).
    `conn` is a psycopg connection to the bench database."""
    exported = io.BytesIO()
    with conn.cursor().copy(
        f"COPY (SELECT * FROM analytics_learningevent {where}) TO STDOUT WITH (FORMAT {fmt})"
    ) as copy:
        for chunk in copy:
            exported.write(chunk)
    data = exported.getvalue()
    del exported
    conn.execute("DROP TABLE IF EXISTS bench_raw_events")
    conn.execute(
        "CREATE UNLOGGED TABLE bench_raw_events (LIKE analytics_learningevent INCLUDING DEFAULTS)"
    )
    conn.commit()
    started = time.perf_counter()
    cursor = conn.cursor()
    with cursor.copy(f"COPY bench_raw_events FROM STDIN WITH (FORMAT {fmt})") as copy:
        view = memoryview(data)
        for offset in range(0, len(view), 1 << 20):
            copy.write(view[offset : offset + (1 << 20)])
    conn.commit()
    seconds = time.perf_counter() - started
    rows = cursor.rowcount
    size = conn.execute("SELECT pg_total_relation_size('bench_raw_events')").fetchone()[0]
    conn.execute("DROP TABLE bench_raw_events")
    conn.commit()
    return RawCopy(seconds, rows, int(size), len(data))
