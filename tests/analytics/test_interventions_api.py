"""POST /api/v1/learners/<pseudonym>/interventions (#27 item 5)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import Intervention
from tests.factories import CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _post(client, enrollment, **body):
    values = {"course": enrollment.course.pk, "kind": "met", "date": "2026-10-20", **body}
    url = f"/api/v1/learners/{enrollment.learner.pseudonym}/interventions"
    return client.post(url, values, format="json")


def test_the_runs_instructor_records_an_action(run):
    enrollment, instructor = run
    response = _post(_client(instructor), enrollment, note="Talked after the tutorial")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["learner"], body["course"], body["kind"], body["date"], body["note"]) == (
        enrollment.learner.pseudonym,
        enrollment.course.pk,
        "met",
        "2026-10-20",
        "Talked after the tutorial",
    )
    assert Intervention.objects.get().pk == body["id"]


def test_bad_fields_are_a_400_by_field_and_nothing_is_written(run):
    enrollment, instructor = run
    response = _post(_client(instructor), enrollment, kind="phoned", date="soon", note="a\x00")
    assert response.status_code == 400
    assert set(response.json()) == {"kind", "date", "note"}
    future = _post(_client(UserFactory(is_superuser=True)), enrollment, date="2999-01-01")
    assert future.status_code == 400 and set(future.json()) == {"date"}
    assert not Intervention.objects.exists()


def test_a_run_the_instructor_does_not_teach_is_a_403(run):
    enrollment, instructor = run
    foreign = EnrollmentFactory(learner=enrollment.learner)  # same learner, another run
    response = _post(_client(instructor), enrollment, course=foreign.course.pk)
    assert response.status_code == 403
    assert not Intervention.objects.exists()


@pytest.mark.parametrize("who", ["other instructor", "analyst"])
def test_learners_of_foreign_runs_are_404(run, who):
    enrollment, _ = run
    user = UserFactory()
    if who == "analyst":
        user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    else:
        CourseFactory().instructors.add(user)
    assert _post(_client(user), enrollment).status_code == 404
    assert not Intervention.objects.exists()


def test_a_learner_not_in_the_run_is_a_404(run):
    enrollment, instructor = run
    other = EnrollmentFactory(course=CourseFactory())
    other.course.instructors.add(instructor)
    response = _post(_client(instructor), enrollment, course=other.course.pk)
    assert response.status_code == 404
    assert not Intervention.objects.exists()


def test_the_schema_types_the_operation():
    schema = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/learners/{pseudonym}/interventions"]["post"]
    assert {"201", "400", "403", "404"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]
    assert set(fields) == {"course", "kind", "date", "note"}
