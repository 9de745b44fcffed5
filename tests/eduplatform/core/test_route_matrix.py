"""The role x route matrix (#24 item 1), generated from the URL configuration.

Every route the resolver knows, including the admin's and the API's, must carry a
declaration (eduplatform/core/access.py: `declare` on the view, or INCLUDED_ROUTES for
Django's and third-party apps'); a route added without one fails here before anyone
requests it. Then each route is requested as each role, with real ids from the factories
(a course run taught by one instructor, a learner enrolled in it, another run taught by
someone else), and the answer must match the declaration: a role let in is answered
(no 401/403/404, no redirect to a login page), a role kept out is refused (401/403/404
or sent to a login page), and no page shows a role rows of runs it may not read, nor a
learner's name to anyone but an admin. API routes are tried with a token and with a
session: both authenticate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from captcha.conf import settings
from captcha.models import CaptchaStore
from django.contrib import admin as django_admin
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from eduplatform.core import access
from tests.factories import (
    ContentItemFactory,
    CourseFactory,
    EnrollmentFactory,
    LearnerFactory,
    LearningEventFactory,
    SubmissionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
LOGIN_PATHS = ("/accounts/login/", "/admin/login/")
REFUSED = (401, 403, 404)


@dataclass(frozen=True)
class Route:
    route: str  # the pattern, prefixes included
    name: str  # the qualified URL name ("namespace:name"), or "namespace:pattern" if unnamed
    callback: Any


def _routes(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            # An unnamed route goes by its own pattern ("admin:(?P<url>.*)$").
            name = namespace + (pattern.name or str(pattern.pattern))
            yield Route(prefix + str(pattern.pattern), name, pattern.callback)


def _fill(route: str, values: dict[str, str]) -> str:
    """The route with its parameters replaced by real values (KeyError names a missing one)."""
    # Anchors of regex patterns sit inside the joined route (admin/^(?P<app_label>...)/$).
    route = re.sub(r"(?<=/)\^|^\^|\$$|\$(?=/)|\\Z", "", route)
    # Regex groups first: their "<name>" would look like a path converter.
    route = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", lambda m: values[m.group("name")], route)
    route = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", lambda m: values[m.group("name")], route)
    route = route.replace("\\.", ".")
    assert not any(c in route for c in "()[]*+?\\^$"), f"unfilled pattern {route}"
    return "/" + route


@dataclass
class Actor:
    label: str
    role: str  # access.ANONYMOUS or a role of access.role_of
    user: Any = None
    teaches_object_run: bool = False
    permissions: tuple[str, ...] = ()


@pytest.fixture
def world(db):
    """Two runs, each with its instructor and an enrolled learner; one user per role."""
    course, other = CourseFactory(code="MATRIXA_2026J"), CourseFactory(code="MATRIXB_2026J")
    mine, theirs = (
        EnrollmentFactory(course=course, learner=LearnerFactory(name="Ada Matrixname")),
        EnrollmentFactory(course=other, learner=LearnerFactory(name="Bob Matrixname")),
    )
    for enrollment in (mine, theirs):
        item = ContentItemFactory(course=enrollment.course)
        LearningEventFactory(learner=enrollment.learner, course=enrollment.course, item=item)
        SubmissionFactory(learner=enrollment.learner, assessment__course=enrollment.course)
    instructor = UserFactory(username="matrix-instructor")
    other_instructor = UserFactory(username="matrix-other-instructor")
    course.instructors.add(instructor)
    other.instructors.add(other_instructor)
    analyst = UserFactory(username="matrix-analyst")
    analyst.groups.add(Group.objects.get_or_create(name=access.ANALYST_GROUP)[0])
    ingest = UserFactory(username="matrix-ingest")
    ingest.user_permissions.add(
        Permission.objects.get(content_type__app_label="analytics", codename="add_learningevent")
    )
    actors = [
        Actor("anonymous", access.ANONYMOUS),
        Actor("no role", access.NO_ROLE, UserFactory(username="matrix-nobody")),
        Actor(
            "ingest token",
            access.NO_ROLE,
            ingest,
            permissions=("analytics.add_learningevent",),
        ),
        Actor("instructor of the run", access.INSTRUCTOR, instructor, teaches_object_run=True),
        Actor("instructor of another run", access.INSTRUCTOR, other_instructor),
        Actor("analyst", access.ANALYST, analyst),
        Actor(
            "platform admin",
            access.ADMIN,
            UserFactory(username="matrix-admin", is_superuser=True, is_staff=True),
        ),
    ]
    for actor in actors:
        if actor.user is not None:
            Token.objects.create(user=actor.user)
    return {"course": course, "other": other, "mine": mine, "theirs": theirs, "actors": actors}


def _values(world: dict[str, Any]) -> dict[str, str]:
    """Converter values: the object of every object route belongs to the first run."""
    return {
        "course_id": str(world["course"].pk),
        "pseudonym": world["mine"].learner.pseudonym,
        "kind": "churn",
        "uidb64": "MQ",
        "token": "set-password",
        "key": CaptchaStore.generate_key(),
        "content_type_id": str(ContentType.objects.get_for_model(type(world["course"])).pk),
        "object_id": str(world["course"].pk),
        "url": "nothing-here/",  # the admin's catch-all: an unknown admin page
    }


def _admin_variants() -> Iterator[tuple[dict[str, str], Any, Any]]:
    """Values of each registered model's admin routes: its first row (or a missing one)."""
    for model, model_admin in django_admin.site._registry.items():
        obj = model._default_manager.order_by("pk").first()
        values = {
            "app_label": model._meta.app_label,
            "model_name": model._meta.model_name,
            "object_id": str(obj.pk) if obj is not None else "0",
            "id": str(obj.pk) if obj is not None else "0",  # the user admin's password page
        }
        yield values, model_admin, obj


