"""Shared shape of the prediction endpoints (churn risk, recommendations).

Model-extraction defences live here once: non-admin tokens get coarse
answers only (risk bands, item ids — no probabilities or scores), every
token has a per-minute rate limit and an hourly query budget, and access
goes through the per-object helpers (foreign learners and courses are 404).

These endpoints are the hot path of the API, so the database work of a
request is kept to two queries: the token with its user's role memberships
(`_token_with_role`), and the enrolment of the learner in a course run
the user may see (`_authorised_enrolment`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.models import Course, Enrollment, Learner
from eduplatform import access
from eduplatform.throttles import PredictionBudgetThrottle, TokenRateThrottle


class PredictionQuery(serializers.Serializer):
    course = serializers.IntegerField(min_value=1)


def _token_with_role(authenticator: TokenAuthentication, key: str) -> tuple[Any, Any]:
    """DRF's token lookup (same checks, same errors), reading the user's role in the same query.

    `access.role_of` asks the database once per request for group and
    instructor memberships; here both ride along with the token lookup as
    the same EXISTS subqueries, and the role is primed with the same rule
    (superuser > analyst > instructor > none; inactive users are refused
    before any role is used). tests/eduplatform/test_prediction_api.py
    checks it against `access.role_of` for every role.
    """
    model = authenticator.get_model()
    try:
        token = (
            model.objects.select_related("user")
            .annotate(
                in_analyst_group=Exists(
                    Group.objects.filter(user=OuterRef("user_id"), name=access.ANALYST_GROUP)
                ),
                teaches=Exists(Course.objects.filter(instructors=OuterRef("user_id"))),
            )
            .get(key=key)
        )
    except model.DoesNotExist as exc:
        raise exceptions.AuthenticationFailed(_("Invalid token.")) from exc
    user = token.user
    if not user.is_active:
        raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
    if user.is_superuser:
        role = access.ADMIN
    elif token.in_analyst_group:
        role = access.ANALYST
    elif token.teaches:
        role = access.INSTRUCTOR
    else:
        role = access.NO_ROLE
    # role_of's per-request cache on the user object (request.user lives for
    # one request), so role_of answers without its query.
    setattr(user, access._ROLE_ATTR, role)
    return user, token


def _authorised_enrolment(user: Any, pseudonym: str, course_id: int) -> tuple[Learner, Course]:
    """The learner and the course run, or Http404, as the access helpers decide.

    One query on the way in: the enrolment of the learner in this run among
    the runs `access.courses_for_user` allows. That holds exactly when the
    helpers would pass one by one: the run is visible, and a learner enrolled
    in a visible run is visible to every role (instructors see the learners
    of their runs, analysts and admins every enrolled learner). On a miss the
    helpers run one by one, so a refusal is the same 404 as before.
    """
    rows = Enrollment.objects.filter(
        course__in=access.courses_for_user(user),
        course_id=course_id,
        learner__pseudonym=pseudonym,
    ).select_related("learner", "course")
    if not access.can_see_personal_data(user):
        # As get_learner_for_user: encrypted name and email not even loaded.
        rows = rows.defer("learner__name", "learner__email")
    found = list(rows[:1])
    if found:
        return found[0].learner, found[0].course
    learner = access.get_learner_for_user(user, pseudonym)
    course = access.get_course_for_user(user, course_id)
    if not Enrollment.objects.filter(learner=learner, course=course).exists():
        raise Http404("learner not enrolled in this course run")
    return learner, course


class PredictionView(APIView):
    throttle_classes = [TokenRateThrottle, PredictionBudgetThrottle]
    query_serializer: type[serializers.Serializer] = PredictionQuery

    def get_authenticators(self) -> list[Any]:
        authenticators = super().get_authenticators()
        for authenticator in authenticators:
            # The instance, not a subclass: the API schema keeps one "tokenAuth".
            if type(authenticator) is TokenAuthentication:
                authenticator.authenticate_credentials = partial(_token_with_role, authenticator)
        return authenticators

    def get(self, request: Request, pseudonym: str) -> Response:
        query = self.query_serializer(data=request.query_params)
        if not query.is_valid():
            return Response(query.errors, status=400)
        learner, course = _authorised_enrolment(
            request.user, pseudonym, query.validated_data["course"]
        )
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
