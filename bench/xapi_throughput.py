"""xAPI statements served (#25): POST /xapi/statements in 100-statement batches, beside the
events API (1,000-event batches) in the same run, gunicorn with 2 sync workers.

    .venv/bin/python -m bench.xapi_throughput [--batches 200] [--clients 2] [--trees A B]

A scratch database per code tree (BENCH_DB + "_xapi" + index), one course run whose IRI the
statements name (so every statement is stored and becomes an event), an LRS client (HTTP
Basic) and an ingestion token. The clients are threads of one Python process on HTTP/1.1
keep-alive connections, sharing the machine's cores with the server and PostgreSQL; bodies
are encoded before the clock starts. `--trees` serves other checkouts (e.g. worktrees of
the commits before and after a change) one after the other in each run, on the same rows.

Prints one JSON line per tree, API and run: `per_s` (served per second, wall clock) and
`cpu_ms` (CPU milliseconds per 100 statements or 1,000 events of the gunicorn workers and
the database's backends, read from /proc: less sensitive than `per_s` to the other jobs of
a shared machine).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.common import (
    BENCH_DB,
    PG_ADMIN_URL,
    ROOT,
    django_env,
    gunicorn,
    recreate_database,
)

DB = f"{BENCH_DB}_xapi"
COURSE_IRI = "https://moodle.bench.example/course/view.php?id=1"


def _env(db: str, root: Path) -> dict[str, str]:
    return {**django_env(db), "PYTHONPATH": str(root), "INGEST_RATE_LIMIT": "100000000/min"}


def _setup(db: str, root: Path) -> tuple[str, str]:
    """Migrate the scratch database with `root`'s code; return (Basic credentials,
    ingestion token)."""
    env = _env(db, root)
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "migrate", "-v0"],
        cwd=root, env=env, check=True,
    )  # fmt: skip
    script = f"""
import datetime as dt
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from analytics.ingest.lrs_auth import secret_digest
from analytics.models import Course, LrsClient
Course.objects.create(code="BENCH_1", module_code="BENCH", title="Bench", iri="{COURSE_IRI}",
                      start_date=dt.date(2026, 9, 1), length_days=200)
LrsClient.objects.create(name="bench", key="benchkey", secret_sha256=secret_digest("benchsecret"),
                         scopes=["statements/write"])
