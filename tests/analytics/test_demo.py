"""analytics.demo: `make demo` records a few actions, so the course page's outcome card
compares something (#27). The churn scoring is replaced by a fake that writes bands (the
real one needs a trained model: tests/browser/test_instructor_experience.py runs it)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from analytics.demo import DEMO_ACTION_DAYS_AGO, demo_actions_record
from analytics.models import Intervention
from churn.models import RiskHistory, RiskScore
from eduplatform.core.clock import today
from eduplatform.registry import services
from tests.analytics.pages.support import body, client_for
from tests.factories import CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_run(monkeypatch):
    """A run of 8 learners; the fake scoring calls learners 0-5 high on any day."""
    course = CourseFactory(start_date=timezone.localdate() - dt.timedelta(days=60))
    enrollments = [EnrollmentFactory(course=course) for _ in range(8)]
    scored_on: list[dt.date] = []

    def fake_refresh(*, kind: str, course_ids: list[int]) -> int:
        as_of = today()  # the platform's today, as the real scoring reads it
        scored_on.append(as_of)
        RiskScore.objects.filter(course=course).delete()
        for n, e in enumerate(enrollments):
            band = "high" if n < 6 else "low"
            values = {"course": course, "learner": e.learner, "as_of": as_of, "band": band}
            RiskScore.objects.create(
                **values, model_version=1, scored_at=timezone.now(), probability=0.5
            )
            RiskHistory.objects.update_or_create(**values, defaults={"probability": 0.5})
        return len(enrollments)

    monkeypatch.setattr(services, "batch_scores_refresh", fake_refresh)
    return course, scored_on


def test_demo_records_actions_on_learners_flagged_three_weeks_ago(demo_run) -> None:
    """Killed mutants: scored as of today only (no band three weeks back: nothing
    recorded); every flagged learner acted on (the card's other side empty)."""
    course, scored_on = demo_run
    admin = UserFactory(is_superuser=True, is_staff=True)
    now = timezone.localdate()
    past = now - dt.timedelta(days=DEMO_ACTION_DAYS_AGO)
    assert demo_actions_record(user=admin) == 3  # every other one of the 6 flagged
    assert scored_on == [past, now]  # scored back then, then again as of today
    records = list(Intervention.objects.filter(course=course))
    assert {r.risk_band for r in records} == {"high"}  # the band on the action's day
    assert all(past <= r.date <= past + dt.timedelta(days=2) for r in records)
    assert {r.created_by for r in records} == {admin}

    # The course page compares 3 with an action and 3 without, all with outcomes.
    html = body(client_for(admin).get(f"/courses/{course.pk}/"))
    card = html.split('id="outcomes"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'<tr data-group="\d">(.*?)</tr>', card, re.DOTALL)
    learners = [re.findall(r'<td class="num">(\d+)</td>', row)[0] for row in rows]
    assert learners == ["3", "3"]

    # Run again (demo_setup twice): nothing added.
    assert demo_actions_record(user=admin) == 0
    assert Intervention.objects.filter(course=course).count() == 3


def test_demo_records_nothing_without_a_model(monkeypatch) -> None:
    CourseFactory(start_date=timezone.localdate() - dt.timedelta(days=60))
    monkeypatch.setattr(services, "batch_scores_refresh", lambda **kwargs: 0)
    assert demo_actions_record(user=UserFactory(is_superuser=True)) == 0
    assert not Intervention.objects.exists()
