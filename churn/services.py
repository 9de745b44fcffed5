"""The churn model kind: how the registry trains, loads and batch-scores it."""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.models import Course
from churn.features import (
    serving_frames,
    training_chunk,
    training_runs,
    training_sets,
    training_sets_from_chunks,
)
from churn.model.compression import churn_serving_state, compress_churn, load_churn_predictor
from churn.model.importance import permutation_ranking
from churn.model.predictor import ChurnPredictor
from churn.model.training import ChurnSettings, train_churn_model
from churn.models import RiskHistory, RiskScore
from eduplatform.core.clock import today
from eduplatform.ml.artifacts import Artifact
from eduplatform.ml.compress import FP32, CompressionSettings, SelectionPolicy
from eduplatform.ml.metrics import binary_report, calibration_curve, roc_auc
from eduplatform.registry.compression import (
    compression_wanted,
    retrain_settings,
    serve_requested,
)
from eduplatform.registry.kinds import (
    CompressionRequest,
    FeatureFanout,
    ModelKind,
    TrainContext,
    TrainingRejected,
    TrainOutcome,
)

logger = logging.getLogger(__name__)


def _settings(parameters: dict[str, Any]) -> ChurnSettings:
    known = ChurnSettings.__dataclass_fields__
    # No refit on train + validation by default: the served networks then never saw
    # the validation runs, so the gate compares challenger and champion on rows
    # neither was trained on, and training takes half the time.
    chosen = {"refit": False, **{k: v for k, v in parameters.items() if k in known}}
    if "seeds" in chosen:
        chosen["seeds"] = tuple(chosen["seeds"])
    return ChurnSettings(**chosen)


def train(context: TrainContext) -> TrainOutcome:
    """Features -> train -> compress -> evaluate against the champion on the same rows.

    1. Build labelled learners at the cut-offs of every run that started before
       today; the latest-starting runs validate.
    2. Train the predictor (early stopping on the validation runs).
    3. Build the compressed variants and keep the one the selection policy
       chooses (quality loss within CHURN_COMPRESSION_TOLERANCE_AUC).
    4. Score the served variant, reloaded from its state, and the champion on
       the same validation rows: the gate compares these two numbers.

    Long because the retrain stages (features, train, compress, evaluate against the champion)
    share their state and read best in order.
    """
    as_of = context.features.as_of if context.features is not None else today()
    stages: dict[str, float] = {}
    started = time.perf_counter()
    context.progress("features", 5)
    if context.features is not None:  # built chunk by chunk, by any worker
        sets = training_sets_from_chunks(context.features)
    else:
        sets = training_sets(as_of=as_of)
    if sets is None:
        raise TrainingRejected("not enough labelled learners in at least two course runs yet")
    stages["features"] = time.perf_counter() - started
    context.progress("train", 25)
    t = time.perf_counter()
    predictor, report = train_churn_model(
        sets.train, sets.val, _settings(context.parameters), warm_start=_warm_start(context)
    )
    warm_started = bool(predictor.info.get("warm_start"))
    stages["train"] = time.perf_counter() - t
    context.progress("compress", 65)
    t = time.perf_counter()
    tensors, config = predictor.to_state()
    compression: dict[str, Any] = {}
    variant, checkpoint = FP32, None
    if compression_wanted(context.parameters):
        result = compress_churn(
            predictor,
            sets.train,
            sets.val,
            policy=SelectionPolicy.churn(tolerance=settings.CHURN_COMPRESSION_TOLERANCE_AUC),
            settings=retrain_settings(CompressionSettings.churn()),
            # One epoch per fine-tuning step keeps the stage within the retrain budget
            # (two cost 50 s of a 120 s full-OULAD retrain on the 2-core box).
            finetune_epochs=int(context.parameters.get("finetune_epochs", 1)),
        )
        serve_requested(result, context.parameters)
        compression, variant = result.to_dict(), result.chosen
        if variant != FP32:
            checkpoint = (tensors, config)
            tensors, config = churn_serving_state(predictor, result.module, variant)
    stages["compress"] = time.perf_counter() - t
    context.progress("evaluate", 85)
    t = time.perf_counter()
    served = load_churn_predictor(tensors, config)
    labels = sets.val.labels
    val_probs = served.predict_proba(sets.val.frame)
    score = float(roc_auc(labels, val_probs))
    # the served variant's permutation ranking on the validation runs (#22 item 5)
    ranking = permutation_ranking(served, sets.val)
    champion_score = None
    if isinstance(context.champion, ChurnPredictor):
        try:
            champion_score = float(roc_auc(labels, context.champion.predict_proba(sets.val.frame)))
        except (KeyError, ValueError) as exc:
            # Feature schema changed: the champion cannot be scored on the new rows.
            logger.warning("churn: champion not comparable (%s); gate skipped", exc)
    stages["evaluate"] = time.perf_counter() - t
    return TrainOutcome(
        tensors=tensors,
        config=config,
        metrics={
            "auc": score,
            "val_auc_per_cutoff": {str(k): v for k, v in report.val_auc_per_cutoff.items()},
            "n_train": report.n_train,
            "n_val": report.n_val,
            "positive_rate_val": float(np.nanmean(labels)),
            "val_courses": sets.val_courses,
            "stage_seconds": stages,
            "as_of": as_of.isoformat(),
            "warm_start": warm_started,
            **band_reports(labels, val_probs, served.thresholds),
            "ece": calibration_curve(labels, val_probs).expected_calibration_error,
            **_headline(report.val_auc_per_cutoff, predictor.info.get("teacher")),
            "curves": validation_curves(labels, val_probs),
            "feature_ranking": ranking,
        },
        score=score,
        champion_score=champion_score,
        compression_report=compression,
        served_variant=variant,
        checkpoint=checkpoint,
        warm_started=warm_started,
        data_window=(
            timezone.make_aware(datetime.combine(sets.window[0], datetime.min.time())),
            timezone.make_aware(datetime.combine(sets.window[1], datetime.min.time())),
        ),
    )


