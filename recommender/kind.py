"""The recommender model kind: how the registry trains, loads and batch-scores it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.learning_data import learning_data
from analytics.models import ContentItem, Course
from eduplatform.clock import today
from eduplatform.ml.artifacts import Artifact
from eduplatform.ml.recommender.evaluate import evaluate_scorer, product_scorer, split_runs
from eduplatform.ml.recommender.service import Recommender
from eduplatform.ml.recommender.train import TrainConfig
from eduplatform.registry.kinds import ModelKind, TrainContext, TrainingRejected, TrainOutcome
from recommender.models import NextItems

VALIDATION_DAYS = 14
BATCH_ITEMS = 3


def _config(parameters: dict[str, Any]) -> TrainConfig:
    return TrainConfig.from_dict(
        {k: v for k, v in parameters.items() if k in TrainConfig.__dataclass_fields__}
    )


def _as_of_days(courses: list[Course], as_of: dt.date) -> dict[int, int]:
    return {c.id: min(c.day_of(as_of), c.length_days) for c in courses}


def train(context: TrainContext) -> TrainOutcome:
    """Validate on the last two weeks, then refit on everything up to today.

    1. Read clicks of the runs that started before today (one aggregate scan).
    2. Fit on clicks before (today - 14 days), score first visits after: NDCG@10.
    3. Refit on all clicks so the served model knows the latest cohort activity.
    """
    as_of = today()
    config = _config(context.parameters)
    stages: dict[str, float] = {}
    started = time.perf_counter()
    context.progress("features", 5)
    courses = list(Course.objects.filter(start_date__lt=as_of).order_by("start_date", "id"))
    if not courses:
        raise TrainingRejected("no course run has started yet")
    data = learning_data(course_ids=[c.id for c in courses], until=as_of, with_items=True)
    if data.item_activity.empty:
        raise TrainingRejected("no item clicks yet")
    days = _as_of_days(courses, as_of)
    split_day = max(VALIDATION_DAYS, min(days.values()) - VALIDATION_DAYS)
    stages["features"] = time.perf_counter() - started
    context.progress("validate", 20)
    t = time.perf_counter()
    splits = split_runs(data, split_day)
    scorer, _ = product_scorer(data, split_day, config)
    validation = evaluate_scorer(splits, scorer, 10)
    stages["validate"] = time.perf_counter() - t
    context.progress("train", 55)
    t = time.perf_counter()
    model = Recommender.fit(data, days, config)
    stages["train"] = time.perf_counter() - t
    tensors, state_config = model.to_state()
    champion_score = None
    if context.champion is not None and context.champion_metrics:
        # Recommender runs are per course run and day, so the champion cannot
        # be re-scored on today's split cheaply; compare with its recorded NDCG.
        champion_score = context.champion_metrics.get("score")
    return TrainOutcome(
        tensors=tensors,
        config=state_config,
        metrics={
            "ndcg@10": validation["ndcg"],
            "recall@10": validation["recall"],
            "coverage": validation["coverage"],
            "validation_learners": validation["learners"],
            "split_day": split_day,
            "stage_seconds": stages,
            "as_of": as_of.isoformat(),
        },
        score=validation["ndcg"],
        champion_score=champion_score,
        data_window=(
            timezone.make_aware(dt.datetime.combine(courses[0].start_date, dt.time())),
            timezone.make_aware(dt.datetime.combine(as_of, dt.time())),
        ),
    )


def load(artifact: Artifact) -> Recommender:
    return Recommender.from_state(artifact.tensors, artifact.config)


def score_batch(model: Recommender, course_ids: list[int], version: int = 0) -> int:
    """Top items of every enrolled learner of the runs the model knows (for course tables)."""
    as_of = today()
    written = 0
    known = set(model.course_ids())
    for course in Course.objects.filter(id__in=[c for c in course_ids if c in known]):
        learner_ids = np.array(
            list(course.enrollments.values_list("learner_id", flat=True)), dtype=np.int64
        )
        if len(learner_ids) == 0:
            continue
        scores, visited = model.score_learners(
            course.id, learner_ids, min(course.day_of(as_of), course.length_days)
        )
        scores = np.where(visited, -np.inf, scores)
        item_ids = model.item_ids(course.id)
        titles = dict(ContentItem.objects.filter(course=course).values_list("id", "title"))
        top = np.argsort(-scores, axis=1)[:, :BATCH_ITEMS]
        now = timezone.now()
        rows = [
            NextItems(
                course=course,
                learner_id=int(learner),
                model_version=version,
                scored_at=now,
                items=[
                    {"item_id": int(item_ids[j]), "title": titles.get(int(item_ids[j]), "")}
                    for j in top[i]
                    if np.isfinite(scores[i, j])
                ],
            )
            for i, learner in enumerate(learner_ids)
        ]
        with transaction.atomic():
            NextItems.objects.filter(course=course).delete()
            NextItems.objects.bulk_create(rows, batch_size=1000)
        written += len(rows)
    return written


KIND = ModelKind(
    name="recommender",
    primary_metric="ndcg@10",
    gate_tolerance=lambda: settings.RECOMMENDER_GATE_TOLERANCE_NDCG,
    train=train,
    load=load,
    score_batch=score_batch,
)
