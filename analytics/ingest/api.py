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

from analytics.ingest.services import events_ingest
from analytics.ingest.validation import (
    MAX_COUNT,
    MAX_DURATION_SECONDS,
    MAX_SCORE,
    ValidationFailure,
    validate_api_events,
)
from analytics.models import EventSource
from eduplatform.core.access import EVENT_WRITERS, declare
from eduplatform.core.throttles import IngestRateThrottle

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
