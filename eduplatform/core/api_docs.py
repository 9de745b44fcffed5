"""API documentation pages: Swagger UI and Redoc from vendored assets, under the strict CSP.

The assets come from drf-spectacular-sidecar (static files, no CDN). Swagger UI is the
"split" view: its start-up script is a second request to the same URL (``?script=``), so
the page has no inline script; both templates drop drf-spectacular's inline styles and
Redoc's web-font links. Like the schema, the pages are public: they document, they grant
nothing (requests made from Swagger UI still need a token).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from eduplatform.core.access import PUBLIC, declare

# The <style> elements Redoc's bundle creates while it loads (style-loader, styled-components),
# by their content's sha256, as Chromium names them when it blocks them: an empty element
# (styled-components then adds its rules through the CSSOM, which CSP does not govern) and
# perfect-scrollbar's stylesheet. They change only with drf-spectacular-sidecar's pinned
# version; tests/browser/test_api_docs.py fails with the new hash when they do.
REDOC_STYLE_HASHES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
]


@declare(PUBLIC)
class SwaggerUIView(SpectacularSwaggerSplitView):
    permission_classes = [AllowAny]
    authentication_classes = []
    url_name = "api-schema"
    template_name = "api_docs/swagger_ui.html"


@declare(PUBLIC)
class RedocView(SpectacularRedocView):
    permission_classes = [AllowAny]
    authentication_classes = []
    url_name = "api-schema"
    template_name = "api_docs/redoc.html"

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """This page alone also allows Redoc's own <style> elements (by hash) and its search
        worker (a blob: URL its script builds); scripts and other styles stay 'self' only."""
        response = super().get(request, *args, **kwargs)
        # What django-csp's csp_update decorator sets.
        response._csp_update = {"style-src": REDOC_STYLE_HASHES, "worker-src": ["'self'", "blob:"]}
        return response
