"""Activity stamps change with every write of a learner's events, and only theirs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics import activity_stamps
from analytics.models import Course, Learner, LearningEvent
from eduplatform.core import throttles
from tests.factories import (
    ContentItemFactory,
    CourseFactory,
    EnrollmentFactory,
    LearnerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def stamps(course: Course, learner: Learner) -> str | None:
    return activity_stamps.stamps_for(course_id=course.pk, pseudonym=learner.pseudonym)


def test_stamps_are_stable_until_a_write() -> None:
    course, learner = CourseFactory(), LearnerFactory()
    first = stamps(course, learner)
    assert first is not None and stamps(course, learner) == first


def test_events_api_changes_the_stamps_of_the_batch_learners_only(
    django_capture_on_commit_callbacks,
) -> None:
    course = CourseFactory(code="WEB_2026J")
    ContentItemFactory(course=course, external_id="video-1", activity_type="video")
    user = UserFactory(username="ingest")
    user.user_permissions.add(Permission.objects.get(codename="add_learningevent"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    bystander = EnrollmentFactory(course=course).learner
    before_bystander = stamps(course, bystander)

    def post(n: int) -> None:
        body = {
            "client_event_id": f"evt-{n}",
            "learner_id": "user-1",
            "course": "WEB_2026J",
            "item": "video-1",
            "verb": "played",
            "occurred_at": "2026-10-05T10:00:00+02:00",
        }
        # The stamps change when the batch commits.
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post("/api/v1/events", [body], format="json").status_code == 201

    post(1)
    learner = Learner.objects.exclude(pk=bystander.pk).get()
    before = stamps(course, learner)
    post(1)  # a repeat: nothing new, yet a stamp may change (a needless recompute only)
    before = stamps(course, learner)
    post(2)
    assert stamps(course, learner) != before
    assert stamps(course, bystander) == before_bystander


def test_a_single_event_save_changes_the_stamps() -> None:
    enrolment = EnrollmentFactory()
    before = stamps(enrolment.course, enrolment.learner)
    LearningEvent.objects.create(
        learner=enrolment.learner,
        course=enrolment.course,
        verb="viewed",
        occurred_at=timezone.now() - dt.timedelta(hours=1),
        source="api",
    )
    assert stamps(enrolment.course, enrolment.learner) != before


def test_an_import_bumps_the_stamps_of_its_runs(oulad_slice, monkeypatch) -> None:
    bumped: list[int] = []
    real = activity_stamps.stamps_bump

    def recording(*, pairs=(), course_ids=()) -> None:
        course_ids = list(course_ids)
        bumped.extend(course_ids)
        real(pairs=pairs, course_ids=course_ids)

    monkeypatch.setattr(activity_stamps, "stamps_bump", recording)
    call_command("import_oulad", str(oulad_slice), "--no-progress", "--max-students", "5")
    assert sorted(bumped) == sorted(Course.objects.values_list("pk", flat=True))
    # A run's stamp moves for all its learners at once.
    course = Course.objects.order_by("pk").first()
    learner = course.enrollments.first().learner
    before = stamps(course, learner)
    real(course_ids=[course.pk])
    assert stamps(course, learner) != before


def test_a_flushed_cache_never_gives_back_an_old_stamp() -> None:
    course, learner = CourseFactory(), LearnerFactory()
    before = stamps(course, learner)
    cache.clear()
    assert stamps(course, learner) not in (None, before)


def test_unreachable_cache_gives_none(monkeypatch) -> None:
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    # Every way the stamps are reached: the Redis scripts, or any backend's calls.
    monkeypatch.setattr(activity_stamps, "cache_backend", unreachable)
    monkeypatch.setattr(throttles, "_redis_hits", unreachable)
    backend = type(throttles.cache_backend(cache))
    for method in ("add", "get", "get_many", "set"):
        monkeypatch.setattr(backend, method, unreachable)
    assert stamps(CourseFactory.build(pk=1), LearnerFactory.build(pseudonym="p")) is None
    activity_stamps.stamps_bump(pairs=[(1, "p")])  # logged, not raised
