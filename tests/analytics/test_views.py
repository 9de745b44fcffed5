"""Dashboard pages: data, empty states, the at-risk table, CSV, panel slots, query counts."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import dashboards, selectors
from analytics.models import DailyActivity, Enrollment, LearningEvent
from tests.browser.world import World, add_learners, build_world
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    LearnerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


@pytest.fixture
def world() -> World:
    return build_world()


ORIGINAL_SLOTS = dict(dashboards.SLOTS)


@pytest.fixture(autouse=True)
def analytics_only_panels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test analytics on its own: no installed panel providers, slot templates that do not exist.

    Churn and recommender fill the slots when installed; their panels have
    their own tests. Here every slot shows analytics' fallback unless a test
    registers a provider, and query counts are analytics' own.
    See test_installed_panels_keep_query_counts_flat for the real thing.
    """
    monkeypatch.setattr(dashboards, "_providers", {})
    monkeypatch.setattr(
        dashboards,
        "SLOTS",
        {
            name: dataclasses.replace(slot, template=f"no-such-app/{name}.html")
            for name, slot in dashboards.SLOTS.items()
        },
    )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def chart_json(html: str, script_id: str) -> dict:
    match = re.search(rf'<script id="{script_id}" type="application/json">(.*?)</script>', html)
    assert match, f"no #{script_id} data block"
    return json.loads(match.group(1))


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body(response))))


# -- query counts ------------------------------------------------------------------

# User (the session comes from the cache), then the page's own reads. Non-admins add one
# role query.
# Each number is independent of the number of learners (see the growth test).
QUERY_COUNTS = {
    # overview: courses, last activity, activity KPIs, enrolment KPIs,
    # daily, by type, weekly, enrolled counts
    "overview": 9,
    # course: course, weekly, by type, item usage (events + items), score
    # histogram, table count, table page
    "course": 9,
    # export: course, last activity, one 500-row slice
    "export": 4,
    # segments: course, last activity, enrolments, totals, per-type clicks
    "segments": 6,
    # learner: learner, enrolments (+course), daily clicks, submissions
    "learner": 5,
    # data quality: courses, last activity, 3 feature reads, volume, imports
    "data_quality": 8,
}


def page_urls(world: World) -> dict[str, str]:
    course = world.course_a
    return {
        "overview": "/",
        "course": f"/courses/{course.pk}/",
        "export": f"/courses/{course.pk}/export.csv",
        "segments": f"/courses/{course.pk}/segments/",
        "learner": f"/learners/{world.learners[course.code][0].pseudonym}/",
        "data_quality": "/data-quality/",
    }


@pytest.mark.parametrize("page", list(QUERY_COUNTS))
@pytest.mark.parametrize("role", ["admin", "analyst", "instructor_a"])
def test_query_counts(world: World, page: str, role: str, django_assert_num_queries) -> None:
    client = client_for(getattr(world, role))
    expected = QUERY_COUNTS[page] + (0 if role == "admin" else 1)
    with django_assert_num_queries(expected):
        response = client.get(page_urls(world)[page])
        text = body(response)  # streaming responses query while streaming
    assert response.status_code == 200
    assert text


def test_query_counts_do_not_grow_with_learners(world: World) -> None:
    """No N+1: five times the learners (and a second table page) cost the same queries."""

    def measure() -> dict[str, int]:
        client = client_for(world.instructor_a)
        counts = {}
        for name, url in page_urls(world).items():
            with CaptureQueriesContext(connection) as queries:
                body(client.get(url))
            counts[name] = len(queries)
        with CaptureQueriesContext(connection) as queries:
            body(client.get(f"/courses/{world.course_a.pk}/?page=2&status=all"))
        counts["page2"] = len(queries)
        return counts

    before = measure()
    add_learners(world.course_a, 30, today=world.today, tag="More", start=10)
    after = measure()
    assert after == before


# -- overview ----------------------------------------------------------------------


