"""The recommender model kind: how the registry trains, loads and batch-scores it."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.learning_data import learning_data
from analytics.models import ContentItem, Course
from eduplatform.core.clock import today
from eduplatform.ml.artifacts import Artifact
from eduplatform.ml.compress import (
    FP32,
    CompressionSettings,
    SelectionPolicy,
    artifact_size,
    build_variant,
    variant_state,
)
from eduplatform.ml.data import LearningData
from eduplatform.registry.compression import (
    compression_wanted,
    retrain_settings,
    serve_requested,
)
from eduplatform.registry.kinds import (
    CompressionRequest,
    FeatureChunk,
    FeatureFanout,
    ModelKind,
    TrainContext,
    TrainingFeatures,
    TrainingRejected,
    TrainOutcome,
)
from recommender.model.compression import (
    compress_recommender,
    distill_finetune,
    load_recommender,
    ndcg_evaluator,
    recommender_serving_state,
    scoring_groups,
)
from recommender.model.evaluate import evaluate_scorer, product_scorer, split_runs
from recommender.model.predictor import Recommender, params_from_dict, params_to_dict
from recommender.model.timeline import Params
from recommender.models import NextItems

logger = logging.getLogger(__name__)

VALIDATION_DAYS = 14
MATURE_DAYS = 42
BATCH_ITEMS = 3


def _config(parameters: dict[str, Any]) -> Params:
    # A run's parameters may override any ranker setting (e.g. {"seed": 1, "epochs": 4}).
    return params_from_dict({**params_to_dict(Params()), **parameters})


def _as_of_days(courses: list[Course], as_of: dt.date) -> dict[int, int]:
    return {c.id: min(c.day_of(as_of), c.length_days) for c in courses}


def train(context: TrainContext) -> TrainOutcome:
    """Validate and choose the compression on the last two weeks, then refit on everything.

    1. Read clicks of the runs that started before today (one aggregate scan).
    2. Fit on clicks before (today - 14 days), score first visits after: NDCG@10.
    3. Compress that validation model: every variant is scored on the same
       held-out visits and the policy picks the recipe to serve.
    4. Refit on all clicks so the served model knows the latest cohort activity, with
       the epoch count the validation fit chose on its inner cut (no second choice),
       runs that ended known in full, starting from the champion's network when
       allowed (warm start: same cost, continuity of the weights).
    5. Apply the chosen recipe to the refitted network (distilled from it).

    Long because the retrain stages (features, validate, compress, refit, apply recipe, report)
    share their state and read best in order.
    """
    as_of = context.features.as_of if context.features is not None else today()
    config = _config(context.parameters)
    stages: dict[str, float] = {}
    started = time.perf_counter()
    context.progress("features", 5)
    runs = Course.objects.filter(start_date__lt=as_of)
    if context.features is not None:  # the plan's runs, read chunk by chunk by any worker
        runs = Course.objects.filter(id__in=context.features.course_ids)
    courses = list(runs.order_by("start_date", "id"))
    if not courses:
        raise TrainingRejected("no course run has started yet")
    if context.features is not None:
        data = frames_from_chunks(context.features)
    else:
        data = learning_data(
            course_ids=[c.id for c in courses], until=as_of, with_items=True, with_activity=False
        )
    if data.item_activity.empty:
        raise TrainingRejected("no item clicks yet")
    days = _as_of_days(courses, as_of)
    # Runs younger than MATURE_DAYS do not set the validation split: the ranker learns from
    # replayed days at least 14 days into a run, so a run that started last week would
    # leave it nothing to validate on (they are still trained on and served).
    mature = [d for d in days.values() if d >= MATURE_DAYS]
    base = min(mature) if mature else max(days.values())
    split_day = max(VALIDATION_DAYS, base - VALIDATION_DAYS)
    stages["features"] = time.perf_counter() - started
    context.progress("validate", 15)
    t = time.perf_counter()
    splits = split_runs(data, split_day)
    try:
        scorer, validation_model = product_scorer(data, split_day, config)
    except ValueError as exc:  # no replayed cut day with labels yet (a young platform)
        raise TrainingRejected(f"nothing to train the ranker on yet ({exc})") from exc
    validation = evaluate_scorer(splits, scorer, 10)
    stages["validate"] = time.perf_counter() - t
    compression: dict[str, Any] = {}
    variant = FP32
    recipe: CompressionSettings | None = None
    if compression_wanted(context.parameters) and splits:
        context.progress("compress", 35)
        t = time.perf_counter()
        assert isinstance(validation_model, Recommender)
        result = compress_recommender(
            validation_model,
            evaluate=ndcg_evaluator(validation_model, splits, split_day),
            finetune=_finetune(validation_model),
            policy=SelectionPolicy.recommender(
                tolerance=settings.RECOMMENDER_COMPRESSION_TOLERANCE_NDCG
            ),
            settings=retrain_settings(CompressionSettings.recommender()),
            with_serving_bytes=False,
        )
        serve_requested(result, context.parameters)
        compression, variant, recipe = result.to_dict(), result.chosen, result.settings
        stages["compress"] = time.perf_counter() - t
    context.progress("train", 65)
    t = time.perf_counter()
    champion = _warm_start_model(context)
    finished = [c.id for c in courses if days[c.id] >= c.length_days]
    model = Recommender.fit(
        data,
        days,
        config,
        warm_start=champion,
        finished=finished,
        epochs=int(validation_model.stats.get("epochs") or config.default_epochs),
    )
    warm = (
        {"weights": "champion fp32", "epochs": model.stats.get("epochs")}
        if model.stats.get("warm_start")
        else None
    )
    stages["train"] = time.perf_counter() - t
    tensors, state_config = model.to_state()
    checkpoint = None
    if variant != FP32 and recipe is not None:
        context.progress("compress", 85)
        t = time.perf_counter()
        module = build_variant(
            variant,
            model.net,
            settings=recipe,
            groups=scoring_groups(model.net),
            finetune=_finetune(model),
        )
        checkpoint = (tensors, state_config)
        tensors, state_config = recommender_serving_state(model, module, variant)
        served_bytes = artifact_size(tensors, state_config)
        compression["served_model"] = {
            "network_bytes": artifact_size(*variant_state(module)),
            "fp32_network_bytes": artifact_size(*variant_state(model.net)),
            "run_state_bytes": served_bytes - artifact_size(*variant_state(module)),
            "artifact_bytes": served_bytes,
            "fp32_artifact_bytes": artifact_size(*checkpoint),
        }
        stages["compress"] = stages.get("compress", 0.0) + time.perf_counter() - t
    champion_score = None
    if context.champion is not None and context.champion_metrics:
        # Recommender runs are per course run and day, so the champion cannot
        # be re-scored on today's split cheaply; compare with its recorded NDCG.
        champion_score = context.champion_metrics.get("score")
    served = compression.get("variants") and next(
        (r["quality"] for r in compression["variants"] if r["name"] == variant), None
    )
    score = float(served) if served is not None else validation["ndcg"]
    return TrainOutcome(
        tensors=tensors,
        config=state_config,
        metrics={
            "ndcg@10": score,
            "ndcg@10_fp32": validation["ndcg"],
            "recall@10": validation["recall"],
            "coverage": validation["coverage"],
            "validation_learners": validation["learners"],
            "split_day": split_day,
            "stage_seconds": stages,
            "as_of": as_of.isoformat(),
            "warm_start": warm,
        },
        score=score,
        champion_score=champion_score,
        compression_report=compression,
        served_variant=variant,
        checkpoint=checkpoint,
        warm_started=warm is not None,
        data_window=(
            timezone.make_aware(dt.datetime.combine(courses[0].start_date, dt.time())),
            timezone.make_aware(dt.datetime.combine(as_of, dt.time())),
        ),
    )


def training_runs(as_of: dt.date) -> list[int]:
    """The runs a training as of that day reads, by id (the order one read returns them)."""
    return list(
        Course.objects.filter(start_date__lt=as_of).order_by("id").values_list("id", flat=True)
    )


def training_chunk(course_ids: list[int], as_of: dt.date) -> FeatureChunk:
    """The frames of some runs, as `train` reads them (item clicks, no daily rollup)."""
    data = learning_data(course_ids=course_ids, until=as_of, with_items=True, with_activity=False)
    return FeatureChunk(frames={name: getattr(data, name) for name in LearningData.frame_names()})


def frames_from_chunks(gathered: TrainingFeatures) -> LearningData:
    """The chunks' frames put together in plan order. Every frame is keyed by course run,
    so this is one read's frames; a chunk's empty frame is left out, so that its column
    types (unknown without rows) do not widen the others'."""
    frames = {}
    for name in LearningData.frame_names():
        parts = [c.frames[name] for c in gathered.chunks if name in c.frames]
        rows = [p for p in parts if len(p)] or parts[:1]
        frames[name] = pd.concat(rows, ignore_index=True) if len(rows) > 1 else rows[0]
    return LearningData(**frames)


