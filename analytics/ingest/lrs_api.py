"""The xAPI 1.0.3 Statement resource (/xapi/statements) and About (/xapi/about).

Thin views: the scopes come from lrs_auth, the writes from lrs.statements_store, the
reads from analytics/selectors/statements.py, validation from statement_rules. Every
answer carries ``X-Experience-API-Version: 1.0.3``; requests without a 1.0.x version
header are refused (400), except CORS preflights and About.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.ingest.lrs import (
    StatementConflict,
    authority_of,
    statements_store,
)
from analytics.ingest.lrs_alternate import AlternateRequestError, intended_request, is_alternate
from analytics.ingest.lrs_auth import (
    HasXapiScope,
    LrsClientAuthentication,
    reads_only_own,
    scopes_of,
)
from analytics.ingest.statement_attachments import (
    MultipartMixedParser,
    MultipartStatements,
    attachment_errors,
    multipart_body,
)
from analytics.ingest.statement_formats import FORMATS, accepted_languages, formatted
from analytics.ingest.statement_rules import agent_errors, iri_ok
from analytics.ingest.statement_signature import signature_errors
from analytics.ingest.validation import ValidationFailure
from analytics.ingest.xapi import agent_key
from analytics.ingest.xapi_schema import STATEMENT_REQUEST, STATEMENT_SCHEMA
from analytics.models import LrsClient, StatementAttachment
from analytics.selectors.statements import (
    MAX_PAGE,
    StatementQuery,
    statement_get,
    statements_page,
)
from analytics.statement_privacy import identity_pseudonym, opened
from eduplatform.core.access import EVENT_WRITERS, PUBLIC, declare
from eduplatform.core.inputs import BoundedJSONParser, ascii_int, text_error
from eduplatform.core.throttles import IngestRateThrottle

XAPI_VERSION = "1.0.3"
_VERSION = re.compile(r"^1\.0(?:\.\d+)?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
FILTERS = {
    "agent", "verb", "activity", "registration", "related_activities", "related_agents",
    "since", "until", "limit", "format", "attachments", "ascending", "cursor",
}  # fmt: skip
SINGLE = {"statementId", "voidedStatementId"}
ALLOWED_HEADERS = "Authorization, Content-Type, X-Experience-API-Version, If-Match, If-None-Match"
VERSION_HEADER = OpenApiParameter(
    "X-Experience-API-Version",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    pattern=r"^1\.0(\.[0-9]+)?$",
    description="The xAPI version of the request: 1.0.x",
)
STATEMENT_ID = OpenApiParameter(
    "statementId", OpenApiTypes.UUID, OpenApiParameter.QUERY, description="Statement id"
)


def _cors(request: Request, response: HttpResponse) -> None:
    origin = request.META.get("HTTP_ORIGIN")
    if origin and origin in settings.XAPI_CORS_ORIGINS:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
        response["Access-Control-Expose-Headers"] = (
            "X-Experience-API-Version, X-Experience-API-Consistent-Through, Last-Modified"
        )
        response["Vary"] = "Origin"


class JsonOnly(BaseContentNegotiation):
    """JSON always: xAPI's `format` parameter is not DRF's renderer override."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type


def _bad(message: str) -> ParseError:
    return ParseError(message)


