"""The prediction endpoints' shared path: token + role in one query, enrolment in one query,
and the same answers (200 or 404) as the per-object access helpers give one by one."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from eduplatform.core import access, authcache
from eduplatform.core.prediction_api import token_with_role
from tests.browser.world import World, build_world
from tests.factories import CourseFactory, LearnerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def test_token_role_matches_access_role_of(world: World) -> None:
    both = UserFactory(username="analyst-and-teacher")
    both.groups.add(Group.objects.get(name=access.ANALYST_GROUP))
    world.course_a.instructors.add(both)
    super_teacher = UserFactory(username="super-teacher", is_superuser=True)
    world.course_b.instructors.add(super_teacher)
    users = [
        world.admin,
        world.analyst,
        world.instructor_a,
        world.instructor_b,
        world.nobody,
        both,
        super_teacher,
    ]
    for user in users:
        primed, _ = token_with_role(TokenAuthentication(), token_for(user))
        fresh = get_user_model().objects.get(pk=user.pk)
        assert access.role_of(primed) == access.role_of(fresh), user.username
    inactive = UserFactory(username="gone", is_active=False)
    with pytest.raises(AuthenticationFailed):
        token_with_role(TokenAuthentication(), token_for(inactive))
    with pytest.raises(AuthenticationFailed):
        token_with_role(TokenAuthentication(), "no-such-token")


def test_prediction_access_matches_the_helpers(world: World) -> None:
    learner = world.learners[world.course_a.code][-2]  # enrolled in course A only
    risk = f"/api/v1/learners/{learner.pseudonym}/risk?course={world.course_a.pk}"
    expected = {
        "admin": 200,
        "analyst": 200,
        "instructor_a": 200,
        "instructor_b": 404,  # another run's learner
        "nobody": 404,
    }
    for role, status in expected.items():
        response = api(getattr(world, role)).get(risk)
        assert response.status_code == status, role
        recs = api(getattr(world, role)).get(risk.replace("/risk?", "/recommendations?"))
        assert recs.status_code == status, role
    # Visible learner, visible run, but not enrolled in it: 404 with the helpers' message.
    other_run = f"/api/v1/learners/{learner.pseudonym}/risk?course={world.course_b.pk}"
    response = api(world.admin).get(other_run)
    assert response.status_code == 404
    assert "not enrolled" in response.json()["detail"]
    # Instructor B: the learner is not theirs, whatever run is asked for.
    assert api(world.instructor_b).get(other_run).status_code == 404
    # Unknown learner, unknown run.
    unknown = f"/api/v1/learners/{LearnerFactory().pseudonym}/risk?course={world.course_a.pk}"
    assert api(world.admin).get(unknown).status_code == 404
    missing_run = f"/api/v1/learners/{learner.pseudonym}/risk?course={CourseFactory().pk + 1000}"
    assert api(world.admin).get(missing_run).status_code == 404
    # Non-admins never load the encrypted personal fields.
    shared = world.shared
    url = f"/api/v1/learners/{shared.pseudonym}/risk?course={world.course_a.pk}"
    with CaptureQueriesContext(connection) as queries:
        assert api(world.analyst).get(url).status_code == 200
    learner_reads = [q["sql"] for q in queries if '"analytics_learner"' in q["sql"]]
    assert learner_reads and all('"email"' not in sql for sql in learner_reads)


def test_prediction_request_costs_two_queries_then_none(
    world: World, django_assert_num_queries
) -> None:
    first, second = world.learners[world.course_a.code][:2]
    client = api(world.instructor_a)

    def risk(learner) -> str:
        return f"/api/v1/learners/{learner.pseudonym}/risk?course={world.course_a.pk}"

    assert client.get(risk(first)).status_code == 200  # warm: the registry looks for a model once
    authcache.remembered.clear()
    # Token with role, enrolment with learner and run.
    with django_assert_num_queries(2):
        assert client.get(risk(first)).status_code == 200
    # Both grants remembered: a repeat asks the database nothing.
    with django_assert_num_queries(0):
        assert client.get(risk(first)).status_code == 200
    # Another learner of the same caller: only the enrolment.
    with django_assert_num_queries(1):
        assert client.get(risk(second)).status_code == 200


def test_compiled_queries_match_the_orm(world: World) -> None:
    """The once-compiled SQL gives exactly the ORM's rows, for every role and outcome."""
    from eduplatform.core.prediction_api import (
        enrolment_query,
        enrolment_rows,
        token_query,
        token_rows,
    )

    users = [world.admin, world.analyst, world.instructor_a, world.instructor_b, world.nobody]
    for user in users:
        key = token_for(user)
        for probe in (key, key[:-1] + "x"):
            assert token_rows.rows((Token,), {"key": probe}) == list(
                token_query({"key": probe}, Token)
            )
        role = access.role_of(get_user_model().objects.get(pk=user.pk))
        personal = role == access.ADMIN
        for learner in world.all_learners():
            for course in (world.course_a, world.course_b):
                values = {
                    "user_id": user.pk,
                    "course_id": course.pk,
                    "pseudonym": learner.pseudonym,
                }
                expected = list(enrolment_query(values, role, personal))
                assert enrolment_rows.rows((role, personal), values) == expected


