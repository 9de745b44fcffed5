"""Every dashboard page: query counts per role, and no growth with learners."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.analytics.pages.support import (
    body,
    client_for,
    page_urls,
)
from tests.browser.world import World, add_learners

pytestmark = pytest.mark.django_db


# -- query counts ------------------------------------------------------------------

# Session (database-backed, so pages work with Redis down: #24 item 4) and user, then the
# page's own reads. Non-admins add one role query.
SESSION = 1
# Each number is independent of the number of learners (see the growth test).
QUERY_COUNTS = {
    # overview: courses, last activity, activity KPIs, enrolment KPIs,
    # daily, by type, weekly, enrolled counts
    "overview": 9,
    # course: course, weekly, by type, item usage (events + items), score
    # histogram, table count, table page, the run's risk scores (read once: the default
    # order and the outcome card, #27; the card's band, enrolment and activity reads only
    # run when the run is scored, not in this world)
    "course": 10,
    # export: course, last activity, the run's rows, the risk order's scores (default
    # order: the rows are ordered in Python, so read at once, not in 500-row slices),
    # the recorded actions of the slice (#27 item 5, one per 500 rows)
    "export": 6,
    # segments: course, last activity, enrolments, totals, per-type clicks
    "segments": 6,
    # learner: learner, enrolments (+course), daily clicks, submissions
    "learner": 5,
    # data quality: courses, last activity, 3 feature reads, volume, imports
    "data_quality": 8,
}
# Reads only for roles that may act on learners (admins, instructors; not analysts): the
# learner page's recorded actions (#27 item 5).
STAFF_QUERIES = {"learner": 1}
# Reads only for platform readers (admins, analysts; not instructors): the data-quality
# page's held xAPI statements by activity IRI (#25).
READER_QUERIES = {"data_quality": 1}


@pytest.mark.parametrize("page", list(QUERY_COUNTS))
@pytest.mark.parametrize("role", ["admin", "analyst", "instructor_a"])
def test_query_counts(world: World, page: str, role: str, django_assert_num_queries) -> None:
    client = client_for(getattr(world, role))
    expected = SESSION + QUERY_COUNTS[page] + (0 if role == "admin" else 1)
    expected += 0 if role == "analyst" else STAFF_QUERIES.get(page, 0)
    expected += 0 if role == "instructor_a" else READER_QUERIES.get(page, 0)
    with django_assert_num_queries(expected):
        response = client.get(page_urls(world)[page])
        text = body(response)  # streaming responses query while streaming
    assert response.status_code == 200
    assert text


def test_query_counts_do_not_grow_with_learners(world: World) -> None:
    """No N+1: five times the learners (and a second table page) cost the same queries."""

    def measure() -> dict[str, int]:
        client = client_for(world.instructor_a)
        counts = {}
        for name, url in page_urls(world).items():
            with CaptureQueriesContext(connection) as queries:
                body(client.get(url))
            counts[name] = len(queries)
        with CaptureQueriesContext(connection) as queries:
            body(client.get(f"/courses/{world.course_a.pk}/?page=2&status=all"))
        counts["page2"] = len(queries)
        return counts

    before = measure()
    add_learners(world.course_a, 30, today=world.today, tag="More", start=10)
    after = measure()
    assert after == before
