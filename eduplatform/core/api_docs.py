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


# What any operation may answer besides its own successes, so a client (and the fuzz
# suite's status-code and content-type checks, tests/fuzz/test_api_schema.py) finds every
# answer in the schema. All are JSON from DRF's exception handler (inputs.api_exception_handler).
# Their body: DRF's {"detail": "..."} (typed as ErrorDetail; 400 has FieldErrors below).
ERROR_DETAIL = {
    "type": "object",
    "description": "Why the request was refused, in one sentence",
    "required": ["detail"],
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}
ERRORS_OF_EVERY_OPERATION = {
    "400": "Invalid input: field errors (an item's index for a batch), nothing written",
    "429": "Too many requests: the token's rate or hourly prediction budget is spent",
}
# Answered by gunicorn before Django sees the request (its 4,094-byte request line), as
# its own small HTML page: documented without a body.
URI_TOO_LONG = ("414", "Request line over the server's limit (gunicorn: 4,094 bytes)")
ERRORS_WITH_A_TOKEN = {
    "401": "No token, or an unknown one",
    "403": "This user may not use this endpoint",
}
ERROR_WITH_PATH_PARAMETERS = ("404", "No such object, or one this user may not see")
ERROR_WITH_A_BODY = ("413", "Request body over the size limit (DATA_UPLOAD_MAX_MEMORY_SIZE)")


# The body of every 400: DRF's field errors ({"k": ["Ensure this value is ..."]}), a parse
# error's {"detail": ...}, or an ingestion batch's {"detail", "errors": [{index, fields}]}.
MESSAGES = {"type": "array", "items": {"type": "string"}}
FIELD_ERRORS = {
    "type": "object",
    "description": "What is wrong with the request: messages per field (an item's index "
    "and fields for a batch of events or statements), or one detail",
    "properties": {
        "detail": {"type": "string", "description": "The request as a whole"},
        "errors": {
            "type": "array",
            "description": "Ingestion: the invalid items of the batch, by index",
            "items": {
                "type": "object",
                "required": ["index", "fields"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "fields": {"type": "object", "additionalProperties": MESSAGES},
                },
            },
        },
    },
    "additionalProperties": MESSAGES,
}
FIELD_ERRORS_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/FieldErrors"}}}


def document_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation lists the errors it can answer."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["FieldErrors"] = FIELD_ERRORS
    schemas["ErrorDetail"] = ERROR_DETAIL
    for item in result.get("paths", {}).values():
        for operation in item.values():
            errors = dict(ERRORS_OF_EVERY_OPERATION)
            if operation.get("security") != [{}] and operation.get("security"):
                errors.update(ERRORS_WITH_A_TOKEN)
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                errors[ERROR_WITH_PATH_PARAMETERS[0]] = ERROR_WITH_PATH_PARAMETERS[1]
            if "requestBody" in operation:
                errors[ERROR_WITH_A_BODY[0]] = ERROR_WITH_A_BODY[1]
            responses = operation.setdefault("responses", {})
            responses.setdefault(URI_TOO_LONG[0], {"description": URI_TOO_LONG[1]})
            for code, description in errors.items():
                # An error the view documents itself keeps its own description.
                responses.setdefault(code, {"description": description, "content": _ERROR})
            # Every 400 is typed, whoever described it; other errors a view documents
            # without a body (409, 503) answer DRF's {"detail": ...} too.
            responses["400"]["content"] = FIELD_ERRORS_REF
            for code, response in responses.items():
                if code[0] in "45" and code != URI_TOO_LONG[0]:
                    response.setdefault("content", _ERROR)
    return result
