"""xAPI 1.0.3 Alternate Request Syntax (Communication 1.3), for clients that can send only
GET and POST and set no headers (old browsers' cross-domain requests, long GET queries).

`POST /xapi/statements?method=PUT` with a form body: the form's `content` is the request
body (UTF-8 text), its header parameters (Authorization, X-Experience-API-Version,
Content-Type, Content-Length, If-Match, If-None-Match) are headers, every other form
parameter is a query parameter. The request is rebuilt as the intended one and then
served like any other, so every rule of the Statement resource applies to it.
"""

from __future__ import annotations

import io
from urllib.parse import urlencode

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, QueryDict
from django.utils.translation import gettext as _

METHODS = ("GET", "HEAD", "PUT", "POST")
# Form parameters that are headers (1.3.s3.b6), and their WSGI names.
HEADERS = {
    "Authorization": "HTTP_AUTHORIZATION",
    "X-Experience-API-Version": "HTTP_X_EXPERIENCE_API_VERSION",
    "Content-Type": "CONTENT_TYPE",
    "Content-Length": "CONTENT_LENGTH",
    "If-Match": "HTTP_IF_MATCH",
    "If-None-Match": "HTTP_IF_NONE_MATCH",
}
# Attributes the middleware set on the request, carried to the rebuilt one.
CARRIED = ("user", "session", "csrf_processing_done")


class AlternateRequestError(Exception):
    """Why a request in the alternate syntax cannot be served (400; 413 if too large)."""

    def __init__(self, message: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause


def is_alternate(request: HttpRequest) -> bool:
    return request.method == "POST" and "method" in request.GET


def intended_request(request: HttpRequest) -> WSGIRequest:
    """The request the alternate-syntax `request` stands for (raise AlternateRequestError)."""
    if set(request.GET) != {"method"} or len(request.GET.getlist("method")) != 1:
        raise AlternateRequestError(
            _("The alternate request syntax takes no query parameter but method.")
        )
    method = request.GET["method"].upper()
    if method not in METHODS:
        raise AlternateRequestError(_("method must be GET, HEAD, PUT or POST."))
    try:
        form = QueryDict(request.body, encoding="utf-8")
    except (RequestDataTooBig, TooManyFieldsSent) as exc:
        raise AlternateRequestError(str(exc), cause=exc) from exc
    # Headers sent as headers stay; the form's header parameters override them.
    environ = {
        k: v
        for k, v in request.META.items()
        if k not in ("CONTENT_TYPE", "CONTENT_LENGTH", "QUERY_STRING", "wsgi.input")
    }
    query: list[tuple[str, str]] = []
    content = b""
    for name, values in form.lists():
        if len(values) != 1:
            raise AlternateRequestError(_("Each form parameter may be sent once."))
        header = next((wsgi for h, wsgi in HEADERS.items() if h.lower() == name.lower()), None)
        if name == "content":
            content = values[0].encode("utf-8")
        elif header is not None:
            environ[header] = values[0]
        else:
            query.append((name, values[0]))
    if content and method in ("PUT", "POST"):
        environ.setdefault("CONTENT_TYPE", "application/json")
    else:
        content = b""
        environ.pop("CONTENT_TYPE", None)
    # The content's own length: a Content-Length form parameter is only the sender's hint.
    environ["CONTENT_LENGTH"] = str(len(content))
    environ.update(
        REQUEST_METHOD=method, QUERY_STRING=urlencode(query), **{"wsgi.input": io.BytesIO(content)}
    )
    rebuilt = WSGIRequest(environ)
    for name in CARRIED:
        if hasattr(request, name):
            setattr(rebuilt, name, getattr(request, name))
    return rebuilt