def _admin_denies_everyone(route: Route, model_admin: Any, obj: Any, superuser: Any) -> bool:
    """The model admin's own refinement: actions it refuses even a superuser (read-only rows)."""
    if model_admin is None:
        return False
    request = RequestFactory().get("/")
    request.user = superuser
    action = route.name.rsplit("_", 1)[-1]
    if action == "add":
        return not model_admin.has_add_permission(request)
    if action == "delete":
        return not model_admin.has_delete_permission(request, obj)
    return False


def _lets_in(policy: access.RouteAccess, actor: Actor) -> bool:
    if policy.permission is not None and policy.permission in actor.permissions:
        return True
    if actor.role not in policy.roles:
        return False
    return (
        not (policy.own_runs_only and actor.role == access.INSTRUCTOR) or actor.teaches_object_run
    )


# Requests that are not a plain GET: POST-only views get a body they refuse with a 400 when
# they let the caller in (so nothing trains or is written), set_language a target page.
POSTS: dict[str, dict[str, Any] | list[Any] | None] = {
    "api-events": [],
    "xapi-statements": {},
    "api-model-retrain": {"from_scratch": "maybe"},
    "api-model-promote": {"version": "x"},
    "api-model-rollback": {"version": "x"},
    "api-learner-interventions": {"kind": "phoned"},
    "logout": None,
    "admin:logout": None,
}
# Form posts (set_language reads request.POST) and headers some routes need to answer.
FORMS = {
    "set_language": {"language": "en", "next": "/healthz"},
    # an invalid action: those let in are sent back to the learner page, nothing recorded
    "analytics:learner-interventions": {"kind": "phoned"},
}
HEADERS = {"captcha-refresh": {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}}


def _client(actor: Actor, *, token: bool) -> APIClient:
    client = APIClient(raise_request_exception=False)
    if actor.user is not None and token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=actor.user).key}")
    elif actor.user is not None:
        client.force_login(actor.user)
    return client


def _request(client: APIClient, route: Route, url: str) -> tuple[Any, str]:
    """The route's own answer, and the path its redirects end at (a login page or not)."""
    headers = HEADERS.get(route.name, {})
    if route.name in POSTS:
        response = client.post(url, POSTS[route.name], format="json")
    elif route.name in FORMS:
        response = client.post(url, FORMS[route.name])
    else:
        response = client.get(url, **headers)
    final, hops = response, 0
    while final.status_code in (301, 302, 303, 307, 308) and hops < 5:
        target = urlsplit(final["Location"])
        if target.netloc or target.path in LOGIN_PATHS:
            break
        final, hops = client.get(target.path, dict_from_query(target.query)), hops + 1
    end = urlsplit(final["Location"]).path if final.status_code in (301, 302, 303) else ""
    return response, end


def dict_from_query(query: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in query.split("&") if "=" in part)


def _refused(response: Any, end: str) -> bool:
    return response.status_code in REFUSED or end in LOGIN_PATHS


def _answered(route: Route, response: Any, end: str) -> bool:
    if route.name == "readyz" and response.status_code == 503:
        return True  # its documented answer while a service it checks is down
    if route.name == "captcha-audio" and not settings.CAPTCHA_FLITE_PATH:
        return response.status_code == 404  # no speech synthesiser here: a 404 for everyone
    return response.status_code < 500 and not _refused(response, end)


