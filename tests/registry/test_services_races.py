"""The registry's write path under a crash and under a race, on PostgreSQL (#30 item 2).

* A worker SIGKILLed between its artifact's write and rename (the `before_rename` hook of
  eduplatform/ml/artifacts.py) leaves no row naming a file that does not verify, the old
  model serving, and a run that a redelivery completes.
* Two retrain requests released together by a barrier: one 202, one 409, one row, one
  training, one artifact.
SQLite serialises writers, so neither shows anything there: both need DATABASE_URL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from eduplatform.ml.artifacts import load_artifact
from eduplatform.registry import kinds, services, serving
from eduplatform.registry.kinds import ModelKind, TrainContext, TrainOutcome
from eduplatform.registry.models import ModelVersion
from tests.conftest import service_missing
from tests.factories import UserFactory
from tests.registry.conftest import _load, _train

pytestmark = pytest.mark.django_db(transaction=True)
Status = ModelVersion.Status
ROOT = Path(__file__).resolve().parents[2]

# The worker: trains one version of the dummy kind and stops at the hook until killed.
_WORKER = """
import sys, time
from pathlib import Path
import django
django.setup()
from django.conf import settings
settings.ARTIFACT_DIR = Path(sys.argv[2])
from eduplatform.ml import artifacts
from eduplatform.registry import kinds, services
from eduplatform.registry.kinds import ModelKind
from tests.registry.conftest import _load, _train
kinds.register_kind(ModelKind(name="dummy", primary_metric="auc",
                              gate_tolerance=lambda: 0.01, train=_train, load=_load))

def stop(tmp, dest):
    print(tmp, flush=True)
    time.sleep(120)

artifacts.before_rename = stop
services.model_version_train(version_id=int(sys.argv[1]))
print("finished", flush=True)
"""


@pytest.fixture
def postgres() -> None:
    if connection.vendor != "postgresql":
        service_missing("the crash and race tests need PostgreSQL (set DATABASE_URL)")


def _verifies(row: ModelVersion) -> bool:
    try:
        load_artifact(Path(row.artifact_path), row.artifact_sha256)
    except Exception:
        return False
    return True


def test_kill_between_artifact_write_and_rename(postgres, dummy_kind, settings):
    """Killed mutant: writing the artifact straight to its destination (no temporary
    file) leaves the killed run's file at the version path."""
    first = services.retrain_request(kind="dummy", triggered_by="t", parameters={"score": 0.7})
    second = services.model_version_start(kind="dummy", triggered_by="t", parameters={"score": 0.8})
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "eduplatform.settings.test",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(second.id), str(settings.ARTIFACT_DIR)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        tmp = Path(worker.stdout.readline().strip())  # blocks until the hook is reached
        assert tmp.exists(), "the worker did not reach the hook"
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait()
    assert worker.returncode == -signal.SIGKILL

    second.refresh_from_db()
    assert second.status == Status.TRAINING and second.artifact_path == ""
    assert not services.artifact_path_for(second).exists()  # nothing at the version path
    named = ModelVersion.objects.exclude(artifact_path="")
    assert [r.version for r in named] == [1] and all(_verifies(r) for r in named)
    assert ModelVersion.objects.get(status=Status.ACTIVE).id == first.id
    assert serving.get_served("dummy").version == 1

    # The redelivered message completes the run once, in place of the killed worker.
    services.model_version_train(version_id=second.id)
    second.refresh_from_db()
    assert second.status == Status.ACTIVE and _verifies(second)
    assert serving.get_served("dummy").version == 2
    assert ModelVersion.objects.count() == 2


@pytest.fixture
def gated_kind(dummy_kind):
    """The dummy kind, whose training waits for the test's go and counts its runs."""
    go = threading.Event()
    runs: list[int] = []

    def train(context: TrainContext) -> TrainOutcome:
        runs.append(context.version_id)
        assert go.wait(60), "the test never released the training"
        return _train(context)

    kinds.register_kind(
        ModelKind(
            name="dummy", primary_metric="auc", gate_tolerance=lambda: 0.01, train=train, load=_load
        )
    )
    return go, runs


def test_two_simultaneous_retrain_requests_give_one_run(postgres, gated_kind):
    """Both requests pass the barrier together; the training (run in the request, tasks
    are eager here) holds the first open until the second has its answer, so the second
    meets an open run whichever wins. Killed mutant: model_version_start retrying on the
    IntegrityError instead of answering TrainingInProgress (202 and 500)."""
    go, runs = gated_kind
    token = Token.objects.create(user=UserFactory(username="root", is_superuser=True)).key
    barrier = threading.Barrier(2)
    answers: list[int | str] = []
    done = threading.Condition()

    def request() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(10)
            code = client.post("/api/v1/models/dummy/retrain", {}, format="json").status_code
        except Exception as exc:  # the test client re-raises a view's error
            code = repr(exc)
        finally:
            connection.close()  # this thread's connection, or the test database stays busy
        with done:
            answers.append(code)
            done.notify_all()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    with done:
        assert done.wait_for(lambda: answers, 60), "no request answered"
    go.set()  # the loser has answered: let the winner's training finish
    for thread in threads:
        thread.join(60)
    assert sorted(answers, key=str) == [202, 409], answers
    rows = list(ModelVersion.objects.all())
    assert [(r.version, r.status) for r in rows] == [(1, Status.ACTIVE)]
    assert runs == [rows[0].id]  # one training, of the one row
    files = sorted(p.name for p in services.artifact_path_for(rows[0]).parent.iterdir())
    assert files == [Path(rows[0].artifact_path).name]
    assert torch.equal(
        load_artifact(Path(rows[0].artifact_path), None).tensors["w"], torch.tensor([0.7])
    )