def test_overview_kpis_match_the_rollup(world: World) -> None:
    html = body(client_for(world.admin).get("/"))
    today = world.today
    rows = DailyActivity.objects.all()
    this_week = {r.learner_id for r in rows if today - 7 * DAY < r.date <= today}
    last_week = {r.learner_id for r in rows if today - 14 * DAY < r.date <= today - 7 * DAY}
    context = dashboards.overview(world.admin, [world.course_a, world.course_b], today)
    active = context["kpis"][0]
    assert active["label"] == "Active learners"
    assert (active["value"], active["previous"]) == (len(this_week), len(last_week))
    events = sum(r.events for r in rows if today - 7 * DAY < r.date <= today)
    assert context["kpis"][1]["value"] == round(events / 7, 1)
    withdrawal = context["kpis"][3]
    # One withdrawal per course, four days ago, out of everyone enrolled.
    assert withdrawal["value"] == round(100 * 2 / Enrollment.objects.count(), 1)
    assert "Active learners" in html and "Withdrawal rate" in html
    data = chart_json(html, "overview-data")
    assert set(data) == {"overview-daily", "overview-types", "overview-retention"}
    assert data["overview-daily"]["labels"][-1] == today.isoformat()


def test_overview_retention_counts_complete_weeks_per_run(world: World) -> None:
    context = dashboards.overview(world.admin, [world.course_a], world.today)
    retention = next(c for c in context["charts"] if c["id"] == "overview-retention")
    series = retention["spec"]["datasets"][0]
    course = world.course_a
    enrolled = Enrollment.objects.filter(course=course).count()
    last_complete = dashboards._last_complete_week(course, world.today)
    assert len([v for v in series["data"] if v is not None]) == last_complete + 1
    # Recompute one week by hand.
    week = last_complete
    first = course.start_date + 7 * week * DAY
    active = {
        r.learner_id
        for r in DailyActivity.objects.filter(course=course)
        if first <= r.date < first + 7 * DAY
    }
    assert series["data"][week] == round(100 * len(active) / enrolled, 1)


def test_overview_empty_states() -> None:
    html = body(client_for(UserFactory(username="lonely")).get("/"))
    assert "No course runs yet" in html

    admin = UserFactory(username="root", is_superuser=True)
    CourseFactory()
    html = body(client_for(admin).get("/"))
    assert html.count("No events yet.") == 2
    assert "No course-run activity yet." in html
    assert chart_json(html, "overview-data") == {}


# -- course run ----------------------------------------------------------------------


def test_course_page_with_data(world: World) -> None:
    html = body(client_for(world.instructor_a).get(f"/courses/{world.course_a.pk}/?status=all"))
    data = chart_json(html, "course-data")
    assert set(data) == {"course-weekly", "course-types", "course-content", "course-scores"}
    assert sum(data["course-scores"]["datasets"][0]["data"]) == 6  # one submission each
    assert "Least used content" in html
    for learner in world.learners[world.course_a.code]:
        assert learner.pseudonym in html
    assert '<caption id="learners-caption">' in html
    # Risk and recommendation columns exist, with the "no model yet" fallback.
    assert "Risk band" in html and "Recommended next items" in html
    assert html.count("no model yet") == 3 * 6


def test_course_page_empty_states(world: World) -> None:
    empty = CourseFactory(code="EMPTY_RUN")
    html = body(client_for(world.admin).get(f"/courses/{empty.pk}/"))
    assert html.count("No events yet.") == 2
    assert "No scored submissions yet." in html
    assert "No content items in this course run yet." in html
    assert "No learners enrolled yet." in html
    assert chart_json(html, "course-data") == {}


