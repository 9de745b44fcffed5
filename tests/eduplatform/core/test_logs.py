"""Run the main flows with every logger at DEBUG (SQL included) and grep for names and emails."""

import json
import logging

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from eduplatform.core.logs import JsonFormatter
from tests.factories import (
    ContentItemFactory,
    CourseFactory,
    EnrollmentFactory,
    LearnerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_flows_log_pseudonyms_only(caplog, tmp_path):
    course = CourseFactory(code="PII_2026J", iri="https://lms.example.org/pii")
    ContentItemFactory(course=course, external_id="https://lms.example.org/pii/video")
    learners = [
        LearnerFactory(name=f"Zelda Quixote{n}", email=f"zelda.quixote{n}@example.org")
        for n in range(5)
    ]
    for learner in learners:
        EnrollmentFactory(learner=learner, course=course)
    user = UserFactory(username="ingest")
    user.user_permissions.add(Permission.objects.get(codename="add_learningevent"))
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}",
        HTTP_X_EXPERIENCE_API_VERSION="1.0.3",
    )
    statement = {
        "actor": {"mbox": "mailto:yolanda.pii@example.org", "name": "Yolanda Piimaker"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": "https://lms.example.org/pii/video"},
        "timestamp": "2026-10-05T10:00:00+00:00",
    }
    connection.force_debug_cursor = True
    try:
        with (
            caplog.at_level(logging.DEBUG),
            caplog.at_level(logging.DEBUG, logger="django"),
            caplog.at_level(logging.DEBUG, logger="django.db.backends"),
        ):
            assert client.post("/xapi/statements", statement, format="json").status_code == 200
            assert client.post("/xapi/statements", {"actor": {}}, format="json").status_code == 400
            events = [
                {
                    "client_event_id": f"e{n}",
                    "learner_id": f"zelda.quixote{n}@example.org",
                    "course": "PII_2026J",
                    "verb": "viewed",
                    "occurred_at": "2026-10-05T10:00:00+00:00",
                }
                for n in range(3)
            ]
            assert client.post("/api/v1/events", events, format="json").status_code == 201
            call_command(
                "export_learner", learners[0].pseudonym, "--output", str(tmp_path / "x.json")
            )
            call_command("erase_learner", learners[1].pseudonym)
    finally:
        connection.force_debug_cursor = False
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert len(caplog.records) > 20  # the flows did log (SQL included)
    secrets = ["zelda", "quixote", "yolanda", "piimaker", "@example.org"]
    assert [s for s in secrets if s in text.lower()] == []
    # Every record is one JSON object on one line (#30: non-JSON lines were skipped, so
    # the check could pass on no lines at all).
    lines = text.splitlines()
    assert len(lines) == len(caplog.records)
    assert all(isinstance(json.loads(line), dict) for line in lines)