@declare(EVENT_WRITERS)
class XapiStatementsView(APIView):
    """Writers: admins, tokens granted analytics.add_learningevent, LRS clients with
    statements/write. Readers (GET, HEAD): admins and LRS clients with a read scope."""

    authentication_classes = [LrsClientAuthentication, TokenAuthentication, SessionAuthentication]
    permission_classes = [HasXapiScope]
    throttle_classes = [IngestRateThrottle]
    content_negotiation_class = JsonOnly
    parser_classes = [BoundedJSONParser, MultipartMixedParser]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # The alternate request syntax (?method=) is served as the request it stands for.
        if is_alternate(request):
            try:
                request = intended_request(request)
            except AlternateRequestError as problem:
                request.xapi_alternate_problem = problem  # refused in initial (a 400)
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        problem = getattr(request, "xapi_alternate_problem", None)
        if problem is not None:  # a body over the size limit stays a 413
            raise (
                problem.cause
                if isinstance(problem.cause, RequestDataTooBig)
                else _bad(problem.message)
            )
        preflight = request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in (
            request.META
        )
        if preflight:  # a CORS preflight carries no credentials
            return
        super().initial(request, *args, **kwargs)
        if request.method == "OPTIONS":
            return
        version = request.META.get("HTTP_X_EXPERIENCE_API_VERSION", "")
        if not _VERSION.match(version):
            raise _bad("X-Experience-API-Version must be 1.0.x.")

    def handle_exception(self, exc: Exception) -> Response:
        # xAPI answers 400 to a body it cannot read (multipart/form-data included), not 415.
        if isinstance(exc, UnsupportedMediaType):
            exc = ParseError(f"Unsupported content type: {exc.detail}")
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["X-Experience-API-Version"] = XAPI_VERSION
        response["X-Experience-API-Consistent-Through"] = timezone.now().isoformat()
        _cors(request, response)
        return response

    @extend_schema(exclude=True)  # a CORS preflight, not an API operation
    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = Response(status=status.HTTP_200_OK)
        if request.META.get("HTTP_ORIGIN") in settings.XAPI_CORS_ORIGINS:
            response["Access-Control-Allow-Methods"] = "GET, HEAD, POST, PUT, OPTIONS"
            response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = "86400"
        response["Allow"] = "GET, HEAD, POST, PUT, OPTIONS"
        return response

    def _store(
        self, request: Request, statements: list[Any], parts: dict[str, tuple[str, bytes]]
    ) -> Response | list[str]:
        client = request.auth if isinstance(request.auth, LrsClient) else None
        if (problem := attachment_errors(statements, parts)) is not None:
            raise _bad(problem)
        for index, statement in enumerate(statements):
            if (problem := signature_errors(statement, parts)) is not None:
                raise _bad(
                    _("Statement %(index)d: %(problem)s") % {"index": index, "problem": problem}
                )
        try:
            result = statements_store(
                statements=statements,
                client=client,
                authority=authority_of(client, getattr(request.user, "username", "")),
                attachments=parts,
            )
        except ValidationFailure as failure:
            return Response(failure.as_response(), status=status.HTTP_400_BAD_REQUEST)
        except StatementConflict as conflict:
            return Response(
                {"detail": f"Statement {conflict.statement_id} is stored with other content."},
                status=status.HTTP_409_CONFLICT,
            )
        return result.ids

    @extend_schema(
        parameters=[VERSION_HEADER],
        request={"application/json": STATEMENT_REQUEST},
        responses={
            200: OpenApiResponse(
                {"type": "array", "items": {"type": "string", "format": "uuid"}},
                description="The statements' ids, in order",
            ),
            400: OpenApiResponse(description="Invalid statements (by index); nothing stored"),
            409: OpenApiResponse(description="An id stored before with other content"),
        },
        summary="Store xAPI 1.0.3 statements (one or a list), all or nothing",
    )
    def post(self, request: Request) -> Response:
        if request.query_params:
            raise _bad("POST takes no parameters but method (the alternate request syntax).")
        data, parts = _body(request)
        stored = self._store(request, data if isinstance(data, list) else [data], parts)
        if isinstance(stored, Response):
            return stored
        return Response(stored, status=status.HTTP_200_OK)

    @extend_schema(
        parameters=[VERSION_HEADER, STATEMENT_ID],
        request={"application/json": STATEMENT_SCHEMA},
        responses={
            204: OpenApiResponse(description="Stored (or the same statement was stored before)"),
            400: OpenApiResponse(description="Invalid statement or statementId; nothing stored"),
            409: OpenApiResponse(description="The id is stored with other content"),
        },
        summary="Store one xAPI statement under the given statementId",
    )
    def put(self, request: Request) -> Response:
        params = request.query_params
        statement_id = params.get("statementId", "")
        if set(params) != {"statementId"} or not _UUID.match(statement_id):
            raise _bad("PUT takes one parameter: statementId, a UUID.")
        statement, parts = _body(request)
        if not isinstance(statement, dict):
            raise _bad("PUT takes one statement (a JSON object).")
        if "id" in statement and str(statement["id"]).lower() != statement_id.lower():
            raise _bad("The statement's id differs from statementId.")
        stored = self._store(request, [{**statement, "id": statement_id.lower()}], parts)
        if isinstance(stored, Response):
            return stored
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[
            VERSION_HEADER,
            STATEMENT_ID,
            OpenApiParameter("voidedStatementId", OpenApiTypes.UUID, description="Voided id"),
            OpenApiParameter("agent", OpenApiTypes.STR, description="An Agent or Group (JSON)"),
            OpenApiParameter("verb", OpenApiTypes.URI, description="Verb IRI"),
            OpenApiParameter("activity", OpenApiTypes.URI, description="Activity IRI"),
            OpenApiParameter("registration", OpenApiTypes.UUID, description="Registration"),
            OpenApiParameter("related_activities", OpenApiTypes.BOOL),
            OpenApiParameter("related_agents", OpenApiTypes.BOOL),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Stored after"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Stored at or before"),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"0 or 1..{MAX_PAGE}"),
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS)),
            OpenApiParameter("attachments", OpenApiTypes.BOOL),
            OpenApiParameter("ascending", OpenApiTypes.BOOL),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From a result's `more`"),
        ],
        responses={
            200: OpenApiResponse(
                {"type": "object"},
                description="One statement, or a StatementResult {statements, more}",
            ),
            400: OpenApiResponse(description="Invalid parameters"),
            404: OpenApiResponse(description="No such statement"),
        },
        summary="Read one statement by id, or a filtered page (StatementResult)",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        scopes = scopes_of(request)
        own = isinstance(request.auth, LrsClient) and reads_only_own(scopes)
        fmt = params.get("format", "exact")
        if fmt not in FORMATS:
            raise _bad("format must be ids, exact or canonical.")
        languages = accepted_languages(request.META.get("HTTP_ACCEPT_LANGUAGE", ""))
        if SINGLE & set(params):
            return self._one(request, fmt, languages, own)
        query = _query(params)
        if own:
            query.only_client = request.auth
        rows, more = statements_page(query)
        next_url = ""
        if more:
            last = rows[-1]
            rest = {k: v for k, v in params.items() if k != "cursor"}
            rest["cursor"] = f"{last.stored.isoformat()}|{last.pk}"
            next_url = f"{request.path}?{urlencode(rest)}"
        statements = [formatted(opened(r.data), fmt, languages) for r in rows]
        body = {"statements": statements, "more": next_url}
        if params.get("attachments") == "true":
            return _with_attachments(body, statements)
        return Response(body)

    def _one(self, request: Request, fmt: str, languages: list[str], own: bool) -> Response:
        params = request.query_params
        if set(params) - {"statementId", "voidedStatementId", "format", "attachments"} or (
            len(SINGLE & set(params)) != 1
        ):
            raise _bad("statementId and voidedStatementId take only format and attachments.")
        voided = "voidedStatementId" in params
        wanted = params["voidedStatementId" if voided else "statementId"]
        if not _UUID.match(wanted):
            raise _bad("The statement id must be a UUID.")
        row = statement_get(statement_id=wanted.lower(), voided=voided)
        if row is None or (own and row.client_id != request.auth.pk):
            return Response({"detail": "No such statement."}, status=status.HTTP_404_NOT_FOUND)
        statement = formatted(opened(row.data), fmt, languages)
        if params.get("attachments") == "true":
            response: Any = _with_attachments(statement, [statement])
        else:
            response = Response(statement)
        response["Last-Modified"] = row.stored.strftime("%a, %d %b %Y %H:%M:%S GMT")
        return response

    @extend_schema(exclude=True)
    def head(self, request: Request) -> Response:
        response = self.get(request)
        response.data = None
        return response


