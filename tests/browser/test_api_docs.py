"""Swagger UI and Redoc render in chromium under the project's CSP, from vendored assets only.

Every request the pages make stays on the live server (no CDN, no font service), the
console shows no error (a CSP violation is one) and each UI draws the API's operations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import service_missing

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Redoc's sidebar names its maker with an image from its CDN, hard-coded in the bundle. The CSP
# blocks it (nothing leaves the server's origin) and Redoc hides the image when it fails.
BLOCKED_LOGO = "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg' violates"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        service_missing(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as p:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        # Swagger UI: one block per operation, the events endpoint among them.
        ("/api/v1/docs/", ".opblock-summary-path[data-path='/api/v1/events']"),
        # Redoc: the operations menu, built from the schema.
        ("/api/v1/redoc/", "li[data-item-id^='tag/']"),
    ],
)
def test_docs_render_under_the_csp(browser, live_server, path, rendered) -> None:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Hosts that answered: a request the CSP blocks never gets a response.
    page.on("response", lambda r: hosts.add(urlparse(r.url).netloc) if "://" in r.url[:8] else None)
    try:
        response = page.goto(live_server.url + path)
        assert response is not None and response.ok
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector(rendered, timeout=20_000)
        page.wait_for_load_state("networkidle")
        assert [e for e in errors if not e.startswith(BLOCKED_LOGO)] == []
        assert hosts == {urlparse(live_server.url).netloc}
    finally:
        context.close()
