"""Rollup reads: the week-of-run SQL function."""

import datetime as dt

import pytest

from analytics.models import DailyActivity
from analytics.selectors.activity import WeekOfRun, week_of_run
from tests.analytics.pages.support import (
    DAY,
)
from tests.factories import (
    CourseFactory,
    LearnerFactory,
)

pytestmark = pytest.mark.django_db


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
        .annotate(week=WeekOfRun("date", "course__start_date"))
        .values_list("date", "week")
    )
    got = dict(rows)
    assert got == {d: week_of_run(d, course.start_date) for d in got}
    assert sorted(set(got.values())) == [-3, -2, -1, 0, 1, 2, 14]
