"""The overview page: KPIs, daily activity, activity types and cohort retention of the
viewer's course runs.

Like every page module here, it builds the whole context of its page from
already authorised objects (see eduplatform.core.access), so views stay thin;
charts are cards of eduplatform.core.charts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.translation import gettext as _

from analytics.models import Course
from analytics.pages.common import DAY, anchor_day, types_chart, week_label
from analytics.selectors.activity import (
    activity_by_type,
    activity_kpis,
    daily_activity,
    enrolled_counts,
    enrollment_kpis,
    last_activity_date,
    weekly_activity,
)
from eduplatform.core import access
from eduplatform.core.charts import chart_card, chart_specs, data_table, day_label, pct

OVERVIEW_DAYS = 90


def _change(now: float | None, before: float | None) -> dict[str, Any]:
    if now is None or before is None:
        return {"delta": None, "pct": None, "direction": "none"}
    delta = now - before
    return {
        "delta": round(delta, 1),
        "pct": pct(delta, before),
        "direction": "up" if delta > 0 else "down" if delta < 0 else "flat",
    }


def overview_page(user: Any, courses: Sequence[Course], today: dt.date) -> dict[str, Any]:
    ids = [c.pk for c in courses]
    last = last_activity_date(ids, until=today)
    anchor = anchor_day(last, today)
    acts = activity_kpis(ids, anchor=anchor) if last else {}
    enr = enrollment_kpis(ids, anchor=anchor) if ids else {}
    kpis = _overview_kpis(user, acts, enr)

    first = anchor - (OVERVIEW_DAYS - 1) * DAY
    daily = (
        access.suppress_small_groups(
            user,
            daily_activity(ids, first=first, last=anchor),
            value_keys=("events", "clicks"),
        )
        if last
        else []
    )
    types = (
        access.suppress_small_groups(
            user,
            activity_by_type(ids, first=first, last=anchor),
            value_keys=("clicks", "events"),
        )
        if last
        else []
    )
    weekly = weekly_activity(ids, last=anchor) if last else []
    counts = enrolled_counts(ids) if ids else {}
    charts = [
        _daily_chart(daily, first, anchor),
        types_chart("overview-types", types, _("last %(days)d days") % {"days": OVERVIEW_DAYS}),
        _retention_chart(user, courses, weekly, counts, anchor),
    ]
    course_rows = [
        {
            "course": c,
            "enrolled": counts.get(c.pk, {}).get("enrolled", 0),
            "withdrawn": counts.get(c.pk, {}).get("withdrawn", 0),
        }
        for c in courses
    ]
    return {
        "anchor": anchor,
        "has_activity": last is not None,
        "kpis": kpis,
        "charts": charts,
        "chart_data": chart_specs(charts),
        "course_rows": course_rows,
    }


def _overview_kpis(
    user: Any, acts: Mapping[str, Any], enr: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Four KPIs for the week ending at the anchor and the week before.

    For analysts a number resting on 1-4 learners (active learners, new
    enrolments, withdrawals) is suppressed, and so is anything derived from it.
    """

    def small(n: Any) -> bool:
        return access.suppresses_small_groups(user) and n is not None and 0 < n < 5

    def kpi(label: str, pairs: list[tuple[Any, Any]], unit: str, up_is_good: bool) -> dict:
        values = [None if small(size) else value for value, size in pairs]
        now, before = values
        change = _change(now, before)
        good = None
        if change["direction"] in ("up", "down"):
            good = (change["direction"] == "up") == up_is_good
        return {
            "label": label,
            "value": now,
            "previous": before,
            "unit": unit,
            "change": change,
            "good": good,
            "suppressed": small(pairs[0][1]),
        }

    def per_day(events: Any) -> float | None:
        return None if events is None else round(events / 7, 1)

    a_now, a_before = acts.get("active_now"), acts.get("active_before")
    return [
        kpi(_("Active learners"), [(a_now, a_now), (a_before, a_before)], "", True),
        kpi(
            _("Events per day"),
            [
                (per_day(acts.get("events_now")), a_now),
                (per_day(acts.get("events_before")), a_before),
            ],
            "",
            True,
        ),
        kpi(
            _("New enrolments"),
            [(enr.get("enrolled_now"),) * 2, (enr.get("enrolled_before"),) * 2],
            "",
            True,
        ),
        kpi(
            _("Withdrawal rate"),
            [
                (pct(enr.get("withdrawn_now"), enr.get("base_now")), enr.get("withdrawn_now")),
                (
                    pct(enr.get("withdrawn_before"), enr.get("base_before")),
                    enr.get("withdrawn_before"),
                ),
            ],
            "%",
            False,
        ),
    ]


