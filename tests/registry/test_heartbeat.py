"""Training heartbeat and the reclaim of runs whose worker was lost (#24 item 5), in-process.

The real-worker test (SIGKILL mid-training) is in test_worker.py.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
import torch
from django.utils import timezone

from eduplatform.registry import kinds, services, tasks
from eduplatform.registry.kinds import ModelKind, TrainContext, TrainOutcome
from eduplatform.registry.models import ModelVersion
from eduplatform.schedules import SCHEDULES

pytestmark = pytest.mark.django_db(transaction=True)
Status = ModelVersion.Status


def _outcome(score: float = 0.7) -> TrainOutcome:
    return TrainOutcome(
        tensors={"w": torch.tensor([score])},
        config={"score": score},
        metrics={"auc": score},
        score=score,
        champion_score=None,
    )


@pytest.fixture
def slow_kind(settings, tmp_path):
    """A kind whose training waits (no progress reports) until the test releases it."""
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    settings.TRAINING_HEARTBEAT_SECONDS = 0.2
    settings.TRAINING_HEARTBEAT_TIMEOUT = 1.0
    release = threading.Event()

    def train(context: TrainContext) -> TrainOutcome:
        context.progress("train", 10)
        assert release.wait(30)
        context.progress("evaluate", 90)
        return _outcome()

    previous = dict(kinds._KINDS)
    kinds.register_kind(
        ModelKind(
            name="slow",
            primary_metric="auc",
            gate_tolerance=lambda: 0.01,
            train=train,
            load=lambda artifact: artifact.config,
        )
    )
    yield release
    release.set()
    kinds._KINDS.clear()
    kinds._KINDS.update(previous)


def _train_in_thread(version_id: int) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        from django.db import connections

        try:
            out["version"] = services.model_version_train(version_id=version_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_heartbeat_beats_while_training_without_progress(slow_kind):
    version = services.model_version_start(kind="slow", triggered_by="test")
    assert version.heartbeat_at is None  # queued: no heartbeat until a worker claims it
    thread, out = _train_in_thread(version.id)
    first = _wait(lambda: ModelVersion.objects.get(id=version.id).heartbeat_at)
    # The training sits in one step; the heartbeat thread keeps stamping.
    _wait(lambda: ModelVersion.objects.get(id=version.id).heartbeat_at > first)
    assert services.runs_reclaim_lost() == 0
    slow_kind.set()
    thread.join(30)
    assert out["version"].status == Status.ACTIVE


def test_stale_run_is_reclaimed_by_a_new_request_and_its_message_does_nothing(slow_kind):
    lost = services.model_version_start(kind="slow", triggered_by="test")
    stale = timezone.now() - dt.timedelta(seconds=5)
    ModelVersion.objects.filter(id=lost.id).update(started_at=stale, heartbeat_at=stale)
    fresh = services.model_version_start(kind="slow", triggered_by="again")  # no 409
    lost.refresh_from_db()
    assert lost.status == Status.FAILED and lost.status_reason.startswith("worker lost")
    assert fresh.status == Status.TRAINING and fresh.version == lost.version + 1
    # A redelivered message for the reclaimed version finds it finished.
    assert tasks.retrain_model(lost.id) == Status.FAILED
    lost.refresh_from_db()
    assert lost.status == Status.FAILED and not lost.artifact_path


def test_periodic_task_reclaims_and_a_reclaimed_training_stops_without_artifact(slow_kind):
    version = services.model_version_start(kind="slow", triggered_by="test")
    thread, out = _train_in_thread(version.id)
    _wait(lambda: ModelVersion.objects.get(id=version.id).stage == "train")
    # As if the worker had stopped beating (paused, partitioned): the beat task reclaims.
    stale = timezone.now() - dt.timedelta(seconds=5)
    ModelVersion.objects.filter(id=version.id).update(heartbeat_at=stale)
    assert tasks.reclaim_lost_trainings() == 1
    slow_kind.set()  # the training goes on, then finds its run reclaimed
    thread.join(30)
    assert out["version"].status == Status.FAILED
    row = ModelVersion.objects.get(id=version.id)
    assert row.status_reason.startswith("worker lost") and not row.artifact_path
    assert not list(Path(services.artifact_path_for(row)).parent.glob("*"))


def test_queued_run_without_heartbeat_is_not_reclaimed(slow_kind):
    version = services.model_version_start(kind="slow", triggered_by="test")
    ModelVersion.objects.filter(id=version.id).update(
        created_at=timezone.now() - dt.timedelta(seconds=30)
    )
    assert services.runs_reclaim_lost() == 0
    assert ModelVersion.objects.get(id=version.id).status == Status.TRAINING


def test_the_reclaim_task_is_scheduled_every_minute():
    entry = next(s for s in SCHEDULES if s.task == "registry.reclaim_lost_trainings")
    assert (entry.hour, entry.minute) == ("*", "*")
