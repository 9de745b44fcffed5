"""The xAPI Statement resource (#25): credentials, storage, placement, GET, voiding, About."""

import base64
import uuid

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from analytics.ingest.lrs import statement_place
from analytics.ingest.lrs_auth import new_credentials, secret_digest
from analytics.models import DailyActivity, LearningEvent, LrsClient, Statement
from analytics.selectors.statements import unplaced_by_iri
from tests.factories import CourseFactory

pytestmark = pytest.mark.django_db
URL = "/xapi/statements"
COURSE = "https://moodle.example.edu/course/view.php?id=7"


def lrs_client(scopes=("statements/write", "statements/read")) -> tuple[APIClient, LrsClient]:
    key, secret = new_credentials()
    row = LrsClient.objects.create(
        name=f"lms-{key[:6]}", key=key, secret_sha256=secret_digest(secret), scopes=list(scopes)
    )
    client = APIClient()
    basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {basic}", HTTP_X_EXPERIENCE_API_VERSION="1.0.3")
    return client, row


def statement(n: int = 1, **overrides):
    body = {
        "id": str(uuid.UUID(int=n)),
        "actor": {"name": "Ada", "mbox": f"mailto:ada{n}@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced", "display": {"en-US": "saw"}},
        "object": {
            "id": f"https://moodle.example.edu/mod/page/view.php?id={n}",
            "definition": {"name": {"en-US": f"page {n}"}, "type": "http://x.org/page"},
        },
        "context": {"contextActivities": {"grouping": [{"id": COURSE}]}},
        "timestamp": "2026-10-05T10:00:00+00:00",
    }
    body.update(overrides)
    return body


@pytest.fixture
def lrs():
    return lrs_client()[0]


def test_basic_credentials_store_and_unknown_course_is_held(lrs):
    response = lrs.post(URL, [statement(1), statement(2)], format="json")
    assert response.status_code == 200, response.content
    assert response["X-Experience-API-Version"] == "1.0.3"
    assert "X-Experience-API-Consistent-Through" in response
    assert Statement.objects.filter(course__isnull=True).count() == 2
    assert LearningEvent.objects.count() == 0
    (held,) = unplaced_by_iri()
    assert held["place_iri"] == COURSE and held["statements"] == 2
    # The mapping turns them into events, once.
    course = CourseFactory(code="MOODLE_7", iri=None)
    assert statement_place(iri=COURSE, course=course) == 2
    assert statement_place(iri=COURSE, course=course) == 0
    assert LearningEvent.objects.filter(course=course).count() == 2
    assert unplaced_by_iri() == []
    # Statements sent after the mapping are placed at once.
    assert lrs.post(URL, statement(3), format="json").status_code == 200
    assert LearningEvent.objects.count() == 3


def test_personal_data_is_encrypted_in_the_table_and_returned_as_sent(lrs):
    from django.db import connection

    assert lrs.post(URL, statement(1), format="json").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(data AS TEXT), actor_key FROM analytics_statement")
        text, actor_key = cursor.fetchone()
    assert "ada1@example.org" not in text and "Ada" not in text
    assert "ada1" not in actor_key
    got = lrs.get(URL, {"statementId": str(uuid.UUID(int=1))})
    assert got.json()["actor"] == {"name": "Ada", "mbox": "mailto:ada1@example.org"}


def test_wrong_secret_unknown_scheme_and_scopes():
    client, row = lrs_client(scopes=["statements/read"])
    assert client.post(URL, statement(1), format="json").status_code == 403
    bad = APIClient()
    wrong = base64.b64encode(f"{row.key}:nope".encode()).decode()
    bad.credentials(HTTP_AUTHORIZATION=f"Basic {wrong}", HTTP_X_EXPERIENCE_API_VERSION="1.0.3")
    response = bad.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    writer, _ = lrs_client(scopes=["statements/write"])
    assert writer.get(URL).status_code == 403
    assert Statement.objects.count() == 0


