"""The platform's "today": real time, or AS_OF_DATE to browse historical data (OULAD) as live."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone


def today() -> dt.date:
    if settings.AS_OF_DATE:
        return dt.date.fromisoformat(settings.AS_OF_DATE)
    return timezone.now().date()
