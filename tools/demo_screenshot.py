"""The README's screenshot from a real `make demo` database: docs/screenshots/course.png.

    make demo   # or seed_demo + demo_setup against DATABASE_URL
    .venv/bin/python tools/demo_screenshot.py

Serves the app (runserver, dev settings) on a spare port, signs in as the demo's `admin`
through a session made here (no password needed or changed) and saves the full course page
of the run with the demo's recorded actions, so the outcome card has counts. Debian's
chromium through Playwright (never `playwright install`). The browser tests make the same
page from a smaller, faster-trained platform (tests/browser/test_course_with_models.py,
UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots" / "course.png"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _session_cookie() -> tuple[str, str, int]:
    """(cookie name, session key of the demo admin, the run's pk)."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )

    from analytics.models import Course

    user = get_user_model().objects.get(username="admin")
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    runs = Course.objects.order_by("-start_date")
    course = max(runs, key=lambda c: c.interventions.count())
    return settings.SESSION_COOKIE_NAME, store.session_key or "", course.pk


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eduplatform.settings.dev")
    sys.path.insert(0, str(ROOT))
    cookie, key, course = _session_cookie()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(1)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([{"name": cookie, "value": key, "url": base}])
            page = context.new_page()
            page.goto(f"{base}/courses/{course}/")
            page.wait_for_selector("html[data-charts-ready]")
            page.wait_for_timeout(1000)  # chart animations
            OUT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUT), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(f"wrote {OUT.relative_to(ROOT)} (course run {course})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
