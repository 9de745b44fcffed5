"""The learner page: one learner's enrolments, activity heatmaps, submissions and panels."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from analytics.models import Enrollment, Learner
from analytics.pages import panels
from analytics.pages.common import learner_status, week_label
from analytics.pages.interventions import learner_actions
from analytics.selectors.activity import week_of_run
from analytics.selectors.learners import (
    learner_daily_clicks,
    learner_enrollments,
    learner_submissions,
)
from eduplatform.core import access
from eduplatform.core.charts import chart_card, chart_specs, data_table

WEEKDAYS = (
    pgettext_lazy("weekday", "Mon"),
    pgettext_lazy("weekday", "Tue"),
    pgettext_lazy("weekday", "Wed"),
    pgettext_lazy("weekday", "Thu"),
    pgettext_lazy("weekday", "Fri"),
    pgettext_lazy("weekday", "Sat"),
    pgettext_lazy("weekday", "Sun"),
)


def learner_page(
    user: Any, learner: Learner, visible_courses: Any, today: dt.date
) -> dict[str, Any]:
    enrollments = learner_enrollments(learner, visible_courses)
    course_ids = [e.course_id for e in enrollments]
    daily = learner_daily_clicks(learner, course_ids)
    submissions = learner_submissions(learner, course_ids)
    courses = [e.course for e in enrollments]
    heatmaps = [
        _heatmap(e, [r for r in daily if r["course_id"] == e.course_id], today) for e in enrollments
    ]
    slots = [
        {
            "slot": slot,
            "template": panels.slot_template(slot),
            "value": panels.panel_data(slot, learner, courses),
        }
        for slot in panels.SLOTS.values()
        if slot.kind == "learner"
    ]
    return {
        "learner": learner,
        "show_personal": access.can_see_personal_data(user),
        "enrollments": [
            {
                "enrollment": e,
                "status": learner_status(
                    {"final_result": e.final_result, "unregistered_on": e.unregistered_on}
                ),
                "total_clicks": sum(r["clicks"] for r in daily if r["course_id"] == e.course_id),
                "active_days": sum(1 for r in daily if r["course_id"] == e.course_id),
                "last_active": max(
                    (r["date"] for r in daily if r["course_id"] == e.course_id), default=None
                ),
            }
            for e in enrollments
        ],
        "charts": heatmaps,
        "chart_data": chart_specs(heatmaps),
        "submissions": submissions,
        "panels": slots,
        "actions": learner_actions(user, learner, courses, today),
    }


# Weeks drawn around a run: activity this long before its start (registration) or after
# its last week still shows; rows dated further out (year 1 or 1800 were once accepted,
# and made a 105,691-week heatmap of 1.16 MB, #24) are summed into an "earlier" and a
# "later" table row instead of widening the grid.
HEATMAP_MARGIN_WEEKS = 8


def _heatmap(enrollment: Enrollment, daily: list[dict[str, Any]], today: dt.date) -> dict[str, Any]:
    """Week-of-run x weekday clicks of one learner in one run, as scatter points on a grid.

    Columns run from the first week (or earlier activity) to the current week
    of the run, capped at its last week: future weeks would only be blank. Activity
    more than HEATMAP_MARGIN_WEEKS outside the run is summed into two table rows.
    """
    course = enrollment.course
    run_last_week = (course.length_days - 1) // 7
    low, high = -HEATMAP_MARGIN_WEEKS, run_last_week + HEATMAP_MARGIN_WEEKS
    cells: dict[tuple[int, int], int] = {}
    outside = {"earlier": [0] * 7, "later": [0] * 7}
    for r in daily:
        week, day = week_of_run(r["date"], course.start_date), r["date"].weekday()
        if low <= week <= high:
            cells[(week, day)] = cells.get((week, day), 0) + r["clicks"]
        else:
            outside["earlier" if week < low else "later"][day] += r["clicks"]
    last_week = min(run_last_week, max(0, week_of_run(today, course.start_date)))
    weeks = [w for w, _ in cells]
    first = min([0, *weeks])
    last = max([last_week, *weeks])
    week_range = list(range(first, last + 1))
    points = [{"x": w, "y": d, "v": cells[(w, d)]} for (w, d) in sorted(cells)]
    table_rows = []
    if any(outside["earlier"]):
        table_rows.append([_("before %(week)s") % {"week": week_label(low)}, *outside["earlier"]])
    for w in week_range:
        row = [cells.get((w, d), 0) for d in range(7)]
        if any(row):
            table_rows.append([week_label(w), *row])
    if any(outside["later"]):
        table_rows.append([_("after %(week)s") % {"week": week_label(high)}, *outside["later"]])
    return chart_card(
        f"heatmap-{course.pk}",
        _("Activity heatmap, %(code)s") % {"code": course.code},
        _(
            "Clicks per weekday (rows) and week of the run (columns) in %(code)s; "
            "darker squares mean more clicks."
        )
        % {"code": course.code},
        kind="heatmap",
        labels=[week_label(w) for w in week_range],
        datasets=[{"label": _("Clicks"), "data": points}],
        table=data_table(
            _("Clicks per week and weekday, %(code)s (weeks with activity)")
            % {"code": course.code},
            (_("Week"), *(str(d) for d in WEEKDAYS)),
            table_rows,
        ),
        empty=not points and not table_rows,
        empty_text=_("No activity in this course run yet."),
        weekMin=first,
        weekMax=last,
        weekdays=[str(d) for d in WEEKDAYS],
        # Words the chart script shows (translated here: the page keeps its strict CSP).
        weekAxisTitle=_("Week of the run"),
        weekFormat=_("W%(week)d"),
        clicksUnit=_("clicks"),
    )
