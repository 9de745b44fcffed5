"""The course run page: charts, the at-risk table with its panel columns, and its CSV export.

The run-wide reads behind the page are cached per course run (`course_bundles`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.core.paginator import Paginator
from django.template.loader import get_template, render_to_string
from django.utils import dateformat
from django.utils.html import json_script
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from analytics.models import Course
from analytics.pages import panels
from analytics.pages.common import DAY, anchor_day, learner_status, types_chart, week_label
from analytics.pages.interventions import CSV_COLUMNS as ACTION_CSV_COLUMNS
from analytics.pages.interventions import action_csv_cells, outcome_card
from analytics.selectors.activity import (
    activity_by_type,
    item_usage,
    last_activity_date,
    score_histogram,
    week_of_run,
    weekly_activity,
)
from analytics.selectors.learner_table import (
    INACTIVITY_CHOICES,
    LEARNER_SORTS,
    LEARNER_STATUSES,
    LearnerTableQuery,
    course_learner_rows,
    course_learner_table,
    data_version,
    filter_learner_table,
)
from eduplatform.core import access
from eduplatform.core.caches import BoundedCache
from eduplatform.core.charts import chart_card, chart_specs, data_table, day_label

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
CONTENT_WINDOW_DAYS = 28


# The course page's run-wide reads (charts, the table's rows before filters)
# cost about a second on a run of 1,000 learners; they are cached per course,
# day and data version (`data_version`, one cheap query per request), in this
# process and in the shared cache, so any new event, enrolment or submission,
# or an erased learner, recomputes them.
COURSE_CACHE_SECONDS = 600
# Course runs whose newest bundle one process keeps: a bundle holds every
# learner row of its run, so without a bound a long-lived worker would keep
# every run ever viewed.
COURSE_CACHE_MAX_RUNS = 256
# Bump when CourseBundle changes (4: moved to analytics.pages.course; 5: views and cells
# per language).
_BUNDLE_FORMAT = 5


@dataclass
class CourseBundle:
    """A course run's run-wide reads as of one day and data version, plus what pages derive."""

    anchor: dt.date
    weekly: list[dict[str, Any]]
    types: list[dict[str, Any]]
    items: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    learners: list[dict[str, Any]]
    # Per "suppresses small groups" and language: charts and item lists derived from the rows.
    views: dict[tuple[bool, str], dict[str, Any]]
    # Per learner id, language and whether the viewer may record actions (a link): the
    # table row's own cells, rendered on first display.
    row_cells: dict[tuple[int, str, bool], str] = field(default_factory=dict)
    # Per table query (filters and sort, not page): the filtered, sorted rows.
    tables: dict[Any, list[Any]] = field(default_factory=dict)
    # Per page, panel data and language: the rendered rows of the table.
    bodies: dict[str, str] = field(default_factory=dict)


# course pk -> (bundle key, bundle): the newest bundle per run in this process.
# The TTL is read at lookup, so a test may shorten COURSE_CACHE_SECONDS.
course_bundles = BoundedCache(
    "analytics.course_bundles",
    maxsize=COURSE_CACHE_MAX_RUNS,
    ttl=lambda: COURSE_CACHE_SECONDS,
)


def cached_course_bundle(course: Course, today: dt.date) -> CourseBundle:
    """The run's bundle from this process, else the shared cache, else built (and kept in both)."""
    key = (course.pk, course.start_date, course.length_days, today, data_version(course.pk))
    hit = course_bundles.get(course.pk)
    if hit is not None and hit[0] == key:
        return hit[1]
    # The format number: bundles pickled by older code must not be read back.
    shared_key = (
        f"analytics:course:{_BUNDLE_FORMAT}:" + hashlib.sha256(repr(key).encode()).hexdigest()
    )
    try:
        bundle = cache.get(shared_key)
    except Exception:
        bundle = None  # the shared cache is down or holds garbage: build it here
    if bundle is None:
        bundle = course_bundle(course, today)
        try:
            cache.set(shared_key, bundle, COURSE_CACHE_SECONDS)
        except Exception:
            logger.warning("course cache: could not store a bundle")
    course_bundles.put(course.pk, (key, bundle))
    return bundle


def course_bundle(course: Course, today: dt.date) -> CourseBundle:
    """The run-wide reads, uncached (`cached_course_bundle` is what pages call)."""
    weekly = weekly_activity([course.pk], last=today)
    # Same anchor as course_csv_rows (latest activity on or before today),
    # read off the weekly rows to save a query.
    last = max((r["last_date"] for r in weekly), default=None)
    anchor = anchor_day(last, today)
    first_content_day = anchor - (CONTENT_WINDOW_DAYS - 1) * DAY
    return CourseBundle(
        anchor=anchor,
        weekly=weekly,
        types=activity_by_type([course.pk]),
        items=item_usage(course, first=first_content_day, last=anchor),
        scores=score_histogram(course),
        learners=course_learner_table(course, anchor=anchor),
        views={},
    )


