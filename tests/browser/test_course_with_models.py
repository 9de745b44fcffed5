"""The course and learner pages in a real browser with both models trained and batch-scored.

The at-risk table shows bands, factors in words and next items from the scoring
task; the learner page shows the in-request risk and recommendations. This is
the platform the README's screenshot shows: with UPDATE_SCREENSHOTS=1 the course
page is copied to docs/screenshots/course.png (an ordinary run only writes
test-output/screenshots/, so it does not dirty the working tree).
"""

from __future__ import annotations

import io
import os
import shutil

import pytest
from django.core.management import call_command

from analytics.demo import demo_actions_record
from analytics.models import Course, Enrollment
from churn.models import RiskScore
from eduplatform.registry import services, serving
from eduplatform.registry.models import ModelVersion
from tests.browser import test_dashboards as dashboards
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CHURN_FAST = {"seeds": [0], "max_epochs": 4}
REC_FAST = {"epochs": 1, "max_learners_per_cutoff": 150}

browser = dashboards.browser
login = dashboards.login


@pytest.fixture
def scored_platform(settings, tmp_path) -> Course:
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    serving.reset()
    call_command(
        "seed_demo", "--learners", "160", "--courses", "3", "--days", "120", "--seed", "3",
        stdout=io.StringIO(),
    )  # fmt: skip
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    for kind, parameters in (("churn", CHURN_FAST), ("recommender", REC_FAST)):
        version = services.retrain_request(kind=kind, triggered_by="test", parameters=parameters)
        version.refresh_from_db()
        assert version.status == ModelVersion.Status.ACTIVE, version.status_reason
        course_ids = list(Course.objects.values_list("id", flat=True))
        assert services.batch_scores_refresh(kind=kind, course_ids=course_ids) > 0
    # as demo_setup does: a few actions three weeks back, for the outcome card (#27)
    assert demo_actions_record(user=admin) > 0
    # the run with the demo's actions: its outcome card has counts (the README screenshot)
    yield max(Course.objects.order_by("-start_date"), key=lambda c: c.interventions.count())
    serving.reset()


def test_course_and_learner_pages_show_the_models(login, scored_platform) -> None:
    course = scored_platform
    session = login("admin")
    session.open(f"/courses/{course.pk}/")
    page = session.page
    table = page.locator("#learner-table tbody")
    bands = set(table.locator(".badge").all_inner_texts())
    assert bands and bands <= {"low", "medium", "high"}
    assert table.locator("td.no-model").count() == 0  # every row scored by both models
    assert "{#" not in page.locator("body").inner_text()  # no template comment leaks
    drawn = session.drawn_pixels()
    assert drawn and min(drawn.values()) >= dashboards.MIN_DRAWN_PIXELS, drawn
    assert page.locator("#outcomes").is_visible()  # the demo's actions: the screenshot shows it
    shot = session.screenshot("course_with_models")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        dashboards.DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dashboards.DOCS_SCREENSHOT)

    # The learner page scores in the request: band, factors and recommendations.
    scored = RiskScore.objects.filter(course=course).select_related("learner").first()
    assert Enrollment.objects.filter(learner=scored.learner, course=course).exists()
    session.open(f"/learners/{scored.learner.pseudonym}/")
    text = page.locator("main").inner_text().lower()
    assert "no model yet" not in text
    # The live band's own badge, not a substring of the page ("low" is in "follows"; #30).
    live = page.locator(".risk-course .badge").all_inner_texts()
    assert live and {b.strip().lower() for b in live} <= {"low", "medium", "high"}
    session.screenshot("learner_with_models")
    assert session.errors == []
