"""The input boundary (issue #24 item 2): each input a production probe answered with a 500.

Every case is 400 (404 for a path naming a learner) and writes nothing. The NUL and
length cases only failed on PostgreSQL: run these with DATABASE_URL pointing at one.
Bodies are sent as raw JSON text (``json.dumps`` escapes a lone surrogate as ``\\ud800``,
as a client in another language would).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import ContentItem, DailyActivity, Enrollment, Learner, LearningEvent
from tests.analytics.ingest.conftest import ingest_client
from tests.browser.world import World, build_world
from tests.factories import ContentItemFactory, CourseFactory

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/events"
XAPI = "/xapi/statements"
COURSE_IRI = "http://example.org/course/boundary"
ACTIVITY = "http://example.org/activity/known"


@pytest.fixture
def ingest() -> APIClient:
    return ingest_client("ingest")


@pytest.fixture
def course():
    course = CourseFactory(code="WEB_2026J", iri=COURSE_IRI)
    ContentItemFactory(course=course, external_id="video-1", activity_type="video")
    ContentItemFactory(course=course, external_id=ACTIVITY, activity_type="page")
    return course


def event(n: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "client_event_id": f"evt-{n}",
        "learner_id": f"user-{n}",
        "course": "WEB_2026J",
        "item": "video-1",
        "verb": "played",
        "occurred_at": "2026-10-05T10:00:00+02:00",
        "count": 1,
        "duration_seconds": 60,
    }
    body.update(overrides)
    return body


def statement(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-10-05T10:00:00+00:00",
        "actor": {"objectType": "Agent", "name": "A", "mbox": "mailto:a@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {
            "id": ACTIVITY,
            "objectType": "Activity",
            "definition": {"name": {"en-US": "page"}},
        },
        "context": {"contextActivities": {"parent": [{"id": COURSE_IRI}]}},
    }
    body.update(overrides)
    return body


def post_raw(client: APIClient, url: str, body: str | bytes) -> Any:
    return client.generic("POST", url, body, content_type="application/json")


def post(client: APIClient, url: str, payload: Any) -> Any:
    return post_raw(client, url, json.dumps(payload))


def nothing_written() -> bool:
    return not (
        LearningEvent.objects.exists()
        or Learner.objects.exists()
        or Enrollment.objects.exists()
        or DailyActivity.objects.exists()
        or ContentItem.objects.exclude(external_id__in=["video-1", ACTIVITY]).exists()
    )


def assert_item_error(response: Any, field: str, index: int = 1) -> None:
    assert response.status_code == 400, response.content[:300]
    errors = response.json()["errors"]
    assert [e["index"] for e in errors] == [index]
    assert field in errors[0]["fields"], errors
    assert nothing_written()


# --- events API ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["verb", "client_event_id", "item", "course", "learner_id"])
def test_events_nul_in_text_field_is_400(ingest, course, field):
    response = post(ingest, EVENTS, [event(0), event(1, **{field: "a\x00b"})])
    assert_item_error(response, field)
    assert "NUL" in response.json()["errors"][0]["fields"][field][0]


@pytest.mark.parametrize("field", ["learner_id", "verb", "client_event_id", "item"])
def test_events_lone_surrogate_is_400(ingest, course, field):
    response = post(ingest, EVENTS, [event(0), event(1, **{field: "a\ud800b"})])
    assert_item_error(response, field)


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00+05:00",  # OverflowError converting to UTC
        "9999-12-31T23:00:00-05:00",
        "1800-06-01T00:00:00+00:00",
        "0001-01-01T00:00:00+00:00",
        "1989-12-31T23:59:59+00:00",
    ],
)
def test_events_implausible_timestamps_are_400(ingest, course, stamp):
    response = post(ingest, EVENTS, [event(0), event(1, occurred_at=stamp)])
    assert_item_error(response, "occurred_at")


@override_settings(EVENT_EARLIEST_DATE=__import__("datetime").date(1800, 1, 1))
def test_earliest_event_date_is_a_setting(ingest, course):
    response = post(ingest, EVENTS, [event(0, occurred_at="1850-06-01T00:00:00+00:00")])
    assert response.status_code == 201
    assert LearningEvent.objects.count() == 1


def test_events_deep_nesting_is_400_before_parsing(ingest, course):
    response = post_raw(ingest, EVENTS, "[" * 100_000)
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]
    assert nothing_written()


def test_events_number_overflowing_to_infinity_is_400(ingest, course):
    body = json.dumps([event(0)])[:-2] + ', "score": 1e400}]'
    response = post_raw(ingest, EVENTS, body)
    assert response.status_code == 400
    assert nothing_written()


def test_events_huge_integer_score_is_400(ingest, course):
    response = post(ingest, EVENTS, [event(0), event(1, score=10**400)])
    assert_item_error(response, "score")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_events_body_over_the_limit_is_413(ingest, course):
    response = post(ingest, EVENTS, [event(n) for n in range(100)])
    assert response.status_code == 413
    assert nothing_written()
    # Within the limit, the same endpoint still works.
    assert post(ingest, EVENTS, [event(n) for n in range(10)]).status_code == 201


# --- xAPI ---------------------------------------------------------------------------


def test_xapi_nul_in_verb_id_is_400(ingest, course):
    bad = statement(verb={"id": "http://adlnet.gov/expapi/verbs/a\x00b"})
    assert_item_error(post(ingest, XAPI, [statement(), bad]), "verb.id")


def test_xapi_nul_in_activity_name_is_400(ingest, course):
    bad = statement(
        object={
            "id": "http://example.org/activity/new",
            "definition": {"name": {"en-US": "a\x00b"}},
        }
    )
    assert_item_error(post(ingest, XAPI, [statement(), bad]), "object.definition.name")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"object": {"id": "http://example.org/a\x00b"}}, "object.id"),
        ({"actor": {"name": "a\ud800b", "mbox": "mailto:a@example.com"}}, "actor.name"),
        ({"actor": {"mbox": "mailto:a\ud800@example.com"}}, "actor.mbox"),
        (
            {"actor": {"account": {"homePage": "https://lms.example", "name": "a\x00"}}},
            "actor.account.name",
        ),
        (
            {"object": {"id": ACTIVITY, "definition": {"type": "http://t/a\x00"}}},
            "object.definition.type",
        ),
    ],
)
def test_xapi_unstorable_text_is_400(ingest, course, change, field):
    assert_item_error(post(ingest, XAPI, [statement(), statement(**change)]), field)


def test_xapi_object_id_longer_than_the_column_is_400(ingest, course):
    long_id = "http://example.org/" + "a" * 5019  # 5,038 characters, as the probe sent
    assert len(long_id) == 5038
    bad = statement(object={"id": long_id, "definition": {"name": {"en-US": "x"}}})
    assert_item_error(post(ingest, XAPI, [statement(), bad]), "object.id")


def test_xapi_duration_overflowing_is_400(ingest, course):
    bad = statement(result={"duration": "P" + "9" * 400 + "D"})
    assert_item_error(post(ingest, XAPI, [statement(), bad]), "result.duration")


@pytest.mark.parametrize(
    "score",
    [{"raw": 1e308}, {"raw": 5, "min": -1e308, "max": 1e308}, {"raw": 10**400}],
)
def test_xapi_score_out_of_bounds_is_400(ingest, course, score):
    bad = statement(result={"score": score})
    response = post(ingest, XAPI, [statement(), bad])
    assert response.status_code == 400
    fields = response.json()["errors"][0]["fields"]
    assert any(name.startswith("result.score") for name in fields)
    assert nothing_written()


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+05:00", "1800-01-01T00:00:00+00:00"])
def test_xapi_implausible_timestamp_is_400(ingest, course, stamp):
    assert_item_error(post(ingest, XAPI, [statement(), statement(timestamp=stamp)]), "timestamp")


def test_xapi_deep_nesting_is_400(ingest, course):
    response = post_raw(ingest, XAPI, "[" * 100_000)
    assert response.status_code == 400
    assert nothing_written()


def test_xapi_valid_statement_still_stored(ingest, course):
    response = post(ingest, XAPI, [statement()])
    assert response.status_code == 200
    assert LearningEvent.objects.count() == 1


# --- paths and query strings ----------------------------------------------------------


@pytest.fixture
def world() -> World:
    return build_world()


def test_risk_api_nul_pseudonym_is_404(world):
    client = APIClient()
    token = Token.objects.get_or_create(user=world.admin)[0].key
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get(f"/api/v1/learners/%00/risk?course={world.course_a.pk}")
    assert response.status_code == 404
    response = client.get(f"/api/v1/learners/a%00b/recommendations?course={world.course_a.pk}")
    assert response.status_code == 404


def test_learner_page_nul_pseudonym_is_404(world):
    client = Client()
    client.force_login(world.admin)
    assert client.get("/learners/%00/").status_code == 404
    assert client.get("/learners/%ED%A0%80/").status_code == 404


def test_course_export_and_page_nul_query_is_400(world):
    client = Client()
    client.force_login(world.admin)
    response = client.get(f"/courses/{world.course_a.pk}/export.csv?q=%00")
    assert response.status_code == 400
    assert client.get(f"/courses/{world.course_a.pk}/?q=a%00").status_code == 400
    # An ordinary search still streams the CSV.
    response = client.get(f"/courses/{world.course_a.pk}/export.csv?q=a")
    assert response.status_code == 200
    b"".join(response.streaming_content)