def _course_charts(user: Any, course: Course, bundle: CourseBundle) -> dict[str, Any]:
    # Titles, labels and the rendered summary are in the request's language.
    view_key = (access.suppresses_small_groups(user), get_language() or "")
    view = bundle.views.get(view_key)
    if view is not None:
        return view
    anchor = bundle.anchor
    weekly = access.suppress_small_groups(user, bundle.weekly, value_keys=("clicks", "events"))
    anchor_week = week_of_run(anchor, course.start_date)
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
        types_chart("course-types", types, _("whole run")),
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
    bundle.views[view_key] = view
    return view


def course_page(
    user: Any,
    course: Course,
    today: dt.date,
    query: LearnerTableQuery,
    page_number: str | int | None,
) -> dict[str, Any]:
    bundle = cached_course_bundle(course, today)
    anchor = bundle.anchor
    orders = panels.row_orders()
    by_order = query.sort in orders
    # A registered order (risk) sorts the filtered rows here, on every request: its keys
    # change when the scores do, which the bundle's data version does not see.
    base_query = replace(query, sort="pseudonym", descending=False) if by_order else query
    rows = bundle.tables.get(base_query)
    if rows is None:
        rows = filter_learner_table(bundle.learners, anchor=anchor, query=base_query)
        if len(bundle.tables) >= 32:  # searches are free text: keep a few
            bundle.tables.clear()
        bundle.tables[base_query] = rows
    # The run's risk scores, read once: the risk order and the outcome card both use them.
    risk = panels.order_keys("risk", course) if "risk" in orders else None
    summary = ""
    if by_order:
        rows, summary = panels.ordered(
            query.sort,
            rows,
            course,
            user,
            descending=query.descending,
            keys=risk if query.sort == "risk" else None,
        )
    page = Paginator(rows, PAGE_SIZE).get_page(page_number)
    page_rows = [dict(r, status=learner_status(r)) for r in page.object_list]
    cells_template = get_template("analytics/_learner_row_cells.html")
    language = get_language() or ""
    # admins and the run's instructors get a "record action" link (#27 item 5): a key part
    can_act = access.role_of(user) in (access.ADMIN, access.INSTRUCTOR)
    for row in page_rows:
        cells_key = (row["learner_id"], language, can_act)
        cells = bundle.row_cells.get(cells_key)
        if cells is None:
            cells = bundle.row_cells[cells_key] = cells_template.render(
                {"row": row, "can_act": can_act}
            )
        row["cells"] = cells  # a SafeString: escaped by the template that made it
    panels.attach_row_panels(course, page_rows)
    panel_headers = [h for s in panels.course_slots() for h in s.headers]
    panel_sorts = [
        _sort_header(s.sort, s.headers[0], query) if s.sort in orders and i == 0 else None
        for s in panels.course_slots()
        for i, _h in enumerate(s.headers)
    ]
    filtered = bool(query.search or query.inactive_days or query.status != "current")
    # The rows' HTML is a function of the page's rows, the panels' templates and
    # data, the language and the minute (panels say "scored 5 minutes ago"): kept for repeats.
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
                language,
                can_act,
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
        "panel_columns": list(zip(panel_headers, panel_sorts, strict=True)),
        "order_legend": orders[query.sort].legend if by_order else "",
        "order_summary": summary,
        # Learner, status, last active, activity + the panel columns.
        "column_count": 4 + len(panel_headers),
        "query_string": urlencode(query.params()),
        "filtered": filtered,
        "sort_headers": _sort_headers(query),
        "sort_label": orders[query.sort].label if by_order else LEARNER_SORTS[query.sort],
        "statuses": LEARNER_STATUSES,
        "inactivity_choices": INACTIVITY_CHOICES,
        "outcomes": outcome_card(user, course, today, risk),
    }


def _sort_headers(query: LearnerTableQuery) -> list[dict[str, Any]]:
    """Sortable column headers: current state (for aria-sort) and the sort a click asks for."""
    return [_sort_header(key, label, query) for key, label in LEARNER_SORTS.items()]


def _sort_header(key: str, label: Any, query: LearnerTableQuery) -> dict[str, Any]:
    current = key == query.sort
    # Clicking the current column reverses it; another column starts ascending
    # (least active / longest inactive first: the most at risk), a registered order
    # (risk) descending (riskiest first).
    descending_next = not query.descending if current else key not in LEARNER_SORTS
    return {
        "key": key,
        "label": label,
        "numeric": key == "activity_14d",
        "state": ("descending" if query.descending else "ascending") if current else "none",
        "next": f"-{key}" if descending_next else key,
        "next_label": "descending" if descending_next else "ascending",
    }


