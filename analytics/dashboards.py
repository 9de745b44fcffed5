"""Page data for the behaviour dashboards: selectors in, template context and chart JSON out.

Each public function builds the whole context of one page from already
authorised objects (see eduplatform.core.access), so views stay thin. Chart specs
are plain JSON (``{"id", "type", "labels", "datasets", ...}``) rendered by
static/js/charts.js; every chart also gets a data table as its text
alternative, built from the same rows.

Panel slots: the extension point for other apps
-----------------------------------------------
Risk (churn) and recommendations (recommender) appear on the course and learner
pages, but analytics never imports those apps. Instead a page has named slots.
An app fills a slot by

1. providing the slot's template (exact names in `SLOTS`), and optionally
2. registering a data function in its ``AppConfig.ready()``::

       from analytics.dashboards import register_panel_data
       register_panel_data("course_risk", risk_for_learners, csv=risk_csv_cells)

Until the template exists the slot renders analytics' fallback ("no model
yet"). See `PanelSlot` for what each template receives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.core.paginator import Paginator
from django.template import TemplateDoesNotExist
from django.template.loader import get_template, render_to_string
from django.utils.html import json_script

from analytics import selectors
from analytics.models import Course, Enrollment, EventSource, Learner
from eduplatform.core import access

if TYPE_CHECKING:
    from eduplatform.ml.segments import Segmentation

logger = logging.getLogger(__name__)

DAY = dt.timedelta(days=1)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SUPPRESSED = f"suppressed (fewer than {access.MIN_GROUP_SIZE} learners)"
PAGE_SIZE = 25
OVERVIEW_DAYS = 90
CONTENT_WINDOW_DAYS = 28
QUALITY_WINDOW_DAYS = 30
MAX_SCATTER_POINTS = 2000
SEGMENT_CACHE_SECONDS = 600


# ---------------------------------------------------------------------------
# Panel slots
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelSlot:
    """A place on a page that another app renders.

    ``kind == "course_row"``: the template is included once per row of the
    course's at-risk table and must render exactly ``len(headers)`` ``<td>``
    cells. Context: ``course``, ``row`` (dict: learner_id, pseudonym,
    last_active, activity_14d, status) and ``panel`` (the value the data
    function returned for ``row.learner_id``, or None). Data function:
    ``fn(course, learner_ids: list[int]) -> Mapping[int, Any]``, called once
    per page (and per 500 rows of a CSV export): one query, not one per row.
    ``csv(value_or_None) -> Sequence[str]`` gives the ``csv_columns`` cells.

    ``kind == "learner"``: the template is the body of a section on the
    learner page. Context: ``learner``, ``enrollments`` (the learner's
    enrolments in runs the viewer may see, with ``course``) and ``panel``
    (``fn(learner, courses: list[Course]) -> Any``, or None).
    """

    name: str
    kind: str
    template: str
    fallback: str
    title: str
    headers: tuple[str, ...] = ()
    csv_columns: tuple[str, ...] = ()


SLOTS: dict[str, PanelSlot] = {
    slot.name: slot
    for slot in (
        PanelSlot(
            name="course_risk",
            kind="course_row",
            template="churn/_course_risk_columns.html",
            fallback="analytics/panels/_course_risk_columns.html",
            title="Risk",
            headers=("Risk band", "Top factors"),
            csv_columns=("risk_band", "top_factors"),
        ),
        PanelSlot(
            name="course_next_items",
            kind="course_row",
            template="recommender/_course_next_items_column.html",
            fallback="analytics/panels/_course_next_items_column.html",
            title="Recommendations",
            headers=("Recommended next items",),
            csv_columns=("recommended_next_items",),
        ),
        PanelSlot(
            name="learner_risk",
            kind="learner",
            template="churn/_learner_risk.html",
            fallback="analytics/panels/_learner_risk.html",
            title="Dropout risk",
        ),
        PanelSlot(
            name="learner_recommendations",
            kind="learner",
            template="recommender/_learner_recommendations.html",
            fallback="analytics/panels/_learner_recommendations.html",
            title="Recommended next items",
        ),
    )
}


@dataclass(frozen=True)
class _Provider:
    data: Callable[..., Any]
    csv: Callable[[Any], Sequence[str]] | None


_providers: dict[str, _Provider] = {}


def register_panel_data(
    slot: str,
    data: Callable[..., Any],
    *,
    csv: Callable[[Any], Sequence[str]] | None = None,
) -> None:
    """Register the data function of a slot (call from the owning app's ``ready()``)."""
    if slot not in SLOTS:
        raise KeyError(f"unknown panel slot {slot!r}; known: {', '.join(SLOTS)}")
    _providers[slot] = _Provider(data=data, csv=csv)


def unregister_panel_data(slot: str) -> None:
    _providers.pop(slot, None)


def slot_template(slot: PanelSlot) -> str:
    """The owning app's template if it exists, else analytics' "no model yet" fallback."""
    try:
        get_template(slot.template)
    except TemplateDoesNotExist:
        return slot.fallback
    return slot.template


def _panel_data(slot: PanelSlot, *args: Any) -> Any:
    provider = _providers.get(slot.name)
    if provider is None:
        return None
    try:
        return provider.data(*args)
    except Exception:
        # A failing panel must not take the whole dashboard down; the owning
        # app's error is logged (ids only, no learner data) and its slot shows
        # the empty state.
        logger.exception("panel data failed slot=%s", slot.name)
        return None


def _course_slots() -> list[PanelSlot]:
    return [s for s in SLOTS.values() if s.kind == "course_row"]


def _attach_row_panels(course: Course, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each row a ``panels`` list: (template, value) per course-row slot, in SLOTS order."""
    ids = [r["learner_id"] for r in rows]
    per_slot = []
    for slot in _course_slots():
        values = _panel_data(slot, course, ids) or {}
        per_slot.append((slot, slot_template(slot), values))
    for row in rows:
        row["panels"] = [
            {"template": template, "value": values.get(row["learner_id"])}
            for _, template, values in per_slot
        ]
    return rows


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _anchor(last: dt.date | None, today: dt.date) -> dt.date:
    """The day dashboards look back from: today, or the last day with activity if earlier.

    Historical imports (OULAD runs of 2013-14) then still show their final
    weeks instead of empty charts; pages say "week ending <anchor>".
    """
    return min(today, last) if last else today


def _pct(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 1)


def _change(now: float | None, before: float | None) -> dict[str, Any]:
    if now is None or before is None:
        return {"delta": None, "pct": None, "direction": "none"}
    delta = now - before
    return {
        "delta": round(delta, 1),
        "pct": _pct(delta, before),
        "direction": "up" if delta > 0 else "down" if delta < 0 else "flat",
    }


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"  # "1 Nov 2026", like the templates' "j M Y"


def _week_label(week: int) -> str:
    # Week 1 is days 0-6 of the run; registration-period weeks count back from -1.
    return f"W{week + 1}" if week >= 0 else f"W{week}"


def _table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    return {
        "caption": caption,
        "headers": list(headers),
        "rows": [[SUPPRESSED if cell is None else cell for cell in row] for row in rows],
    }


def chart_card(
    chart_id: str,
    title: str,
    summary: str,
    *,
    kind: str,
    datasets: list[dict[str, Any]],
    table: dict[str, Any],
    empty: bool,
    empty_text: str,
    labels: list[Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """One chart card (templates/analytics/_chart.html): what the template needs (title,
    summary, table) and what JS draws (spec). The models page uses it too."""
    return {
        "id": chart_id,
        "title": title,
        "summary": summary,
        "table": table,
        "empty": empty,
        "empty_text": empty_text,
        "spec": {
            "id": chart_id,
            "type": kind,
            "labels": labels or [],
            "datasets": datasets,
            "options": options,
        },
    }


def chart_specs(charts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The JSON handed to the page's script: specs of the charts that have data."""
    return {c["id"]: c["spec"] for c in charts if not c["empty"]}


# ---------------------------------------------------------------------------
# Overview
# ---------------------------------------------------------------------------


def overview(user: Any, courses: Sequence[Course], today: dt.date) -> dict[str, Any]:
    ids = [c.pk for c in courses]
    last = selectors.last_activity_date(ids, until=today)
    anchor = _anchor(last, today)
    acts = selectors.activity_kpis(ids, anchor=anchor) if last else {}
    enr = selectors.enrollment_kpis(ids, anchor=anchor) if ids else {}
    kpis = _overview_kpis(user, acts, enr)

    first = anchor - (OVERVIEW_DAYS - 1) * DAY
    daily = (
        access.suppress_small_groups(
            user,
            selectors.daily_activity(ids, first=first, last=anchor),
            value_keys=("events", "clicks"),
        )
        if last
        else []
    )
    types = (
        access.suppress_small_groups(
            user,
            selectors.activity_by_type(ids, first=first, last=anchor),
            value_keys=("clicks", "events"),
        )
        if last
        else []
    )
    weekly = selectors.weekly_activity(ids, last=anchor) if last else []
    counts = selectors.enrolled_counts(ids) if ids else {}
    charts = [
        _daily_chart(daily, first, anchor),
        _types_chart("overview-types", types, f"last {OVERVIEW_DAYS} days"),
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
        kpi("Active learners", [(a_now, a_now), (a_before, a_before)], "", True),
        kpi(
            "Events per day",
            [
                (per_day(acts.get("events_now")), a_now),
                (per_day(acts.get("events_before")), a_before),
            ],
            "",
            True,
        ),
        kpi(
            "New enrolments",
            [(enr.get("enrolled_now"),) * 2, (enr.get("enrolled_before"),) * 2],
            "",
            True,
        ),
        kpi(
            "Withdrawal rate",
            [
                (_pct(enr.get("withdrawn_now"), enr.get("base_now")), enr.get("withdrawn_now")),
                (
                    _pct(enr.get("withdrawn_before"), enr.get("base_before")),
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
        "Daily active learners",
        f"Distinct learners active per day, {_day(first)} to {_day(last)}.",
        kind="line",
        labels=[d.isoformat() for d in days],
        datasets=[
            {"label": "Active learners", "data": learners},
            {"label": "Events", "data": events, "yAxisID": "y2"},
        ],
        table=_table(
            "Daily active learners and events",
            ("Date", "Active learners", "Events"),
            ([d.isoformat(), n, e] for d, n, e in zip(days, learners, events, strict=True)),
        ),
        empty=not daily,
        empty_text="No events yet.",
        secondAxis="Events",
        yTitle="Active learners",
    )


def _types_chart(chart_id: str, types: list[dict[str, Any]], period: str) -> dict[str, Any]:
    return chart_card(
        chart_id,
        "Activity by type",
        f"Clicks per activity type, {period}.",
        kind="bar",
        labels=[t["activity_type"] for t in types],
        datasets=[{"label": "Clicks", "data": [t["clicks"] for t in types]}],
        table=_table(
            f"Clicks per activity type, {period}",
            ("Activity type", "Clicks", "Learners"),
            ([t["activity_type"], t["clicks"], t["learners"]] for t in types),
        ),
        empty=not types,
        empty_text="No events yet.",
        indexAxis="y",
        yTitle="Clicks",
    )


def _last_complete_week(course: Course, anchor: dt.date) -> int:
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
            max_week = max(max_week, _last_complete_week(c, anchor))
    weeks = list(range(max_week + 1))
    datasets = []
    table_rows: list[list[Any]] = []
    for c in courses:
        if c.pk not in by_course:
            continue
        enrolled = counts.get(c.pk, {}).get("enrolled", 0)
        last_week = _last_complete_week(c, anchor)
        rows = access.suppress_small_groups(
            user,
            (
                {"week": w, "learners": by_course[c.pk].get(w, 0) if w <= last_week else None}
                for w in weeks
            ),
        )
        data = [
            None
            if r["learners"] is None or r["week"] > last_week
            else _pct(r["learners"], enrolled)
            for r in rows
        ]
        datasets.append({"label": c.code, "data": data})
        table_rows.extend(
            [c.code, _week_label(r["week"]), r["learners"], d]
            for r, d in zip(rows, data, strict=True)
            if r["week"] <= last_week
        )
    return chart_card(
        "overview-retention",
        "Cohort retention by week of course run",
        "Percentage of each course run's enrolled learners active in each complete week "
        "of the run.",
        kind="line",
        labels=[_week_label(w) for w in weeks],
        datasets=datasets,
        table=_table(
            "Active learners per week of run",
            ("Course run", "Week", "Active learners", "% of enrolled"),
            table_rows,
        ),
        empty=not datasets,
        empty_text="No course-run activity yet.",
        yPercent=True,
        yTitle="% of enrolled learners",
    )


# ---------------------------------------------------------------------------
# Course run
# ---------------------------------------------------------------------------


def learner_status(row: Mapping[str, Any]) -> str:
    if row.get("final_result") == Enrollment.Result.WITHDRAWN or row.get("unregistered_on"):
        return "Withdrawn"
    return row.get("final_result") or "In progress"


# The course page's run-wide reads (charts, the table's rows before filters)
# cost about a second on a run of 1,000 learners; they are cached per course,
# day and data version (`selectors.data_version`, one cheap query per
# request), in this process and in the shared cache, so any new event,
# enrolment or submission, or an erased learner, recomputes them.
COURSE_CACHE_SECONDS = 600
_BUNDLE_FORMAT = 3  # bump when _CourseBundle changes


@dataclass
class _CourseBundle:
    anchor: dt.date
    weekly: list[dict[str, Any]]
    types: list[dict[str, Any]]
    items: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    learners: list[dict[str, Any]]
    # Per "suppresses small groups": charts and item lists derived from the rows.
    views: dict[bool, dict[str, Any]]
    # Per learner id: the table row's own cells, rendered on first display.
    row_cells: dict[int, str] = field(default_factory=dict)
    # Per table query (filters and sort, not page): the filtered, sorted rows.
    tables: dict[Any, list[Any]] = field(default_factory=dict)
    # Per page and panel data: the rendered rows of the table.
    bodies: dict[str, str] = field(default_factory=dict)


class _CourseCache:
    """Newest bundle per course run in this process (monotonic expiry), backed by the cache."""

    def __init__(self) -> None:
        self._bundles: dict[int, tuple[float, tuple[Any, ...], _CourseBundle]] = {}
        self._lock = threading.Lock()

    def get(self, course: Course, today: dt.date) -> _CourseBundle:
        key = (
            course.pk,
            course.start_date,
            course.length_days,
            today,
            selectors.data_version(course.pk),
        )
        now = time.monotonic()
        hit = self._bundles.get(course.pk)
        if hit is not None and hit[1] == key and now - hit[0] < COURSE_CACHE_SECONDS:
            return hit[2]
        # The format number: bundles pickled by older code must not be read back.
        shared_key = (
            f"analytics:course:{_BUNDLE_FORMAT}:" + hashlib.sha256(repr(key).encode()).hexdigest()
        )
        try:
            bundle = cache.get(shared_key)
        except Exception:
            bundle = None
        if bundle is None:
            bundle = _course_bundle(course, today)
            try:
                cache.set(shared_key, bundle, COURSE_CACHE_SECONDS)
            except Exception:
                logger.warning("course cache: could not store a bundle")
        with self._lock:
            self._bundles[course.pk] = (now, key, bundle)
        return bundle

    def clear(self) -> None:
        with self._lock:
            self._bundles.clear()


course_cache = _CourseCache()


def _course_bundle(course: Course, today: dt.date) -> _CourseBundle:
    weekly = selectors.weekly_activity([course.pk], last=today)
    # Same anchor as course_csv_rows (latest activity on or before today),
    # read off the weekly rows to save a query.
    last = max((r["last_date"] for r in weekly), default=None)
    anchor = _anchor(last, today)
    first_content_day = anchor - (CONTENT_WINDOW_DAYS - 1) * DAY
    return _CourseBundle(
        anchor=anchor,
        weekly=weekly,
        types=selectors.activity_by_type([course.pk]),
        items=selectors.item_usage(course, first=first_content_day, last=anchor),
        scores=selectors.score_histogram(course),
        learners=selectors.course_learner_table(course, anchor=anchor),
        views={},
    )


def _course_charts(user: Any, course: Course, bundle: _CourseBundle) -> dict[str, Any]:
    suppress = access.suppresses_small_groups(user)
    view = bundle.views.get(suppress)
    if view is not None:
        return view
    anchor = bundle.anchor
    weekly = access.suppress_small_groups(user, bundle.weekly, value_keys=("clicks", "events"))
    anchor_week = selectors.week_of_run(anchor, course.start_date)
    partial_week = anchor_week if (anchor - course.start_date).days % 7 != 6 else None
    types = access.suppress_small_groups(user, bundle.types, value_keys=("clicks", "events"))
    first_content_day = anchor - (CONTENT_WINDOW_DAYS - 1) * DAY
    items = access.suppress_small_groups(user, bundle.items, value_keys=("clicks",))
    scores = access.suppress_small_groups(user, bundle.scores, value_keys=("submissions",))
    used = sorted(items, key=lambda r: (-(r["clicks"] or 0), r["title"] or r["external_id"]))
    top = [r for r in used if r["clicks"]][:10]
    bottom = sorted(items, key=lambda r: (r["clicks"] or 0, r["title"] or r["external_id"]))[:10]
    charts = [
        _weekly_chart(weekly, partial_week),
        _types_chart("course-types", types, "whole run"),
        _content_chart(top, first_content_day, anchor),
        _scores_chart(scores),
    ]
    view = {
        "charts": charts,
        "chart_data": chart_specs(charts),
        "top_items": top,
        "bottom_items": bottom,
        "content_window": (first_content_day, anchor),
    }
    # Rendered here once: the chart cards with their data tables are most of
    # the page's template work and the same for every request of this view.
    view["summary_html"] = render_to_string("analytics/_course_run_summary.html", view)
    view["chart_data_script"] = json_script(view["chart_data"], "course-data")
    bundle.views[suppress] = view
    return view


def course_page(
    user: Any,
    course: Course,
    today: dt.date,
    query: selectors.LearnerTableQuery,
    page_number: str | int | None,
) -> dict[str, Any]:
    bundle = course_cache.get(course, today)
    anchor = bundle.anchor
    rows = bundle.tables.get(query)
    if rows is None:
        rows = selectors.filter_learner_table(bundle.learners, anchor=anchor, query=query)
        if len(bundle.tables) >= 32:  # searches are free text: keep a few
            bundle.tables.clear()
        bundle.tables[query] = rows
    page = Paginator(rows, PAGE_SIZE).get_page(page_number)
    page_rows = [dict(r, status=learner_status(r)) for r in page.object_list]
    cells_template = get_template("analytics/_learner_row_cells.html")
    for row in page_rows:
        cells = bundle.row_cells.get(row["learner_id"])
        if cells is None:
            cells = bundle.row_cells[row["learner_id"]] = cells_template.render({"row": row})
        row["cells"] = cells  # a SafeString: escaped by the template that made it
    _attach_row_panels(course, page_rows)
    panel_headers = [h for s in _course_slots() for h in s.headers]
    filtered = bool(query.search or query.inactive_days or query.status != "current")
    # The rows' HTML is a function of the page's rows, the panels' templates and
    # data, and the minute (panels say "scored 5 minutes ago"): kept for repeats.
    body_key = hashlib.sha256(
        repr(
            (
                query,
                page.number,
                filtered,
                [
                    (r["learner_id"], [(p["template"], p["value"]) for p in r["panels"]])
                    for r in page_rows
                ],
                int(time.time() // 60),
            )
        ).encode()
    ).hexdigest()
    rows_html = bundle.bodies.get(body_key)
    if rows_html is None:
        rows_html = render_to_string(
            "analytics/_learner_rows.html",
            {
                "rows": page_rows,
                "course": course,
                "filtered": filtered,
                "column_count": 4 + len(panel_headers),
            },
        )
        if len(bundle.bodies) >= 64:
            bundle.bodies.clear()
        bundle.bodies[body_key] = rows_html
    return {
        "course": course,
        "anchor": anchor,
        "rows_html": rows_html,
        **_course_charts(user, course, bundle),
        "page": page,
        "rows": page_rows,
        "query": query,
        "panel_headers": panel_headers,
        # Learner, status, last active, activity + the panel columns.
        "column_count": 4 + len(panel_headers),
        "query_string": urlencode(query.params()),
        "filtered": filtered,
        "sort_headers": _sort_headers(query),
        "sort_label": selectors.LEARNER_SORTS[query.sort],
        "statuses": selectors.LEARNER_STATUSES,
        "inactivity_choices": selectors.INACTIVITY_CHOICES,
    }


def _sort_headers(query: selectors.LearnerTableQuery) -> list[dict[str, Any]]:
    """Sortable column headers: current state (for aria-sort) and the sort a click asks for."""
    headers = []
    for key, label in selectors.LEARNER_SORTS.items():
        current = key == query.sort
        # Clicking the current column reverses it; another column starts
        # ascending (least active / longest inactive first: the most at risk).
        descending_next = current and not query.descending
        headers.append(
            {
                "key": key,
                "label": label,
                "numeric": key == "activity_14d",
                "state": ("descending" if query.descending else "ascending") if current else "none",
                "next": f"-{key}" if descending_next else key,
                "next_label": "descending" if descending_next else "ascending",
            }
        )
    return headers


def _weekly_chart(weekly: list[dict[str, Any]], partial_week: int | None) -> dict[str, Any]:
    labels = [
        _week_label(r["week"]) + (" (to date)" if r["week"] == partial_week else "") for r in weekly
    ]
    return chart_card(
        "course-weekly",
        "Engagement by week",
        "Active learners (bars) and clicks (line) per week of the course run.",
        kind="bar",
        labels=labels,
        datasets=[
            {"label": "Active learners", "data": [r["learners"] for r in weekly]},
            {
                "label": "Clicks",
                "data": [r["clicks"] for r in weekly],
                "type": "line",
                "yAxisID": "y2",
            },
        ],
        table=_table(
            "Engagement per week of the run",
            ("Week", "Active learners", "Clicks", "Events"),
            (
                [lab, r["learners"], r["clicks"], r["events"]]
                for lab, r in zip(labels, weekly, strict=True)
            ),
        ),
        empty=not weekly,
        empty_text="No events yet.",
        secondAxis="Clicks",
        yTitle="Active learners",
    )


def _content_chart(top: list[dict[str, Any]], first: dt.date, last: dt.date) -> dict[str, Any]:
    labels = [r["title"] or r["external_id"] for r in top]
    period = f"{first.day} {first:%b} to {_day(last)}"
    return chart_card(
        "course-content",
        "Most used content",
        f"Clicks on the ten most used content items, {period}.",
        kind="bar",
        labels=labels,
        datasets=[{"label": "Clicks", "data": [r["clicks"] for r in top]}],
        table=_table(
            f"Most used content, {period}",
            ("Item", "Type", "Clicks", "Learners"),
            (
                [lab, r["activity_type"], r["clicks"], r["learners"]]
                for lab, r in zip(labels, top, strict=True)
            ),
        ),
        empty=not top,
        empty_text=f"No content was used from {period}.",
        indexAxis="y",
    )


def _scores_chart(scores: list[dict[str, Any]]) -> dict[str, Any]:
    return chart_card(
        "course-scores",
        "Assessment score distribution",
        "Number of scored submissions per 10-point score band.",
        kind="bar",
        labels=[s["label"] for s in scores],
        datasets=[{"label": "Submissions", "data": [s["submissions"] for s in scores]}],
        table=_table(
            "Scored submissions per score band",
            ("Score", "Submissions", "Learners"),
            ([s["label"], s["submissions"], s["learners"]] for s in scores),
        ),
        empty=not any(s["submissions"] or s["suppressed"] for s in scores),
        empty_text="No scored submissions yet.",
        yTitle="Submissions",
    )


CSV_COLUMNS = (
    "learner",
    "status",
    "registered_on",
    "last_active",
    "activity_14d",
)


def course_csv_rows(course: Course, today: dt.date, query: selectors.LearnerTableQuery):
    """Header, then every row of the at-risk table (same filters and order), for streaming."""
    last = selectors.last_activity_date([course.pk], until=today)
    anchor = _anchor(last, today)
    slots = _course_slots()
    yield [*CSV_COLUMNS, *(c for s in slots for c in s.csv_columns)]
    rows = selectors.course_learner_rows(course, anchor=anchor, query=query)
    # Slices of 500: panel data functions get bounded id lists and the
    # response starts streaming before the last row is read.
    chunk = 500
    start = 0
    while True:
        batch = list(rows[start : start + chunk])
        ids = [r["learner_id"] for r in batch]
        values = []
        for slot in slots:
            provider = _providers.get(slot.name)
            data = (_panel_data(slot, course, ids) if ids else None) or {}
            values.append((slot, provider, data))
        for r in batch:
            cells = [
                r["pseudonym"],
                learner_status(r),
                r["registered_on"] or "",
                r["last_active"] or "",
                r["activity_14d"],
            ]
            for slot, provider, data in values:
                if provider is not None and provider.csv is not None:
                    cells.extend(provider.csv(data.get(r["learner_id"])))
                else:
                    cells.extend("" for _ in slot.csv_columns)
            yield cells
        if len(batch) < chunk:
            break
        start += chunk


# ---------------------------------------------------------------------------
# Learner
# ---------------------------------------------------------------------------


def learner_page(
    user: Any, learner: Learner, visible_courses: Any, today: dt.date
) -> dict[str, Any]:
    enrollments = selectors.learner_enrollments(learner, visible_courses)
    course_ids = [e.course_id for e in enrollments]
    daily = selectors.learner_daily_clicks(learner, course_ids)
    submissions = selectors.learner_submissions(learner, course_ids)
    courses = [e.course for e in enrollments]
    heatmaps = [
        _heatmap(e, [r for r in daily if r["course_id"] == e.course_id], today) for e in enrollments
    ]
    panels = [
        {
            "slot": slot,
            "template": slot_template(slot),
            "value": _panel_data(slot, learner, courses),
        }
        for slot in SLOTS.values()
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
        "panels": panels,
    }


def _heatmap(enrollment: Enrollment, daily: list[dict[str, Any]], today: dt.date) -> dict[str, Any]:
    """Week-of-run x weekday clicks of one learner in one run, as scatter points on a grid.

    Columns run from the first week (or earlier activity) to the current week
    of the run, capped at its last week: future weeks would only be blank.
    """
    course = enrollment.course
    cells: dict[tuple[int, int], int] = {}
    for r in daily:
        key = (selectors.week_of_run(r["date"], course.start_date), r["date"].weekday())
        cells[key] = cells.get(key, 0) + r["clicks"]
    last_week = min(
        (course.length_days - 1) // 7, max(0, selectors.week_of_run(today, course.start_date))
    )
    weeks = [w for w, _ in cells]
    first = min([0, *weeks])
    last = max([last_week, *weeks])
    week_range = list(range(first, last + 1))
    points = [{"x": w, "y": d, "v": cells[(w, d)]} for (w, d) in sorted(cells)]
    table_rows = []
    for w in week_range:
        row = [cells.get((w, d), 0) for d in range(7)]
        if any(row):
            table_rows.append([_week_label(w), *row])
    return chart_card(
        f"heatmap-{course.pk}",
        f"Activity heatmap, {course.code}",
        f"Clicks per weekday (rows) and week of the run (columns) in {course.code}; "
        "darker squares mean more clicks.",
        kind="heatmap",
        labels=[_week_label(w) for w in week_range],
        datasets=[{"label": "Clicks", "data": points}],
        table=_table(
            f"Clicks per week and weekday, {course.code} (weeks with activity)",
            ("Week", *WEEKDAYS),
            table_rows,
        ),
        empty=not points,
        empty_text="No activity in this course run yet.",
        weekMin=first,
        weekMax=last,
        weekdays=list(WEEKDAYS),
    )


# ---------------------------------------------------------------------------
# Learner features (segments, data quality)
# ---------------------------------------------------------------------------

BASE_FEATURES = ("total_clicks", "active_days", "recency_days", "trend")
FEATURE_LABELS = {
    "total_clicks": "total clicks",
    "active_days": "active days",
    "recency_days": "days since last activity",
    "trend": "trend (last 14 days vs the 14 before)",
}
COUNT_FEATURES = ("total_clicks", "active_days")
MAX_TYPE_SHARES = 6


def feature_label(name: str) -> str:
    if name.startswith("share_"):
        return f"share of {name.removeprefix('share_')}"
    return FEATURE_LABELS.get(name, name)


def learner_features(course_ids: Sequence[int], *, anchor: dt.date) -> pd.DataFrame:
    """One row per enrolment: activity features as of ``anchor`` from the rollup.

    total_clicks, active_days: 0 for a learner never active.
    recency_days: days from the last active day to ``anchor``; NaN (unknown) if never active.
    trend: (last 14 days - the 14 before) / their sum, in [-1, 1]; NaN if both are 0.
    share_<type>: share of the learner's clicks on the most clicked activity types
        (at most MAX_TYPE_SHARES; the rest is share_other); NaN if no clicks.
    withdrawn: the outcome shown per segment (not a feature).
    """
    enrolments, totals, by_type = selectors.learner_feature_rows(course_ids, anchor=anchor)
    frame = pd.DataFrame(enrolments, columns=["course_id", "learner_id", "withdrawn"])
    key = ["course_id", "learner_id"]
    agg = pd.DataFrame(
        totals,
        columns=[*key, "total_clicks", "active_days", "last_active", "recent", "prior"],
    )
    frame = frame.merge(agg, on=key, how="left")
    frame["total_clicks"] = frame["total_clicks"].fillna(0).astype(float)
    frame["active_days"] = frame["active_days"].fillna(0).astype(float)
    frame["recency_days"] = [
        (anchor - d).days if isinstance(d, dt.date) else np.nan for d in frame["last_active"]
    ]
    frame["recency_days"] = frame["recency_days"].astype(float)
    recent = frame["recent"].fillna(0).astype(float)
    prior = frame["prior"].fillna(0).astype(float)
    both = recent + prior
    frame["trend"] = np.where(both > 0, (recent - prior) / both.where(both > 0, 1), np.nan)

    types = pd.DataFrame(by_type, columns=[*key, "activity_type", "type_clicks"])
    share_cols: list[str] = []
    if len(types):
        ranked = types.groupby("activity_type")["type_clicks"].sum().sort_values(ascending=False)
        keep = list(ranked.index[:MAX_TYPE_SHARES])
        types["group"] = types["activity_type"].where(types["activity_type"].isin(keep), "other")
        wide = types.pivot_table(
            index=key, columns="group", values="type_clicks", aggfunc="sum", fill_value=0
        )
        order = keep + (["other"] if "other" in wide.columns else [])
        wide = wide[order]
        wide.columns = [f"share_{c}" for c in wide.columns]
        share_cols = list(wide.columns)
        frame = frame.merge(wide.reset_index(), on=key, how="left")
        clicks = frame["total_clicks"].where(frame["total_clicks"] > 0)
        for col in share_cols:
            frame[col] = frame[col].fillna(0).astype(float) / clicks
    columns = [*key, "withdrawn", *BASE_FEATURES, *share_cols]
    return frame[columns]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c in BASE_FEATURES or c.startswith("share_")]


# ---------------------------------------------------------------------------
# Behaviour segments
# ---------------------------------------------------------------------------


def segments_page(user: Any, course: Course, today: dt.date, k: int | None) -> dict[str, Any]:
    last = selectors.last_activity_date([course.pk], until=today)
    anchor = _anchor(last, today)
    frame = learner_features([course.pk], anchor=anchor)
    names = feature_columns(frame)
    context: dict[str, Any] = {
        "course": course,
        "anchor": anchor,
        "k": k,
        "k_choices": list(range(2, 7)),
        "learners": len(frame),
        "feature_labels": [feature_label(n) for n in names],
        "charts": [],
        "chart_data": {},
        "profiles": [],
        "segmentation": None,
    }
    if not len(frame) or last is None:
        return context
    result = _cached_segmentation(frame[names].to_numpy(dtype=float), names, k, frame)
    withdrawn_counts = [
        int(frame["withdrawn"].to_numpy()[result.labels == p.segment].sum())
        for p in result.profiles
    ]
    profiles = access.suppress_small_groups(
        user,
        (
            {
                "segment": p.segment,
                "name": f"Segment {p.segment + 1}",
                "description": p.description,
                "learners": p.size,
                "share": round(100 * p.share, 1),
                "withdrawn": w,
                "withdrawal_rate": None
                if p.outcome_rate is None
                else round(100 * p.outcome_rate, 1),
                "means": [_round_feature(n, p.means[n]) for n in names],
            }
            for p, w in zip(result.profiles, withdrawn_counts, strict=True)
        ),
        value_keys=("share", "withdrawn", "withdrawal_rate", "means", "description"),
    )
    chart = _scatter_chart(result, profiles)
    context.update(
        segmentation=result,
        profiles=profiles,
        charts=[chart],
        chart_data=chart_specs([chart]),
        explained=[round(100 * r, 1) for r in result.explained_variance],
        silhouette=None if result.silhouette is None else round(result.silhouette, 2),
        k_scores={kk: round(v, 2) for kk, v in sorted(result.k_scores.items())},
    )
    return context


def _round_feature(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if name.startswith("share_"):
        return round(100 * value, 1)  # shown as a percentage
    return round(value, 2 if name == "trend" else 1)


def _cached_segmentation(
    matrix: np.ndarray, names: list[str], k: int | None, frame: pd.DataFrame
) -> Segmentation:
    """k-means is the slow part of the page; same features, same k: same result.

    The key hashes the feature matrix itself, so new activity (a different
    matrix) misses the cache instead of serving stale segments.
    """
    outcome = frame["withdrawn"].to_numpy(dtype=bool)
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(matrix).tobytes())
    digest.update(outcome.tobytes())
    digest.update(repr((names, k)).encode())
    key = f"analytics:segments:{digest.hexdigest()}"
    result = cache.get(key)
    if result is None:
        # Imported here: scikit-learn adds seconds to process start-up, and
        # only this page needs it.
        from eduplatform.ml.segments import segment_learners

        result = segment_learners(
            matrix,
            names,
            k=k,
            log_features=COUNT_FEATURES,
            order_by="total_clicks",
            outcome=outcome,
            labels_for_humans={n: feature_label(n) for n in names},
        )
        cache.set(key, result, SEGMENT_CACHE_SECONDS)
    return result


def _scatter_chart(result: Segmentation, profiles: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(result.labels)
    index = np.arange(n)
    if n > MAX_SCATTER_POINTS:
        # A fixed sample keeps the page light and the picture stable between loads.
        index = np.sort(np.random.default_rng(0).choice(n, MAX_SCATTER_POINTS, replace=False))
    datasets = []
    for p in profiles:
        if p["suppressed"]:
            continue  # analysts: a segment of 1-4 learners is not drawn either
        members = index[result.labels[index] == p["segment"]]
        datasets.append(
            {
                "label": f"{p['name']} ({p['learners']} learners)",
                "colorIndex": p["segment"],
                "data": [
                    {
                        "x": round(float(result.projection[i, 0]), 3),
                        "y": round(float(result.projection[i, 1]), 3),
                    }
                    for i in members
                ],
            }
        )
    explained = result.explained_variance
    return chart_card(
        "segments-pca",
        "Segments in two dimensions (PCA)",
        "Each point is a learner, placed by the two principal components of the standardized "
        f"activity features and coloured by segment; {len(index)} of {n} learners shown. "
        "The profile table below gives the same segments in numbers.",
        kind="scatter",
        labels=[],
        datasets=datasets,
        table=_table(
            "Learners per segment",
            ("Segment", "Learners", "Description"),
            ([p["name"], p["learners"], p["description"]] for p in profiles),
        ),
        empty=n == 0,
        empty_text="No learners to segment yet.",
        xTitle=f"PC1 ({100 * explained[0]:.0f}% of variance)",
        yTitle=f"PC2 ({100 * explained[1]:.0f}% of variance)",
    )


# ---------------------------------------------------------------------------
# Data quality
# ---------------------------------------------------------------------------


def feature_quality(frame: pd.DataFrame, names: Sequence[str]) -> list[dict[str, Any]]:
    """Missing values and IQR outliers per feature.

    Outlier: below Q1 - 1.5 IQR or above Q3 + 1.5 IQR of the non-missing
    values. A stop-gap until the ML preprocessing report (QualityReport of the
    fitted Preprocessor) is wired in; it uses the same rows.
    """
    out = []
    for name in names:
        values = frame[name].to_numpy(dtype=float)
        present = values[~np.isnan(values)]
        n = len(values)
        row: dict[str, Any] = {
            "feature": name,
            "label": feature_label(name),
            "rows": n,
            "learners": len(present),
            "missing": n - len(present),
            "missing_pct": _pct(n - len(present), n),
            "outliers": 0,
            "outlier_pct": None,
            "low": None,
            "high": None,
            "min": None,
            "median": None,
            "max": None,
        }
        if len(present):
            q1, median, q3 = np.percentile(present, [25, 50, 75])
            spread = q3 - q1
            low, high = q1 - 1.5 * spread, q3 + 1.5 * spread
            outliers = int(((present < low) | (present > high)).sum())
            row.update(
                outliers=outliers,
                outlier_pct=_pct(outliers, len(present)),
                low=round(float(low), 3),
                high=round(float(high), 3),
                min=round(float(present.min()), 3),
                median=round(float(median), 3),
                max=round(float(present.max()), 3),
            )
        out.append(row)
    return out


def data_quality(user: Any, courses: Sequence[Course], now: dt.datetime) -> dict[str, Any]:
    ids = [c.pk for c in courses]
    today = now.date()
    last = selectors.last_activity_date(ids, until=today)
    anchor = _anchor(last, today)
    frame = learner_features(ids, anchor=anchor) if ids else pd.DataFrame()
    names = feature_columns(frame) if len(frame) else []
    quality = access.suppress_small_groups(
        user,
        feature_quality(frame, names),
        value_keys=(
            "missing",
            "missing_pct",
            "outliers",
            "outlier_pct",
            "low",
            "high",
            "min",
            "median",
            "max",
        ),
    )
    # Whole days: today and the 29 before, from midnight (UTC), so the first
    # day of the chart is not a partial one.
    first_day = today - (QUALITY_WINDOW_DAYS - 1) * DAY
    since = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.UTC)
    volume = selectors.event_volume_by_source(ids, since=since) if ids else []
    imports = selectors.last_import_by_source(ids) if ids else {}
    sources = _source_rows(volume, imports)
    charts = [_quality_chart(quality), _volume_chart(volume, first_day, today)]
    return {
        "anchor": anchor,
        "learners": len(frame),
        "quality": quality,
        "sources": sources,
        "charts": charts,
        "chart_data": chart_specs(charts),
        "window_days": QUALITY_WINDOW_DAYS,
    }


def _source_rows(
    volume: list[dict[str, Any]], imports: Mapping[str, dt.datetime]
) -> list[dict[str, Any]]:
    rows = []
    for source, label in EventSource.choices:
        own = [r for r in volume if r["source"] == source]
        seen = [r["last_ingested"] for r in own if r["last_ingested"]]
        if source in imports:
            seen.append(imports[source])
        rows.append(
            {
                "source": source,
                "label": label,
                "events": sum(r["events"] for r in own),
                "days": len(own),
                "last_ingested": max(seen) if seen else None,
            }
        )
    return rows


def _quality_chart(quality: list[dict[str, Any]]) -> dict[str, Any]:
    return chart_card(
        "quality-features",
        "Missing and outlier share per feature",
        "Percentage of learners with a missing value, and of present values outside the "
        "1.5 IQR fences, per learner feature.",
        kind="bar",
        labels=[q["label"] for q in quality],
        datasets=[
            {"label": "Missing %", "data": [q["missing_pct"] for q in quality]},
            {"label": "Outliers %", "data": [q["outlier_pct"] for q in quality]},
        ],
        table=_table(
            "Missing values and outliers per feature",
            ("Feature", "Missing %", "Outliers %"),
            ([q["label"], q["missing_pct"], q["outlier_pct"]] for q in quality),
        ),
        empty=not quality,
        empty_text="No learners yet.",
        indexAxis="y",
        xPercent=True,
    )


def _volume_chart(volume: list[dict[str, Any]], first: dt.date, last: dt.date) -> dict[str, Any]:
    days = [first + i * DAY for i in range((last - first).days + 1)]
    sources = sorted({r["source"] for r in volume})
    cells = {(r["source"], r["day"]): r["events"] for r in volume}
    labels = dict(EventSource.choices)
    datasets = [
        {"label": labels.get(s, s), "data": [cells.get((s, d), 0) for d in days]} for s in sources
    ]
    return chart_card(
        "quality-volume",
        "Event volume per source per day",
        f"Events per day and source over the last {QUALITY_WINDOW_DAYS} days.",
        kind="line",
        labels=[d.isoformat() for d in days],
        datasets=datasets,
        table=_table(
            f"Events per source per day, last {QUALITY_WINDOW_DAYS} days",
            ("Date", *(labels.get(s, s) for s in sources)),
            ([d.isoformat(), *(cells.get((s, d), 0) for s in sources)] for d in days),
        ),
        empty=not volume,
        empty_text=f"No events in the last {QUALITY_WINDOW_DAYS} days.",
        yTitle="Events",
    )
