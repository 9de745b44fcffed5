"""xAPI statements served (#25): POST /xapi/statements in 100-statement batches, beside the
events API (1,000-event batches) in the same run, gunicorn with 2 sync workers.

    .venv/bin/python -m bench.xapi_throughput [--batches 200] [--clients 2]

A scratch database (BENCH_DB + "_xapi"), one course run whose IRI the statements name (so
every statement is stored and becomes an event), an LRS client (HTTP Basic) and an ingestion
token. The clients are threads of one Python process on HTTP/1.1 keep-alive connections,
sharing the machine's cores with the server and PostgreSQL; bodies are encoded before the
clock starts. Prints one JSON line per API and run.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import subprocess
import threading
import time
import uuid

from bench.common import BENCH_DB, ROOT, django_env, gunicorn, recreate_database

DB = f"{BENCH_DB}_xapi"
COURSE_IRI = "https://moodle.bench.example/course/view.php?id=1"


def _setup() -> tuple[str, str]:
    """Migrate the scratch database; return (Basic credentials, ingestion token)."""
    env = {**django_env(DB)}
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "migrate", "-v0"],
        cwd=ROOT, env=env, check=True,
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
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    recreate_database(DB)
    basic, token = _setup()
    env = {**django_env(DB), "INGEST_RATE_LIMIT": "100000000/min"}
    with gunicorn(env) as base:
        for run in range(args.runs):
            size = 100
            bodies = [
                json.dumps([statement(b * size + i, f"x{run}") for i in range(size)]).encode()
                for b in range(args.batches + args.clients)
            ]
            headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/json",
                       "X-Experience-API-Version": "1.0.3"}  # fmt: skip
            seconds = served(base, "/xapi/statements", headers, bodies, args.clients, 200)
            print(json.dumps({"api": "xapi", "run": run, "batch": size,
                              "per_s": round(args.batches * size / seconds)}))  # fmt: skip
            size = 1000
            bodies = [
                json.dumps([event(b * size + i, f"e{run}") for i in range(size)]).encode()
                for b in range(args.batches // 10 + args.clients)
            ]
            headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
            seconds = served(base, "/api/v1/events", headers, bodies, args.clients, 201)
            print(json.dumps({"api": "events", "run": run, "batch": size,
                              "per_s": round(args.batches // 10 * size / seconds)}))  # fmt: skip


if __name__ == "__main__":
    main()
