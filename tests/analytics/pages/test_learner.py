"""The learner page: enrolments, heatmaps, empty states."""

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
