"""analytics.selectors.interventions: the outcome comparison and the CSV summary (#27 item 5)."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics.models import DailyActivity
from analytics.selectors.interventions import course_action_summary, intervention_outcomes
from tests.factories import CourseFactory, EnrollmentFactory, InterventionFactory

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 12, 1)


def _active(enrollment, day):
    DailyActivity.objects.create(
        course=enrollment.course,
        learner=enrollment.learner,
        date=day,
        activity_type="quiz",
        clicks=1,
    )


def test_outcomes_of_flagged_learners_with_and_without_an_action(django_assert_num_queries):
    course = CourseFactory()
    acted_active, acted_gone, idle, idle_active, recent, _unflagged = (
        EnrollmentFactory(course=course) for _ in range(6)
    )
    InterventionFactory(course=course, learner=acted_active.learner, date=dt.date(2026, 11, 1))
    InterventionFactory(course=course, learner=acted_gone.learner, date=dt.date(2026, 11, 1))
    InterventionFactory(course=course, learner=recent.learner, date=TODAY - dt.timedelta(days=3))
    _active(acted_active, dt.date(2026, 11, 10))
    acted_gone.unregistered_on = dt.date(2026, 11, 5)
    acted_gone.save()
    _active(idle_active, TODAY - dt.timedelta(days=2))
    _active(idle, dt.date(2026, 11, 1))  # before its window (today - 14 days)
    flagged = [e.learner_id for e in (acted_active, acted_gone, idle, idle_active, recent)]
    with django_assert_num_queries(2):
        outcome = intervention_outcomes(course, flagged, TODAY)
    assert (outcome.with_action.learners, outcome.with_action.withdrew) == (2, 1)
    assert outcome.with_action.active == 1
    assert (outcome.without_action.learners, outcome.without_action.active) == (2, 1)
    assert outcome.without_action.neither == 1
    assert outcome.too_recent == 1


def test_actions_of_other_runs_do_not_count():
    course = CourseFactory()
    enrollment = EnrollmentFactory(course=course)
    InterventionFactory(learner=enrollment.learner, date=dt.date(2026, 11, 1))  # another run
    outcome = intervention_outcomes(course, [enrollment.learner_id], TODAY)
    assert (outcome.with_action.learners, outcome.without_action.learners) == (0, 1)


def test_action_summary_counts_and_latest_kind():
    course = CourseFactory()
    enrollment = EnrollmentFactory(course=course)
    InterventionFactory(course=course, learner=enrollment.learner, date=dt.date(2026, 10, 2))
    InterventionFactory(
        course=course, learner=enrollment.learner, kind="met", date=dt.date(2026, 10, 9)
    )
    assert course_action_summary(course, [enrollment.learner_id]) == {
        enrollment.learner_id: (2, "met")
    }
