from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema

from analytics.models import Course, Learner
from churn.selectors import live_risk
from eduplatform.core.access import COURSE_READERS, declare
from eduplatform.core.prediction_api import PredictionView


@declare(COURSE_READERS)
class RiskView(PredictionView):
    @extend_schema(
        parameters=[OpenApiParameter("course", int, required=True)],
        responses={200: dict, 400: dict, 404: dict, 429: dict},
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
