"""Schemathesis over the OpenAPI schema: no server errors, no way in without a token."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from eduplatform.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


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
def test_no_server_errors(case, admin_token):
    response = case.call(headers={"Authorization": f"Token {admin_token}"})
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])


@pytest.mark.django_db
@schema.parametrize()
@FUZZ
def test_no_access_without_a_token(case):
    response = case.call()
    assert response.status_code in (401, 403, 404), (case.method, case.formatted_path)