def _daily_chart(daily: list[dict[str, Any]], first: dt.date, last: dt.date) -> dict[str, Any]:
    by_date = {r["date"]: r for r in daily}
    days = [first + i * DAY for i in range((last - first).days + 1)] if daily else []
    learners = [by_date.get(d, {}).get("learners", 0) for d in days]
    events = [by_date.get(d, {}).get("events", 0) for d in days]
    return chart_card(
        "overview-daily",
        _("Daily active learners"),
        _("Distinct learners active per day, %(first)s to %(last)s.")
        % {"first": day_label(first), "last": day_label(last)},
        kind="line",
        labels=[d.isoformat() for d in days],
        datasets=[
            {"label": _("Active learners"), "data": learners},
            {"label": _("Events"), "data": events, "yAxisID": "y2"},
        ],
        table=data_table(
            _("Daily active learners and events"),
            (_("Date"), _("Active learners"), _("Events")),
            ([d.isoformat(), n, e] for d, n, e in zip(days, learners, events, strict=True)),
        ),
        empty=not daily,
        empty_text=_("No events yet."),
        secondAxis=_("Events"),
        yTitle=_("Active learners"),
    )


def last_complete_week(course: Course, anchor: dt.date) -> int:
    """The last week of the run that is over at ``anchor`` (a half-observed week
    would look like a sudden drop in retention)."""
    run_last_week = (course.length_days - 1) // 7
    days = (anchor - course.start_date).days
    week = days // 7 if days % 7 == 6 else days // 7 - 1
    return min(run_last_week, week)


def _retention_chart(
    user: Any,
    courses: Sequence[Course],
    weekly: list[dict[str, Any]],
    counts: Mapping[int, Mapping[str, int]],
    anchor: dt.date,
) -> dict[str, Any]:
    """Share of each run's enrolled learners active in each week of the run (week >= 0)."""
    by_course: dict[int, dict[int, int]] = {}
    for row in weekly:
        if row["week"] >= 0:
            by_course.setdefault(row["course_id"], {})[row["week"]] = row["learners"]
    max_week = -1
    for c in courses:
        if c.pk in by_course:
            max_week = max(max_week, last_complete_week(c, anchor))
    weeks = list(range(max_week + 1))
    datasets = []
    table_rows: list[list[Any]] = []
    for c in courses:
        if c.pk not in by_course:
            continue
        enrolled = counts.get(c.pk, {}).get("enrolled", 0)
        last_week = last_complete_week(c, anchor)
        rows = access.suppress_small_groups(
            user,
            (
                {"week": w, "learners": by_course[c.pk].get(w, 0) if w <= last_week else None}
                for w in weeks
            ),
        )
        data = [
            None if r["learners"] is None or r["week"] > last_week else pct(r["learners"], enrolled)
            for r in rows
        ]
        datasets.append({"label": c.code, "data": data})
        table_rows.extend(
            [c.code, week_label(r["week"]), r["learners"], d]
            for r, d in zip(rows, data, strict=True)
            if r["week"] <= last_week
        )
    return chart_card(
        "overview-retention",
        _("Cohort retention by week of course run"),
        _(
            "Percentage of each course run's enrolled learners active in each complete week "
            "of the run."
        ),
        kind="line",
        labels=[week_label(w) for w in weeks],
        datasets=datasets,
        table=data_table(
            _("Active learners per week of run"),
            (
                _("Course run"),
                _("Week"),
                _("Active learners"),
                # xgettext:no-python-format
                _("% of enrolled"),
            ),
            table_rows,
        ),
        empty=not datasets,
        empty_text=_("No course-run activity yet."),
        yPercent=True,
        # xgettext:no-python-format
        yTitle=_("% of enrolled learners"),
    )
