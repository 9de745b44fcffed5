"""xAPI Alternate Request Syntax (#25, Communication 1.3): POST ?method= with a form body."""

import base64
import json
import uuid
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from analytics.ingest.lrs_auth import new_credentials, secret_digest
from analytics.models import LrsClient, Statement
from tests.analytics.ingest.test_lrs import URL, lrs_client, statement

pytestmark = pytest.mark.django_db
FORM = "application/x-www-form-urlencoded"


def form_post(client: APIClient, method: str, form: dict, extra_query: str = ""):
    return client.generic(
        "POST", f"{URL}?method={method}{extra_query}", urlencode(form), content_type=FORM
    )


def test_put_post_and_get_through_the_form():
    lrs = lrs_client()[0]
    sid = str(uuid.UUID(int=3))
    put = form_post(lrs, "PUT", {"statementId": sid, "content": json.dumps(statement(3))})
    assert put.status_code == 204, put.content
    post = form_post(lrs, "POST", {"content": json.dumps([statement(4), statement(5)])})
    assert post.status_code == 200, post.content
    assert post.json() == [str(uuid.UUID(int=4)), str(uuid.UUID(int=5))]
    got = form_post(lrs, "GET", {"statementId": sid})
    assert got.status_code == 200 and got.json()["id"] == sid
    page = form_post(lrs, "GET", {"limit": "2"})
    assert page.status_code == 200 and len(page.json()["statements"]) == 2
    assert page["X-Experience-API-Version"] == "1.0.3"
    assert form_post(lrs, "head", {"statementId": sid}).status_code == 200


def test_headers_as_form_parameters():
    """Authorization and the version header as form fields, no HTTP headers at all; the
    Content-Type form field names the content's type."""
    key, secret = new_credentials()
    LrsClient.objects.create(
        name="ie9", key=key, secret_sha256=secret_digest(secret), scopes=["statements/write"]
    )
    basic = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
    form = {
        "Authorization": basic,
        "X-Experience-API-Version": "1.0.3",
        "Content-Type": "application/json",
        "content": json.dumps(statement(1)),
    }
    response = form_post(APIClient(), "POST", form)
    assert response.status_code == 200, response.content
    assert Statement.objects.count() == 1
    without_version = {k: v for k, v in form.items() if k != "X-Experience-API-Version"}
    assert form_post(APIClient(), "POST", without_version).status_code == 400
    assert form_post(APIClient(), "POST", {"content": form["content"]}).status_code == 401


def test_the_rules_of_the_syntax_and_of_the_resource_apply():
    lrs = lrs_client()[0]
    content = json.dumps(statement(1))
    # No query parameter but method.
    assert form_post(lrs, "POST", {"content": content}, "&limit=1").status_code == 400
    assert form_post(lrs, "DELETE", {"content": content}).status_code == 400
    assert form_post(lrs, "PATCH", {}).status_code == 400
    # A parameter twice is ambiguous.
    twice = urlencode([("limit", "1"), ("limit", "2")])
    assert lrs.generic("POST", f"{URL}?method=GET", twice, content_type=FORM).status_code == 400
    # An invalid statement or an unknown GET parameter is refused as without the syntax.
    bad = json.dumps({**statement(2), "verb": {"id": "not an iri"}})
    assert form_post(lrs, "POST", {"content": bad}).status_code == 400
    assert form_post(lrs, "GET", {"colour": "red"}).status_code == 400
    assert Statement.objects.count() == 0
    # Without ?method= a form POST is still not a statement.
    assert (
        lrs.generic("POST", URL, urlencode({"content": content}), content_type=FORM).status_code
        == 400
    )
