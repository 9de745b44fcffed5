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


def _outcomes(course, bands_at_start):
    return intervention_outcomes(course, TODAY, flagged_band="high", bands_at_start=bands_at_start)


def test_outcomes_of_flagged_learners_with_and_without_an_action(django_assert_num_queries):
    course = CourseFactory()
    acted_active, acted_gone, idle, idle_active, recent, _unflagged = (
        EnrollmentFactory(course=course) for _ in range(6)
    )
    for enrollment, day in (
        (acted_active, dt.date(2026, 11, 1)),
        (acted_gone, dt.date(2026, 11, 1)),
        (recent, TODAY - dt.timedelta(days=3)),
    ):
        InterventionFactory(course=course, learner=enrollment.learner, date=day, risk_band="high")
    _active(acted_active, dt.date(2026, 11, 10))
    acted_gone.unregistered_on = dt.date(2026, 11, 5)
    acted_gone.save()
    _active(idle_active, TODAY - dt.timedelta(days=2))
    _active(idle, dt.date(2026, 11, 1))  # before its window (today - 14 days)
    at_start = {idle.learner_id: "high", idle_active.learner_id: "high"}
    at_start[_unflagged.learner_id] = "medium"
    with django_assert_num_queries(2):
        outcome = _outcomes(course, at_start)
    assert (outcome.with_action.learners, outcome.with_action.withdrew) == (2, 1)
    assert outcome.with_action.active == 1
    assert (outcome.without_action.learners, outcome.without_action.active) == (2, 1)
    assert outcome.without_action.neither == 1
    assert outcome.too_recent == 1
    assert outcome.flagged == 5


def test_flagged_means_at_risk_when_the_action_was_recorded_not_now():
    """#27: a learner with an action counts by the band stored with their first action,
    one without by their band at the window's start, never by today's band (killed mutant:
    the first_band condition dropped, every acted-on learner counted)."""
    course = CourseFactory()
    was_high, was_low, high_later = (EnrollmentFactory(course=course) for _ in range(3))
    for enrollment, band in ((was_high, "high"), (was_low, "low"), (high_later, "medium")):
        InterventionFactory(
            course=course, learner=enrollment.learner, date=dt.date(2026, 11, 1), risk_band=band
        )
    # a band at the window's start says nothing about learners who have an action
    outcome = _outcomes(course, {was_low.learner_id: "high", high_later.learner_id: "high"})
    assert (outcome.flagged, outcome.with_action.learners) == (1, 1)
    assert outcome.without_action.learners == 0


def test_without_an_action_only_the_band_at_the_start_counts():
    course = CourseFactory()
    high, medium, _unscored = (EnrollmentFactory(course=course) for _ in range(3))
    outcome = _outcomes(course, {high.learner_id: "high", medium.learner_id: "medium"})
    assert (outcome.flagged, outcome.without_action.learners) == (1, 1)


def test_actions_of_other_runs_do_not_count():
    course = CourseFactory()
    enrollment = EnrollmentFactory(course=course)
    InterventionFactory(  # another run's record, high there
        learner=enrollment.learner, date=dt.date(2026, 11, 1), risk_band="high"
    )
    outcome = _outcomes(course, {enrollment.learner_id: "high"})
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
