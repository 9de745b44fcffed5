"""The retraining pipeline with REAL Celery workers on Redis and PostgreSQL.

Each test starts `celery worker` subprocesses against the test database and a
Redis broker, and checks what the issue promises: a retrain promotes a new
version; `kill -9` mid-training is survived (the message is redelivered to a
new worker, exactly one version is registered, the active pointer never names
a partial file); two simultaneous requests give one run; with Redis stopped
predictions are still served and a retrain request is a clear 503.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import Enrollment
from churn.features import serving_frames
from eduplatform.celery import app as celery_app
from eduplatform.ml.artifacts import load_artifact
from eduplatform.registry import services, serving
from eduplatform.registry.models import ModelVersion
from tests.conftest import service_missing
from tests.factories import UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
# Seconds before Redis hands an unacknowledged message to another worker. The training
# limits sit just below it (56 s soft / 58 s hard): a whole retrain takes 3-5 s on an idle
# machine, so a loaded one does not end the run FAILED (#30: was 8 s / 10 s); the cost is
# the killed worker's redelivery, which waits this long.
VISIBILITY = 60
FAST = {"seeds": [0], "max_epochs": 3, "refit": False}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker(redis_url):
    """A Redis of our own, so a test may stop it without touching anything else."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    for _ in range(50):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.RedisError:
            time.sleep(0.1)
    yield {"url": url, "proc": proc}
    proc.kill()
    proc.wait()


@pytest.fixture
def pipeline(broker, settings, tmp_path):
    if connection.vendor != "postgresql":
        service_missing("worker tests need PostgreSQL (set DATABASE_URL)")
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    old = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    old_backend = celery_app.conf.result_backend
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = broker["url"]
    # Chords (a retrain's feature chunks) count their parts in the result backend.
    celery_app.conf.result_backend = broker["url"]
    celery_app._backend_cache = None
    celery_app._local.__dict__.pop("backend", None)
    celery_app.conf.broker_transport_options = {"visibility_timeout": VISIBILITY}
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    serving.reset()
    serving_frames.clear()
    call_command("seed_demo", "--learners", "160", "--courses", "3", "--days", "200", "--seed", "3")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "eduplatform.settings.dev",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "REDIS_URL": broker["url"],
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "TRAINING_SOFT_TIME_LIMIT": str(VISIBILITY - 4),
        "TRAINING_HARD_TIME_LIMIT": str(VISIBILITY - 2),
        "ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "PYTHONPATH": str(ROOT),
        "DEBUG": "false",
    }
    workers: list[subprocess.Popen] = []

    def start_worker(name: str, **extra_env: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "eduplatform",
                "worker",
                "-Q",
                "training,scoring,default",
                "-c",
                "1",
                "-n",
                f"{name}@%h",
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env={**env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        workers.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "ready." in (tmp_path / f"{name}.log").read_text():
                return proc
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-2000:]
            time.sleep(0.3)
        raise AssertionError(f"worker {name} did not start")

    yield {"start_worker": start_worker, "broker": broker, "logs": tmp_path}
    for proc in workers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    celery_app.conf.task_always_eager, celery_app.conf.broker_url = old
    # This process subscribed to the results of the tasks it sent (Redis pub/sub); the
    # broker's Redis goes with the test, so forget them instead of unsubscribing (which
    # would retry a dead Redis for 20 s when the results are collected).
    consumer = getattr(celery_app._backend, "result_consumer", None)
    if consumer is not None:
        consumer.subscribed_to.clear()
        consumer.stop()
    celery_app.conf.result_backend = old_backend
    celery_app._backend_cache = None
    celery_app._local.__dict__.pop("backend", None)
    celery_app.conf.broker_transport_options = {
        "visibility_timeout": django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    }
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    serving.reset()
    serving_frames.clear()


def admin_client() -> APIClient:
    token = Token.objects.create(user=UserFactory(username="root", is_superuser=True))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def finished(kind: str = "churn"):
    row = ModelVersion.objects.filter(kind=kind).order_by("-version").first()
    return row if row is not None and row.status != ModelVersion.Status.TRAINING else None


def test_retrain_end_to_end_promotes_a_new_version(pipeline):
    pipeline["start_worker"]("w1")
    first = services.retrain_request(kind="churn", triggered_by="test", parameters=FAST)
    assert first.status == ModelVersion.Status.TRAINING  # queued, not run in-process
    row = wait_for(finished, 120, "the first training")
    assert row.status == ModelVersion.Status.ACTIVE, row.status_reason
    assert load_artifact(Path(row.artifact_path), row.artifact_sha256).config
    assert serving.get_served("churn").version == 1


def test_worker_killed_mid_training_run_completes_once(pipeline):
    worker = pipeline["start_worker"]("w1")
    services.retrain_request(kind="churn", triggered_by="test", parameters=FAST)
    wait_for(
        lambda: ModelVersion.objects.filter(stage__in=["train", "evaluate"]).exists(),
        60,
        "training to start",
    )
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert ModelVersion.objects.get().status == ModelVersion.Status.TRAINING
    with pytest.raises(services.TrainingInProgress):
        services.model_version_start(kind="churn", triggered_by="other")
    # No active pointer exists yet, so none can name a partial file.
    assert not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists()
    pipeline["start_worker"]("w2")
    row = wait_for(finished, VISIBILITY + 120, "the redelivered training")
    assert row.status == ModelVersion.Status.ACTIVE, row.status_reason
    assert ModelVersion.objects.count() == 1
    loaded = load_artifact(Path(row.artifact_path), row.artifact_sha256)
    assert loaded.tensors
    assert not list(Path(row.artifact_path).parent.glob(".*.tmp"))


def test_two_simultaneous_requests_give_one_run(pipeline):
    """Two threads released together by a barrier (#30: was one request after the other).
    Killed mutant (tests/registry/test_services_races.py, same path): model_version_start
    retrying on the IntegrityError instead of raising TrainingInProgress."""
    import threading

    from django.db import connection as thread_connection

    pipeline["start_worker"]("w1")
    admin_client()  # creates the admin and its token
    key = Token.objects.get(user__username="root").key
    barrier = threading.Barrier(2)
    statuses: list[int | str] = []

    def post() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        try:
            barrier.wait(10)
            statuses.append(
                client.post("/api/v1/models/churn/retrain", FAST, format="json").status_code
            )
        except Exception as exc:  # the test client re-raises a view's error
            statuses.append(repr(exc))
        finally:
            thread_connection.close()  # this thread's connection

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses, key=str) == [202, 409], statuses
    wait_for(finished, 120, "the training")
    assert ModelVersion.objects.count() == 1


