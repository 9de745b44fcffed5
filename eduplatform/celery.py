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
app.autodiscover_tasks()
