"""Shared shape of the prediction endpoints (churn risk, recommendations).

Model-extraction defences live here once: non-admin tokens get coarse
answers only (risk bands, item ids — no probabilities or scores), every
token has a per-minute rate limit and an hourly query budget, and access
goes through the per-object helpers (foreign learners and courses are 404).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.models import Course, Enrollment, Learner
from eduplatform import access
from eduplatform.throttles import PredictionBudgetThrottle, TokenRateThrottle


class PredictionQuery(serializers.Serializer):
    course = serializers.IntegerField(min_value=1)


class PredictionView(APIView):
    throttle_classes = [TokenRateThrottle, PredictionBudgetThrottle]
    query_serializer: type[serializers.Serializer] = PredictionQuery

    def get(self, request: Request, pseudonym: str) -> Response:
        query = self.query_serializer(data=request.query_params)
        if not query.is_valid():
            return Response(query.errors, status=400)
        learner = access.get_learner_for_user(request.user, pseudonym)
        course = access.get_course_for_user(request.user, query.validated_data["course"])
        if not Enrollment.objects.filter(learner=learner, course=course).exists():
            raise Http404("learner not enrolled in this course run")
        detailed = access.role_of(request.user) == access.ADMIN
        return Response(
            self.answer(
                learner=learner, course=course, params=query.validated_data, detailed=detailed
            )
        )

    def answer(
        self, *, learner: Learner, course: Course, params: dict[str, Any], detailed: bool
    ) -> dict[str, Any]:
        raise NotImplementedError
