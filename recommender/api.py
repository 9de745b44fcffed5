from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request

from analytics.activity_stamps import stamps_read
from analytics.models import Course, Learner
from eduplatform.core.access import COURSE_READERS, declare
from eduplatform.core.inputs import AsciiIntegerField
from eduplatform.core.prediction_api import PredictionQuery, PredictionView
from eduplatform.core.throttles import Read
from recommender.selectors import live_recommendations


class RecommendationQuery(PredictionQuery):
    k = AsciiIntegerField(min_value=1, max_value=50, default=10)


class RecommendedItem(serializers.Serializer):
    item_id = serializers.IntegerField(help_text="Content item id")
    title = serializers.CharField(help_text="The item's title (empty when it has none)")
    reason = serializers.CharField(help_text="Why this item, in English")
    score = serializers.FloatField(required=False, help_text="Ranker score (admin tokens only)")


# Documents RecommendationsView.answer's body for the schema (the view answers a dict).
class RecommendationsAnswer(serializers.Serializer):
    """The next content items for a learner in a course run."""

    learner = serializers.CharField(help_text="The learner's pseudonym")
    course = serializers.IntegerField(help_text="Course run id")
    status = serializers.ChoiceField(
        choices=["ok", "no_model", "unknown_course"],
        help_text="ok: ranked; no_model: nothing served yet; unknown_course: not in the model",
    )
    model_version = serializers.IntegerField(
        allow_null=True, help_text="Version of the recommender that answered"
    )
    items = RecommendedItem(many=True, help_text="Best first, at most k")


@declare(COURSE_READERS)
class RecommendationsView(PredictionView):
    query_serializer = RecommendationQuery

    @extend_schema(
        parameters=[
            OpenApiParameter("course", int, required=True),
            OpenApiParameter("k", int, required=False),
        ],
        responses={200: RecommendationsAnswer},
        summary="Top-k content items for a learner (scores for admins only)",
    )
    def get(self, request, pseudonym: str):  # type: ignore[no-untyped-def]
        return super().get(request, pseudonym)

    def extra_reads(self, request: Request, pseudonym: str) -> list[Read]:
        # The learner's activity stamps ride along with the throttles' round trip.
        course = request.query_params.get("course", "")
        if not (course.isascii() and course.isdigit() and len(course) <= 9):
            return []
        return [stamps_read(course_id=int(course), pseudonym=pseudonym)]

    def answer(
        self, *, learner: Learner, course: Course, params: dict[str, Any], detailed: bool
    ) -> dict[str, Any]:
        read = stamps_read(course_id=course.id, pseudonym=learner.pseudonym)
        recs = live_recommendations(
            learner=learner, course=course, k=params["k"], stamps=self.read_values.get(read.key)
        )
        items = [
            {
                "item_id": i["item_id"],
                "title": i.get("title", ""),
                "reason": i["reason"],
                **({"score": i["score"]} if detailed else {}),
            }
            for i in recs.items
        ]
        return {
            "learner": learner.pseudonym,
            "course": course.id,
            "status": recs.status,
            "model_version": recs.model_version,
            "items": items,
        }
