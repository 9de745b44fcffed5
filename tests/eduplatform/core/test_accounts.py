import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.CAPTCHA_AFTER_FAILURES = 2


def post_login(ip: str, username: str, password: str, captcha: bool = False):
    data = {"username": username, "password": password}
    if captcha:
        # CAPTCHA_TEST_MODE accepts "PASSED" for any challenge.
        data.update({"captcha_0": "any", "captcha_1": "PASSED"})
    return Client(REMOTE_ADDR=ip).post("/accounts/login/", data)


def test_captcha_appears_after_the_first_failures():
    UserFactory(username="ana")
    assert 'name="captcha_1"' not in Client().get("/accounts/login/").content.decode()
    for _ in range(2):
        assert post_login("10.0.0.1", "ana", "wrong").status_code == 200
    page = Client(REMOTE_ADDR="10.0.0.1").get("/accounts/login/").content.decode()
    assert 'name="captcha_1"' in page
    # Without the captcha even the right password is refused now.
    assert post_login("10.0.0.1", "ana", PASSWORD).status_code == 200
    assert post_login("10.0.0.1", "ana", PASSWORD, captcha=True).status_code == 302


def test_captcha_is_checked_before_the_password(monkeypatch):
    """A wrong captcha answer gets the same page with the right or a wrong password (#24)."""
    from captcha.conf import settings as captcha_settings
    from captcha.models import CaptchaStore

    monkeypatch.setattr(captcha_settings, "CAPTCHA_TEST_MODE", False)  # a real check
    UserFactory(username="ana")
    for _ in range(2):
        post_login("10.0.0.9", "ana", "wrong")

    def attempt(password: str, answer: str) -> tuple[int, str]:
        key = CaptchaStore.generate_key()
        data = {"username": "ana", "password": password, "captcha_0": key, "captcha_1": answer}
        response = Client(REMOTE_ADDR="10.0.0.9").post("/accounts/login/", data)
        return response.status_code, response.context["form"].errors.as_json()

    right = attempt(PASSWORD, "wrong answer")
    wrong = attempt("not-the-password", "wrong answer")
    assert right[0] == wrong[0] == 200
    assert right[1] == wrong[1]
    assert "captcha" in right[1] and "__all__" not in right[1]
    # The right answer with the right password logs in.
    key = CaptchaStore.generate_key()
    answer = CaptchaStore.objects.get(hashkey=key).response
    data = {"username": "ana", "password": PASSWORD, "captcha_0": key, "captcha_1": answer}
    assert Client(REMOTE_ADDR="10.0.0.9").post("/accounts/login/", data).status_code == 302


def test_lockout_is_per_username_and_ip():
    UserFactory(username="ana")
    UserFactory(username="ben")
    for _ in range(5):
        post_login("10.0.0.1", "ana", "wrong", captcha=True)
    locked = post_login("10.0.0.1", "ana", PASSWORD, captcha=True)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    # A colleague behind the same IP is not locked out...
    assert post_login("10.0.0.1", "ben", PASSWORD, captcha=True).status_code == 302
    # ...nor is the same user from another network.
    assert post_login("10.0.0.2", "ana", PASSWORD, captcha=True).status_code == 302


def test_session_cookie_is_http_only():
    UserFactory(username="ana")
    response = post_login("10.0.0.3", "ana", PASSWORD)
    assert response.status_code == 302
    assert response.cookies["sessionid"]["httponly"]


@pytest.mark.parametrize("weak", ["short", "1234567890123", "password123"])
def test_password_validators_reject_weak_passwords(weak):
    with pytest.raises(ValidationError):
        validate_password(weak)
