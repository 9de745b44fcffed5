"""Write eduplatform.schedules into django-celery-beat's tables (editable in the admin)."""

from __future__ import annotations

import json

from django.db import transaction

from eduplatform.schedules import SCHEDULES


@transaction.atomic
def schedules_sync() -> int:
    """Create the declared periodic tasks that do not exist yet; return how many were created."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    created = 0
    for entry in SCHEDULES:
        if PeriodicTask.objects.filter(name=entry.name).exists():
            continue  # operators may have edited it: never overwrite
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=str(entry.minute),
            hour=str(entry.hour),
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        PeriodicTask.objects.create(
            name=entry.name, task=entry.task, crontab=crontab, args=json.dumps(list(entry.args))
        )
        created += 1
    return created
