"""The dashboard pages read the replica (eduplatform/core/db_router.py); the session, the user
and the access gate stay on the primary. Needs a streaming replica (DATABASE_REPLICA_URL; CI
starts one); see tests/eduplatform/core/test_db_router.py."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from analytics.models import DailyActivity, Enrollment, LearningEvent, Submission
from eduplatform.core.db_router import PRIMARY, REPLICA
from tests.analytics.pages.support import body, client_for, page_urls
from tests.browser.world import build_world
from tests.conftest import wait_for_replica
from tests.eduplatform.core.test_db_router import BOTH, queries

pytestmark = pytest.mark.django_db(transaction=True, databases=BOTH)

# Tables only the pages' selectors read (never the gate, the session or the user).
PAGE_TABLES = [m._meta.db_table for m in (DailyActivity, LearningEvent, Submission)]


def page_reads(sql: list[str]) -> list[str]:
    return [q for q in sql if any(table in q for table in PAGE_TABLES)]


def test_course_page_selectors_read_the_replica(replica) -> None:
    world = build_world()
    client = client_for(world.instructor_a)
    wait_for_replica()
    with (
        CaptureQueriesContext(connections[PRIMARY]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as standby,
    ):
        html = body(client.get(f"/courses/{world.course_a.pk}/?status=all"))
    for learner in world.learners[world.course_a.code]:
        assert learner.pseudonym in html
    on_replica = queries(standby)
    # The raw-SQL selectors too: the at-risk table and the data version that keys its cache.
    assert any(f"FROM {Enrollment._meta.db_table} e " in q for q in on_replica)
    assert any(q.startswith("SELECT (SELECT MAX(id)") for q in on_replica)
    assert page_reads(on_replica)
    on_primary = queries(primary)
    assert any("django_session" in q for q in on_primary)
    assert any("auth_user" in q for q in on_primary)
    assert any("analytics_course" in q for q in on_primary)  # the access gate
    assert page_reads(on_primary) == []
    assert not any(
        "MAX(id)" in q or f"FROM {Enrollment._meta.db_table} e " in q for q in on_primary
    )


@pytest.mark.parametrize("page", ["overview", "segments", "learner", "data_quality"])
def test_other_dashboard_pages_read_the_replica(replica, page: str) -> None:
    world = build_world()
    client = client_for(world.analyst)
    wait_for_replica()
    with (
        CaptureQueriesContext(connections[PRIMARY]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as standby,
    ):
        response = client.get(page_urls(world)[page])
    assert response.status_code == 200
    assert queries(standby), f"{page}: nothing read on the replica"
    assert page_reads(queries(primary)) == [], f"{page}: page data read on the primary"


def test_csv_export_streams_from_the_primary(replica) -> None:
    """The export runs after the view returned, outside the scope: the primary (documented)."""
    world = build_world()
    client = client_for(world.instructor_a)
    wait_for_replica()
    with CaptureQueriesContext(connections[REPLICA]) as standby:
        rows = body(client.get(page_urls(world)["export"]))
    assert world.learners[world.course_a.code][0].pseudonym in rows
    assert queries(standby) == []
