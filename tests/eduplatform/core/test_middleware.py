"""The CSP middleware answers exactly as django-csp's own, built once or not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY, NONCE
from csp.decorators import csp_exempt, csp_replace, csp_update
from csp.middleware import CSPMiddleware as UpstreamCSPMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.test import RequestFactory, override_settings

from eduplatform.core.middleware import CSPMiddleware, settings_policy

REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp-report"}}


def _headers(middleware_class: type, view: Callable, path: str = "/page") -> dict[str, str]:
    request = RequestFactory().get(path)
    middleware = middleware_class(view)
    middleware.process_request(request)
    response = middleware.process_response(request, view(request))
    return {h: response[h] for h in (HEADER, HEADER_REPORT_ONLY) if h in response}


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@csp_update({"img-src": ["https://img.example"]})
def updated(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@csp_replace({"script-src": ["'self'", "https://js.example"]})
def replaced(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@csp_exempt()
def exempt(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def with_nonce(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>")  # type: ignore[attr-defined]


def preset(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("ok")
    response[HEADER] = "default-src 'none'"
    return response


@pytest.mark.parametrize("view", [plain, updated, replaced, exempt, preset])
def test_same_headers_as_django_csp(view: Callable) -> None:
    ours = _headers(CSPMiddleware, view)
    assert ours == _headers(UpstreamCSPMiddleware, view)
    if view is plain:
        assert "default-src 'self'" in ours[HEADER]


def test_a_nonce_drawn_by_the_page_is_in_its_header() -> None:
    policy = {"DIRECTIVES": {"default-src": ["'self'"], "script-src": ["'self'", NONCE]}}
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        first = _headers(CSPMiddleware, with_nonce)[HEADER]
        second = _headers(CSPMiddleware, with_nonce)[HEADER]
        assert "'nonce-" in first
        # A fresh nonce per response: the cached policy is never used for these.
        assert first != second
        assert "'nonce-" not in _headers(CSPMiddleware, plain)[HEADER]


def test_report_only_and_changed_settings_are_followed() -> None:
    before = _headers(CSPMiddleware, plain)
    assert HEADER_REPORT_ONLY not in before
    with override_settings(
        CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'none'"]}},
        CONTENT_SECURITY_POLICY_REPORT_ONLY=REPORT_ONLY,
    ):
        during = _headers(CSPMiddleware, plain)
        assert during == _headers(UpstreamCSPMiddleware, plain)
        assert during[HEADER] == "default-src 'none'"
        assert "report-uri /csp-report" in during[HEADER_REPORT_ONLY]
    assert _headers(CSPMiddleware, plain) == before
    assert settings_policy(False) == before[HEADER]


def test_excluded_prefixes_get_no_header() -> None:
    policy = {"EXCLUDE_URL_PREFIXES": ["/internal"], "DIRECTIVES": {"default-src": ["'self'"]}}
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        assert _headers(CSPMiddleware, plain, "/internal/x") == {}
        assert HEADER in _headers(CSPMiddleware, plain, "/public")


@override_settings(DEBUG=True)
def test_debug_error_pages_keep_no_policy() -> None:
    def missing(request: HttpRequest) -> HttpResponse:
        return HttpResponseNotFound("debug page")

    assert _headers(CSPMiddleware, missing) == {}
    assert _headers(UpstreamCSPMiddleware, missing) == {}


def test_a_nonce_asked_for_after_the_header_is_an_error() -> None:
    request = RequestFactory().get("/page")
    middleware = CSPMiddleware(plain)
    middleware.process_request(request)
    middleware.process_response(request, plain(request))
    with pytest.raises(Exception, match="not available after the CSP header"):
        str(request.csp_nonce)  # type: ignore[attr-defined]


def test_the_project_uses_it(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response[HEADER] == settings_policy(False)
    assert "frame-ancestors 'none'" in response[HEADER]