def _body(request: Request) -> tuple[Any, dict[str, tuple[str, bytes]]]:
    """The statement JSON of the request and its attachment parts (multipart/mixed only)."""
    data = request.data
    if isinstance(data, MultipartStatements):
        return data.statements, data.parts
    return data, {}


def _with_attachments(result: Any, statements: list[dict[str, Any]]) -> HttpResponse:
    """`result` as multipart/mixed with the stored bytes of the statements' attachments."""
    wanted = {
        str(a.get("sha2", "")).lower()
        for s in statements
        for a in s.get("attachments", [])
        if isinstance(a, dict)
    }
    stored = StatementAttachment.objects.filter(sha2__in=wanted)
    parts = {a.sha2: (a.content_type, bytes(a.content)) for a in stored}
    body, content_type = multipart_body(result, parts)
    return HttpResponse(body, content_type=content_type)


def _flag(params: Any, name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise _bad(f"{name} must be true or false.")
    return value == "true"


def _time(params: Any, name: str) -> dt.datetime | None:
    if name not in params:
        return None
    value = params[name]
    try:
        parsed = parse_datetime(value) if text_error(value) is None else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise _bad(f"{name} must be an ISO 8601 timestamp with a timezone.")
    return parsed


def _query(params: Any) -> StatementQuery:
    """The filters of a GET, or a 400 (ParseError) naming the bad one."""
    unknown = set(params) - FILTERS
    if unknown:
        raise _bad(f"Unknown parameters: {', '.join(sorted(unknown))[:200]}.")
    query = StatementQuery(
        related_activities=_flag(params, "related_activities"),
        related_agents=_flag(params, "related_agents"),
        ascending=_flag(params, "ascending"),
        since=_time(params, "since"),
        until=_time(params, "until"),
    )
    _flag(params, "attachments")
    if "agent" in params:
        try:
            agent = json.loads(params["agent"])
        except (ValueError, RecursionError):
            raise _bad("agent must be a JSON Agent or Group.") from None
        if agent_errors(agent):
            raise _bad("agent must be an Agent or Group with one identifier.")
        query.agent_key = identity_pseudonym(agent_key(agent) or "")
    for name in ("verb", "activity"):
        if name in params:
            if not iri_ok(params[name]) or text_error(params[name]) is not None:
                raise _bad(f"{name} must be an IRI.")
            setattr(query, name, params[name])
    if "registration" in params:
        if not _UUID.match(params["registration"]):
            raise _bad("registration must be a UUID.")
        query.registration = params["registration"].lower()
    if "limit" in params:
        limit = ascii_int(params["limit"])
        if limit is None:
            raise _bad("limit must be a whole number.")
        query.limit = min(limit, MAX_PAGE) or MAX_PAGE
    if "cursor" in params:
        stamp, _, pk = params["cursor"].rpartition("|")
        after = _time({"cursor": stamp}, "cursor")
        if after is None or ascii_int(pk) is None:
            raise _bad("cursor is not one this LRS made.")
        query.after = (after, int(pk))
    return query


@declare(PUBLIC)
class XapiAboutView(APIView):
    """xAPI About: the versions this LRS speaks (no credentials, no version header)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        response = Response({"version": [XAPI_VERSION], "extensions": {}})
        response["X-Experience-API-Version"] = XAPI_VERSION
        _cors(request, response)
        return response
