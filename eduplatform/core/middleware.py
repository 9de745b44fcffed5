"""Middleware of our own: django-csp's, without rebuilding the same policy per response."""

from __future__ import annotations

import http.client
from functools import cache
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as _CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.http.response import HttpResponseBase

# What a view sets (django-csp's decorators) to get a policy other than the settings'.
_PER_RESPONSE = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)
_HEADERS = (
    # header, report only, exemption flag on the response, setting
    (HEADER, False, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
    (HEADER_REPORT_ONLY, True, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
)


@cache
def settings_policy(report_only: bool) -> str:
    """The policy the settings give (django-csp's own builder), built once per process."""
    return build_policy(report_only=report_only)


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        settings_policy.cache_clear()


setting_changed.connect(_settings_changed)


class CSPMiddleware(_CSPMiddleware):
    """django-csp's middleware, with the settings' policy built once instead of per response.

    django-csp builds both headers from the settings on every response (a copy
    of every directive, then the string): about a tenth of the CPU of a cached
    prediction API request, and as much of /healthz. A response no view
    customised (no django-csp decorator) whose page drew no nonce gets exactly
    the settings' policy, so that string is built once. Every other response
    goes through django-csp unchanged; tests/eduplatform/core/test_middleware.py
    compares both paths with django-csp's own output.
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _PER_RESPONSE
        ):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in (
            http.client.INTERNAL_SERVER_ERROR,
            http.client.NOT_FOUND,
        ):
            return response  # Django's debug pages need inline scripts and styles.
        for header, report_only, exempt, setting in _HEADERS:
            policy = settings_policy(report_only)
            if not policy or header in response or getattr(response, exempt, False) is not False:
                continue
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if not request.path_info.startswith(tuple(prefixes)):
                response[header] = policy
        # As django-csp: a nonce drawn after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
