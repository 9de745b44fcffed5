import pytest


@pytest.mark.django_db
def test_healthz_needs_no_login_and_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


# /readyz ---------------------------------------------------------------------------------

CLOSED = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there


@pytest.fixture
def broker_url():
    """Point the Celery app's broker elsewhere for one test, then put it back."""
    from eduplatform.celery import app

    old = app.conf.broker_url

    def point(url: str) -> None:
        app.conf.broker_url = url

    yield point
    app.conf.broker_url = old


@pytest.mark.django_db
def test_readyz_is_200_when_every_dependency_answers(client, settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok", "artifact_store": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]
    assert (tmp_path / "artifacts").is_dir()
    assert not list((tmp_path / "artifacts").iterdir())  # the probe file is gone


@pytest.mark.django_db
def test_readyz_checks_a_real_redis_cache_and_broker(
    client, settings, tmp_path, redis_url, broker_url
):
    settings.ARTIFACT_DIR = tmp_path
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    broker_url(redis_url)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()


@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_its_port_is_closed(client, settings, tmp_path, broker_url):
    settings.ARTIFACT_DIR = tmp_path
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CLOSED}
    }
    broker_url(CLOSED)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    checks = body["checks"]
    assert checks["database"] == "ok" and checks["artifact_store"] == "ok"
    for name in ("cache", "broker"):
        assert checks[name] != "ok"
        assert "Connection" in checks[name] or "refused" in checks[name], checks[name]


@pytest.mark.django_db
def test_readyz_is_503_when_the_artifact_store_is_not_writable(client, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.ARTIFACT_DIR = blocker / "artifacts"
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["artifact_store"].startswith(("NotADirectoryError", "FileExistsError"))
    assert checks["database"] == checks["cache"] == checks["broker"] == "ok"


def test_healthz_stays_cheap_when_redis_is_down(client, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CLOSED}
    }
    assert client.get("/healthz").status_code == 200
