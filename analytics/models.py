"""Learner-behaviour data.

Sized for tens of millions of events: LearningEvent is append-mostly with two
composite indexes (per learner and per course, by time); dashboards and model
features read the DailyActivity rollup, never raw events per request.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
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
    iri = models.CharField(
        _("course IRI"),
        max_length=500,
        unique=True,
        null=True,
        blank=True,
        help_text=_(
            "The xAPI activity id the LMS uses for this course run (Moodle: "
            "https://<site>/course/view.php?id=<n>; Open edX: https://<lms>/course/<course key>). "
            "Statements naming it as their object, parent or grouping activity become this "
            "run's events; the action 'Place held xAPI statements' turns those already "
            "received into events."
        ),
    )
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
    # NULL (not "") for "no id": the partial index skips NULLs. Unique per source through
    # EventClientId, not here: see that model.
    client_event_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    ingested_at = models.DateTimeField(db_default=Now())

    class Meta:
        # Per-course time ranges use a BRIN index on PostgreSQL (migration 0002):
        # events arrive in time order and bulk imports arrive course by course,
        # so block ranges are tight, and BRIN costs almost nothing on COPY where
        # a second B-tree doubled the import time.
        # On PostgreSQL the table is partitioned by month of occurred_at (migration
        # 0009, analytics.partitions); its primary key there is (id, occurred_at), as a
        # partitioned table requires. `id` stays unique (one identity sequence) and is
        # what Django uses as pk.
        indexes = [
            models.Index(
                fields=["learner", "course", "occurred_at"], name="event_learner_time_idx"
            ),
            # Finds a client's events (xAPI voiding withdraws them by statement id).
            models.Index(
                fields=["source", "client_event_id"],
                condition=Q(client_event_id__isnull=False),
                name="event_client_id_idx",
            ),
        ]


class EventClientId(models.Model):
    """Every stored (source, client_event_id): the events API's "never stored twice".

    A unique index on a partitioned table must contain the partition key, and a
    unique (source, client_event_id, occurred_at) would store a retry sent with
    another timestamp twice. So ingestion claims the id here first (ON CONFLICT DO
    NOTHING, same statement and transaction) and stores only the events it claimed.
    `occurred_at` lets retention forget the ids of the months it drops.
    """

    # Not a CompositePrimaryKey(source, client_event_id): Django 5.2's admin refuses
    # models with one, and every model of ours is in the admin.
    id = models.BigAutoField(primary_key=True)
    source = models.CharField(max_length=8, choices=EventSource.choices)
    client_event_id = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "client_event_id"], name="client_id_unique")
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


class LrsClient(models.Model):
    """An xAPI client (an LMS's logstore, an event router): HTTP Basic key/secret and scopes.

    The secret is stored as its SHA-256: it is 32 random bytes made by the admin, so a slow
    password hash adds nothing against guessing and would cost every request ~0.5 s.
    """

    class Scope(models.TextChoices):
        WRITE = "statements/write", "statements/write"
        READ = "statements/read", "statements/read"
        READ_MINE = "statements/read/mine", "statements/read/mine"
        ALL_READ = "all/read", "all/read"

    name = models.CharField(_("name"), max_length=100, unique=True)
    key = models.CharField(_("key"), max_length=64, unique=True)
    secret_sha256 = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(_("scopes"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("LRS client")
        verbose_name_plural = _("LRS clients")

    def __str__(self) -> str:
        return self.name


# JSON list columns of Statement matched by containment (selectors/statements.py).
STATEMENT_GIN_COLUMNS = {
    "agents": "statement_agents_gin",
    "related_agents": "statement_rel_agents_gin",
    "related_activities": "statement_rel_activities_gin",
    "learners": "statement_learners_gin",
}


class Statement(models.Model):
    """An accepted xAPI statement, kept as sent with the properties the LRS fills.

    `data` is the statement as GET answers it (format=exact); `filled` names the properties
    the LRS added (so a re-sent statement compares with what its sender sent). The other
    columns exist to filter GET and to place the statement: `course` is null while the
    platform does not know the course ("unplaced", held on `place_iri`); placed, unvoided
    statements about an Agent (or a Group's members) are also learner events.
    """

    id = models.BigAutoField(primary_key=True)
    statement_id = models.UUIDField(unique=True)
    data = models.JSONField()
    filled = models.JSONField(default=list)
    stored = models.DateTimeField(db_index=True)
    timestamp = models.DateTimeField()
    voided = models.BooleanField(default=False)
    verb_id = models.TextField()
    activity_id = models.TextField(blank=True, default="")
    registration = models.UUIDField(null=True, blank=True)
    actor_key = models.TextField()
    # Identity keys of actor and object (the `agent` filter) and of every agent anywhere
    # (`related_agents`); activity ids anywhere (`related_activities`). JSON lists.
    agents = models.JSONField(default=list)
    related_agents = models.JSONField(default=list)
    related_activities = models.JSONField(default=list)
    # Pseudonyms of the learners the statement is about (an Agent actor, a Group's members),
    # as Learner.pseudonym: the data subject's export and erasure find them by it.
    learners = models.JSONField(default=list)
    voids = models.UUIDField(null=True, blank=True)
    target = models.UUIDField(null=True, blank=True, db_index=True)  # a StatementRef object
    client = models.ForeignKey(
        LrsClient, on_delete=models.SET_NULL, null=True, blank=True, related_name="statements"
    )
    course = models.ForeignKey(
        Course, on_delete=models.SET_NULL, null=True, blank=True, related_name="statements"
    )
    place_iri = models.TextField(blank=True, default="")
    placed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("xAPI statement")
        verbose_name_plural = _("xAPI statements")
        indexes = [
            models.Index(fields=["actor_key", "stored"], name="statement_actor_idx"),
            models.Index(fields=["verb_id", "stored"], name="statement_verb_idx"),
            models.Index(fields=["activity_id", "stored"], name="statement_activity_idx"),
            models.Index(fields=["registration"], name="statement_registration_idx"),
            models.Index(
                fields=["place_iri", "stored"],
                condition=Q(course__isnull=True),
                name="statement_unplaced_idx",
            ),
            # The agent / related filters, export and erasure match these JSON lists by
            # containment (@>); GIN indexes on PostgreSQL only (migration 0010), so on
            # SQLite they exist in the migration state alone.
            *(
                GinIndex(fields=[column], opclasses=["jsonb_path_ops"], name=name)
                for column, name in STATEMENT_GIN_COLUMNS.items()
            ),
        ]

    def __str__(self) -> str:
        return str(self.statement_id)


class StatementAttachment(models.Model):
    """The bytes of an xAPI attachment sent in a `multipart/mixed` request, once per SHA-2."""

    sha2 = models.CharField(max_length=128, primary_key=True)
    content_type = models.CharField(max_length=255)
    length = models.PositiveBigIntegerField()
    content = models.BinaryField()
    stored = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("xAPI attachment")
        verbose_name_plural = _("xAPI attachments")

    def __str__(self) -> str:
        return self.sha2