@pytest.mark.parametrize(
    "course", [None, "", "0", "1", "42", "+1", " 1", "1.0", "abc", "\u0661", "9" * 12]
)
@pytest.mark.parametrize("k", [None, "", "0", "1", "10", "50", "51", "-3", "07"])
def test_plain_integer_fast_path_agrees_with_the_serializer(course, k) -> None:
    from django.http import QueryDict

    from eduplatform.core.prediction_api import PredictionQuery, plain_integers
    from recommender.api import RecommendationQuery

    params = QueryDict(mutable=True)
    for name, value in (("course", course), ("k", k)):
        if value is not None:
            params[name] = value
    for query_class in (PredictionQuery, RecommendationQuery):
        fast = plain_integers(query_class, params)
        serializer = query_class(data=params)
        if fast is not None:
            assert serializer.is_valid() and fast == dict(serializer.validated_data)
        elif course is not None and course.isascii() and course.isdigit() and int(course) >= 1:
            # Only out-of-range or odd k (or an over-long id) leaves the fast path here.
            assert query_class is RecommendationQuery or len(course) > 9


@pytest.mark.parametrize(
    "query",
    [
        "course={course}&k=\u0665",  # Arabic-Indic five
        "course={course}&k= 5",
        "course=\uff11",  # full-width one
        "course= {course}",
    ],
)
def test_numbers_in_the_query_are_ascii_digits_only(world: World, query: str) -> None:
    """#24 item 6: Unicode digits and padded numbers are a 400 naming the field."""
    learner = world.learners[world.course_a.code][-2]
    url = f"/api/v1/learners/{learner.pseudonym}/recommendations?" + query.format(
        course=world.course_a.pk
    )
    response = api(world.admin).get(url)
    assert response.status_code == 400, response.content
    field = "k" if "k=" in query else "course"
    assert field in response.json()


@pytest.mark.parametrize("raw", ["\u0665", "\uff11", " 5", "5 ", "+5", "-5", "", "1" * 10, "5.0"])
def test_ascii_int_refuses_anything_but_plain_digits(raw: str) -> None:
    from eduplatform.core.inputs import AsciiIntegerField, ascii_int

    assert ascii_int(raw) is None
    with pytest.raises(serializers.ValidationError):
        AsciiIntegerField().run_validation(raw)


def test_ascii_int_takes_plain_digits() -> None:
    from eduplatform.core.inputs import AsciiIntegerField, ascii_int

    assert ascii_int("0042") == 42
    assert AsciiIntegerField(min_value=1).run_validation("7") == 7
    assert AsciiIntegerField().run_validation(7) == 7  # a JSON number
