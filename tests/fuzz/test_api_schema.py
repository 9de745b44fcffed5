"""Schemathesis over the OpenAPI schema: no server errors, no way in without a token.

Every operation of the project's own schema (/api/v1/schema/), in process through the WSGI
app, 25 generated requests each with an admin token (positive and negative data: unicode
with NUL and surrogates, extreme numbers, odd bodies) and 10 without one. Answers must be
no 5xx and conform to the schema: a documented status code, content type, headers and body
(the schema lists every error an operation can answer: eduplatform/core/api_docs.py,
document_errors). Bounded for CI: about 40 s on the 2-core CI box. The >= 10,000-request
run against a live server is bench/fuzz.py (docs/benchmarks.md, "Fuzzing").
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from eduplatform.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def keep_test_connection():
    """Raw WSGI calls close the database connection after each request; the test's
    transaction lives on it. Django's test client disconnects the same handler."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(db):
    from rest_framework.authtoken.models import Token

    from tests.factories import UserFactory

    user = UserFactory(username="fuzz-admin", is_superuser=True, is_staff=True)
    return Token.objects.create(user=user).key


@pytest.mark.django_db
@schema.parametrize()
@FUZZ
def test_no_server_errors_and_answers_conform(case, admin_token):
    response = case.call(headers={"Authorization": f"Token {admin_token}"})
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    case.validate_response(response, checks=CONFORMANCE)


@pytest.mark.django_db
@schema.parametrize()
@settings(FUZZ, max_examples=10)
def test_no_access_without_a_token(case):
    response = case.call()
    assert response.status_code in (401, 403, 404), (case.method, case.formatted_path)
