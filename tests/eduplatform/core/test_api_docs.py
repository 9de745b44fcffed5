"""API docs: Swagger UI at /api/v1/docs/ and Redoc at /api/v1/redoc/ from vendored assets.

The pages name only our own static files (drf-spectacular-sidecar), carry no inline script
or style (the CSP forbids both) and load with the project's CSP; the browser test in
tests/browser/test_api_docs.py checks they render under it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from django.contrib.staticfiles import finders

ASSET = re.compile(r'(?:href|src)="([^"]+)"')
EXTERNAL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)

pytestmark = pytest.mark.django_db


def assets(html: str) -> list[str]:
    return [url for url in ASSET.findall(html) if url.startswith("/static/")]


@pytest.mark.parametrize(
    ("page", "needed"),
    [
        ("/api/v1/docs/", {"swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}),
        ("/api/v1/redoc/", {"redoc.standalone.js"}),
    ],
)
def test_docs_pages_name_only_vendored_assets(client, page, needed):
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "<style" not in html
    assert re.search(r"<script>|<script [^>]*>[^<]", html) is None, "inline script"
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    names = {url.rsplit("/", 1)[-1] for url in assets(html)}
    assert needed <= names
    for url in assets(html):
        assert finders.find(url.removeprefix("/static/")), url


def test_swagger_ui_start_script_is_a_same_origin_request(client):
    html = client.get("/api/v1/docs/").content.decode()
    (script,) = [u for u in ASSET.findall(html) if not u.startswith("/static/") and "script" in u]
    response = client.get(script.replace("&amp;", "&"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in response.content.decode()
    assert '"/api/v1/schema/"' in response.content.decode()


@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_assets_are_served(live_server, page):
    html = requests.get(live_server.url + page, timeout=10).text
    for url in assets(html):
        response = requests.get(live_server.url + url, timeout=10)
        assert response.status_code == 200, url
        assert response.content == Path(finders.find(url.removeprefix("/static/"))).read_bytes()


def test_docs_need_no_login_and_the_schema_they_read_is_public(client):
    assert client.get("/api/v1/schema/").status_code == 200


# ---------------------------------------------------------------- typed bodies (#26 item 4)


def openapi(client) -> dict:
    return client.get("/api/v1/schema/", {"format": "json"}).json()


def body_schema(schema: dict, path: str, method: str, status: str) -> dict:
    return schema["paths"][path][method]["responses"][status]["content"]["application/json"][
        "schema"
    ]


def as_json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema (what jsonschema understands)."""
    if isinstance(node, list):
        return [as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: as_json_schema(v) for k, v in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def assert_conforms(schema: dict, body, part: dict) -> None:
    import jsonschema

    root = {**as_json_schema(part), "components": as_json_schema(schema["components"])}
    jsonschema.Draft7Validator(root).validate(body)


def properties(schema: dict, part: dict) -> dict:
    if "$ref" in part:
        part = schema["components"]["schemas"][part["$ref"].rsplit("/", 1)[-1]]
    return part


def test_prediction_answers_are_typed_with_their_fields(client):
    schema = openapi(client)
    risk = properties(
        schema, body_schema(schema, "/api/v1/learners/{pseudonym}/risk", "get", "200")
    )
    assert set(risk["properties"]) == {
        "learner", "course", "status", "model_version", "as_of", "risk_band", "top_factors",
        "probability",
    }  # fmt: skip
    assert "probability" not in risk["required"]  # admin tokens only
    assert risk["properties"]["top_factors"]["items"] == {"type": "string"}
    path = "/api/v1/learners/{pseudonym}/recommendations"
    recs = properties(schema, body_schema(schema, path, "get", "200"))
    assert set(recs["properties"]) == {"learner", "course", "status", "model_version", "items"}
    item = properties(schema, recs["properties"]["items"]["items"])
    assert set(item["properties"]) == {"item_id", "title", "reason", "score"}
    assert item["required"] == ["item_id", "reason", "title"]


def test_ingestion_bodies_are_typed(client):
    schema = openapi(client)
    stored = properties(schema, body_schema(schema, "/api/v1/events", "post", "201"))
    assert set(stored["properties"]) == {"received", "created", "duplicates"}
    xapi = schema["paths"]["/xapi/statements"]["post"]
    one, many = xapi["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert many["items"] == one and one["required"] == ["actor", "verb", "object"]
    assert {"mbox", "account"} <= set(one["properties"]["actor"]["properties"])
    assert body_schema(schema, "/xapi/statements", "post", "200") == {
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
    }


def test_every_operation_types_its_400_as_field_errors(client):
    schema = openapi(client)
    for path, item in schema["paths"].items():
        for method in item:
            assert body_schema(schema, path, method, "400") == {
                "$ref": "#/components/schemas/FieldErrors"
            }, (method, path)
    errors = schema["components"]["schemas"]["FieldErrors"]
    assert errors["additionalProperties"] == {"type": "array", "items": {"type": "string"}}


def test_every_other_error_is_typed_as_a_detail_and_real_ones_conform(client):
    from tests.factories import CourseFactory

    schema = openapi(client)
    detail = {"$ref": "#/components/schemas/ErrorDetail"}
    seen = set()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status in operation["responses"]:
                if status[0] in "45" and status not in ("400", "414"):
                    assert body_schema(schema, path, method, status) == detail, (path, status)
                    seen.add(status)
    assert {"401", "403", "404", "413", "429"} <= seen
    course = CourseFactory()
    path = "/api/v1/learners/{pseudonym}/risk"
    unauthorised = client.get(f"/api/v1/learners/nobody/risk?course={course.pk}")
    assert unauthorised.status_code == 401
    assert_conforms(schema, unauthorised.json(), body_schema(schema, path, "get", "401"))


def test_real_answers_conform_to_the_typed_schema(client):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from tests.analytics.ingest.conftest import ingest_client
    from tests.factories import CourseFactory, EnrollmentFactory, UserFactory

    schema = openapi(client)
    admin = APIClient()
    user = UserFactory(username="schema-admin", is_superuser=True, is_staff=True)
    admin.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    enrolment = EnrollmentFactory()
    pseudonym, course = enrolment.learner.pseudonym, enrolment.course_id
    for kind in ("risk", "recommendations"):
        path = f"/api/v1/learners/{{pseudonym}}/{kind}"
        # No model served yet: the nullable fields are null.
        ok = admin.get(f"/api/v1/learners/{pseudonym}/{kind}", {"course": course})
        assert ok.status_code == 200, ok.content
        assert_conforms(schema, ok.json(), body_schema(schema, path, "get", "200"))
        bad = admin.get(f"/api/v1/learners/{pseudonym}/{kind}", {"course": "x"})
        assert bad.status_code == 400
        assert_conforms(schema, bad.json(), body_schema(schema, path, "get", "400"))

    writer = ingest_client("schema-writer")
    run = CourseFactory(code="SCHEMA_2026J", iri="http://example.org/course/schema")
    event = {"client_event_id": "e-1", "learner_id": "42", "course": run.code, "verb": "viewed",
             "occurred_at": "2026-10-05T10:00:00+02:00"}  # fmt: skip
    answers = [
        ("/api/v1/events", [event], 201),
        ("/api/v1/events", [{**event, "count": -1}], 400),
        ("/api/v1/events", {"not": "a list"}, 400),
        (
            "/xapi/statements",
            {
                "actor": {"mbox": "mailto:a@example.org"},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
                "object": {"id": run.iri},
            },
            200,
        ),
        ("/xapi/statements", [{"actor": {}}], 400),
    ]
    for path, payload, status in answers:
        response = writer.post(path, payload, format="json")
        assert response.status_code == status, response.content
        assert_conforms(schema, response.json(), body_schema(schema, path, "post", str(status)))
