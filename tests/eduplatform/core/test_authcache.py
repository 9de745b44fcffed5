"""Remembered access grants of the prediction API are revoked at once by every change
that could refuse them, and are never used when the shared generation is unknown."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import Enrollment
from analytics.services import learner_erase
from eduplatform.core import access, authcache, throttles
from tests.browser.world import World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def risk_url(world: World, learner, course=None) -> str:
    course = course or world.course_a
    return f"/api/v1/learners/{learner.pseudonym}/risk?course={course.pk}"


def queries_of(client: APIClient, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        status = client.get(url).status_code
    return status, len(captured)


def primed(world: World, user, learner) -> APIClient:
    """A client whose token and enrolment grants are remembered (the repeat asks nothing)."""
    client = api(user)
    url = risk_url(world, learner)
    assert client.get(url).status_code == 200
    assert queries_of(client, url) == (200, 0)
    return client


def test_repeat_is_answered_from_memory(world: World) -> None:
    learner = world.learners[world.course_a.code][1]
    primed(world, world.instructor_a, learner)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("delete_token", 401),
        ("deactivate_user", 401),
        ("remove_instructor", 404),
        ("delete_enrolment", 404),
        ("erase_learner", 404),
    ],
)
def test_changes_revoke_remembered_grants_at_once(world: World, change: str, status: int) -> None:
    user, learner = world.instructor_a, world.learners[world.course_a.code][1]
    client = primed(world, user, learner)
    changes: dict[str, Callable[[], object]] = {
        "delete_token": lambda: Token.objects.get(user=user).delete(),
        "deactivate_user": lambda: (setattr(user, "is_active", False), user.save()),
        "remove_instructor": lambda: world.course_a.instructors.remove(user),
        "delete_enrolment": lambda: Enrollment.objects.get(
            learner=learner, course=world.course_a
        ).delete(),
        "erase_learner": lambda: learner_erase(pseudonym=learner.pseudonym),
    }
    changes[change]()
    assert client.get(risk_url(world, learner)).status_code == status


def test_analyst_leaving_the_group_is_refused_at_once(world: World) -> None:
    learner = world.learners[world.course_b.code][1]
    client = api(world.analyst)
    url = risk_url(world, learner, world.course_b)
    assert client.get(url).status_code == 200
    assert queries_of(client, url) == (200, 0)
    world.analyst.groups.remove(Group.objects.get(name=access.ANALYST_GROUP))
    assert client.get(url).status_code == 404


def test_a_change_made_by_another_process_is_seen(world: World) -> None:
    """Another process's change reaches this one only through the shared generation."""
    learner = world.learners[world.course_a.code][1]
    client = primed(world, world.instructor_a, learner)
    # What a bump in another process leaves behind: a new generation, this
    # process's memory untouched.
    cache.set(authcache.GENERATION_KEY, "changed-elsewhere", None)
    assert queries_of(client, risk_url(world, learner)) == (200, 2)


def test_refusals_are_not_remembered(world: World) -> None:
    learner = world.learners[world.course_a.code][1]
    client = api(world.instructor_b)
    url = risk_url(world, learner)
    assert client.get(url).status_code == 404
    world.course_a.instructors.add(world.instructor_b)
    assert client.get(url).status_code == 200


def test_admin_answers_are_not_remembered(world: World) -> None:
    learner = world.learners[world.course_a.code][1]
    client = api(world.admin)
    url = risk_url(world, learner)
    assert client.get(url).status_code == 200
    status, queries = queries_of(client, url)
    assert status == 200 and queries == 1  # the token is remembered, the personal row is not


def test_nothing_is_remembered_without_a_generation(world: World, monkeypatch) -> None:
    learner = world.learners[world.course_a.code][1]
    client = api(world.instructor_a)
    url = risk_url(world, learner)
    assert client.get(url).status_code == 200

    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    # Every way the generation is read: the Redis script, or any backend's calls.
    monkeypatch.setattr(throttles, "_redis_hits", unreachable)
    backend = type(throttles.cache_backend(cache))
    for method in ("add", "get", "get_many", "set"):
        monkeypatch.setattr(backend, method, unreachable)
    assert authcache.current_generation() is None
    assert queries_of(client, url) == (200, 2)
    assert queries_of(client, url) == (200, 2)


def test_memory_can_be_switched_off(world: World, settings) -> None:
    settings.AUTH_CACHE_SECONDS = 0
    learner = world.learners[world.course_a.code][1]
    client = api(world.instructor_a)
    url = risk_url(world, learner)
    assert client.get(url).status_code == 200
    assert queries_of(client, url) == (200, 2)


def test_entries_expire(world: World, settings) -> None:
    learner = world.learners[world.course_a.code][1]
    client = primed(world, world.instructor_a, learner)
    settings.AUTH_CACHE_SECONDS = 0.001
    time.sleep(0.01)
    assert queries_of(client, risk_url(world, learner)) == (200, 2)
