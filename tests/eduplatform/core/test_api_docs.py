"""API docs: Swagger UI at /api/v1/docs/ and Redoc at /api/v1/redoc/ from vendored assets.

The pages name only our own static files (drf-spectacular-sidecar), carry no inline script
or style (the CSP forbids both) and load with the project's CSP; the browser test in
tests/browser/test_api_docs.py checks they render under it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from django.contrib.staticfiles import finders

ASSET = re.compile(r'(?:href|src)="([^"]+)"')
EXTERNAL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)

pytestmark = pytest.mark.django_db


def assets(html: str) -> list[str]:
    return [url for url in ASSET.findall(html) if url.startswith("/static/")]


@pytest.mark.parametrize(
    ("page", "needed"),
    [
        ("/api/v1/docs/", {"swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}),
        ("/api/v1/redoc/", {"redoc.standalone.js"}),
    ],
)
def test_docs_pages_name_only_vendored_assets(client, page, needed):
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "<style" not in html
    assert re.search(r"<script>|<script [^>]*>[^<]", html) is None, "inline script"
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    names = {url.rsplit("/", 1)[-1] for url in assets(html)}
    assert needed <= names
    for url in assets(html):
        assert finders.find(url.removeprefix("/static/")), url


def test_swagger_ui_start_script_is_a_same_origin_request(client):
    html = client.get("/api/v1/docs/").content.decode()
    (script,) = [u for u in ASSET.findall(html) if not u.startswith("/static/") and "script" in u]
    response = client.get(script.replace("&amp;", "&"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in response.content.decode()
    assert '"/api/v1/schema/"' in response.content.decode()


@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_assets_are_served(live_server, page):
    html = requests.get(live_server.url + page, timeout=10).text
    for url in assets(html):
        response = requests.get(live_server.url + url, timeout=10)
        assert response.status_code == 200, url
        assert response.content == Path(finders.find(url.removeprefix("/static/"))).read_bytes()


def test_docs_need_no_login_and_the_schema_they_read_is_public(client):
    assert client.get("/api/v1/schema/").status_code == 200
