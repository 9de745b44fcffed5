"""The intervention log's JSON API (#27 item 5): thin, the service decides and writes."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.models import Intervention
from analytics.services import NOTE_MAX_LENGTH, intervention_record
from eduplatform.core import access
from eduplatform.core.access import COURSE_STAFF, declare

# Course ids are PostgreSQL integers: a larger number is a 400, never an overflow.
MAX_ID = 2**31 - 1


class InterventionIn(serializers.Serializer):
    course = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Course run id")
    kind = serializers.ChoiceField(choices=Intervention.Kind.choices)
    date = serializers.DateField(help_text="The day of the action (not in the future)")
    note = serializers.CharField(
        max_length=NOTE_MAX_LENGTH, allow_blank=True, required=False, default=""
    )


class InterventionOut(serializers.Serializer):
    """A recorded action about a learner in a course run."""

    id = serializers.IntegerField()
    learner = serializers.CharField(help_text="The learner's pseudonym")
    course = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Intervention.Kind.choices)
    date = serializers.DateField()
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


@declare(COURSE_STAFF)
class InterventionsView(APIView):
    @extend_schema(
        request=InterventionIn,
        responses={
            201: OpenApiResponse(InterventionOut, description="Recorded"),
            400: OpenApiResponse(description="Field errors; nothing recorded"),
            403: OpenApiResponse(description="Not a run you may record actions on"),
            404: OpenApiResponse(description="No such learner, or not in that run"),
        },
        summary="Record an action about a learner (contacted, met, extension granted, other)",
    )
    def post(self, request: Request, pseudonym: str) -> Response:
        learner = access.get_learner_for_staff(request.user, pseudonym)
        body = InterventionIn(data=request.data)
        if not body.is_valid():
            return Response(body.errors, status=status.HTTP_400_BAD_REQUEST)
        data = body.validated_data
        course = access.courses_for_staff(request.user).filter(pk=data["course"]).first()
        if course is None:
            return Response(
                {"detail": "You may not record actions on this course run."},
                status=status.HTTP_403_FORBIDDEN,
            )
        try:
            record = intervention_record(
                user=request.user,
                course=course,
                learner=learner,
                kind=data["kind"],
                date=data["date"],
                note=data["note"],
            )
        except ValidationError as error:
            return Response(error.message_dict, status=status.HTTP_400_BAD_REQUEST)
        answer = InterventionOut(
            {
                "id": record.pk,
                "learner": learner.pseudonym,
                "course": course.pk,
                "kind": record.kind,
                "date": record.date,
                "note": record.note,
                "created_at": record.created_at,
            }
        )
        return Response(answer.data, status=status.HTTP_201_CREATED)
