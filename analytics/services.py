"""Writes of learner-behaviour data other than ingestion: rollup repair, erasure, interventions.

Every function is keyword-only and atomic. Event ingestion lives in
analytics.ingest.services, the bulk import in analytics.importers.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics.models import (
    Course,
    DailyActivity,
    Enrollment,
    Intervention,
    Learner,
    LearningEvent,
    Submission,
)
from analytics.partitions import retention_cutoff
from analytics.risk_bands import band_history
from analytics.selectors.statements import statements_about
from eduplatform.core import access
from eduplatform.core.inputs import text_error

logger = logging.getLogger(__name__)


@transaction.atomic
def rollups_rebuild(*, course_id: int) -> int:
    """Recompute a course run's daily rollup from its raw events (repair / after erasure).

    With EVENT_RETENTION_MONTHS set, only the days still covered by raw events: the
    rollup of the dropped months is all that is left of them.
    """
    rollup = DailyActivity.objects.filter(course_id=course_id)
    where = "e.course_id = %s"
    params: list[int | dt.datetime] = [course_id]
    cutoff = retention_cutoff()
    if cutoff is not None:
        rollup = rollup.filter(date__gte=cutoff)
        where += " AND e.occurred_at >= %s"
        params.append(dt.datetime.combine(cutoff, dt.time.min, tzinfo=dt.UTC))
    rollup.delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO analytics_dailyactivity "
            "(course_id, learner_id, date, activity_type, events, clicks, active_seconds) "
            "SELECT e.course_id, e.learner_id, "
            + _date_sql("e.occurred_at")
            + ", COALESCE(i.activity_type, e.verb), COUNT(*), SUM(e.count), "
            "COALESCE(SUM(e.duration_seconds), 0) "
            "FROM analytics_learningevent e "
            "LEFT JOIN analytics_contentitem i ON i.id = e.item_id "
            f"WHERE {where} "
            "GROUP BY e.course_id, e.learner_id, "
            + _date_sql("e.occurred_at")
            + ", COALESCE(i.activity_type, e.verb)",
            params,
        )
        return cursor.rowcount


def _date_sql(column: str) -> str:
    # Rollup days are UTC calendar days (TIME_ZONE is UTC).
    if connection.vendor == "postgresql":
        return f"(({column}) AT TIME ZONE 'UTC')::date"
    return f"date({column})"


@dataclass(frozen=True)
class ErasureResult:
    found: bool
    events: int = 0
    rollup_rows: int = 0
    submissions: int = 0
    enrollments: int = 0
    statements: int = 0


@transaction.atomic
def learner_erase(*, pseudonym: str) -> ErasureResult:
    """Delete everything about one learner; running it again finds nothing and changes nothing.

    1. Find the learner and the course runs they were enrolled in.
    2. Delete events and rollup rows course by course (the indexes lead with
       the course), then submissions and enrolments.
    3. Delete the learner row: personal data and every prediction that
       references it (foreign keys cascade).
    4. Mark active models as due for retraining without this learner.
    """
    # Imported on use: the registry's services load the ML artifact code, which
    # only erasure needs of this module.
    from eduplatform.registry.services import models_mark_retrain_due

    # Stored xAPI statements about the learner (#25) go too, also those held before any
    # event made the learner (their course not known yet).
    statements, _ = statements_about(pseudonym).delete()
    learner = Learner.objects.filter(pseudonym=pseudonym).first()
    if learner is None:
        return ErasureResult(found=statements > 0, statements=statements)
    course_ids = list(
        Enrollment.objects.filter(learner=learner).values_list("course_id", flat=True)
    ) + list(
        LearningEvent.objects.filter(learner=learner).values_list("course_id", flat=True).distinct()
    )
    events, _ = LearningEvent.objects.filter(
        learner=learner, course_id__in=set(course_ids)
    ).delete()
    events += LearningEvent.objects.filter(learner=learner).delete()[0]
    rollup, _ = DailyActivity.objects.filter(
        course_id__in=set(course_ids), learner=learner
    ).delete()
    submissions, _ = Submission.objects.filter(learner=learner).delete()
    enrollments, _ = Enrollment.objects.filter(learner=learner).delete()
    learner.delete()
    models_mark_retrain_due()
    logger.info("erasure: learner %s erased (%s events)", pseudonym, events)
    return ErasureResult(
        found=True,
        events=events,
        rollup_rows=rollup,
        submissions=submissions,
        enrollments=enrollments,
        statements=statements,
    )


NOTE_MAX_LENGTH = 2000


@transaction.atomic
def intervention_record(
    *, user: Any, course: Course, learner: Learner, kind: str, date: dt.date, note: str
) -> Intervention:
    """Record what `user` did about `learner` in `course` (#27 item 5).

    Admins may record on any run, instructors on the runs they teach (Http404
    otherwise, as for any object of a foreign run); the learner must be enrolled
    in the run. Bad input raises ValidationError by field and writes nothing.
    """
    if not access.courses_for_staff(user).filter(pk=course.pk).exists():
        raise Http404("No such course run.")
    if not Enrollment.objects.filter(course=course, learner=learner).exists():
        raise Http404("Learner not enrolled in this course run.")
    errors: dict[str, str] = {}
    if kind not in Intervention.Kind.values:
        errors["kind"] = _("Choose one of the listed actions.")
    if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
        errors["date"] = _("Enter a valid date.")
    elif not settings.EVENT_EARLIEST_DATE <= date <= timezone.localdate():
        errors["date"] = _("The date must not be in the future.")
    problem = text_error(note, NOTE_MAX_LENGTH) if isinstance(note, str) else "Must be text."
    if problem:
        errors["note"] = problem
    if errors:
        raise ValidationError(errors)
    # The band on the action's day, kept: the outcome card compares learners by the band
    # that led to the action, not by today's (which the action may have changed).
    history = band_history()
    band = history.bands_on(course, date, [learner.pk]).get(learner.pk, "") if history else ""
    record = Intervention.objects.create(
        course=course,
        learner=learner,
        kind=kind,
        date=date,
        note=note,
        risk_band=band,
        created_by=user,
    )
    # ids only: the note and the learner's identity stay out of the logs
    logger.info("intervention %s recorded course=%s", record.pk, course.pk)
    return record
