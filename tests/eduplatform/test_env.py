import pytest
from django.core.exceptions import ImproperlyConfigured

from eduplatform.settings.env import env_bool, env_int, env_list, env_str, parse_database_url


def test_defaults_and_parsing(monkeypatch):
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_int("X_INT") == 42
    assert env_bool("X_BOOL") is True
    assert env_list("X_LIST") == ["a", "b", "c"]
    assert env_str("X_ABSENT", "fallback") == "fallback"


@pytest.mark.parametrize(("reader", "value"), [(env_int, "4x"), (env_bool, "maybe")])
def test_bad_values_fail_loudly_naming_the_variable(monkeypatch, reader, value):
    monkeypatch.setenv("X_BAD", value)
    with pytest.raises(ImproperlyConfigured, match="X_BAD"):
        reader("X_BAD")


def test_required_variable_missing(monkeypatch):
    monkeypatch.delenv("X_REQUIRED", raising=False)
    with pytest.raises(ImproperlyConfigured, match="X_REQUIRED is required"):
        env_str("X_REQUIRED")


def test_database_urls():
    pg = parse_database_url("DATABASE_URL", "postgres://u:p%40ss@db.local:5433/app?sslmode=require")
    assert pg["ENGINE"] == "django.db.backends.postgresql"
    assert (pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "app",
        "u",
        "p@ss",
        "db.local",
        "5433",
    )
    assert pg["OPTIONS"] == {"sslmode": "require"}
    assert parse_database_url("D", "sqlite:////tmp/x.db")["NAME"] == "/tmp/x.db"
    with pytest.raises(ImproperlyConfigured, match="unsupported scheme"):
        parse_database_url("D", "mysql://x/y")


def test_env_date(monkeypatch):
    import datetime as dt

    from eduplatform.settings.env import env_date

    monkeypatch.setenv("X_DATE", "2001-02-03")
    assert env_date("X_DATE") == dt.date(2001, 2, 3)
    assert env_date("X_DATE_ABSENT", dt.date(1990, 1, 1)) == dt.date(1990, 1, 1)
    monkeypatch.setenv("X_DATE", "03/02/2001")
    with pytest.raises(ImproperlyConfigured, match="X_DATE"):
        env_date("X_DATE")
