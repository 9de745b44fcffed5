"""A page under the production settings is styled and draws its charts in chromium.

The deployment the README describes, on one machine: DEBUG off, `collectstatic` into a
temporary STATIC_ROOT (hashed, compressed names), gunicorn on 127.0.0.1 serving them
through WhiteNoise, the browser behind the TLS proxy's header (X-Forwarded-Proto). The
data is a small seeded platform in a temporary SQLite file. A 404 on the stylesheet or on
Chart.js (nothing served /static/ with DEBUG off before WhiteNoise) leaves the header
unstyled and the canvases blank, and fails here.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.test_api_docs import browser  # noqa: F401  (the module's chromium fixture)
from tests.eduplatform.test_deploy import production_env
from tests.eduplatform.test_production_static import gunicorn

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"
PROXY = {"X-Forwarded-Proto": "https"}
# .site-header's background in static/css/app.css (#14263b); unstyled it is transparent.
HEADER_BACKGROUND = "rgb(20, 38, 59)"
# A drawn chart covers thousands of pixels; a blank canvas has none.
MIN_DRAWN_PIXELS = 500

# The admin's session, made the way Django's login makes one. The browser cannot sign in
# through the form here: behind the proxy header every request is HTTPS to Django, whose
# CSRF check then refuses the plain-HTTP Origin of a page on 127.0.0.1 (as it should).
SIGN_IN = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
user = get_user_model().objects.get(username="admin")
store = import_module(settings.SESSION_ENGINE).SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.create()
print(store.session_key)
"""

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (args, done.stderr[-3000:])


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict[str, object]]:
    tmp = tmp_path_factory.mktemp("production-browser")
    database = tmp / "site.sqlite3"
    env = production_env(
        STATIC_ROOT=str(tmp / "static"),
        DATABASE_URL=f"sqlite:///{database}",
        ALLOWED_HOSTS="127.0.0.1",
        ARTIFACT_DIR=str(tmp / "artifacts"),
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "collectstatic", "--noinput", "-v", "0")
    manage(env, "seed_demo", "--learners", "60", "--courses", "1", "--days", "60", "-v", "0")
    manage(env, "createsuperuser", "--noinput", "--username", "admin", "--email", "a@example.org")
    session = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SIGN_IN],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.split()[-1]  # fmt: skip
    with sqlite3.connect(database) as db:
        (course_id,) = db.execute("SELECT min(id) FROM analytics_course").fetchone()
    with gunicorn(env, tmp / "gunicorn.log", PROXY) as base:
        yield {"base": base, "course_id": course_id, "session": session}


def test_course_page_is_styled_and_draws_its_charts_under_production_settings(
    browser,  # noqa: F811
    site,
) -> None:
    base = str(site["base"])
    context = browser.new_context(extra_http_headers=PROXY, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        context.add_cookies([{"name": "sessionid", "value": site["session"], "url": base}])
        page.goto(f"{base}/courses/{site['course_id']}/")
        page.wait_for_load_state("load")
        # Styled: the stylesheet's rule applies (it came under its hashed name).
        assert (
            page.evaluate(
                "getComputedStyle(document.querySelector('.site-header')).backgroundColor"
            )
            == HEADER_BACKGROUND
        ), failed
        stylesheets = page.evaluate("[...document.styleSheets].map(s => s.href)")
        assert any("/static/css/app." in (href or "") for href in stylesheets), stylesheets
        page.wait_for_selector("html[data-charts-ready]", timeout=20_000)
        # Drawn: the vendored Chart.js ran and painted every canvas.
        drawn = page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('canvas')].map(c => {
                   const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let drawn = 0;
                   for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) drawn++; }
                   return [c.id, drawn];
               }))"""
        )
        assert drawn, "no chart canvas on the course page"
        blank = {chart: n for chart, n in drawn.items() if n < MIN_DRAWN_PIXELS}
        assert not blank, f"blank canvases {blank}"
        assert page.evaluate("typeof window.Chart") == "function"
        assert failed == [] and errors == []
    finally:
        context.close()
