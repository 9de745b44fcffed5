import logging
import time
from pathlib import Path

import pytest

from eduplatform.registry import services, serving
from eduplatform.registry.models import ModelVersion

# Transactional: promotions announce themselves on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)
Status = ModelVersion.Status


def retrain(score: float, **kw) -> ModelVersion:
    version = services.retrain_request(
        kind="dummy", triggered_by="test", parameters={"score": score}, **kw
    )
    version.refresh_from_db()
    return version


def test_first_run_is_promoted_with_artifact_and_report(dummy_kind):
    version = retrain(0.70)
    assert version.status == Status.ACTIVE
    assert (version.stage, version.percent) == ("done", 100)
    assert Path(version.artifact_path).exists()
    assert len(version.artifact_sha256) == 64
    assert version.metrics["score"] == pytest.approx(0.70)
    assert version.compression_report["variants"][0]["name"] == "fp32"
    served = serving.get_served("dummy")
    assert served.version == 1 and served.model["score"] == pytest.approx(0.70)


def test_gate_keeps_champion_when_challenger_is_worse(dummy_kind):
    retrain(0.70)
    worse = retrain(0.65)
    assert worse.status == Status.CANDIDATE
    assert "gate" in worse.status_reason
    assert ModelVersion.objects.get(kind="dummy", status=Status.ACTIVE).version == 1
    within_tolerance = retrain(0.695)
    assert within_tolerance.status == Status.ACTIVE
    assert ModelVersion.objects.get(version=1).status == Status.RETIRED
    assert within_tolerance.warm_started_from_id == ModelVersion.objects.get(version=1).id


def test_rollback_and_promote(dummy_kind):
    retrain(0.70)
    retrain(0.72)
    assert serving.get_served("dummy").version == 2
    rows = ModelVersion.objects.count()
    rolled = services.model_version_rollback(kind="dummy")
    # A rollback switches the active row: no retrain, no new version (its speed is a
    # benchmark's business, not a test's).
    assert ModelVersion.objects.count() == rows
    assert rolled.version == 1
    assert serving.get_served("dummy").version == 1
    assert services.model_version_promote(kind="dummy", version=2).status == Status.ACTIVE
    assert serving.get_served("dummy").version == 2
    with pytest.raises(services.PromotionError):
        services.model_version_promote(kind="dummy", version=9)


def test_one_training_run_per_kind(dummy_kind):
    first = services.model_version_start(kind="dummy", triggered_by="a")
    with pytest.raises(services.TrainingInProgress) as raised:
        services.model_version_start(kind="dummy", triggered_by="b")
    assert raised.value.version.id == first.id
    services.model_version_train(version_id=first.id)
    assert services.model_version_start(kind="dummy", triggered_by="c").version == 2


def test_training_twice_registers_once(dummy_kind):
    version = services.model_version_start(kind="dummy", triggered_by="a")
    services.model_version_train(version_id=version.id)
    services.model_version_train(version_id=version.id)
    assert ModelVersion.objects.filter(kind="dummy").count() == 1
    assert ModelVersion.objects.get().status == Status.ACTIVE


def test_no_model_yet(dummy_kind):
    assert serving.get_served("dummy") is None


def test_tampered_artifact_keeps_previous_model(dummy_kind, caplog):
    retrain(0.70)
    assert serving.get_served("dummy").version == 1
    second = retrain(0.75)
    Path(second.artifact_path).write_bytes(b"tampered")
    serving.reset()
    # A fresh process would have nothing; this one held v1: emulate by loading v1 first.
    services.model_version_promote(kind="dummy", version=1)
    assert serving.get_served("dummy").version == 1
    with caplog.at_level(logging.ERROR, logger="eduplatform.registry.serving"):
        services.model_version_promote(kind="dummy", version=2)
        served = serving.get_served("dummy")
    assert served.version == 1
    assert "sha256 mismatch" in caplog.text


def test_stale_training_run_is_abandoned(dummy_kind, settings):
    stale = services.model_version_start(kind="dummy", triggered_by="a")
    settings.TRAINING_HARD_TIME_LIMIT = -1000
    fresh = services.model_version_start(kind="dummy", triggered_by="b")
    stale.refresh_from_db()
    assert stale.status == Status.FAILED and "abandoned" in stale.status_reason
    assert fresh.version == 2


def test_scheduled_retrain_runs_once_a_day(dummy_kind):
    assert services.retrain_request_scheduled(kind="dummy") is not None
    assert services.retrain_request_scheduled(kind="dummy") is None
    assert ModelVersion.objects.filter(triggered_by="schedule").count() == 1


def test_erasure_marks_active_models_due(dummy_kind):
    retrain(0.7)
    assert services.models_mark_retrain_due() == 1
    assert ModelVersion.objects.get(status=Status.ACTIVE).retrain_due


def test_processes_recheck_the_cache_at_most_once_per_window(dummy_kind, settings, monkeypatch):
    settings.SERVING_RECHECK_SECONDS = 60.0
    retrain(0.7)
    assert serving.get_served("dummy").version == 1
    gets = []
    real_get = serving.cache.get
    monkeypatch.setattr(serving.cache, "get", lambda *a, **k: gets.append(a) or real_get(*a, **k))
    for _ in range(5):
        assert serving.get_served("dummy").version == 1
    assert gets == []  # within the window: no round trip
    # Another process's promotion shows up once the window is over ...
    other = retrain(0.8)
    serving._state.fresh_until["dummy"] = time.monotonic() + 60  # as if announced elsewhere
    assert serving.get_served("dummy").version == 1
    serving._state.fresh_until["dummy"] = 0.0
    assert serving.get_served("dummy").version == other.version == 2
    # ... and one made in this process at once.
    services.model_version_rollback(kind="dummy")
    assert serving.get_served("dummy").version == 1


def test_every_task_has_a_queue_in_the_routing_table() -> None:
    """Tasks declare their queue in eduplatform/celery.py's one table, by name."""
    from eduplatform.celery import Queue, app

    app.loader.import_default_modules()
    ours = sorted(n for n in app.tasks if n.startswith(("registry.", "analytics.")))
    assert ours, "no project task registered"
    routes = app.conf.task_routes
    missing = [n for n in ours if n not in routes]
    assert missing == []
    assert {routes[n]["queue"] for n in ours} <= {q.value for q in Queue}
