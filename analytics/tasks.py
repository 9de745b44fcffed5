"""Celery tasks of the analytics app."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from analytics.models import Course
from analytics.partitions import (
    event_client_ids_forget,
    event_partitions_ensure,
    event_partitions_expire,
)
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


@shared_task(
    name="analytics.ensure_event_partitions",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=900,
    soft_time_limit=840,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def ensure_event_partitions(months_ahead: int = 3) -> int:
    """Monthly event partitions ahead, and DEFAULT's rows moved in; idempotent (how many
    partitions were created)."""
    return len(event_partitions_ensure(months_ahead=months_ahead))


@shared_task(
    name="analytics.expire_event_partitions",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=900,
    soft_time_limit=840,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def expire_event_partitions() -> int:
    """Drop the monthly event partitions older than EVENT_RETENTION_MONTHS, then forget their
    client ids (a second transaction); idempotent (how many partitions were dropped)."""
    dropped = event_partitions_expire().months
    event_client_ids_forget()
    return len(dropped)
