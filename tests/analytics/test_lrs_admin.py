"""The xAPI admin (#25): LRS clients with a secret shown once, and mapping held statements'
IRI to a course run."""

import base64
import uuid

import pytest
from django.contrib.admin import helpers
from django.urls import reverse
from rest_framework.test import APIClient

from analytics.models import LearningEvent, LrsClient, Statement
from tests.analytics.ingest.test_lrs import COURSE, URL, lrs_client, statement
from tests.factories import CourseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def test_new_client_gets_a_key_and_a_secret_shown_once_that_works(admin_client):
    url = reverse("admin:analytics_lrsclient_add")
    form = {"name": "moodle", "scopes": ["statements/write"], "is_active": "on"}
    response = admin_client.post(url, form, follow=True)
    row = LrsClient.objects.get(name="moodle")
    message = next(str(m) for m in response.context["messages"] if "secret" in str(m))
    secret = message.split("secret ")[1].split(".")[0]
    assert row.key in message and secret not in row.secret_sha256
    api = APIClient()
    basic = base64.b64encode(f"{row.key}:{secret}".encode()).decode()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {basic}", HTTP_X_EXPERIENCE_API_VERSION="1.0.3")
    assert api.post(URL, statement(1), format="json").status_code == 200


def test_mapping_held_statements_to_a_run_places_them(admin_client):
    lrs, _ = lrs_client()
    assert lrs.post(URL, [statement(1), statement(2)], format="json").status_code == 200
    run = CourseFactory(code="MOODLE_7", iri=None)
    url = reverse("admin:analytics_statement_changelist")
    chosen = {
        "action": "map_to_course",
        helpers.ACTION_CHECKBOX_NAME: [
            str(pk) for pk in Statement.objects.values_list("pk", flat=True)
        ],
    }
    ask = admin_client.post(url, chosen)
    assert ask.status_code == 200 and COURSE in ask.content.decode()
    assert LearningEvent.objects.count() == 0
    admin_client.post(url, {**chosen, "post": "yes", "course": run.pk}, follow=True)
    run.refresh_from_db()
    assert run.iri == COURSE
    assert LearningEvent.objects.filter(course=run).count() == 2
    assert not Statement.objects.filter(course__isnull=True).exists()


def test_statement_search_by_a_non_uuid_is_not_an_error(admin_client):
    Statement.objects.create(statement_id=uuid.uuid4(), data={}, verb_id="http://v",
                             actor_key="k", stored="2026-10-05T10:00:00Z",
                             timestamp="2026-10-05T10:00:00Z")  # fmt: skip
    url = reverse("admin:analytics_statement_changelist")
    assert admin_client.get(url, {"q": "not-a-uuid"}).status_code == 200
