"""`make serve`: the Procfile's four processes under honcho, as the README documents them.

One end-to-end run on PostgreSQL and a Redis of its own: `make serve` (migrate,
collectstatic, honcho with web, worker-training, worker and beat) on a free loopback port
under production settings; /readyz answers 200; events go in through the API with an admin
token; a retrain requested through the API is trained by the training worker and promoted;
a prediction is read back. Every wait is bounded and every process is stopped, whatever
happens. With CI=true a missing PostgreSQL or redis-server fails the test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection
from rest_framework.authtoken.models import Token

from analytics.models import ContentItem, Course, Learner
from tests.conftest import service_missing
from tests.eduplatform.test_deploy import production_env
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("web", "worker-training", "worker", "beat")
SEED = ["--learners", "80", "--courses", "2", "--days", "150", "--seed", "3"]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, timeout: float, probe: Callable[[], Any], log: Path) -> Any:
    """probe() until it returns something truthy; fail naming `what` and the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail(log)}")


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def stop(proc: subprocess.Popen, log: Path) -> None:
    """SIGTERM to make and honcho (honcho stops its children), then SIGKILL whatever is left."""
    with_pids = [int(p) for p in re.findall(r"started \(pid=(\d+)\)", tail(log, 10**7))]
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for pid in with_pids:  # each child leads a process group of its own
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def redis_server(tmp_path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def served(redis_server, tmp_path) -> Iterator[dict[str, Any]]:
    if connection.vendor != "postgresql":
        service_missing("make serve needs PostgreSQL (set DATABASE_URL)")
    db = connection.settings_dict
    port = free_port()
    env = production_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{db['NAME']}",
        REDIS_URL=redis_server,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        PORT=str(port),
        BIND="127.0.0.1",
        WEB_CONCURRENCY="1",
        SCORING_CONCURRENCY="1",
        ARTIFACT_DIR=str(tmp_path / "artifacts"),
        STATIC_ROOT=str(tmp_path / "static"),
        LOG_LEVEL="WARNING",
    )
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, f"make serve exited\n{tail(log)}"
            return requests.get(base + "/readyz", timeout=5).status_code == 200

        wait_for("/readyz to answer 200", 180, ready, log)
        yield {"base": base, "env": env, "log": log, "proc": proc}
    finally:
        stop(proc, log)


def test_make_serve_runs_the_procfile_end_to_end(served):
    base, env, log = served["base"], served["env"], served["log"]
    started = re.findall(r"(\S+)\.1 started \(pid=\d+\)", tail(log, 10**7))
    assert sorted(started) == sorted(PROCESSES), tail(log)
    readiness = requests.get(base + "/readyz", timeout=5).json()
    assert set(readiness["checks"].values()) == {"ok"}, readiness
    # Static files and the API docs come from gunicorn itself (WhiteNoise).
    assert requests.get(base + "/api/v1/docs/", timeout=10).status_code == 200

    # Data: a small synthetic platform written under the same settings (keys) as the server.
    seeded = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", *SEED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    token = Token.objects.create(user=UserFactory(username="ops", is_superuser=True, is_staff=True))
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token.key}"

    # Events in through the API.
    course = Course.objects.order_by("code").first()
    items = list(ContentItem.objects.filter(course=course).order_by("id")[:5])
    before = set(Learner.objects.values_list("pk", flat=True))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    events = [
        {
            "client_event_id": f"smoke-{n}",
            "learner_id": "smoke-learner",
            "course": course.code,
            "item": item.external_id,
            "verb": "viewed",
            "occurred_at": (now - dt.timedelta(hours=n)).isoformat(),
            "count": 2,
        }
        for n, item in enumerate(items)
    ]
    posted = api.post(base + "/api/v1/events", json=events, timeout=30)
    assert posted.status_code in (200, 201), posted.text
    (learner,) = Learner.objects.exclude(pk__in=before)

    # A retrain through the API, trained by the training worker, promoted.
    retrain = api.post(base + "/api/v1/models/recommender/retrain", json={}, timeout=30)
    assert retrain.status_code == 202, retrain.text

    def promoted() -> dict[str, Any] | None:
        rows = api.get(base + "/api/v1/models/recommender/versions", timeout=10).json()
        failed = [r for r in rows if r["status"] == "failed"]
        assert not failed, failed
        return next((r for r in rows if r["status"] == "active"), None)

    version = wait_for("a promoted recommender version", 300, promoted, log)
    assert version["version"] == 1

    # A prediction from the web process, with the promoted model.
    answer = api.get(
        base + f"/api/v1/learners/{learner.pseudonym}/recommendations",
        params={"course": course.pk, "k": 5},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok", body
    assert body["model_version"] == 1
    assert 0 < len(body["items"]) <= 5


def test_make_serve_without_database_and_redis_urls_says_so():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed-runtime", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "set DATABASE_URL and REDIS_URL" in result.stdout + result.stderr
