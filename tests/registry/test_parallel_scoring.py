"""Two REAL Celery workers scoring chunks of one batch give the rows one process gives.

`registry.score_all` fans out one `score_batch(kind, course_ids)` per chunk on
the scoring queue; any number of workers sharing PostgreSQL and Redis take
them. Here: churn and recommender trained and promoted by a worker, the batch
scored in-line (`services.batch_scores_refresh`), the rows kept and cleared,
then `score_all` with chunks of one run on two worker processes.
"""

from __future__ import annotations

import json
import re

import pytest

from analytics.models import Course, Enrollment
from churn.models import RiskScore
from eduplatform.registry import services, serving
from eduplatform.registry.models import ModelVersion
from eduplatform.registry.tasks import score_all
from recommender.models import NextItems
from tests.registry.test_worker import (  # noqa: F401 - fixtures used by name
    FAST,
    broker,
    finished,
    pipeline,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _risk_rows() -> list[tuple]:
    return sorted(
        RiskScore.objects.values_list(
            "course_id", "learner_id", "model_version", "as_of", "probability", "band", "factors"
        )
    )


def _next_rows() -> list[tuple]:
    return sorted(
        (c, learner, v, json.dumps(items))
        for c, learner, v, items in NextItems.objects.values_list(
            "course_id", "learner_id", "model_version", "items"
        )
    )


def test_two_workers_scoring_chunks_match_one_process(pipeline):  # noqa: F811
    course_ids = list(Course.objects.order_by("id").values_list("id", flat=True))
    assert len(course_ids) == 3  # the pipeline's platform: 3 runs of 160 learners
    pipeline["start_worker"]("w1")
    for kind, parameters in (("churn", FAST), ("recommender", {})):
        services.retrain_request(kind=kind, triggered_by="test", parameters=parameters)
        row = wait_for(lambda k=kind: finished(k), 180, f"the {kind} training")
        assert row.status == ModelVersion.Status.ACTIVE, row.status_reason

    # One process, in-line: the reference rows.
    serving.reset()
    assert services.batch_scores_refresh(kind="churn", course_ids=course_ids) > 0
    assert services.batch_scores_refresh(kind="recommender", course_ids=course_ids) > 0
    risk, next_items = _risk_rows(), _next_rows()
    assert len({r[0] for r in risk}) == 3
    assert len(next_items) == Enrollment.objects.count()
    RiskScore.objects.all().delete()
    NextItems.objects.all().delete()

    # Two workers, one run per chunk: 2 kinds x 3 runs = 6 tasks on the scoring queue.
    pipeline["start_worker"]("w2")
    score_all.delay(chunk_size=1)
    wait_for(
        lambda: (
            (RiskScore.objects.count(), NextItems.objects.count()) == (len(risk), len(next_items))
        ),
        180,
        "the fanned-out scoring",
    )
    parallel_risk, parallel_next = _risk_rows(), _next_rows()

    assert [r[:4] for r in parallel_risk] == [r[:4] for r in risk]  # same learners, version, day
    assert [r[5:] for r in parallel_risk] == [r[5:] for r in risk]  # same bands and factors
    for mine, theirs in zip(parallel_risk, risk, strict=True):
        assert mine[4] == pytest.approx(theirs[4], abs=1e-9)
    assert parallel_next == next_items  # same learners, same items in the same order

    # Both workers took chunks of the batch.
    logs = {name: (pipeline["logs"] / f"{name}.log").read_text() for name in ("w1", "w2")}
    for name, text in logs.items():
        assert re.search(r"registry\.score_batch\[[^\]]+\] succeeded", text), f"{name}: no chunk"