def _finetune(model: Recommender):
    # Distillation from the model's own fp32 network at the runs' as-of day: needs
    # no training rows. A sample of learners per run keeps it within the budget.
    return distill_finetune(model, epochs=2, max_learners=256)


def _warm_start_model(context: TrainContext) -> Recommender | None:
    """The champion's fp32 network (from its checkpoint) when a warm start was asked for."""
    if context.warm_start is None:
        return None
    try:
        return Recommender.from_state(context.warm_start.tensors, context.warm_start.config)
    except (KeyError, ValueError, RuntimeError) as exc:
        logger.warning("recommender: cannot warm start (%s); training from scratch", exc)
        return None


def load(artifact: Artifact) -> Recommender:
    # fp32 and compressed states alike (the config says which).
    return load_recommender(artifact.tensors, artifact.config)


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


def compression_report(request: CompressionRequest) -> tuple[Any, str]:
    """`manage.py compression_report --model recommender`: OULAD-format data or a
    synthetic catalogue (`--catalog-items`), trained, compressed, reported."""
    from recommender.model.compression import compression_report as report

    compression, policy = CompressionSettings.recommender(), SelectionPolicy.recommender()
    request.tune(compression, policy)
    options = request.options
    return report(
        request.load_data,
        settings=compression,
        policy=policy,
        split_day=options["split_day"],
        catalog_items=options.get("catalog_items"),
        learners=options["learners"],
        untrained=options["untrained"],
        seed=options["seed"],
        max_epochs=options.get("max_epochs"),
        finetune_epochs=options.get("finetune_epochs"),
        log=request.log,
    )


KIND = ModelKind(
    name="recommender",
    primary_metric="ndcg@10",
    gate_tolerance=lambda: settings.RECOMMENDER_GATE_TOLERANCE_NDCG,
    train=train,
    load=load,
    score_batch=score_batch,
    compression_report=compression_report,
    features=FeatureFanout(runs=training_runs, build=training_chunk),
)
