"""The Celery app. Queue names live here so tasks and workers agree on them."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eduplatform.settings.dev")

QUEUE_DEFAULT = "default"
QUEUE_TRAINING = "training"
QUEUE_SCORING = "scoring"

app = Celery("eduplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = QUEUE_DEFAULT
# Every task's queue, in one table: a long training never blocks scoring
# because each runs on its own queue (and may run on its own machines).
app.conf.task_routes = {
    "registry.retrain_model": {"queue": QUEUE_TRAINING},
    "registry.scheduled_retrain": {"queue": QUEUE_TRAINING},
    "registry.score_batch": {"queue": QUEUE_SCORING},
    "registry.score_all": {"queue": QUEUE_SCORING},
    "analytics.refresh_rollups": {"queue": QUEUE_DEFAULT},
}
app.autodiscover_tasks()
