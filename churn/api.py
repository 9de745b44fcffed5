from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from analytics.models import Course, Learner
from churn.selectors import live_risk
from eduplatform.core.access import COURSE_READERS, declare
from eduplatform.core.prediction_api import PredictionView


# Documents RiskView.answer's body for the schema (the view answers a dict).
class RiskAnswer(serializers.Serializer):
    """A learner's dropout risk in a course run."""

    learner = serializers.CharField(help_text="The learner's pseudonym")
    course = serializers.IntegerField(help_text="Course run id")
    status = serializers.ChoiceField(
        choices=["ok", "no_model", "not_enrolled"],
        help_text="ok: scored; no_model: nothing served yet; not_enrolled: not in the run's scores",
    )
    model_version = serializers.IntegerField(
        allow_null=True, help_text="Version of the churn model that answered"
    )
    as_of = serializers.DateField(allow_null=True, help_text="The day the features describe")
    risk_band = serializers.ChoiceField(choices=["low", "medium", "high"], allow_null=True)
    top_factors = serializers.ListField(
        child=serializers.CharField(), help_text="What drives the score most, in English"
    )
    probability = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0.0,
        max_value=1.0,
        help_text="Calibrated dropout probability (admin tokens only)",
    )


@declare(COURSE_READERS)
class RiskView(PredictionView):
    @extend_schema(
        parameters=[OpenApiParameter("course", int, required=True)],
        responses={200: RiskAnswer},
        summary="Dropout risk band of a learner in a course run (probability for admins only)",
    )
    def get(self, request, pseudonym: str):  # type: ignore[no-untyped-def]
        return super().get(request, pseudonym)

    def answer(
        self, *, learner: Learner, course: Course, params: dict[str, Any], detailed: bool
    ) -> dict[str, Any]:
        risk = live_risk(learner=learner, course=course)
        body: dict[str, Any] = {
            "learner": learner.pseudonym,
            "course": course.id,
            "status": risk.status,
            "model_version": risk.model_version,
            "as_of": risk.as_of,
            "risk_band": risk.band,
            "top_factors": list(risk.factors),
        }
        if detailed:
            body["probability"] = risk.probability
        return body