def test_redis_down_serving_continues_and_retrain_is_503(pipeline, settings):
    # #30: the cache the request reads is on the Redis that is killed (was: only the
    # broker died; this process's cache lived on another Redis).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": pipeline["broker"]["url"],
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }
    pipeline["start_worker"]("w1")
    services.retrain_request(kind="churn", triggered_by="test", parameters=FAST)
    wait_for(finished, 120, "the training")
    enrollment = Enrollment.objects.first()
    admin = admin_client()
    url = f"/api/v1/learners/{enrollment.learner.pseudonym}/risk?course={enrollment.course_id}"
    assert admin.get(url).json()["status"] in ("ok", "not_enrolled")
    from django.core.cache import cache

    cache.set("probe", 1)
    assert cache.get("probe") == 1  # the request's cache is the broker's Redis
    pipeline["broker"]["proc"].kill()
    pipeline["broker"]["proc"].wait()
    with pytest.raises(Exception):  # noqa: B017 - redis-py's error types vary by failure
        cache.get("probe")
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    served = admin.get(url)
    assert served.status_code == 200 and served.json()["model_version"] == 1
    refused = admin.post("/api/v1/models/churn/retrain", {}, format="json")
    assert refused.status_code == 503
    assert "unavailable" in refused.json()["detail"]
    assert not ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING).exists()


def test_gate_failure_leaves_old_model_active(pipeline):
    # A gate that demands an AUC gain of 1.0 cannot be passed by any challenger.
    pipeline["start_worker"]("w1", CHURN_GATE_TOLERANCE_AUC="-1.0")
    services.retrain_request(kind="churn", triggered_by="test", parameters=FAST)
    first = wait_for(finished, 120, "the first training")
    assert first.status == ModelVersion.Status.ACTIVE  # no champion yet: nothing to gate
    services.retrain_request(kind="churn", triggered_by="test", parameters=FAST)
    second = wait_for(
        lambda: finished() if finished() and finished().version == 2 else None, 120, "v2"
    )
    assert second.status == ModelVersion.Status.CANDIDATE
    assert "gate" in second.status_reason
    assert ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE).version == 1
    assert serving.get_served("churn").version == 1


