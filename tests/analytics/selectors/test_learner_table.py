"""The at-risk table's reads: the cached table in Python against the SQL."""

import pytest

from analytics.selectors.learner_table import (
    LearnerTableQuery,
    course_learner_rows,
    course_learner_table,
    filter_learner_table,
)
from tests.browser.world import World, add_learners

pytestmark = pytest.mark.django_db


def test_course_table_in_python_matches_the_sql(world: World) -> None:
    """The cached table's filters and order are course_learner_rows' (the CSV export's)."""
    add_learners(world.course_a, 12, today=world.today, tag="M", start=10)
    rows = course_learner_table(world.course_a, anchor=world.today)
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
        query = LearnerTableQuery.from_params(params)
        expected = list(course_learner_rows(world.course_a, anchor=world.today, query=query))
        got = filter_learner_table(rows, anchor=world.today, query=query)
        assert [dict(r) for r in got] == expected, params
