"""bench.course_pool: course runs split across worker processes give the one-process result."""

from __future__ import annotations

import pandas as pd
import pytest
from django.core.management import call_command
from django.db import connection

from analytics.learning_data import learning_data
from analytics.models import Course
from bench import course_pool as parallel
from churn.features import training_sets
from churn.models import RiskScore
from eduplatform.core.clock import today
from eduplatform.registry import services, serving
from tests.conftest import service_missing

KEYS = ["course_id", "learner_id", "cutoff"]


def test_balanced_chunks_split_weight_evenly_and_keep_every_id():
    weights = {1: 10, 2: 9, 3: 5, 4: 4, 5: 1, 6: 1}
    chunks = parallel.balanced_chunks(weights, 2)
    assert sorted(i for c in chunks for i in c) == [1, 2, 3, 4, 5, 6]
    loads = sorted(sum(weights[i] for i in c) for c in chunks)
    assert loads == [15, 15]
    assert all(c == sorted(c) for c in chunks)


def test_balanced_chunks_more_workers_than_ids_and_bad_n():
    assert parallel.balanced_chunks({7: 1.0, 3: 2.0}, 5) == [[3], [7]]
    assert parallel.balanced_chunks({}, 2) == []
    with pytest.raises(ValueError):
        parallel.balanced_chunks({1: 1}, 0)


def test_fixed_chunks_as_score_all_sends_them():
    assert parallel.fixed_chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    with pytest.raises(ValueError):
        parallel.fixed_chunks([1], 0)


def test_inline_pool_runs_in_this_process():
    with parallel.CoursePool(3, inline=True) as pool:
        assert pool.map(len, [[1], [1, 2]]) == [1, 2]


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.fixture
def platform(settings, tmp_path):
    if connection.vendor != "postgresql":
        service_missing("parallel tests need PostgreSQL (set DATABASE_URL)")
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    call_command("seed_demo", "--learners", "160", "--courses", "4", "--days", "200", "--seed", "5")
    return list(Course.objects.order_by("id").values_list("id", flat=True))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_build_the_one_process_features_frames_and_scores(platform, settings):
    as_of = today()
    reference = training_sets(as_of=as_of)
    frames = learning_data(course_ids=platform, until=as_of, with_items=True)
    services.retrain_request(
        kind="churn",
        triggered_by="test",
        parameters={"seeds": [0], "max_epochs": 2, "refit": False},
    )
    assert services.batch_scores_refresh(kind="churn", course_ids=platform) > 0
    scores = sorted(
        RiskScore.objects.values_list("course_id", "learner_id", "probability", "band", "factors")
    )
    RiskScore.objects.all().delete()
    overrides = {"ARTIFACT_DIR": settings.ARTIFACT_DIR, "SERVING_FEATURES_TTL": 0}
    with parallel.CoursePool(2, settings_overrides=overrides) as pool:
        pids = pool.on_every_worker()
        assert len(set(pids)) == 2
        got = parallel.parallel_training_sets(as_of=as_of, pool=pool)
        got_frames = parallel.parallel_learning_data(
            course_ids=platform, until=as_of, with_items=True, pool=pool
        )
        written = parallel.parallel_batch_scores("churn", platform, pool=pool, chunk_size=1)

    assert got.val_courses == reference.val_courses and got.window == reference.window
    for mine, theirs in ((got.train, reference.train), (got.val, reference.val)):
        # `last_score` breaks a same-day tie by the SQL row order (no ORDER BY), which
        # differs between one read and a read per chunk; every other column must match.
        pd.testing.assert_frame_equal(
            _sorted(mine.frame.assign(label=mine.labels), KEYS).drop(columns="last_score"),
            _sorted(theirs.frame.assign(label=theirs.labels), KEYS).drop(columns="last_score"),
        )
    for name, keys in (
        ("item_activity", ["course_id", "learner_id", "item_id", "day"]),
        ("activity", ["course_id", "learner_id", "day", "activity_type"]),
        ("enrolments", ["course_id", "learner_id"]),
    ):
        pd.testing.assert_frame_equal(
            _sorted(getattr(got_frames, name), keys),
            _sorted(getattr(frames, name), keys),
            check_dtype=False,
        )
    assert written == len(scores)
    parallel_scores = sorted(
        RiskScore.objects.values_list("course_id", "learner_id", "probability", "band", "factors")
    )
    assert [s[:2] for s in parallel_scores] == [s[:2] for s in scores]
    assert [s[3] for s in parallel_scores] == [s[3] for s in scores]
    for mine, theirs in zip(parallel_scores, scores, strict=True):
        assert mine[2] == pytest.approx(theirs[2], abs=1e-6)
    serving.reset()
