"""Learner-behaviour data.

Sized for tens of millions of events: LearningEvent is append-mostly with two
composite indexes (per learner and per course, by time); dashboards and model
features read the DailyActivity rollup, never raw events per request.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from eduplatform.core.privacy import EncryptedTextField


class Course(models.Model):
    """One run (presentation) of a module, e.g. AAA 2013J."""

    code = models.CharField(max_length=64, unique=True)
    module_code = models.CharField(max_length=32)
    presentation = models.CharField(max_length=32, blank=True)
    title = models.CharField(max_length=200)
    start_date = models.DateField()
    length_days = models.PositiveIntegerField()
    # xAPI activity IRI of the course, used to place statements about new items.
    iri = models.CharField(max_length=500, unique=True, null=True, blank=True)
    instructors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="taught_courses", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def day_of(self, when: dt.date | dt.datetime) -> int:
        """Day number relative to the start (0 = first day, negative = before)."""
        day = when.date() if isinstance(when, dt.datetime) else when
        return (day - self.start_date).days


class ContentItem(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=500)
    activity_type = models.CharField(max_length=40)
    title = models.CharField(max_length=200, blank=True)
    week_from = models.SmallIntegerField(null=True, blank=True)
    week_to = models.SmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "external_id"], name="item_unique_per_course")
        ]

    def __str__(self) -> str:
        return self.title or f"{self.activity_type} {self.external_id}"


class Learner(models.Model):
    pseudonym = models.CharField(max_length=32, unique=True)
    # Personal data: encrypted at rest, shown only to platform admins.
    name = EncryptedTextField(blank=True, default="")
    email = EncryptedTextField(blank=True, default="")
    gender = models.CharField(max_length=16, blank=True)
    region = models.CharField(max_length=64, blank=True)
    highest_education = models.CharField(max_length=64, blank=True)
    imd_band = models.CharField(max_length=16, blank=True)
    age_band = models.CharField(max_length=16, blank=True)
    disability = models.CharField(max_length=4, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.pseudonym


class Enrollment(models.Model):
    class Result(models.TextChoices):
        IN_PROGRESS = "", "In progress"
        PASS = "Pass"
        DISTINCTION = "Distinction"
        FAIL = "Fail"
        WITHDRAWN = "Withdrawn"

    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="enrollments")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    registered_on = models.DateField(null=True, blank=True)
    unregistered_on = models.DateField(null=True, blank=True)
    final_result = models.CharField(max_length=16, choices=Result.choices, blank=True, default="")
    num_prev_attempts = models.PositiveSmallIntegerField(default=0)
    studied_credits = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "learner"], name="enrollment_unique")
        ]
        indexes = [models.Index(fields=["learner", "course"], name="enrollment_learner_idx")]

    def __str__(self) -> str:
        return f"{self.learner_id}@{self.course_id}"


class Assessment(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="assessments")
    external_id = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)  # TMA, CMA, Exam, quiz, ...
    title = models.CharField(max_length=200, blank=True)
    due_date = models.DateField(null=True, blank=True)
    weight = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["course", "external_id"], name="assessment_unique_per_course"
            )
        ]

    def __str__(self) -> str:
        return self.title or f"{self.kind} {self.external_id}"


class Submission(models.Model):
    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="submissions")
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="submissions")
    submitted_on = models.DateField()
    score = models.FloatField(null=True, blank=True)
    is_banked = models.BooleanField(default=False)
    is_late = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assessment", "learner"], name="submission_unique")
        ]
        indexes = [models.Index(fields=["learner"], name="submission_learner_idx")]


class EventSource(models.TextChoices):
    API = "api", _("Events API")
    XAPI = "xapi", _("xAPI")
    OULAD = "oulad", _("OULAD import")
    DEMO = "demo", _("Demo seed")


class LearningEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    # No database-level foreign keys on the two big tables: per-row RI triggers
    # made bulk COPY several times slower. Services write only resolved ids, and
    # Django's collector still cascades deletes (erasure) through these fields.
    learner = models.ForeignKey(
        Learner, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    course = models.ForeignKey(
        Course, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    item = models.ForeignKey(
        ContentItem,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        db_index=False,
        db_constraint=False,
    )
    verb = models.CharField(max_length=40)
    occurred_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)  # clicks this event stands for
    duration_seconds = models.FloatField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=EventSource.choices)
    # NULL (not "") for "no id": the partial unique index skips NULLs.
    client_event_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    ingested_at = models.DateTimeField(db_default=Now())

    class Meta:
        # Per-course time ranges use a BRIN index on PostgreSQL (migration 0002):
        # events arrive in time order and bulk imports arrive course by course,
        # so block ranges are tight, and BRIN costs almost nothing on COPY where
        # a second B-tree doubled the import time.
        indexes = [
            models.Index(
                fields=["learner", "course", "occurred_at"], name="event_learner_time_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "client_event_id"],
                condition=Q(client_event_id__isnull=False),
                name="event_client_id_unique",
            )
        ]


class DailyActivity(models.Model):
    """Rollup: one row per learner x course x day x activity type."""

    id = models.BigAutoField(primary_key=True)
    course = models.ForeignKey(
        Course, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    learner = models.ForeignKey(
        Learner, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    date = models.DateField()
    activity_type = models.CharField(max_length=40)
    events = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    active_seconds = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["course", "learner", "date", "activity_type"], name="daily_activity_unique"
            )
        ]
        # The unique index (course, learner, date, type) also serves per-course
        # and per-learner-in-course reads; more indexes only slowed imports.

    @property
    def active_minutes(self) -> float:
        return self.active_seconds / 60


class ImportRun(models.Model):
    """One completed import of a course run from a bulk source (OULAD, demo)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="import_runs")
    source = models.CharField(max_length=8, choices=EventSource.choices)
    events = models.PositiveBigIntegerField()
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "source"], name="import_once_per_source")
        ]


class Intervention(models.Model):
    """What an instructor did about a learner of a course run (#27 item 5): kind, day, note.

    The note may name the learner or their circumstances, so it is encrypted like
    a learner's name; the kind and the day are what the course page compares on.
    """

    class Kind(models.TextChoices):
        CONTACTED = "contacted", _("Contacted")
        MET = "met", _("Met")
        EXTENSION = "extension", _("Extension granted")
        OTHER = "other", _("Other")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="interventions")
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="interventions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    date = models.DateField()
    note = EncryptedTextField(blank=True, default="")
    # The learner's risk band in the run on `date` (their latest batch score on or before
    # it), read when the record is made: the outcome card compares learners flagged at the
    # time of the action, not by a band that may have moved since (#27). Blank: not scored.
    risk_band = models.CharField(max_length=8, blank=True, default="", editable=False)
    # Kept when the account goes: the record is about the learner, not the instructor.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "-id"]
        indexes = [models.Index(fields=["course", "learner"], name="intervention_run_learner_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.learner_id}@{self.course_id} {self.date}"