def _leaks(actor: Actor, body: bytes, world: dict[str, Any]) -> list[str]:
    """Rows of runs the actor may not read, and learner names, found in a response."""
    text = body.decode("utf-8", "replace")
    leaks = []
    readable = _readable_runs(actor, world)
    for course, enrollment in ((world["course"], world["mine"]), (world["other"], world["theirs"])):
        if course.pk not in readable:
            leaks += [m for m in (course.code, enrollment.learner.pseudonym) if m in text]
    if actor.role != access.ADMIN:
        leaks += [m for m in ("Ada Matrixname", "Bob Matrixname") if m in text]
    return leaks


def _readable_runs(actor: Actor, world: dict[str, Any]) -> set[int]:
    if actor.role in (access.ADMIN, access.ANALYST):
        return {world["course"].pk, world["other"].pk}
    if actor.role == access.INSTRUCTOR:
        return {world["course"].pk if actor.teaches_object_run else world["other"].pk}
    return set()


def _cases(world: dict[str, Any]) -> Iterator[tuple[Route, str, access.RouteAccess | None, bool]]:
    """(route, url, declaration, admin denies it to all) for every route; admin routes once
    per registered model, the other routes once."""
    values = _values(world)
    superuser = next(a.user for a in world["actors"] if a.role == access.ADMIN)
    seen = set()
    admin_variants = list(_admin_variants())
    registered = {(v[0]["app_label"], v[0]["model_name"]) for v in admin_variants}
    for route in _routes(get_resolver().url_patterns):
        policy = access.route_access(route.callback, route.name)
        # A model's admin routes get that model's row; the app index every app label.
        model_route = re.match(r"admin/(\w+)/(\w+)/", route.route)
        if model_route is not None and model_route.groups() in registered:
            variants = (
                v
                for v in admin_variants
                if model_route.groups() == (v[0]["app_label"], v[0]["model_name"])
            )
        elif "(?P<app_label>" in route.route:
            variants = admin_variants
        else:
            variants = iter([({}, None, None)])
        variants = list(variants)
        # No route is skipped: one the walk cannot request is a failure, not a gap.
        assert variants, f"{route.route}: no registered admin model to request it with"
        for extra, model_admin, obj in variants:
            try:
                url = _fill(route.route, {**values, **extra})
            except KeyError as missing:
                raise AssertionError(f"{route.route}: no test value for {missing}") from None
            if url in seen:
                continue
            seen.add(url)
            yield route, url, policy, _admin_denies_everyone(route, model_admin, obj, superuser)


def test_every_route_declares_who_may_use_it():
    undeclared = [
        f"{r.route} ({r.name or 'unnamed'})"
        for r in _routes(get_resolver().url_patterns)
        if access.route_access(r.callback, r.name) is None
    ]
    assert undeclared == [], "declare who may use these routes (eduplatform/core/access.py)"


def test_each_role_gets_what_each_route_declares(world):
    wrong, leaks, requests, shown = [], [], 0, set()
    for route, url, policy, denied_to_all in _cases(world):
        assert policy is not None, f"{route.route} has no declaration"
        is_api = url.startswith(("/api/", "/xapi/"))
        query = f"?course={world['course'].pk}" if url.startswith("/api/v1/learners/") else ""
        for actor in world["actors"]:
            allowed = _lets_in(policy, actor) and not denied_to_all
            for token in (True, False) if is_api and actor.user is not None else (False,):
                response, end = _request(_client(actor, token=token), route, url + query)
                requests += 1
                ok = _answered(route, response, end) if allowed else _refused(response, end)
                if not ok:
                    how = "token" if token else "session"
                    wrong.append(
                        f"{url} as {actor.label} ({how}): {response.status_code} {end}"
                        f" - declared {policy.name}, {'let in' if allowed else 'kept out'}"
                    )
                body = b"" if response.streaming else response.content
                if response.streaming:
                    body = b"".join(response.streaming_content)
                if found := _leaks(actor, body, world):
                    leaks.append(f"{url} as {actor.label}: {found}")
                if actor.teaches_object_run and world["course"].code.encode() in body:
                    shown.add(url)
    assert requests > 400  # every route, every role (admin routes once per model)
    assert wrong == [], "\n".join(wrong)
    assert leaks == []
    # The leak check reads real pages: the run's own instructor sees its code on several.
    assert len(shown) >= 3, shown
