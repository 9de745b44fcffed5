"""The overview page: KPIs, retention, empty states, the anchor day."""

import datetime as dt

import pytest
from django.utils import timezone

from analytics.models import DailyActivity, Enrollment
from analytics.pages.overview import last_complete_week, overview_page
from tests.analytics.pages.support import (
    DAY,
    body,
    chart_json,
    client_for,
)
from tests.browser.world import World
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    LearnerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_overview_kpis_match_the_rollup(world: World) -> None:
    html = body(client_for(world.admin).get("/"))
    today = world.today
    rows = DailyActivity.objects.all()
    this_week = {r.learner_id for r in rows if today - 7 * DAY < r.date <= today}
    last_week = {r.learner_id for r in rows if today - 14 * DAY < r.date <= today - 7 * DAY}
    context = overview_page(world.admin, [world.course_a, world.course_b], today)
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
    context = overview_page(world.admin, [world.course_a], world.today)
    retention = next(c for c in context["charts"] if c["id"] == "overview-retention")
    series = retention["spec"]["datasets"][0]
    course = world.course_a
    enrolled = Enrollment.objects.filter(course=course).count()
    last_complete = last_complete_week(course, world.today)
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


def test_anchor_is_the_last_activity_for_historical_runs() -> None:
    admin = UserFactory(username="hist", is_superuser=True)
    course = CourseFactory(start_date=dt.date(2013, 10, 5))
    learner = LearnerFactory()
    EnrollmentFactory(learner=learner, course=course)
    DailyActivity.objects.create(
        course=course, learner=learner, date=dt.date(2014, 1, 10), activity_type="quiz", clicks=4
    )
    context = overview_page(admin, [course], timezone.localdate())
    assert context["anchor"] == dt.date(2014, 1, 10)
    assert context["kpis"][0]["value"] == 1