# A training long enough to be killed while its heartbeat thread has beaten a few
# times (no early stopping; every seed's network trains all epochs).
SLOW = {"seeds": [0, 1, 2, 3], "max_epochs": 60, "patience": 0, "refit": False}
HEARTBEAT = {
    "TRAINING_HEARTBEAT_SECONDS": "1",
    "TRAINING_HEARTBEAT_TIMEOUT": "4",
    # Room for the slow training (the broker redelivers after the visibility timeout).
    "CELERY_VISIBILITY_TIMEOUT": "40",
    "TRAINING_SOFT_TIME_LIMIT": "34",
    "TRAINING_HARD_TIME_LIMIT": "36",
}


def test_worker_killed_mid_training_is_reclaimed_by_its_heartbeat(pipeline, settings):
    """#24 item 5: a SIGKILLed worker's run is reclaimed once its heartbeat is older than
    the timeout (never sooner), a new retrain starts at once, the old message does nothing
    when redelivered. Killed mutant: the reclaim cutoff without the timeout (NOW())."""
    settings.TRAINING_HEARTBEAT_TIMEOUT = 4.0
    worker = pipeline["start_worker"]("w1", **HEARTBEAT)
    lost = services.retrain_request(kind="churn", triggered_by="test", parameters=SLOW)

    def beaten_in_training():
        row = ModelVersion.objects.get(id=lost.id)
        # The thread's beats, not only the claim's stamp: later than the start by 1.5 s.
        if row.stage == "train" and row.heartbeat_at and row.started_at:
            return (row.heartbeat_at - row.started_at).total_seconds() >= 1.5
        return False

    wait_for(beaten_in_training, 120, "heartbeats during training")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert ModelVersion.objects.get(id=lost.id).status == ModelVersion.Status.TRAINING

    def reclaimed():
        from eduplatform.registry import tasks

        tasks.reclaim_lost_trainings()  # what the every-minute beat entry runs
        row = ModelVersion.objects.get(id=lost.id)
        return row if row.status == ModelVersion.Status.FAILED else None

    row = wait_for(reclaimed, 60, "the reclaim")
    # Not before the timeout: the last beat is at least the timeout older than the reclaim.
    # Judged on the stamps, not the test's stopwatch (#30: no test asserts a time; how soon
    # the reclaim comes is a matter of the beat schedule, not of this test).
    assert (row.finished_at - row.heartbeat_at).total_seconds() >= 4.0
    assert row.status_reason.startswith("worker lost")
    # A new retrain starts at once (no 409), on a new worker.
    w2 = pipeline["start_worker"]("w2", **HEARTBEAT)
    fresh = services.retrain_request(kind="churn", triggered_by="test", parameters=FAST)
    assert fresh.version == lost.version + 1
    done = wait_for(finished, 180, "the new training")
    assert done.id == fresh.id and done.status == ModelVersion.Status.ACTIVE, done.status_reason
    # The killed run's message comes back after the visibility timeout: it does nothing.
    log = pipeline["logs"] / "w2.log"
    # Counted by the training task's lines: the worker also logs the feature chunks it built.
    trainings = re.compile(r"registry\.retrain_model\[[^\]]+\] succeeded in")
    wait_for(
        lambda: len(trainings.findall(log.read_text())) >= 2,
        40 + 120,
        "the redelivered message of the reclaimed run",
    )
    assert "succeeded" in log.read_text() and "'failed'" in log.read_text()
    assert w2.poll() is None
    row = ModelVersion.objects.get(id=lost.id)
    assert row.status == ModelVersion.Status.FAILED and not row.artifact_path
    finished_rows = ModelVersion.objects.exclude(status=ModelVersion.Status.FAILED)
    assert list(finished_rows.values_list("version", "status")) == [
        (fresh.version, ModelVersion.Status.ACTIVE)
    ]
    artifacts = Path(done.artifact_path).parent
    assert not list(artifacts.glob(".*.tmp"))
    assert not list(artifacts.glob(f"churn-v{lost.version}*"))  # nothing of the killed run
    assert load_artifact(Path(done.artifact_path), done.artifact_sha256).tensors
