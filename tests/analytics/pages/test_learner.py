"""The learner page: enrolments, heatmaps, empty states."""

import datetime as dt

import pytest

from analytics.models import DailyActivity
from analytics.selectors.activity import week_of_run
from tests.analytics.pages.support import (
    body,
    chart_json,
    client_for,
)
from tests.browser.world import World
from tests.factories import (
    EnrollmentFactory,
    LearnerFactory,
)

pytestmark = pytest.mark.django_db


def test_learner_page_with_data(world: World) -> None:
    learner = world.learners[world.course_a.code][0]
    html = body(client_for(world.instructor_a).get(f"/learners/{learner.pseudonym}/"))
    data = chart_json(html, "learner-data")
    spec = data[f"heatmap-{world.course_a.pk}"]
    rows = DailyActivity.objects.filter(learner=learner, course=world.course_a)
    expected: dict[tuple[int, int], int] = {}
    for r in rows:
        key = (week_of_run(r.date, world.course_a.start_date), r.date.weekday())
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


def test_ancient_and_far_future_rows_do_not_widen_the_heatmap(world: World) -> None:
    """Rows dated year 1, 1800 or 9999 (accepted before #24; the boundary refuses them now,
    but stored ones stay): the grid keeps the run's weeks plus the margin, the clicks are
    summed into "before" / "after" table rows, and the pages stay small."""
    from analytics.pages.learner import HEATMAP_MARGIN_WEEKS

    learner = LearnerFactory()
    EnrollmentFactory(learner=learner, course=world.course_a)
    ancient = [dt.date(1, 1, 1), dt.date(1800, 6, 2)]  # a Monday and a Monday
    for day, clicks in [(ancient[0], 3), (ancient[1], 4), (dt.date(9999, 12, 31), 5)]:
        DailyActivity.objects.create(
            learner=learner, course=world.course_a, date=day, activity_type="page", clicks=clicks
        )
    client = client_for(world.instructor_a)
    response = client.get(f"/learners/{learner.pseudonym}/")
    html = body(response)
    spec = chart_json(html, "learner-data")[f"heatmap-{world.course_a.pk}"]
    run_weeks = (world.course_a.length_days - 1) // 7 + 1
    assert len(spec["labels"]) <= run_weeks + 2 * HEATMAP_MARGIN_WEEKS
    assert spec["datasets"][0]["data"] == []  # nothing inside the drawn weeks
    # The data table keeps the clicks: one row before the drawn weeks, one after.
    last_drawn = (world.course_a.length_days - 1) // 7 + HEATMAP_MARGIN_WEEKS + 1
    assert f"before W-{HEATMAP_MARGIN_WEEKS}" in html and f"after W{last_drawn}" in html
    assert len(response.content) < 200_000  # was 1.16 MB with a year-1 row
    for url in (f"/courses/{world.course_a.pk}/", "/", "/data-quality/"):
        page = client.get(url)
        assert page.status_code == 200 and len(page.content) < 400_000, url
