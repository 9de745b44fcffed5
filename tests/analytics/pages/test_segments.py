"""The behaviour segments page."""

import pytest

from tests.analytics.pages.support import (
    body,
    chart_json,
    client_for,
)
from tests.browser.world import World, add_learners
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    LearnerFactory,
)

pytestmark = pytest.mark.django_db


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