def table_pseudonyms(html: str) -> list[str]:
    table = html.split('id="learner-table"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'href="/learners/([0-9a-f]+)/"', table)


def test_course_table_default_sort_puts_least_active_first(world: World) -> None:
    html = body(client_for(world.admin).get(f"/courses/{world.course_a.pk}/?status=all"))
    shown = table_pseudonyms(html)
    rows = list(
        selectors.course_learner_rows(
            world.course_a,
            anchor=world.today,
            query=selectors.LearnerTableQuery(status="all"),
        )
    )
    activity = [r["activity_14d"] for r in rows]
    assert activity == sorted(activity)
    assert shown == [r["pseudonym"] for r in rows]


@pytest.mark.parametrize("sort", ["pseudonym", "-pseudonym", "last_active", "-activity_14d"])
def test_course_table_sorts(world: World, sort: str) -> None:
    html = body(
        client_for(world.admin).get(f"/courses/{world.course_a.pk}/?status=all&sort={sort}")
    )
    shown = table_pseudonyms(html)
    learners = {lrn.pseudonym: lrn for lrn in world.learners[world.course_a.code]}
    assert set(shown) == set(learners)
    key = sort.lstrip("-")
    values = {
        r["pseudonym"]: r[key]
        for r in selectors.course_learner_rows(
            world.course_a, anchor=world.today, query=selectors.LearnerTableQuery(status="all")
        )
    }
    ordered = [values[p] for p in shown]
    assert ordered == sorted(ordered, reverse=sort.startswith("-"))
    state = "descending" if sort.startswith("-") else "ascending"
    assert f'aria-sort="{state}"' in html


def test_course_table_filters(world: World) -> None:
    client = client_for(world.admin)
    url = f"/courses/{world.course_a.pk}/"
    learners = world.learners[world.course_a.code]
    withdrawn = learners[1].pseudonym

    default = table_pseudonyms(body(client.get(url)))
    assert withdrawn not in default and len(default) == 5

    only_withdrawn = table_pseudonyms(body(client.get(url + "?status=withdrawn")))
    assert only_withdrawn == [withdrawn]

    target = learners[3].pseudonym
    found = table_pseudonyms(body(client.get(url + f"?status=all&q={target[:10].upper()}")))
    assert found == [target]

    # Inactive for 7+ days: nobody here was away that long but the least active
    # (learner 5: one active day, 2 days ago); an old-only learner shows up.
    old = LearnerFactory()
    EnrollmentFactory(learner=old, course=world.course_a)
    DailyActivity.objects.create(
        course=world.course_a,
        learner=old,
        date=world.today - 20 * DAY,
        activity_type="quiz",
        events=1,
        clicks=1,
    )
    never = LearnerFactory()
    EnrollmentFactory(learner=never, course=world.course_a)
    inactive = table_pseudonyms(body(client.get(url + "?inactive=7")))
    assert set(inactive) == {old.pseudonym, never.pseudonym}
    html = body(client.get(url + "?q=zzzz"))
    assert "No learners match these filters." in html


def test_course_table_bad_params_fall_back(world: World) -> None:
    response = client_for(world.admin).get(
        f"/courses/{world.course_a.pk}/?sort=name;drop&status=evil&inactive=3&page=abc"
    )
    assert response.status_code == 200
    query = response.context["query"]
    assert (query.sort, query.status, query.inactive_days) == ("activity_14d", "current", None)


def test_course_table_paginates_server_side(world: World) -> None:
    add_learners(world.course_a, 30, today=world.today, tag="P", start=10)
    client = client_for(world.admin)
    url = f"/courses/{world.course_a.pk}/?status=all&sort=pseudonym"
    first = table_pseudonyms(body(client.get(url)))
    second_html = body(client.get(url + "&page=2"))
    second = table_pseudonyms(second_html)
    assert len(first) == dashboards.PAGE_SIZE
    assert len(second) == 36 - dashboards.PAGE_SIZE
    assert not set(first) & set(second)
    assert first + second == sorted(first + second)
    assert "Page 2 of 2" in second_html
    # Pagination links keep the filters and sort.
    assert "status=all&amp;sort=pseudonym&amp;page=1" in second_html


def test_course_page_cache_follows_new_data_and_erasure(
    world: World, django_assert_num_queries
) -> None:
    """The run-wide reads are cached per data version: new rows show at once, erased
    learners leave at once, and a hit costs session, user, course and the version check."""
    from analytics.services import learner_erase

    client = client_for(world.admin)
    url = f"/courses/{world.course_a.pk}/?status=all"
    learners = world.learners[world.course_a.code]
    assert learners[0].pseudonym in table_pseudonyms(body(client.get(url)))
    with django_assert_num_queries(3):
        body(client.get(url))
    newcomer = LearnerFactory()
    EnrollmentFactory(learner=newcomer, course=world.course_a)
    assert newcomer.pseudonym in table_pseudonyms(body(client.get(url)))
    learner_erase(pseudonym=learners[0].pseudonym)
    html = body(client.get(url))
    assert learners[0].pseudonym not in html
    assert learners[2].pseudonym in table_pseudonyms(html)


def test_course_table_in_python_matches_the_sql(world: World) -> None:
    """The cached table's filters and order are course_learner_rows' (the CSV export's)."""
    add_learners(world.course_a, 12, today=world.today, tag="M", start=10)
    rows = selectors.course_learner_table(world.course_a, anchor=world.today)
    target = world.learners[world.course_a.code][3].pseudonym
    for params in (
        {},
        {"status": "all"},
        {"status": "withdrawn"},
        {"status": "all", "sort": "-activity_14d"},
        {"status": "all", "sort": "last_active"},
        {"status": "all", "sort": "-last_active"},
        {"status": "all", "sort": "-pseudonym"},
        {"status": "all", "inactive": "7"},
        {"status": "all", "q": target[:6].upper()},
    ):
        query = selectors.LearnerTableQuery.from_params(params)
        expected = list(
            selectors.course_learner_rows(world.course_a, anchor=world.today, query=query)
        )
        got = selectors.filter_learner_table(rows, anchor=world.today, query=query)
        assert [dict(r) for r in got] == expected, params


def test_csv_export_follows_filters_and_sort(world: World) -> None:
    client = client_for(world.instructor_a)
    response = client.get(f"/courses/{world.course_a.pk}/export.csv?status=all&sort=-pseudonym")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="AAA_TEST_A-learners.csv"'
    rows = csv_rows(response)
    assert rows[0] == [
        "learner",
        "status",
        "registered_on",
        "last_active",
        "activity_14d",
        "risk_band",
        "top_factors",
        "recommended_next_items",
    ]
    pseudonyms = [r[0] for r in rows[1:]]
    assert pseudonyms == sorted(
        (lrn.pseudonym for lrn in world.learners[world.course_a.code]), reverse=True
    )
    statuses = {r[0]: r[1] for r in rows[1:]}
    assert statuses[world.learners[world.course_a.code][1].pseudonym] == "Withdrawn"
    withdrawn_only = csv_rows(
        client.get(f"/courses/{world.course_a.pk}/export.csv?status=withdrawn")
    )
    assert len(withdrawn_only) == 2


def test_csv_export_of_empty_course_has_a_header_only(world: World) -> None:
    empty = CourseFactory()
    rows = csv_rows(client_for(world.admin).get(f"/courses/{empty.pk}/export.csv"))
    assert len(rows) == 1 and rows[0][0] == "learner"


# -- panel slots ------------------------------------------------------------------------

LOCMEM_TEMPLATES = {
    "fake/_course_risk_columns.html": (
        '<td class="risk">{{ panel.band|default:"none" }}</td><td>{{ panel.factors }}</td>'
    ),
    "fake/_learner_risk.html": '<p class="risk-now">risk {{ panel }}</p>',
}


def templates_with(extra: dict[str, str]) -> list[dict]:
    from django.conf import settings

    base = settings.TEMPLATES[0]
    return [
        {
            **base,
            "APP_DIRS": False,
            "OPTIONS": {
                **base["OPTIONS"],
                "loaders": [
                    ("django.template.loaders.locmem.Loader", extra),
                    "django.template.loaders.filesystem.Loader",
                    "django.template.loaders.app_directories.Loader",
                ],
            },
        }
    ]


@pytest.fixture
def risk_provider(world: World, monkeypatch: pytest.MonkeyPatch):
    """A fake churn app: templates (in a locmem loader) and data functions for two slots."""
    slots = dict(dashboards.SLOTS)
    templates = {
        "course_risk": "fake/_course_risk_columns.html",
        "learner_risk": "fake/_learner_risk.html",
    }
    for name, template in templates.items():
        slots[name] = dataclasses.replace(slots[name], template=template)
    monkeypatch.setattr(dashboards, "SLOTS", slots)
    calls = []

    def risk(course, learner_ids):
        calls.append(list(learner_ids))
        return {lid: {"band": "high", "factors": "=HYPERLINK(1)"} for lid in learner_ids}

    dashboards.register_panel_data(
        "course_risk", risk, csv=lambda v: ["", ""] if v is None else [v["band"], v["factors"]]
    )
    dashboards.register_panel_data("learner_risk", lambda learner, courses: "0.42")
    yield calls


def test_panel_slots_render_provider_templates_and_data(world: World, risk_provider) -> None:
    client = client_for(world.admin)
    with override_settings(TEMPLATES=templates_with(LOCMEM_TEMPLATES)):
        html = body(client.get(f"/courses/{world.course_a.pk}/?status=all"))
        learner_html = body(
            client.get(f"/learners/{world.learners[world.course_a.code][0].pseudonym}/")
        )
    assert html.count('<td class="risk">high</td>') == 6
    # The recommender slot has no template yet: still the fallback.
    assert html.count("no model yet") == 6
    assert len(risk_provider) == 1 and len(risk_provider[0]) == 6  # one batch per page
    assert '<p class="risk-now">risk 0.42</p>' in learner_html


def test_panel_csv_cells_are_exported_and_formula_safe(world: World, risk_provider) -> None:
    rows = csv_rows(client_for(world.admin).get(f"/courses/{world.course_a.pk}/export.csv"))
    assert rows[1][5:7] == ["high", "'=HYPERLINK(1)"]


def test_failing_panel_falls_back_without_breaking_the_page(world: World, caplog) -> None:
    def broken(course, learner_ids):
        raise RuntimeError("model file missing")

    dashboards.register_panel_data("course_risk", broken)
    response = client_for(world.admin).get(f"/courses/{world.course_a.pk}/")
    assert response.status_code == 200
    assert "no model yet" in body(response)
    assert "panel data failed slot=course_risk" in caplog.text


def test_unknown_slot_is_rejected() -> None:
    with pytest.raises(KeyError, match="unknown panel slot"):
        dashboards.register_panel_data("course_risks", lambda *a: {})


def test_installed_panels_keep_query_counts_flat(world: World, monkeypatch) -> None:
    """With whatever apps fill the slots in this project (churn, recommender), the course
    page, its export and the learner page still cost the same queries for 6 or 36 learners."""
    from django.apps import apps

    # Undo the isolation: re-register the installed apps' providers.
    monkeypatch.setattr(dashboards, "_providers", {})
    monkeypatch.setattr(dashboards, "SLOTS", dict(ORIGINAL_SLOTS))
    for config in apps.get_app_configs():
        if config.name in ("churn", "recommender"):
            config.ready()
    client = client_for(world.instructor_a)
    learner = world.learners[world.course_a.code][0]
    urls = [
        f"/courses/{world.course_a.pk}/?status=all",
        f"/courses/{world.course_a.pk}/export.csv?status=all",
        f"/learners/{learner.pseudonym}/",
    ]

    def measure() -> list[int]:
        counts = []
        for url in urls:
            # Warm up first: the serving caches of the model apps load the
            # active model version on a cold request, whatever the learners.
            body(client.get(url))
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
                body(response)
            assert response.status_code == 200
            counts.append(len(queries))
        return counts

    before = measure()
    add_learners(world.course_a, 30, today=world.today, tag="More", start=10)
    assert measure() == before


# -- learner ---------------------------------------------------------------------------


def test_learner_page_with_data(world: World) -> None:
    learner = world.learners[world.course_a.code][0]
    html = body(client_for(world.instructor_a).get(f"/learners/{learner.pseudonym}/"))
    data = chart_json(html, "learner-data")
    spec = data[f"heatmap-{world.course_a.pk}"]
    rows = DailyActivity.objects.filter(learner=learner, course=world.course_a)
    expected: dict[tuple[int, int], int] = {}
    for r in rows:
        key = (selectors.week_of_run(r.date, world.course_a.start_date), r.date.weekday())
        expected[key] = expected.get(key, 0) + r.clicks
    assert {(p["x"], p["y"]): p["v"] for p in spec["datasets"][0]["data"]} == expected
    assert "Submissions" in html and "TMA" in html
    assert 'data-slot="learner_risk"' in html and 'data-slot="learner_recommendations"' in html
    assert html.count("No model yet.") == 2
    assert learner.name not in html  # instructors never see names


def test_learner_page_empty_states(world: World) -> None:
    learner = LearnerFactory()
    EnrollmentFactory(learner=learner, course=world.course_a)
    html = body(client_for(world.admin).get(f"/learners/{learner.pseudonym}/"))
    assert "No activity in this course run yet." in html
    assert "No submissions yet." in html
    assert learner.name in html  # admins do


# -- segments --------------------------------------------------------------------------


def test_segments_page_with_data(world: World) -> None:
    add_learners(world.course_a, 20, today=world.today, tag="S", start=10)
    response = client_for(world.admin).get(f"/courses/{world.course_a.pk}/segments/?k=3")
    html = body(response)
    profiles = response.context["profiles"]
    assert len(profiles) == 3
    assert sum(p["learners"] for p in profiles) == 26
    assert sum(p["withdrawn"] for p in profiles) == 1
    data = chart_json(html, "segments-data")
    points = sum(len(ds["data"]) for ds in data["segments-pca"]["datasets"])
    assert points == 26
    assert "Withdrawal rate" in html and "days since last activity" in html


def test_segments_bad_k_means_automatic(world: World) -> None:
    response = client_for(world.admin).get(f"/courses/{world.course_a.pk}/segments/?k=99")
    assert response.status_code == 200
    assert response.context["k"] is None


def test_segments_empty_states(world: World) -> None:
    empty = CourseFactory()
    html = body(client_for(world.admin).get(f"/courses/{empty.pk}/segments/"))
    assert "No segments yet" in html and "No learners enrolled yet." in html
    learner = LearnerFactory()
    EnrollmentFactory(learner=learner, course=empty)
    html = body(client_for(world.admin).get(f"/courses/{empty.pk}/segments/"))
    assert "No events yet in this course run" in html


def test_segments_suppress_small_segments_for_analysts(world: World) -> None:
    response = client_for(world.analyst).get(f"/courses/{world.course_a.pk}/segments/?k=2")
    profiles = response.context["profiles"]
    small = [p for p in profiles if p["suppressed"]]
    assert small, "six learners in two segments: one has fewer than five"
    assert all(p["means"] is None and p["withdrawal_rate"] is None for p in small)
    assert "Suppressed: fewer than 5 learners." in body(response)


# -- data quality ---------------------------------------------------------------------------


def test_data_quality_with_data(world: World) -> None:
    response = client_for(world.admin).get("/data-quality/")
    html = body(response)
    sources = {s["source"]: s for s in response.context["sources"]}
    by_source = {src: LearningEvent.objects.filter(source=src).count() for src in ("api", "xapi")}
    assert sources["api"]["events"] == by_source["api"] > 0
    assert sources["xapi"]["events"] == by_source["xapi"] > 0
    assert sources["oulad"]["events"] == 0
    assert sources["oulad"]["last_ingested"] is not None  # from the ImportRun
    assert sources["demo"]["last_ingested"] is None
    names = [q["feature"] for q in response.context["quality"]]
    assert names[:4] == ["total_clicks", "active_days", "recency_days", "trend"]
    data = chart_json(html, "quality-data")
    assert set(data) == {"quality-features", "quality-volume"}
    assert len(data["quality-volume"]["labels"]) == 30


def test_data_quality_empty_states() -> None:
    admin = UserFactory(username="root2", is_superuser=True)
    html = body(client_for(admin).get("/data-quality/"))
    assert "No learners yet, so no features to check." in html
    assert "No events in the last 30 days." in html
    assert html.count("no events yet") == 4


def test_feature_quality_iqr_rule() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 100.0, np.nan], "y": [np.nan] * 6})
    x, y = dashboards.feature_quality(frame, ["x", "y"])
    # Q1 = 2, Q3 = 4, IQR = 2: fences -1 and 7; 100 is the one outlier.
    assert (x["missing"], x["outliers"], x["low"], x["high"]) == (1, 1, -1.0, 7.0)
    assert x["outlier_pct"] == 20.0 and x["median"] == 3.0
    assert (y["missing"], y["outliers"], y["median"]) == (6, 0, None)


