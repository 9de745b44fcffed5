"""The Statement resource's agent filters (#25, xAPI 1.0.3 Communication 2.1.3): a Group
whose members include the Agent asked for matches, as the Agent itself does."""

import json
import uuid

import pytest
from django.db import connection

from analytics.models import STATEMENT_GIN_COLUMNS, Statement
from analytics.selectors.statements import json_list_has
from tests.analytics.ingest.test_lrs import URL, lrs_client, statement

pytestmark = pytest.mark.django_db
ADA = {"mbox": "mailto:ada@example.org"}
BOB = {"objectType": "Agent", "account": {"homePage": "https://lms.example.org", "name": "bob"}}
SUB = {"objectType": "SubStatement", "actor": ADA,
       "verb": {"id": "http://adlnet.gov/expapi/verbs/x"},
       "object": {"id": "https://lms.example.org/a"}}  # fmt: skip
TEAM = {"objectType": "Group", "name": "Team", "mbox": "mailto:team@example.org"}


def found(lrs, agent, **params) -> set[int]:
    page = lrs.get(URL, {"agent": json.dumps(agent), **params})
    assert page.status_code == 200, page.content
    return {uuid.UUID(s["id"]).int for s in page.json()["statements"]}


def test_group_members_match_the_agent_filter():
    lrs = lrs_client()[0]
    statements = [
        statement(1, actor={"objectType": "Group", "member": [ADA, BOB]}),  # anonymous Group
        statement(2, actor={**TEAM, "member": [BOB]}),  # identified Group
        statement(3, actor=BOB, object={**TEAM, "member": [ADA]}),  # Group as the object
        statement(4, actor=BOB, context={"team": {**TEAM, "member": [ADA]}}),  # context team
        statement(5, actor=BOB, context={"instructor": ADA}),
        statement(6, actor=BOB, object=SUB),
        statement(7),  # another Ada (ada7@)
    ]
    assert lrs.post(URL, statements, format="json").status_code == 200
    assert found(lrs, ADA) == {1, 3}
    assert found(lrs, BOB) == {1, 2, 3, 4, 5, 6}
    assert found(lrs, {"objectType": "Group", "mbox": TEAM["mbox"]}) == {2, 3}
    # related_agents: also the context's team and instructor and a SubStatement's actor.
    assert found(lrs, ADA, related_agents="true") == {1, 3, 4, 5, 6}
    assert found(lrs, {"mbox": "mailto:nobody@example.org"}, related_agents="true") == set()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="GIN indexes are PostgreSQL's")
def test_the_list_filters_can_use_the_gin_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'analytics_statement'")
        names = {row[0] for row in cursor.fetchall()}
        assert set(STATEMENT_GIN_COLUMNS.values()) <= names
        query = Statement.objects.filter(json_list_has("agents", "x")).values("pk").query
        sql, params = query.sql_with_params()
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "statement_agents_gin" in plan, plan