user = User.objects.create(username="bench-ingest")
user.user_permissions.add(Permission.objects.get(codename="add_learningevent"))
print(Token.objects.create(user=user).key)
"""
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "shell", "-c", script],
        cwd=root, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    token = out.stdout.strip().splitlines()[-1]
    return base64.b64encode(b"benchkey:benchsecret").decode(), token


def statement(n: int, run: str) -> dict:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/{n}")),
        "actor": {"name": f"L {n % 500}", "account": {"homePage": "https://m.example", "name": str(n % 500)}},
        "verb": {"id": "http://id.tincanapi.com/verb/viewed", "display": {"en": "viewed"}},
        "object": {
            "id": f"https://moodle.bench.example/mod/page/view.php?id={n % 40}",
            "objectType": "Activity",
            "definition": {"type": "http://id.tincanapi.com/activitytype/resource",
                           "name": {"en": f"Page {n % 40}"}},
        },
        "timestamp": f"2026-10-{1 + n % 28:02d}T10:00:00+00:00",
        "context": {"platform": "Moodle", "contextActivities": {"grouping": [{"id": COURSE_IRI}]}},
    }  # fmt: skip


def event(n: int, run: str) -> dict:
    return {
        "client_event_id": f"{run}-{n}", "learner_id": str(n % 500), "course": "BENCH_1",
        "verb": "viewed", "occurred_at": f"2026-10-{1 + n % 28:02d}T10:00:00+00:00",
    }  # fmt: skip


def served(
    base: str, path: str, headers: dict, bodies: list[bytes], clients: int, ok: int
) -> float:
    """Seconds to post every body after one warm-up body per connection."""
    host, port = base.removeprefix("http://").split(":")
    connections = [http.client.HTTPConnection(host, int(port)) for _ in range(clients)]

    def post(conn: http.client.HTTPConnection, body: bytes) -> None:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        data = response.read()
        assert response.status == ok, data[:300]

    for k, conn in enumerate(connections):
        post(conn, bodies[k])
    todo = list(range(clients, len(bodies)))
    lock = threading.Lock()

    def work(conn: http.client.HTTPConnection) -> None:
        while True:
            with lock:
                if not todo:
                    return
                b = todo.pop(0)
            post(conn, bodies[b])

    threads = [threading.Thread(target=work, args=(c,)) for c in connections]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (None once it has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _gunicorn_pids(base: str) -> list[int]:
    """The gunicorn processes listening at `base` (found by the listening socket: gunicorn
    rewrites its command line)."""
    port = int(base.rsplit(":", 1)[1])
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
    return pids


def _measured(base: str, db: str, post: Callable[[], float]) -> tuple[float, float]:
    """(seconds, server CPU seconds: gunicorn's processes and the database's backends) of
    `post`. They are sampled every 0.25 s while it runs: Django reopens its database
    connections (CONN_MAX_AGE, 60 s), so a backend may start (counted from zero) or exit
    (counted to its last sample) meanwhile."""
    workers = _gunicorn_pids(base)
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    done = threading.Event()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:

        def sample(start: bool) -> None:
            rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [db])
            for pid in workers + [row[0] for row in rows]:
                if (cpu := _cpu_seconds(pid)) is not None:
                    first.setdefault(pid, cpu if start else 0.0)
                    last[pid] = cpu

        def sampler() -> None:
            while not done.wait(0.25):
                sample(start=False)

        sample(start=True)
        thread = threading.Thread(target=sampler)
        thread.start()
        try:
            seconds = post()
        finally:
            done.set()
            thread.join()
        sample(start=False)
    return seconds, sum(last[pid] - first[pid] for pid in last)


def _commit(root: Path) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
    )  # fmt: skip
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trees", nargs="*", type=Path, default=[ROOT])
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        servers = []
        for k, root in enumerate(args.trees):
            db = f"{DB}{k if len(args.trees) > 1 else ''}"
            recreate_database(db)
            basic, token = _setup(db, root)
            base = stack.enter_context(gunicorn(_env(db, root), root=root))
            servers.append((_commit(root), db, base, basic, token))
        for run in range(args.runs):
            for commit, db, base, basic, token in servers:
                _one_run(args, run, commit, db, base, basic, token)


def _one_run(
    args: argparse.Namespace, run: int, commit: str, db: str, base: str, basic: str, token: str
) -> None:
    """Both APIs once against one server, on the rows of run `run` (the same for every
    tree: each tree has its own database)."""
    size = 100
    bodies = [
        json.dumps([statement(b * size + i, f"x{run}") for i in range(size)]).encode()
        for b in range(args.batches + args.clients)
    ]
    headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/json",
               "X-Experience-API-Version": "1.0.3"}  # fmt: skip
    seconds, cpu = _measured(
        base, db, lambda: served(base, "/xapi/statements", headers, bodies, args.clients, 200)
    )
    print(json.dumps({"commit": commit, "api": "xapi", "run": run, "batch": size,
                      "per_s": round(args.batches * size / seconds),
                      "cpu_ms": round(cpu * 1000 / args.batches, 1),
                      "load": os.getloadavg()[0]}), flush=True)  # fmt: skip
    size = 1000
    bodies = [
        json.dumps([event(b * size + i, f"e{run}") for i in range(size)]).encode()
        for b in range(args.batches // 10 + args.clients)
    ]
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    seconds, cpu = _measured(
        base, db, lambda: served(base, "/api/v1/events", headers, bodies, args.clients, 201)
    )
    print(json.dumps({"commit": commit, "api": "events", "run": run, "batch": size,
                      "per_s": round(args.batches // 10 * size / seconds),
                      "cpu_ms": round(cpu * 1000 / (args.batches // 10), 1),
                      "load": os.getloadavg()[0]}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
