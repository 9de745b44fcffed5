"""xAPI 1.0.3 statements, including examples adapted from the specification."""

import uuid

import pytest
from rest_framework.test import APIClient

from analytics.ingest.xapi import parse_duration
from analytics.models import ContentItem, Learner, LearningEvent
from tests.analytics.ingest.conftest import ingest_client
from tests.factories import ContentItemFactory, CourseFactory

pytestmark = pytest.mark.django_db
URL = "/xapi/statements"
COURSE_IRI = "http://example.adlnet.gov/xapi/example/course"


@pytest.fixture
def client() -> APIClient:
    return ingest_client("lrs")


@pytest.fixture
def course():
    course = CourseFactory(code="XAPI_2026J", iri=COURSE_IRI)
    ContentItemFactory(course=course, external_id="http://example.adlnet.gov/xapi/example/activity")
    return course


def spec_simple_statement(**overrides):
    """The "simple statement" of the xAPI 1.0.3 specification, with a course context."""
    statement = {
        "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0",
        "timestamp": "2015-11-18T12:17:00+00:00",
        "actor": {
            "objectType": "Agent",
            "name": "Project Tin Can API",
            "mbox": "mailto:user@example.com",
        },
        "verb": {
            "id": "http://example.com/xapi/verbs#sent-a-statement",
            "display": {"en-US": "sent"},
        },
        "object": {
            "id": "http://example.adlnet.gov/xapi/example/simplestatement",
            "definition": {
                "name": {"en-US": "simple statement"},
                "description": {"en-US": "A simple Experience API statement."},
            },
            "objectType": "Activity",
        },
        "context": {"contextActivities": {"parent": [{"id": COURSE_IRI}]}},
    }
    statement.update(overrides)
    return statement


def test_single_statement_returns_its_id(client, course):
    response = client.post(URL, spec_simple_statement(), format="json")
    assert response.status_code == 200
    assert response.json() == ["fd41c918-b88b-4b20-a0a5-a4c32391aaa0"]
    assert response["X-Experience-API-Version"] == "1.0.3"
    event = LearningEvent.objects.get()
    assert event.verb == "sent-a-statement"
    assert event.item.title == "simple statement"
    assert event.course == course
    # The learner's email is personal data: encrypted, never the pseudonym.
    learner = Learner.objects.get()
    assert learner.email == "user@example.com"
    assert "user" not in learner.pseudonym


def test_list_with_account_actor_result_and_generated_id(client, course):
    completed = {
        "actor": {"account": {"homePage": "http://www.example.com", "name": "1625378"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "http://example.adlnet.gov/xapi/example/activity"},
        "result": {
            "completion": True,
            "success": True,
            "score": {"scaled": 0.95},
            "duration": "PT1H0M0S",
        },
        "timestamp": "2013-05-18T05:32:34.804+00:00",
    }
    response = client.post(URL, [spec_simple_statement(), completed], format="json")
    assert response.status_code == 200
    ids = response.json()
    assert ids[0] == "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"
    assert uuid.UUID(ids[1])
    event = LearningEvent.objects.get(verb="completed")
    assert event.score == pytest.approx(95.0)
    assert event.duration_seconds == 3600
    assert event.item.external_id == "http://example.adlnet.gov/xapi/example/activity"
    assert ContentItem.objects.count() == 2


def test_repeated_statement_is_stored_once(client, course):
    assert client.post(URL, spec_simple_statement(), format="json").status_code == 200
    assert client.post(URL, spec_simple_statement(), format="json").status_code == 200
    assert LearningEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"verb": {"display": {"en-US": "sent"}}}, "verb.id"),
        ({"actor": {"name": "nobody"}}, "actor"),
        ({"actor": {"mbox": "user@example.com"}}, "actor.mbox"),
        ({"id": "not-a-uuid"}, "id"),
        ({"timestamp": "18/11/2015"}, "timestamp"),
        ({"result": {"duration": "1 hour"}}, "result.duration"),
        ({"result": {"score": {"scaled": 1.5}}}, "result.score.scaled"),
        # Agent objects and statements without a known course are valid since #25; an
        # Agent without an identifier and an unknown context-activity key are not.
        ({"object": {"objectType": "Agent", "name": "x"}}, "object"),
        ({"context": {"contextActivities": {"sibling": []}}}, "context.contextActivities.sibling"),
    ],
)
def test_invalid_statements_rejected_and_nothing_written(client, course, change, field):
    good = spec_simple_statement(id=str(uuid.uuid4()))
    response = client.post(URL, [good, spec_simple_statement(**change)], format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["index"] for e in errors] == [1]
    assert field in errors[0]["fields"]
    assert LearningEvent.objects.count() == 0
    assert Learner.objects.count() == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT1H0M0S", 3600),
        ("PT4.5S", 4.5),
        ("P1DT2M", 86520),
        ("PT", None),
        ("P", None),
        ("1H", None),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_personal_data_is_encrypted_in_the_table(client, course):
    from django.db import connection

    assert client.post(URL, spec_simple_statement(), format="json").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM analytics_learner")
        (stored,) = cursor.fetchone()
    assert stored and "example.com" not in stored
    assert Learner.objects.get().email == "user@example.com"
