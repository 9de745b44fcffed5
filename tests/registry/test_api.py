import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from eduplatform.celery import app as celery_app
from eduplatform.registry import services
from eduplatform.registry.models import ModelVersion
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def admin():
    return client_for(UserFactory(username="root", is_superuser=True, is_staff=True))


@pytest.fixture
def analyst():
    return client_for(UserFactory(username="analyst"))


def test_retrain_promote_rollback_versions(dummy_kind, admin):
    response = admin.post("/api/v1/models/dummy/retrain", {}, format="json")
    assert response.status_code == 202
    assert response.json()["version"] == 1
    assert admin.post("/api/v1/models/dummy/retrain", {}, format="json").status_code == 202
    versions = admin.get("/api/v1/models/dummy/versions").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["status"] == "active"
    rolled = admin.post("/api/v1/models/dummy/rollback", {}, format="json")
    assert rolled.status_code == 200 and rolled.json()["version"] == 1
    promoted = admin.post("/api/v1/models/dummy/promote", {"version": 2}, format="json")
    assert promoted.status_code == 200 and promoted.json()["status"] == "active"


def test_bad_requests(dummy_kind, admin):
    assert admin.get("/api/v1/models/nope/versions").status_code == 404
    assert admin.post("/api/v1/models/dummy/promote", {}, format="json").status_code == 400
    bad = admin.post("/api/v1/models/dummy/promote", {"version": "x"}, format="json")
    assert bad.status_code == 400 and "version" in bad.json()
    assert admin.post("/api/v1/models/dummy/rollback", {}, format="json").status_code == 400


def test_only_admins_operate_models(dummy_kind, analyst):
    assert analyst.post("/api/v1/models/dummy/retrain", {}, format="json").status_code == 403
    assert analyst.post("/api/v1/models/dummy/rollback", {}, format="json").status_code == 403
    assert APIClient().get("/api/v1/models/dummy/versions").status_code == 401


@pytest.mark.parametrize("role", ["analyst", "instructor", "no role"])
def test_only_admins_read_the_versions(dummy_kind, role):
    """Versions name validation runs, their churn rates and who triggered them (#24 item 1)."""
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from tests.factories import UserFactory

    user = UserFactory(username=f"user-{role.replace(' ', '-')}")
    if role == "analyst":
        user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    if role == "instructor":
        from tests.factories import CourseFactory

        CourseFactory().instructors.add(user)
    services.model_version_start(kind="dummy", triggered_by="someone")
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    by_session = APIClient()
    by_session.force_login(user)
    for client in (by_token, by_session):
        response = client.get("/api/v1/models/dummy/versions")
        assert response.status_code == 403
        assert "someone" not in response.content.decode()


def test_concurrent_retrain_conflicts(dummy_kind, admin):
    running = services.model_version_start(kind="dummy", triggered_by="other")
    response = admin.post("/api/v1/models/dummy/retrain", {}, format="json")
    assert response.status_code == 409
    assert response.json()["version"] == running.version


def test_broker_down_gives_503_and_no_open_run(dummy_kind, admin, settings):
    old = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    # A port nothing listens on: a real connection refusal, not a mock.
    celery_app.conf.broker_url = "redis://127.0.0.1:9/0"
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    try:
        response = admin.post("/api/v1/models/dummy/retrain", {}, format="json")
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.broker_url = old
        # Let the app pick the pools of the restored broker again.
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    # The run was never sent: no version row is left behind, not even a FAILED one (#24 item 4).
    assert not ModelVersion.objects.exists()
    # Once the broker is back, the next request opens version 1.
    assert admin.post("/api/v1/models/dummy/retrain", {}, format="json").json()["version"] == 1


def test_versions_carry_the_reason_in_the_reader_s_language(dummy_kind, admin):
    """The stored reason stays English; `status_reason_text` is what the models page's live
    message shows, in the request's language (#26 item 9)."""
    admin.post("/api/v1/models/dummy/retrain", {}, format="json")
    ModelVersion.objects.filter(kind="dummy").update(
        status_reason="worker lost: no heartbeat for 130 s"
    )
    english = admin.get("/api/v1/models/dummy/versions").json()[0]
    assert english["status_reason"] == english["status_reason_text"]
    chinese = admin.get("/api/v1/models/dummy/versions", HTTP_ACCEPT_LANGUAGE="zh-hans").json()[0]
    assert chinese["status_reason"] == "worker lost: no heartbeat for 130 s"
    assert chinese["status_reason_text"] != chinese["status_reason"]
    assert "130" in chinese["status_reason_text"]