def band_reports(labels: Any, probs: Any, thresholds: Any) -> dict[str, Any]:
    """Precision / recall / F1 at the thresholds that define the bands (#27 item 4), the
    ones an instructor acts on (at 0.5 every score of a small run can fall below: F1 0.0).
    `report` is the "high" band's (the key older versions and the raw list read),
    `report_medium` the "medium" band's; `thresholds` is (medium, high)."""
    medium, high = float(thresholds[0]), float(thresholds[1])
    return {
        "report": binary_report(labels, probs, high).to_dict(),
        "report_medium": binary_report(labels, probs, medium).to_dict(),
        "band_thresholds": {"medium": medium, "high": high},
    }


def _headline(product: dict[int, float], teacher: dict[str, Any] | None) -> dict[str, Any]:
    """The models page's headline comparison: mean per-cut-off validation AUC of the
    network and of its tuned HGB teacher (a peer fitted on the same rows, its shape and
    iterations chosen on the same validation runs; training only, never served)."""
    aucs = [v for v in product.values() if not math.isnan(v)]
    peer = [
        float(c["inner_auc"])
        for c in (teacher or {}).values()
        if isinstance(c, dict)
        and isinstance(c.get("inner_auc"), float)
        and not math.isnan(c["inner_auc"])
    ]
    if not aucs or not peer:
        return {}
    return {
        "auc_mean_cutoffs": float(np.mean(aucs)),
        "peer": {"name": "tuned HGB", "score": float(np.mean(peer))},
    }


def _warm_start(context: TrainContext) -> ChurnPredictor | None:
    """The champion's fp32 predictor (its checkpoint) when a warm start was asked for;
    train_churn_model decides whether the feature schema still fits."""
    if context.warm_start is None:
        return None
    try:
        return ChurnPredictor.from_state(context.warm_start.tensors, context.warm_start.config)
    except (KeyError, ValueError, RuntimeError) as exc:
        logger.warning("churn: cannot warm start (%s); training from scratch", exc)
        return None