def test_bearer_secret_works():
    key, secret = new_credentials()
    LrsClient.objects.create(
        name="edx", key=key, secret_sha256=secret_digest(secret), scopes=["statements/write"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_X_EXPERIENCE_API_VERSION="1.0.3")
    assert client.post(URL, statement(1), format="json").status_code == 200


@pytest.mark.parametrize("version", [None, "0.95", "2.0.0", "1.1.0"])
def test_version_header_required(lrs, version):
    headers = {} if version is None else {"HTTP_X_EXPERIENCE_API_VERSION": version}
    lrs.credentials(**{**lrs._credentials, **headers})
    if version is None:
        lrs._credentials.pop("HTTP_X_EXPERIENCE_API_VERSION")
    response = lrs.post(URL, statement(1), format="json")
    assert response.status_code == 400
    assert response["X-Experience-API-Version"] == "1.0.3"
    assert Statement.objects.count() == 0


def test_conflicting_id_is_409_and_the_same_statement_a_no_op(lrs):
    assert lrs.post(URL, statement(1), format="json").status_code == 200
    assert lrs.post(URL, statement(1), format="json").status_code == 200
    other = statement(1, verb={"id": "http://adlnet.gov/expapi/verbs/failed"})
    assert lrs.post(URL, [statement(2), other], format="json").status_code == 409
    assert Statement.objects.count() == 1
    sid = str(uuid.UUID(int=5))
    body = statement(5)
    del body["id"]
    assert lrs.put(f"{URL}?statementId={sid}", body, format="json").status_code == 204
    assert lrs.put(f"{URL}?statementId={sid}", body, format="json").status_code == 204
    changed = {**body, "result": {"success": True}}
    assert lrs.put(f"{URL}?statementId={sid}", changed, format="json").status_code == 409
    assert lrs.put(URL, body, format="json").status_code == 400


def test_lrs_fills_id_stored_timestamp_authority(lrs):
    body = statement(1)
    del body["id"], body["timestamp"]
    (sid,) = lrs.post(URL, body, format="json").json()
    got = lrs.get(URL, {"statementId": sid}).json()
    assert got["id"] == sid and got["stored"] and got["timestamp"] and got["version"]
    assert got["authority"]["account"]["homePage"] == "urn:eduplatform:lrs-client"
    # Re-sending it as sent (no timestamp) is the same statement.
    assert lrs.post(URL, {**body, "id": sid}, format="json").status_code == 200


def test_voiding_hides_the_statement_and_withdraws_its_events(lrs):
    CourseFactory(code="MOODLE_7", iri=COURSE)
    assert lrs.post(URL, [statement(1), statement(2)], format="json").status_code == 200
    assert LearningEvent.objects.count() == 2
    assert sum(DailyActivity.objects.values_list("events", flat=True)) == 2
    target = str(uuid.UUID(int=1))
    void = statement(
        9,
        verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
        object={"objectType": "StatementRef", "id": target},
    )
    del void["context"]
    assert lrs.post(URL, void, format="json").status_code == 200
    assert LearningEvent.objects.count() == 1
    assert sum(DailyActivity.objects.values_list("events", flat=True)) == 1
    assert lrs.get(URL, {"statementId": target}).status_code == 404
    assert lrs.get(URL, {"voidedStatementId": target}).json()["id"] == target
    listed = [s["id"] for s in lrs.get(URL).json()["statements"]]
    assert target not in listed and str(uuid.UUID(int=9)) in listed


def test_filters_and_more_paging(lrs):
    statements = [statement(n) for n in range(1, 8)]
    statements[0]["context"]["registration"] = str(uuid.UUID(int=77))
    assert lrs.post(URL, statements, format="json").status_code == 200
    seen, url, pages = [], URL + "?limit=3&ascending=true", 0
    while url:
        page = lrs.get(url).json()
        seen += [s["id"] for s in page["statements"]]
        url, pages = page["more"], pages + 1
    assert seen == [str(uuid.UUID(int=n)) for n in range(1, 8)] and pages == 3
    agent = '{"mbox": "mailto:ada2@example.org"}'
    assert [s["id"] for s in lrs.get(URL, {"agent": agent}).json()["statements"]] == [
        str(uuid.UUID(int=2))
    ]
    by_course = lrs.get(URL, {"activity": COURSE, "related_activities": "true"}).json()
    assert "statements" in by_course, by_course
    assert len(by_course["statements"]) == 7
    assert lrs.get(URL, {"activity": COURSE}).json()["statements"] == []
    registered = lrs.get(URL, {"registration": str(uuid.UUID(int=77))}).json()["statements"]
    assert len(registered) == 1
    got = lrs.get(URL, {"format": "ids", "limit": 1})
    assert got.status_code == 200, got.content
    ids = got.json()["statements"][0]
    assert ids["object"] == {"id": ids["object"]["id"]}
    assert "name" not in ids["actor"]
    for bad in ({"agent": "{"}, {"limit": "x"}, {"since": "yesterday"}, {"foo": "1"},
                {"format": "full"}, {"statementId": "nope"}):  # fmt: skip
        assert lrs.get(URL, bad).status_code == 400, bad


def test_head_and_about():
    client, _ = lrs_client()
    assert client.head(URL).status_code == 200
    about = APIClient().get("/xapi/about")
    assert about.status_code == 200
    assert about.json()["version"] == ["1.0.3"]


@override_settings(XAPI_CORS_ORIGINS=["https://moodle.example.edu"])
def test_cors_preflight_for_configured_origins_only():
    client = APIClient()
    preflight = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST"}
    ok = client.options(URL, HTTP_ORIGIN="https://moodle.example.edu", **preflight)
    assert ok.status_code == 200
    assert ok["Access-Control-Allow-Origin"] == "https://moodle.example.edu"
    assert "X-Experience-API-Version" in ok["Access-Control-Allow-Headers"]
    other = client.options(URL, HTTP_ORIGIN="https://evil.example", **preflight)
    assert "Access-Control-Allow-Origin" not in other
    # Not a preflight: credentials needed, as on every other method.
    assert client.options(URL, HTTP_ORIGIN="https://moodle.example.edu").status_code == 401


def test_invalid_statement_in_a_batch_stores_nothing(lrs):
    bad = statement(2, actor={"mbox": "ada@example.org"})
    response = lrs.post(URL, [statement(1), bad], format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["index"] == 1
    assert Statement.objects.count() == 0


def test_single_context_activities_are_returned_as_lists_and_refs_follow_filters(lrs):
    one = statement(1, context={"contextActivities": {"category": {"id": COURSE}}})
    assert lrs.post(URL, one, format="json").status_code == 200
    got = lrs.get(URL, {"statementId": one["id"]}).json()
    assert got["context"]["contextActivities"]["category"] == [{"id": COURSE}]
    # A statement about statement 1 is found by the verb filter statement 1 matches.
    ref = statement(2, verb={"id": "http://v.org/liked"},
                    object={"objectType": "StatementRef", "id": one["id"]})  # fmt: skip
    del ref["context"]
    assert lrs.post(URL, ref, format="json").status_code == 200
    verb = one["verb"]["id"]
    found = [s["id"] for s in lrs.get(URL, {"verb": verb}).json()["statements"]]
    assert found == [ref["id"], one["id"]]


def test_export_and_erasure_cover_the_learners_statements(lrs):
    from analytics.selectors.learners import learner_export
    from analytics.services import learner_erase
    from analytics.statement_privacy import learner_pseudonym

    CourseFactory(code="MOODLE_7", iri=COURSE)
    members = [{"mbox": "mailto:ada1@example.org"}, {"mbox": "mailto:bo@x.org"}]
    group = statement(3, actor={"objectType": "Group", "member": members})
    other = statement(
        4, context={"contextActivities": {"grouping": [{"id": "https://other.org/c"}]}}
    )
    assert lrs.post(URL, [statement(1), group, other], format="json").status_code == 200
    ada = learner_pseudonym("mbox", "ada1@example.org")
    exported = learner_export(pseudonym=ada)
    assert [s["id"] for s in exported["xapi_statements"]] == [statement(1)["id"], group["id"]]
    assert exported["xapi_statements"][0]["actor"]["mbox"] == "mailto:ada1@example.org"
    assert learner_erase(pseudonym=ada).statements == 2
    assert list(Statement.objects.values_list("statement_id", flat=True)) == [
        uuid.UUID(other["id"])
    ]
    # A learner known only from held statements (no events yet) is erased too.
    held = learner_pseudonym("mbox", "ada4@example.org")
    result = learner_erase(pseudonym=held)
    assert result.found and result.statements == 1 and not Statement.objects.exists()


def test_read_mine_sees_only_its_own_statements(lrs):
    mine, _ = lrs_client(scopes=["statements/write", "statements/read/mine"])
    assert lrs.post(URL, statement(1), format="json").status_code == 200
    assert mine.post(URL, statement(2), format="json").status_code == 200
    listed = [s["id"] for s in mine.get(URL).json()["statements"]]
    assert listed == [statement(2)["id"]]
    assert mine.get(URL, {"statementId": statement(1)["id"]}).status_code == 404
    everything, _ = lrs_client(scopes=["all/read"])
    assert len(everything.get(URL).json()["statements"]) == 2
