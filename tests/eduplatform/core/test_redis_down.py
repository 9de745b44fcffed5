"""With Redis unreachable the site keeps working (#24 item 4).

The cache and the Celery broker point at a closed port (127.0.0.1:9: a real
connection refusal, no mock). An admin walks every page and API route of the
URL conf and gets no server error; the login works (database sessions); the
prediction budget still answers 429 once spent (the throttles count per
process instead of failing open); a retrain answers 503 and writes no version.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin as django_admin
from django.core.cache import caches
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import ContentItem, Enrollment
from churn.features import serving_frames
from eduplatform.celery import app as celery_app
from eduplatform.core.throttles import PredictionBudgetThrottle
from eduplatform.registry import services, serving
from eduplatform.registry.models import ModelVersion
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
CLOSED = "redis://127.0.0.1:9/0"  # nothing listens there
FAST = {"seeds": [0], "max_epochs": 2, "refit": False}
PASSWORD = "a-long-enough-password-24"


@pytest.fixture
def platform(settings, tmp_path):
    """Seeded data and both models trained (with whatever cache the run has), then Redis down."""
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    serving.reset()
    serving_frames.clear()
    call_command("seed_demo", "--learners", "120", "--courses", "2", "--days", "150", "--seed", "5")
    for kind in ("churn", "recommender"):
        version = services.retrain_request(kind=kind, triggered_by="test", parameters=FAST)
        version.refresh_from_db()
        assert version.status == ModelVersion.Status.ACTIVE, version.status_reason
    UserFactory(username="root", is_superuser=True, is_staff=True, password=PASSWORD)
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CLOSED}
    }
    old = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = CLOSED
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    serving.reset()
    serving_frames.clear()
    with pytest.raises(Exception):  # noqa: B017 - whatever redis-py raises: it is down
        caches["default"].get("anything")
    yield
    celery_app.conf.task_always_eager, celery_app.conf.broker_url = old
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    serving.reset()
    serving_frames.clear()


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name


def _fill(route: str, values: dict[str, str]) -> str | None:
    """The route with its parameters replaced by real values, or None if one is unknown."""
    route = route.lstrip("^").rstrip("$").replace("\\Z", "")

    def value(match: re.Match) -> str:
        name = match.group("name")
        if name not in values:
            raise KeyError(name)
        return values[name]

    try:
        route = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", value, route)
        route = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", value, route)
    except KeyError:
        return None
    if any(c in route for c in "()[]*+?\\^$"):
        return None
    return "/" + route


def _admin_values() -> list[dict[str, str]]:
    """One object per registered admin model (its change, history and delete pages)."""
    out = []
    for model in django_admin.site._registry:
        obj = model._default_manager.order_by("pk").first()
        values = {
            "app_label": model._meta.app_label,
            "model_name": model._meta.model_name,
        }
        if obj is not None:
            values["object_id"] = str(obj.pk)
        out.append(values)
    return out


def test_every_page_and_api_route_answers_with_redis_down(platform):
    enrollment = Enrollment.objects.select_related("learner", "course").first()
    root = UserFactory._meta.model.objects.get(username="root")
    base = {
        "course_id": str(enrollment.course_id),
        "pseudonym": enrollment.learner.pseudonym,
        "kind": "churn",
        "uidb64": "MQ",
        "token": "set-password",
        "key": "0" * 40,
        "content_type_id": "1",
        "object_id": "1",
        "path": "nothing",
        "url": "nothing",
    }
    # Server errors come back as responses (counted below), not raised into the test.
    browser = APIClient(raise_request_exception=False)
    browser.force_login(root)
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=root).key}")
    query = f"?course={enrollment.course_id}"
    checked, failures = [], []
    for route, name in _routes(get_resolver().url_patterns):
        if name == "logout":
            continue  # would end the session of the walk; the login test covers sessions
        variants = _admin_values() if route.startswith("admin/") else [{}]
        for extra in variants:
            url = _fill(route, {**base, **extra})
            if url is None or url in checked:
                continue
            checked.append(url)
            client = api if url.startswith("/api/") else browser
            response = client.get(url + (query if url.startswith("/api/v1/learners/") else ""))
            if response.status_code >= 500 and name != "readyz":
                failures.append((url, response.status_code))
    # The API's writes: an event ingested (activity stamps cannot be bumped), a promotion
    # announced (the announcement cannot be shared), a rollback with nothing to go back to.
    item = ContentItem.objects.filter(course_id=enrollment.course_id).first()
    writes = [
        (
            "/api/v1/events",
            [
                {
                    "client_event_id": "redis-down-1",
                    "learner_id": "redis-down-learner",
                    "course": enrollment.course.code,
                    "item": item.external_id,
                    "verb": "viewed",
                    "occurred_at": "2026-10-05T10:00:00+00:00",
                }
            ],
            201,
        ),
        ("/api/v1/models/recommender/promote", {"version": 1}, 200),
        ("/api/v1/models/churn/rollback", {}, 400),
    ]
    for url, body, expected in writes:
        response = api.post(url, body, format="json")
        if response.status_code != expected:
            failures.append((url, response.status_code))
    assert len(checked) > 60
    assert failures == []
    # The prediction APIs really answer from the served models.
    risk = api.get(f"/api/v1/learners/{enrollment.learner.pseudonym}/risk{query}")
    assert risk.status_code == 200 and risk.json()["model_version"] == 1
    recs = api.get(f"/api/v1/learners/{enrollment.learner.pseudonym}/recommendations{query}")
    assert recs.status_code == 200
    # /readyz keeps its contract: it names the cache and the broker as down.
    ready = browser.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["cache"] != "ok" and ready.json()["checks"]["database"] == "ok"


def test_login_works_with_redis_down(platform):
    client = APIClient()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    page = client.get("/")
    assert page.status_code == 200
    assert page.wsgi_request.user.username == "root"


def test_prediction_budget_enforced_with_redis_down(platform, monkeypatch):
    monkeypatch.setattr(PredictionBudgetThrottle, "rate", "3/hour", raising=False)
    enrollment = Enrollment.objects.select_related("learner").first()
    api = APIClient()
    root = UserFactory._meta.model.objects.get(username="root")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=root).key}")
    url = f"/api/v1/learners/{enrollment.learner.pseudonym}/risk?course={enrollment.course_id}"
    statuses = [api.get(url).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = api.get(url.replace("/risk?", "/recommendations?"))
    assert limited.status_code == 429  # one budget across the prediction endpoints
    assert 0 < int(limited["Retry-After"]) <= 3600


def test_retrain_with_broker_down_is_503_and_writes_no_version(platform):
    api = APIClient()
    root = UserFactory._meta.model.objects.get(username="root")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=root).key}")
    before = set(ModelVersion.objects.values_list("id", "status"))
    response = api.post("/api/v1/models/churn/retrain", {}, format="json")
    assert response.status_code == 503
    assert set(ModelVersion.objects.values_list("id", "status")) == before