def _weekly_chart(weekly: list[dict[str, Any]], partial_week: int | None) -> dict[str, Any]:
    labels = [
        _("%(week)s (to date)") % {"week": week_label(r["week"])}
        if r["week"] == partial_week
        else week_label(r["week"])
        for r in weekly
    ]
    return chart_card(
        "course-weekly",
        _("Engagement by week"),
        _("Active learners (bars) and clicks (line) per week of the course run."),
        kind="bar",
        labels=labels,
        datasets=[
            {"label": _("Active learners"), "data": [r["learners"] for r in weekly]},
            {
                "label": _("Clicks"),
                "data": [r["clicks"] for r in weekly],
                "type": "line",
                "yAxisID": "y2",
            },
        ],
        table=data_table(
            _("Engagement per week of the run"),
            (_("Week"), _("Active learners"), _("Clicks"), _("Events")),
            (
                [lab, r["learners"], r["clicks"], r["events"]]
                for lab, r in zip(labels, weekly, strict=True)
            ),
        ),
        empty=not weekly,
        empty_text=_("No events yet."),
        secondAxis=_("Clicks"),
        yTitle=_("Active learners"),
    )


def _content_chart(top: list[dict[str, Any]], first: dt.date, last: dt.date) -> dict[str, Any]:
    labels = [r["title"] or r["external_id"] for r in top]
    period = _("%(first)s to %(last)s") % {
        "first": dateformat.format(first, _("j M")),
        "last": day_label(last),
    }
    return chart_card(
        "course-content",
        _("Most used content"),
        _("Clicks on the ten most used content items, %(period)s.") % {"period": period},
        kind="bar",
        labels=labels,
        datasets=[{"label": _("Clicks"), "data": [r["clicks"] for r in top]}],
        table=data_table(
            _("Most used content, %(period)s") % {"period": period},
            (_("Item"), _("Type"), _("Clicks"), _("Learners")),
            (
                [lab, r["activity_type"], r["clicks"], r["learners"]]
                for lab, r in zip(labels, top, strict=True)
            ),
        ),
        empty=not top,
        empty_text=_("No content was used from %(period)s.") % {"period": period},
        indexAxis="y",
    )


def _scores_chart(scores: list[dict[str, Any]]) -> dict[str, Any]:
    return chart_card(
        "course-scores",
        _("Assessment score distribution"),
        _("Number of scored submissions per 10-point score band."),
        kind="bar",
        labels=[s["label"] for s in scores],
        datasets=[{"label": _("Submissions"), "data": [s["submissions"] for s in scores]}],
        table=data_table(
            _("Scored submissions per score band"),
            (_("Score"), _("Submissions"), _("Learners")),
            ([s["label"], s["submissions"], s["learners"]] for s in scores),
        ),
        empty=not any(s["submissions"] or s["suppressed"] for s in scores),
        empty_text=_("No scored submissions yet."),
        yTitle=_("Submissions"),
    )


CSV_COLUMNS = (
    "learner",
    "status",
    "registered_on",
    "last_active",
    "activity_14d",
)


def course_csv_rows(course: Course, today: dt.date, query: LearnerTableQuery, user: Any = None):
    """Header, then every row of the at-risk table (same filters and order), for streaming."""
    last = last_activity_date([course.pk], until=today)
    anchor = anchor_day(last, today)
    slots = panels.course_slots()
    yield [*CSV_COLUMNS, *(c for s in slots for c in s.csv_columns), *ACTION_CSV_COLUMNS]
    orders = panels.row_orders()
    if query.sort in orders:
        # a registered order (risk) is known in Python only: the run's rows in memory
        base = replace(query, sort="pseudonym", descending=False)
        rows: Any = panels.order_rows(
            query.sort,
            list(course_learner_rows(course, anchor=anchor, query=base)),
            course,
            user,
            descending=query.descending,
        )
    else:
        rows = course_learner_rows(course, anchor=anchor, query=query)
    # Slices of 500: panel data functions get bounded id lists and the
    # response starts streaming before the last row is read.
    chunk = 500
    start = 0
    while True:
        batch = list(rows[start : start + chunk])
        ids = [r["learner_id"] for r in batch]
        values = [
            (slot, (panels.panel_data(slot, course, ids) if ids else None) or {}) for slot in slots
        ]
        actions = action_csv_cells(course, ids) if ids else {}
        for r in batch:
            cells = [
                r["pseudonym"],
                learner_status(r),
                r["registered_on"] or "",
                r["last_active"] or "",
                r["activity_14d"],
            ]
            for slot, data in values:
                cells.extend(panels.csv_cells(slot, data.get(r["learner_id"])))
            cells.extend(actions.get(r["learner_id"], [0, ""]))
            yield cells
        if len(batch) < chunk:
            break
        start += chunk
