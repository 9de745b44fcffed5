import pytest
from django.contrib.auth.models import Permission
from django.core.cache import caches
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from eduplatform.core.throttles import IngestRateThrottle
from tests.factories import CourseFactory, UserFactory

pytestmark = pytest.mark.django_db


def ingest_client(name: str) -> APIClient:
    user = UserFactory(username=name)
    user.user_permissions.add(Permission.objects.get(codename="add_learningevent"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_rate_limit_is_per_token_with_retry_after(monkeypatch):
    monkeypatch.setattr(IngestRateThrottle, "rate", "2/min", raising=False)
    CourseFactory(code="C1")
    first, second = ingest_client("a"), ingest_client("b")
    statuses = [first.post("/api/v1/events", [], format="json").status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    limited = first.post("/api/v1/events", [], format="json")
    assert limited.status_code == 429
    assert 0 < int(limited["Retry-After"]) <= 60
    # Another token has its own budget.
    assert second.post("/api/v1/events", [], format="json").status_code == 400


def test_throttle_counts_in_process_when_the_cache_is_down(monkeypatch, settings):
    monkeypatch.setattr(IngestRateThrottle, "rate", "1/min", raising=False)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens there
        }
    }
    monkeypatch.setattr(IngestRateThrottle, "cache", caches["default"])
    client = ingest_client("c")
    statuses = [client.post("/api/v1/events", [], format="json").status_code for _ in range(3)]
    # Not failing open (#24 item 4): the same rate, counted in this process.
    assert statuses == [400, 429, 429]


def test_prediction_api_has_an_hourly_budget_per_token(monkeypatch):
    from eduplatform.core.throttles import PredictionBudgetThrottle
    from tests.factories import EnrollmentFactory

    monkeypatch.setattr(PredictionBudgetThrottle, "rate", "2/hour", raising=False)
    enrollment = EnrollmentFactory()
    admin = UserFactory(username="boss", is_superuser=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin).key}")
    url = f"/api/v1/learners/{enrollment.learner.pseudonym}/risk?course={enrollment.course_id}"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    limited = client.get(url.replace("/risk?", "/recommendations?"))
    assert limited.status_code == 429  # one budget across the prediction endpoints
    assert int(limited["Retry-After"]) > 60  # an hourly window, not a per-minute one


def test_local_counter_opens_a_new_window_when_one_ends():
    """The per-process fallback (Redis down): a fixed window per key, then a fresh one."""
    import time

    from eduplatform.core.throttles import local_hit

    assert [local_hit("t:window", 1)[0] for _ in range(3)] == [1, 2, 3]
    assert 0 < local_hit("t:other", 1)[1] <= 1
    time.sleep(1.05)
    assert local_hit("t:window", 1)[0] == 1
