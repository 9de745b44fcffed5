"""Production settings serve /static/ from gunicorn itself (WhiteNoise), as the README says.

`collectstatic` writes hashed, compressed files into a temporary STATIC_ROOT; gunicorn under
eduplatform.settings.production serves the login page and the API docs, and every stylesheet
and script those pages name: 200, a content-hashed name, a far-future immutable
Cache-Control and gzip when asked for.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.eduplatform.test_deploy import production_env

ROOT = Path(__file__).resolve().parents[2]
HOST = "analytics.example.org"
# Behind the TLS proxy: production redirects plain HTTP to HTTPS.
HEADERS = {"Host": HOST, "X-Forwarded-Proto": "https", "Accept-Encoding": "gzip"}
ASSET = re.compile(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"')
HASHED = re.compile(r"\.[0-9a-f]{12}\.(?:css|js)$")
TEN_YEARS = 10 * 365 * 24 * 3600

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(env: dict[str, str], log: Path, headers: dict[str, str]) -> Iterator[str]:
    """One gunicorn worker on a free 127.0.0.1 port under `env`, answering /healthz (with
    `headers`) before its base URL is yielded; its whole process group is stopped after."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "eduplatform.wsgi", "-w", "1",
             "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                if requests.get(base + "/healthz", headers=headers, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz in 60 s"
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("production")
    env = production_env(
        STATIC_ROOT=str(tmp / "static"),
        # No page fetched here reads the database; the login form's captcha check would.
        DATABASE_URL=f"sqlite:///{tmp / 'unused.sqlite3'}",
        AXES_ENABLED="false",
    )
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collected.returncode == 0, collected.stderr[-3000:]
    assert (tmp / "static" / "staticfiles.json").exists()
    with gunicorn(env, tmp / "gunicorn.log", HEADERS) as base:
        yield {"base": base, "static_root": tmp / "static"}


@pytest.mark.parametrize("page", ["/accounts/login/", "/api/v1/docs/", "/api/v1/redoc/"])
def test_production_serves_pages_and_their_hashed_assets_with_long_cache(production_server, page):
    base = production_server["base"]
    response = requests.get(base + page, headers=HEADERS, timeout=10, allow_redirects=False)
    assert response.status_code == 200, response.text[:500]
    assert "Content-Security-Policy" in response.headers
    assets = ASSET.findall(response.text)
    assert assets, f"{page} names no stylesheet or script"
    for url in assets:
        assert HASHED.search(url), f"{url} is not a content-hashed name"
        asset = requests.get(base + url, headers=HEADERS, timeout=10)
        assert asset.status_code == 200, url
        cache_control = asset.headers["Cache-Control"]
        assert "immutable" in cache_control, (url, cache_control)
        max_age = int(re.search(r"max-age=(\d+)", cache_control).group(1))
        assert max_age >= TEN_YEARS, (url, cache_control)
        assert asset.headers.get("Content-Encoding") == "gzip", url
        assert asset.content  # requests decoded the gzip body


def test_production_app_stylesheet_is_served_under_its_hashed_name(production_server):
    html = requests.get(
        production_server["base"] + "/accounts/login/", headers=HEADERS, timeout=10
    ).text
    (css,) = [url for url in ASSET.findall(html) if "/css/app." in url]
    body = requests.get(production_server["base"] + css, headers=HEADERS, timeout=10).text
    assert body == (ROOT / "static" / "css" / "app.css").read_text()
    # The unhashed name is served too (old pages), but with a short cache lifetime.
    plain = requests.get(
        production_server["base"] + "/static/css/app.css", headers=HEADERS, timeout=10
    )
    assert plain.status_code == 200
    assert "immutable" not in plain.headers["Cache-Control"]