def test_learner_features_mark_unknowns_missing(world: World) -> None:
    never = LearnerFactory()
    EnrollmentFactory(learner=never, course=world.course_a)
    frame = dashboards.learner_features([world.course_a.pk], anchor=world.today)
    row = frame[frame["learner_id"] == never.pk].iloc[0]
    assert row["total_clicks"] == 0 and row["active_days"] == 0
    assert np.isnan(row["recency_days"]) and np.isnan(row["trend"])
    assert np.isnan(row["share_resource"])
    active = frame[frame["learner_id"] == world.learners[world.course_a.code][0].pk].iloc[0]
    shares = [c for c in frame.columns if c.startswith("share_")]
    assert active[shares].sum() == pytest.approx(1.0)
    assert active["recency_days"] == 0 and -1 <= active["trend"] <= 1


# -- SQL helpers -------------------------------------------------------------------------


def test_week_of_run_sql_matches_python() -> None:
    course = CourseFactory(start_date=dt.date(2026, 3, 10))
    learner = LearnerFactory()
    offsets = [-15, -8, -7, -1, 0, 6, 7, 13, 14, 100]
    for i, offset in enumerate(offsets):
        DailyActivity.objects.create(
            course=course,
            learner=learner,
            date=course.start_date + offset * DAY,
            activity_type=f"t{i}",
            clicks=1,
        )
    rows = (
        DailyActivity.objects.filter(course=course)
        .annotate(week=selectors.WeekOfRun("date", "course__start_date"))
        .values_list("date", "week")
    )
    got = dict(rows)
    assert got == {d: selectors.week_of_run(d, course.start_date) for d in got}
    assert sorted(set(got.values())) == [-3, -2, -1, 0, 1, 2, 14]


def test_anchor_is_the_last_activity_for_historical_runs() -> None:
    admin = UserFactory(username="hist", is_superuser=True)
    course = CourseFactory(start_date=dt.date(2013, 10, 5))
    learner = LearnerFactory()
    EnrollmentFactory(learner=learner, course=course)
    DailyActivity.objects.create(
        course=course, learner=learner, date=dt.date(2014, 1, 10), activity_type="quiz", clicks=4
    )
    context = dashboards.overview(admin, [course], timezone.localdate())
    assert context["anchor"] == dt.date(2014, 1, 10)
    assert context["kpis"][0]["value"] == 1