def validation_curves(labels: np.ndarray, probs: np.ndarray, points: int = 50) -> dict[str, Any]:
    """ROC, precision-recall and calibration on the validation rows, thinned for the models page."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(labels, probs)
    precision, recall, _ = precision_recall_curve(labels, probs)

    def thin(*arrays: np.ndarray) -> list[list[float]]:
        keep = np.unique(
            np.linspace(0, len(arrays[0]) - 1, min(points, len(arrays[0]))).astype(int)
        )
        return [np.round(a[keep], 4).tolist() for a in arrays]

    calibration = binary_report(labels, probs, with_calibration=True).calibration
    return {
        "roc": dict(zip(("fpr", "tpr"), thin(fpr, tpr), strict=True)),
        "pr": dict(zip(("recall", "precision"), thin(recall, precision), strict=True)),
        "calibration": [
            {"predicted": b.mean_predicted, "observed": b.fraction_positive, "count": b.count}
            for b in (calibration.bins if calibration else [])
            if b.count
        ],
    }


def load(artifact: Artifact) -> ChurnPredictor:
    # fp32 and compressed states alike (the config says which).
    return load_churn_predictor(artifact.tensors, artifact.config)


def score_batch(predictor: ChurnPredictor, course_ids: list[int], version: int = 0) -> int:
    """Score every enrolled learner of the runs; replace their current scores, extend history."""
    as_of = today()
    written = 0
    for course in Course.objects.filter(id__in=course_ids, start_date__lte=as_of):
        frame = serving_frames.get(course, as_of)
        if frame.empty:
            continue
        predictions = predictor.predict(frame.reset_index(drop=True), top_k=3)
        now = timezone.now()
        rows = [
            RiskScore(
                course=course,
                learner_id=int(p.learner_id),
                model_version=version,
                as_of=as_of,
                scored_at=now,
                probability=p.probability,
                band=p.risk_band,
                factors=[
                    {
                        "feature": f.feature,
                        "text": f.text,
                        "contribution": round(f.contribution, 4),
                        # `text` before translation: the course page says it in its language.
                        **({"phrase": f.phrase.to_json()} if f.phrase is not None else {}),
                    }
                    for f in p.top_factors
                ],
            )
            for p in predictions
        ]
        with transaction.atomic():
            RiskScore.objects.filter(course=course).delete()
            RiskScore.objects.bulk_create(rows, batch_size=1000)
            RiskHistory.objects.bulk_create(
                [
                    RiskHistory(
                        course=course,
                        learner_id=r.learner_id,
                        as_of=as_of,
                        probability=r.probability,
                        band=r.band,
                    )
                    for r in rows
                ],
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["learner", "course", "as_of"],
                update_fields=["probability", "band"],
            )
        written += len(rows)
    return written


# Cut-off days of the offline compression report (the evaluation's defaults).
REPORT_CUTOFFS = [30, 60, 90, 150]


def compression_report(request: CompressionRequest) -> tuple[Any, str]:
    """`manage.py compression_report --model churn`: train on the request's data, compress."""
    from churn.model.compression import compression_report as report

    compression, policy = CompressionSettings.churn(), SelectionPolicy.churn()
    request.tune(compression, policy)
    data, label = request.load_data()
    options = request.options
    return report(
        data,
        label,
        settings=compression,
        policy=policy,
        cutoffs=REPORT_CUTOFFS,
        seeds=options.get("seeds"),
        max_epochs=options.get("max_epochs"),
        finetune_epochs=options.get("finetune_epochs"),
        log=request.log,
    )


KIND = ModelKind(
    name="churn",
    primary_metric="auc",
    gate_tolerance=lambda: settings.CHURN_GATE_TOLERANCE_AUC,
    train=train,
    load=load,
    score_batch=score_batch,
    compression_report=compression_report,
    features=FeatureFanout(runs=training_runs, build=training_chunk),
)
