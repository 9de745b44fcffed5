"""Every periodic task, in one list. `sync_schedules` writes them to django-celery-beat.

Times are UTC. Operators edit them afterwards in the admin (Periodic tasks);
`sync_schedules` creates missing entries and never overwrites edited ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    hour: int | str  # crontab fields: a number, or "*" for every one
    minute: int | str
    args: tuple = ()


SCHEDULES: list[Schedule] = [
    # Event partitions (PostgreSQL): three months ahead and DEFAULT swept, then retention,
    # both before the rollup refresh.
    Schedule(
        "ensure event partitions", "analytics.ensure_event_partitions", hour=0, minute=30, args=(3,)
    ),
    Schedule("expire event partitions", "analytics.expire_event_partitions", hour=0, minute=45),
    Schedule("refresh rollups", "analytics.refresh_rollups", hour=1, minute=0),
    Schedule("retrain churn", "registry.scheduled_retrain", hour=2, minute=0, args=("churn",)),
    Schedule(
        "retrain recommender", "registry.scheduled_retrain", hour=3, minute=0, args=("recommender",)
    ),
    Schedule("score learners", "registry.score_all", hour=4, minute=30),
    # Frees the training lock of a run whose worker died (stale heartbeat), every minute.
    Schedule("reclaim lost trainings", "registry.reclaim_lost_trainings", hour="*", minute="*"),
]
