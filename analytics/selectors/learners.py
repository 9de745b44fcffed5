"""Reads about one learner: the learner page's rows and the data subject's export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.db.models import Sum

from analytics.models import (
    DailyActivity,
    Enrollment,
    Intervention,
    Learner,
    LearningEvent,
    Submission,
)
from analytics.selectors.activity import value_rows
from analytics.selectors.statements import statements_about
from analytics.statement_privacy import opened


def learner_enrollments(learner: Learner, course_ids: Sequence[int]) -> list[Enrollment]:
    return list(
        Enrollment.objects.filter(learner_id=learner.pk, course_id__in=course_ids)
        .select_related("course")
        .order_by("course__start_date", "course__code")
    )


def learner_daily_clicks(learner: Learner, course_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Per course and day: the learner's clicks (a few hundred rows at most)."""
    return value_rows(
        DailyActivity.objects.filter(learner_id=learner.pk, course_id__in=course_ids)
        .values("course_id", "date")
        .annotate(clicks=Sum("clicks"))
        .order_by("course_id", "date")
    )


def learner_submissions(learner: Learner, course_ids: Sequence[int]) -> list[Submission]:
    return list(
        Submission.objects.filter(learner_id=learner.pk, assessment__course_id__in=course_ids)
        .select_related("assessment__course")
        .order_by("assessment__course__code", "submitted_on", "assessment__external_id")
    )


def learner_export(*, pseudonym: str) -> dict | None:
    """Everything stored about one learner, JSON-ready (the data subject's access request)."""
    learner = Learner.objects.filter(pseudonym=pseudonym).first()
    if learner is None:
        return None
    enrollments = list(
        Enrollment.objects.filter(learner=learner)
        .select_related("course")
        .values(
            "course__code",
            "registered_on",
            "unregistered_on",
            "final_result",
            "num_prev_attempts",
            "studied_credits",
        )
    )
    course_ids = list(
        Enrollment.objects.filter(learner=learner).values_list("course_id", flat=True)
    )
    return {
        "learner": {field: getattr(learner, field) for field in PERSONAL_FIELDS},
        "enrollments": enrollments,
        "submissions": list(
            Submission.objects.filter(learner=learner).values(
                "assessment__course__code",
                "assessment__external_id",
                "submitted_on",
                "score",
                "is_late",
                "is_banked",
            )
        ),
        "events": list(
            LearningEvent.objects.filter(learner=learner, course_id__in=course_ids)
            .order_by("occurred_at", "id")
            .values(
                "course__code",
                "item__external_id",
                "verb",
                "occurred_at",
                "count",
                "duration_seconds",
                "score",
                "source",
                "client_event_id",
            )
        ),
        "daily_activity": list(
            DailyActivity.objects.filter(course_id__in=course_ids, learner=learner)
            .order_by("date")
            .values("course__code", "date", "activity_type", "events", "clicks", "active_seconds")
        ),
        # what instructors recorded about the learner (#27 item 5), notes decrypted
        "interventions": list(
            Intervention.objects.filter(learner=learner)
            .order_by("date", "id")
            .values("course__code", "kind", "date", "note", "created_at")
        ),
        "predictions": _predictions(learner),
        # the xAPI statements stored about the learner (#25), as sent (identifiers decrypted)
        "xapi_statements": [
            opened(data)
            for data in statements_about(learner.pseudonym)
            .order_by("stored", "id")
            .values_list("data", flat=True)
        ],
    }


PERSONAL_FIELDS = (
    "pseudonym",
    "name",
    "email",
    "gender",
    "region",
    "highest_education",
    "imd_band",
    "age_band",
    "disability",
    "created_at",
)


def _predictions(learner: Learner) -> dict[str, list[dict]]:
    """Rows about the learner in other apps' models (churn scores, recommendations).

    Found through the `exported_with_learner` flag on the model, so analytics
    needs no import of the apps that own them.
    """
    predictions: dict[str, list[dict]] = {}
    for model in apps.get_models():
        if getattr(model, "exported_with_learner", False):
            predictions[model._meta.label] = list(
                model._default_manager.filter(learner=learner).values(
                    *model.export_fields  # type: ignore[attr-defined]
                )
            )
    return predictions
