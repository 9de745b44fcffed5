"""eduplatform.registry.features without a broker: the chord runs eagerly, same code.

The chunks a retrain stores are idempotent (a rerun writes nothing), go with the
run, and put together are one build over every run (churn rows in order; the
recommender's frames row for row once sorted by key).
"""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest
from django.core.management import call_command

from analytics.learning_data import learning_data
from analytics.models import Course
from eduplatform.core.clock import today
from eduplatform.registry import features, services
from eduplatform.registry.kinds import get_kind
from eduplatform.registry.models import ModelVersion

pytestmark = pytest.mark.django_db
FAST = {"seeds": [0], "max_epochs": 2, "refit": False, "compress": False}


@pytest.fixture
def platform(settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    call_command("seed_demo", "--learners", "60", "--courses", "3", "--days", "120", "--seed", "4")
    return list(Course.objects.order_by("start_date", "id").values_list("id", flat=True))


def _planned(kind: str, size: int = 1) -> ModelVersion:
    version = services.model_version_start(
        kind=kind, triggered_by="test", parameters={"feature_chunk_runs": size}
    )
    features.training_features_plan(version_id=version.id, as_of=today())
    version.refresh_from_db()
    return version


def test_eager_retrain_builds_the_chunks_trains_and_removes_them(platform):
    version = services.retrain_request(
        kind="churn", triggered_by="test", parameters={**FAST, "feature_chunk_runs": 2}
    )
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.ACTIVE, version.status_reason
    assert version.feature_plan["chunks"] == [platform[:2], platform[2:]]
    assert len(version.metrics["features_sha256"]) == 64
    assert not features.features_dir(version).exists()


def test_a_chunk_is_written_once_and_not_for_a_finished_run(platform):
    version = _planned("churn")
    assert features.training_features_build(version_id=version.id, index=1) is True
    stored = features.features_dir(version) / "chunk-0001"
    stamp = stored.stat().st_mtime_ns
    assert features.training_features_build(version_id=version.id, index=1) is False
    assert stored.stat().st_mtime_ns == stamp
    services.model_version_fail(version_id=version.id, reason="test")
    assert not features.features_dir(version).exists()
    assert features.training_features_build(version_id=version.id, index=0) is False
    assert not features.features_dir(version).exists()


def test_gathering_builds_the_missing_chunks_in_plan_order(platform):
    version = _planned("churn")
    features.training_features_build(version_id=version.id, index=2)  # a worker did one
    gathered = features.training_features_gather(version=version)
    assert gathered.course_ids == platform
    one = get_kind("churn").features.build(platform, gathered.as_of).frames["rows"]
    rows = pd.concat([c.frames["rows"] for c in gathered.chunks], ignore_index=True)
    # last_score: a same-day tie is broken by SQL row order (tests/bench/test_course_pool.py).
    pd.testing.assert_frame_equal(rows.drop(columns="last_score"), one.drop(columns="last_score"))
    again = features.training_features_gather(version=version)
    assert again.digest == gathered.digest


def test_recommender_chunks_are_one_read_of_the_frames(platform):
    from recommender.services import frames_from_chunks

    version = _planned("recommender")
    gathered = features.training_features_gather(version=version)
    assert sorted(gathered.course_ids) == gathered.course_ids == sorted(platform)
    mine = frames_from_chunks(gathered)
    one = learning_data(
        course_ids=gathered.course_ids, until=gathered.as_of, with_items=True, with_activity=False
    )
    for name, keys in (
        ("courses", ["course_id"]),
        ("enrolments", ["course_id", "learner_id"]),
        ("item_activity", ["course_id", "learner_id", "item_id", "day"]),
        ("items", ["item_id"]),
        ("assessments", ["assessment_id"]),
        ("submissions", ["assessment_id", "learner_id"]),
    ):
        a = getattr(mine, name).sort_values(keys).reset_index(drop=True)
        b = getattr(one, name).sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=name)
    assert len(mine.item_activity) > 0


def test_sweep_removes_the_chunks_of_runs_no_longer_training(platform):
    version = _planned("churn")
    features.training_features_build(version_id=version.id, index=0)
    root = features.features_dir(version)
    ModelVersion.objects.filter(id=version.id).update(status=ModelVersion.Status.FAILED)
    assert features.stale_features_sweep() == 0  # a minute's grace
    old = time.time() - 120
    os.utime(root, (old, old))
    assert features.stale_features_sweep() == 1
    assert not root.exists()
