"""Celery tasks of the analytics app."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from analytics.models import Course
from analytics.services import rollups_rebuild


@shared_task(
    name="analytics.refresh_rollups",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=3600,
    soft_time_limit=3500,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def refresh_rollups(course_id: int | None = None) -> int:
    """Rebuild the daily rollup from raw events (repair); idempotent by construction."""
    ids = [course_id] if course_id is not None else Course.objects.values_list("id", flat=True)
    return sum(rollups_rebuild(course_id=cid) for cid in ids)
