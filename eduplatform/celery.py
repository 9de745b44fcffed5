"""The Celery app. Queue names live here so tasks and workers agree on them."""

import os
from enum import StrEnum

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eduplatform.settings.dev")


class Queue(StrEnum):
    """Every queue; a long training never blocks scoring because each has its own."""

    DEFAULT = "default"
    TRAINING = "training"
    SCORING = "scoring"


app = Celery("eduplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = Queue.DEFAULT.value
# Every task's queue, in one table (Celery 5.7 deprecates the per-task attribute); a task
# sent by name from a process that never imported it is routed alike.
app.conf.task_routes = {
    "registry.retrain_model": {"queue": Queue.TRAINING.value},
    "registry.scheduled_retrain": {"queue": Queue.TRAINING.value},
    "registry.train_features_chunk": {"queue": Queue.TRAINING.value},
    "registry.fail_training": {"queue": Queue.DEFAULT.value},
    "registry.reclaim_lost_trainings": {"queue": Queue.DEFAULT.value},
    "registry.score_batch": {"queue": Queue.SCORING.value},
    "registry.score_all": {"queue": Queue.SCORING.value},
    "analytics.refresh_rollups": {"queue": Queue.DEFAULT.value},
    "analytics.ensure_event_partitions": {"queue": Queue.DEFAULT.value},
    "analytics.expire_event_partitions": {"queue": Queue.DEFAULT.value},
}
app.autodiscover_tasks()


def task_by_name(name: str):
    """A registered task by name: services enqueue without importing their tasks module
    (which imports the services: a cycle). Outside a worker nothing has run the
    autodiscovery yet, so the first look-up imports every app's tasks module."""
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]
