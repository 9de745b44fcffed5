"""Celery tasks of the registry. Each takes ids, calls one service, and is safe to rerun.

Each task's queue is declared in the one routing table, `eduplatform/celery.py`
(`task_routes`, by task name): Celery 5.7 deprecates the per-task `queue` attribute.
"""

from __future__ import annotations

import logging

from celery import group, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError

from eduplatform.registry import features, services

logger = logging.getLogger(__name__)


@shared_task(
    name=services.RETRAIN_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.TRAINING_SOFT_TIME_LIMIT,
    time_limit=settings.TRAINING_HARD_TIME_LIMIT,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def retrain_model(version_id: int) -> str:
    try:
        version = services.model_version_train(version_id=version_id)
    except SoftTimeLimitExceeded:
        version = services.model_version_fail(version_id=version_id, reason="time limit exceeded")
    except OperationalError:
        raise  # database blip: Celery retries with backoff, the run stays claimed
    except Exception as exc:
        logger.exception("registry: training of version id %s failed", version_id)
        version = services.model_version_fail(
            version_id=version_id, reason=f"{type(exc).__name__}: {exc}"
        )
    return version.status


@shared_task(
    name=features.FEATURE_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    # A chord counts its parts in the result backend: this task's result must be stored.
    ignore_result=False,
    soft_time_limit=settings.TRAINING_SOFT_TIME_LIMIT,
    time_limit=settings.TRAINING_HARD_TIME_LIMIT,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def train_features_chunk(version_id: int, index: int) -> bool:
    """One chunk of a training run's features (a chord part; the training gathers them)."""
    try:
        return features.training_features_build(version_id=version_id, index=index)
    except OperationalError:
        raise  # database blip: Celery retries with backoff
    except Exception:
        # Never stop the chord here: the training builds a missing chunk itself, and
        # fails the run with the reason if it fails again.
        logger.exception("registry: feature chunk %s of version id %s failed", index, version_id)
        return False


@shared_task(name=services.FAIL_TASK, time_limit=60)
def fail_training(version_id: int, reason: str) -> str:
    """A chord's error callback: its chunks failed for good, so its training never runs."""
    return services.model_version_fail(version_id=version_id, reason=reason).status


@shared_task(
    name="registry.scheduled_retrain",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=60,
)
def scheduled_retrain(kind: str) -> str:
    """Beat entry point; a second beat's duplicate finds the day's run and does nothing."""
    version = services.retrain_request_scheduled(kind=kind)
    return "skipped" if version is None else f"v{version.version}"


@shared_task(name="registry.reclaim_lost_trainings", time_limit=60)
def reclaim_lost_trainings() -> int:
    """Beat entry point (every minute): fail the runs whose worker stopped beating."""
    return services.runs_reclaim_lost()


@shared_task(
    name="registry.score_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=settings.SCORING_HARD_TIME_LIMIT,
    soft_time_limit=settings.SCORING_HARD_TIME_LIMIT - 30,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def score_batch(kind: str, course_ids: list[int]) -> int:
    return services.batch_scores_refresh(kind=kind, course_ids=course_ids)


@shared_task(
    name="registry.score_all",
    time_limit=120,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def score_all(chunk_size: int = 20) -> int:
    """Fan out batch scoring and the recommendation refresh: a group of one task per kind
    and chunk of course runs.

    Chunks go to the scoring queue, so any number of workers on any machines
    sharing PostgreSQL and Redis score them in parallel; each chunk writes its own
    runs' rows, so nothing is gathered.
    """
    from analytics.models import Course
    from eduplatform.registry.kinds import kind_names

    course_ids = list(Course.objects.order_by("id").values_list("id", flat=True))
    chunks = [
        score_batch.si(kind, course_ids[start : start + chunk_size])
        for kind in kind_names()
        for start in range(0, len(course_ids), chunk_size)
    ]
    if chunks:
        group(chunks).apply_async()
    return len(chunks)
