"""JSON ingestion endpoints: thin wrappers around validation + one service call."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db.models import Q
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.ingest.lookups import item_courses_by_iri
from analytics.ingest.services import events_ingest
from analytics.ingest.validation import (
    MAX_COUNT,
    MAX_DURATION_SECONDS,
    MAX_SCORE,
    ValidationFailure,
    validate_api_events,
)
from analytics.ingest.xapi import MAX_IRI, MAX_NAME, object_ids, parse_statements
from analytics.models import Course, EventSource
from eduplatform.core.access import EVENT_WRITERS, declare
from eduplatform.core.throttles import IngestRateThrottle

XAPI_VERSION = "1.0.3"


# Backends that grant no permissions of their own besides ModelBackend's.
_MODEL_PERMISSIONS_ONLY = {
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
}


class CanIngestEvents(permissions.BasePermission):
    message = "This token may not write events."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if set(settings.AUTHENTICATION_BACKENDS) <= _MODEL_PERMISSIONS_ONLY:
            # ModelBackend's answer in one query instead of two (user and group
            # permissions): ingestion requests are many and small.
            return user.is_active and (
                user.is_superuser
                or Permission.objects.filter(
                    Q(user=user) | Q(group__user=user),
                    content_type__app_label="analytics",
                    codename="add_learningevent",
                ).exists()
            )
        return user.has_perm("analytics.add_learningevent")


# One event as the schema documents it (the bounds validation.py enforces), so clients and
# the fuzz suite send well-typed events too, not only arbitrary objects.
EVENT_SCHEMA = {
    "type": "object",
    "required": ["client_event_id", "learner_id", "course", "verb", "occurred_at"],
    "properties": {
        "client_event_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "learner_id": {"type": "string", "minLength": 1, "maxLength": 200},
        "course": {"type": "string", "minLength": 1, "maxLength": 64},
        "item": {"type": "string", "maxLength": 500},
        "verb": {"type": "string", "minLength": 1, "maxLength": 40},
        "occurred_at": {"type": "string", "format": "date-time"},
        "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
        "duration_seconds": {"type": "number", "minimum": 0, "maximum": MAX_DURATION_SECONDS},
        "score": {"type": "number", "minimum": -MAX_SCORE, "maximum": MAX_SCORE},
    },
}


class EventsStored(serializers.Serializer):
    received = serializers.IntegerField(min_value=0, help_text="Events in the request")
    created = serializers.IntegerField(min_value=0, help_text="Events stored now")
    duplicates = serializers.IntegerField(
        min_value=0, help_text="Events whose client_event_id was stored before (skipped)"
    )


# One xAPI statement as the schema documents it: the parts xapi.py reads, with its bounds
# (other properties of the specification are allowed and ignored).
_IRI = {"type": "string", "format": "iri", "minLength": 1, "maxLength": MAX_IRI}
_ACTIVITY = {"type": "object", "required": ["id"], "properties": {"id": _IRI}}
_ACTIVITIES = {"oneOf": [_ACTIVITY, {"type": "array", "items": _ACTIVITY}]}
_NUMBER = {"type": "number", "minimum": -MAX_SCORE, "maximum": MAX_SCORE}
STATEMENT_SCHEMA = {
    "type": "object",
    "required": ["actor", "verb", "object"],
    "properties": {
        "id": {"type": "string", "format": "uuid", "description": "Assigned when missing"},
        "actor": {
            "type": "object",
            "description": "An Agent with exactly one of mbox or account",
            "properties": {
                "objectType": {"type": "string", "enum": ["Agent"]},
                "name": {"type": "string", "maxLength": MAX_NAME},
                "mbox": {"type": "string", "pattern": "^mailto:[^@\\s]+@[^@\\s]+$"},
                "account": {
                    "type": "object",
                    "required": ["homePage", "name"],
                    "properties": {"homePage": _IRI, "name": {"type": "string", "minLength": 1}},
                },
            },
        },
        "verb": {"type": "object", "required": ["id"], "properties": {"id": _IRI}},
        "object": {
            "type": "object",
            "required": ["id"],
            "description": "An Activity: a content item's IRI, or the course's own",
            "properties": {
                "objectType": {"type": "string", "enum": ["Activity"]},
                "id": _IRI,
                "definition": {
                    "type": "object",
                    "properties": {
                        "type": _IRI,
                        "name": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            },
        },
        "timestamp": {"type": "string", "format": "date-time"},
        "result": {
            "type": "object",
            "properties": {
                "score": {
                    "type": "object",
                    "properties": {
                        "scaled": {"type": "number", "minimum": -1, "maximum": 1},
                        "raw": _NUMBER,
                        "min": _NUMBER,
                        "max": _NUMBER,
                    },
                },
                "duration": {"type": "string", "description": "ISO 8601, e.g. PT2M30S"},
                "completion": {"type": "boolean"},
            },
        },
        "context": {
            "type": "object",
            "properties": {
                "contextActivities": {
                    "type": "object",
                    "description": "The course's activity IRI as parent or grouping",
                    "properties": {"parent": _ACTIVITIES, "grouping": _ACTIVITIES},
                }
            },
        },
    },
}


@declare(EVENT_WRITERS)
class EventsView(APIView):
    permission_classes = [CanIngestEvents]
    throttle_classes = [IngestRateThrottle]

    @extend_schema(
        request={
            "application/json": {
                "type": "array",
                "maxItems": settings.EVENTS_MAX_BATCH,
                "items": EVENT_SCHEMA,
            }
        },
        responses={
            201: OpenApiResponse(EventsStored, description="Stored (duplicates skipped)"),
            400: OpenApiResponse(description="Per-item field errors; nothing stored"),
        },
        summary="Ingest a batch of up to 5,000 learning events",
    )
    def post(self, request: Request) -> Response:
        try:
            events = validate_api_events(
                request.data,
                max_batch=settings.EVENTS_MAX_BATCH,
                account_homepage=settings.PLATFORM_ACCOUNT_HOMEPAGE,
            )
            result = events_ingest(events=events, source=EventSource.API)
        except ValidationFailure as failure:
            return Response(failure.as_response(), status=status.HTTP_400_BAD_REQUEST)
        return Response(
            {
                "received": result.received,
                "created": result.created,
                "duplicates": result.duplicates,
            },
            status=status.HTTP_201_CREATED,
        )


@declare(EVENT_WRITERS)
class XapiStatementsView(APIView):
    permission_classes = [CanIngestEvents]
    throttle_classes = [IngestRateThrottle]

    @extend_schema(
        request={
            "application/json": {
                "oneOf": [
                    STATEMENT_SCHEMA,
                    {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": settings.EVENTS_MAX_BATCH,
                        "items": STATEMENT_SCHEMA,
                    },
                ]
            }
        },
        responses={
            200: OpenApiResponse(
                {"type": "array", "items": {"type": "string", "format": "uuid"}},
                description="The statements' ids, in order",
            ),
            400: OpenApiResponse(description="Invalid statements; nothing stored"),
        },
        summary="Store xAPI 1.0.3 statements (one or a list)",
    )
    def post(self, request: Request) -> Response:
        known_iris = {
            iri
            for iri in Course.objects.exclude(iri__isnull=True).values_list("iri", flat=True)
            if iri is not None
        }
        try:
            events = parse_statements(
                request.data,
                max_batch=settings.EVENTS_MAX_BATCH,
                known_course_iris=known_iris,
                item_course_iris=item_courses_by_iri(object_ids(request.data)),
            )
            result = events_ingest(events=events, source=EventSource.XAPI)
        except ValidationFailure as failure:
            response = Response(failure.as_response(), status=status.HTTP_400_BAD_REQUEST)
        else:
            response = Response(result.event_ids, status=status.HTTP_200_OK)
        response["X-Experience-API-Version"] = XAPI_VERSION
        return response
