"""Helpers shared by the dashboard pages: the anchor day, week labels, the activity-type chart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from analytics.models import Enrollment
from eduplatform.core.charts import chart_card, data_table

DAY = dt.timedelta(days=1)


def anchor_day(last: dt.date | None, today: dt.date) -> dt.date:
    """The day dashboards look back from: today, or the last day with activity if earlier.

    Historical imports (OULAD runs of 2013-14) then still show their final
    weeks instead of empty charts; pages say "week ending <anchor>".
    """
    return min(today, last) if last else today


def week_label(week: int) -> str:
    # Week 1 is days 0-6 of the run; registration-period weeks count back from -1.
    return _("W%(week)d") % {"week": week + 1 if week >= 0 else week}


def types_chart(chart_id: str, types: list[dict[str, Any]], period: str) -> dict[str, Any]:
    return chart_card(
        chart_id,
        _("Activity by type"),
        _("Clicks per activity type, %(period)s.") % {"period": period},
        kind="bar",
        labels=[t["activity_type"] for t in types],
        datasets=[{"label": _("Clicks"), "data": [t["clicks"] for t in types]}],
        table=data_table(
            _("Clicks per activity type, %(period)s") % {"period": period},
            (_("Activity type"), _("Clicks"), _("Learners")),
            ([t["activity_type"], t["clicks"], t["learners"]] for t in types),
        ),
        empty=not types,
        empty_text=_("No events yet."),
        indexAxis="y",
        yTitle=_("Clicks"),
    )


# The statuses learner_status gives (English in the CSV export; pages translate them).
STATUS_NAMES = (
    gettext_noop("Withdrawn"),
    gettext_noop("In progress"),
    gettext_noop("Pass"),
    gettext_noop("Distinction"),
    gettext_noop("Fail"),
)


def learner_status(row: Mapping[str, Any]) -> str:
    if row.get("final_result") == Enrollment.Result.WITHDRAWN or row.get("unregistered_on"):
        return "Withdrawn"
    return row.get("final_result") or "In progress"
