"""The one typed reader of environment variables.

Every setting that can vary between machines is read here, so a typo or a bad
value fails at start-up with the variable's name instead of deep in a request.
"""

from __future__ import annotations

import datetime as dt
import os
from urllib.parse import parse_qs, quote, unquote, urlparse, urlunparse

from django.core.exceptions import ImproperlyConfigured

_MISSING = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, default: object) -> str | None:
    value = os.environ.get(name)
    if value is None:
        if default is _MISSING:
            raise ImproperlyConfigured(f"environment variable {name} is required")
        return None
    return value


def env_str(name: str, default: str | object = _MISSING) -> str:
    value = _raw(name, default)
    if value is None:
        assert isinstance(default, str)
        return default
    return value


def env_int(name: str, default: int | object = _MISSING) -> int:
    value = _raw(name, default)
    if value is None:
        assert isinstance(default, int)
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_float(name: str, default: float | object = _MISSING) -> float:
    value = _raw(name, default)
    if value is None:
        assert isinstance(default, (int, float))
        return float(default)
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from exc


def env_bool(name: str, default: bool | object = _MISSING) -> bool:
    value = _raw(name, default)
    if value is None:
        assert isinstance(default, bool)
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_list(name: str, default: list[str] | object = _MISSING) -> list[str]:
    value = _raw(name, default)
    if value is None:
        assert isinstance(default, list)
        return list(default)
    return [part.strip() for part in value.split(",") if part.strip()]


def env_date(name: str, default: dt.date | object = _MISSING) -> dt.date:
    """A calendar date written YYYY-MM-DD."""
    value = _raw(name, default)
    if value is None:
        assert isinstance(default, dt.date)
        return default
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a date (YYYY-MM-DD), got {value!r}") from exc


_ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "sqlite": "django.db.backends.sqlite3",
}


def parse_database_url(name: str, url: str) -> dict[str, object]:
    """``postgres://user:pass@host:port/db?opt=v`` or ``sqlite:///path`` -> DATABASES entry."""
    parsed = urlparse(url)
    engine = _ENGINES.get(parsed.scheme)
    if engine is None:
        raise ImproperlyConfigured(
            f"{name} has unsupported scheme {parsed.scheme!r} (use postgres:// or sqlite:///)"
        )
    if engine.endswith("sqlite3"):
        path = unquote(parsed.path)
        # sqlite:///relative.db gives "/relative.db"; sqlite:////abs.db gives "//abs.db".
        db_name = path[1:] if path.startswith("//") else path.lstrip("/") or ":memory:"
        return {"ENGINE": engine, "NAME": db_name}
    db_name = unquote(parsed.path.lstrip("/"))
    if not db_name:
        raise ImproperlyConfigured(f"{name} must name a database, got {url!r}")
    options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    return {
        "ENGINE": engine,
        "NAME": db_name,
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def parse_replica_url(name: str, url: str, primary: dict[str, object]) -> dict[str, object]:
    """The read replica's DATABASES entry: a physical copy of ``primary`` on another server.

    ``postgres://user@host:port`` (no database) reads the primary's database there.

    In tests it mirrors the primary's test database (same NAME, never created or flushed on
    its own): PostgreSQL streaming replication brings the test database and its rows over.
    """
    if primary["ENGINE"] != _ENGINES["postgres"]:
        raise ImproperlyConfigured(
            f"{name} needs DATABASE_URL on PostgreSQL too (a replica is a copy of the primary)"
        )
    parsed = urlparse(url)
    if not parsed.path.strip("/"):
        # A physical replica holds the primary's databases under the same names.
        url = urlunparse(parsed._replace(path="/" + quote(str(primary["NAME"]))))
    replica = parse_database_url(name, url)
    if replica["NAME"] != primary["NAME"]:
        raise ImproperlyConfigured(
            f"{name} must name the same database as DATABASE_URL ({primary['NAME']!r}) or none"
        )
    replica["TEST"] = {"MIRROR": "default"}
    return replica
