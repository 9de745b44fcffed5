"""A small two-course platform for the dashboard tests (access, views, browser).

Course A and course B each have learners with activity, content, an
assessment and raw events; one learner is enrolled in both. Users: a platform
admin, an analyst, one instructor per course and a signed-in user with no
role. Learner names and emails are distinctive strings, so a test can search
any page for them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from django.utils import timezone

from analytics.models import (
    Course,
    DailyActivity,
    Enrollment,
    ImportRun,
    Learner,
    LearningEvent,
)
from eduplatform.core.access import ANALYST_GROUP
from tests.factories import (
    AssessmentFactory,
    ContentItemFactory,
    CourseFactory,
    EnrollmentFactory,
    LearnerFactory,
    SubmissionFactory,
    UserFactory,
)

PASSWORD = "correct-horse-battery"
TYPES = ("resource", "quiz", "forumng")


@dataclass
class World:
    today: dt.date
    course_a: Course
    course_b: Course
    admin: object
    analyst: object
    instructor_a: object
    instructor_b: object
    nobody: object
    learners: dict[str, list[Learner]] = field(default_factory=dict)  # course code -> learners
    shared: Learner | None = None  # enrolled in both courses

    def all_learners(self) -> list[Learner]:
        seen = {}
        for group in self.learners.values():
            for learner in group:
                seen[learner.pk] = learner
        return list(seen.values())

    def personal_strings(self) -> list[str]:
        return [s for learner in self.all_learners() for s in (learner.name, learner.email)]


def _activity(course: Course, learner: Learner, day: dt.date, kind: str, clicks: int) -> None:
    DailyActivity.objects.create(
        course=course,
        learner=learner,
        date=day,
        activity_type=kind,
        events=max(1, clicks // 2),
        clicks=clicks,
        active_seconds=60.0 * clicks,
    )


def add_learners(
    course: Course, count: int, *, today: dt.date, tag: str, start: int = 0
) -> list[Learner]:
    """Learners enrolled in ``course`` with rollup rows, raw events and one submission each.

    Learner i is active on days spread over the last three weeks (learner 0
    most, the last one least) so sorting and filters have something to tell
    apart. Learner 1 withdrew.
    """
    items = list(course.items.all()) or [
        ContentItemFactory(course=course, activity_type=kind, title=f"{course.code} {kind}")
        for kind in TYPES
    ]
    assessment = course.assessments.first() or AssessmentFactory(
        course=course, due_date=today - dt.timedelta(days=3)
    )
    learners = []
    for offset in range(count):
        i = start + offset
        learner = LearnerFactory(
            name=f"Zelda{tag}{i} Quixote", email=f"zq.{tag.lower()}{i}@secret.example"
        )
        withdrawn = i == 1
        EnrollmentFactory(
            learner=learner,
            course=course,
            registered_on=course.start_date - dt.timedelta(days=5),
            unregistered_on=today - dt.timedelta(days=4) if withdrawn else None,
            final_result=Enrollment.Result.WITHDRAWN if withdrawn else "",
        )
        add_activity(course, learner, index=i, today=today, items=items)
        SubmissionFactory(
            assessment=assessment,
            learner=learner,
            submitted_on=today - dt.timedelta(days=4),
            score=40 + (i * 7) % 60,
        )
        learners.append(learner)
    return learners


def add_activity(
    course: Course, learner: Learner, *, index: int, today: dt.date, items: list
) -> None:
    active_days = max(1, 8 - index)  # learner 0: 8 days, learner 7+: 1 day
    for d in range(active_days):
        day = today - dt.timedelta(days=2 * d + index % 3)
        kind = TYPES[(d + index) % len(TYPES)]
        _activity(course, learner, day, kind, clicks=3 + d + index % 4)
        item = items[(d + index) % len(items)]
        LearningEvent.objects.create(
            learner=learner,
            course=course,
            item=item,
            verb="viewed",
            occurred_at=timezone.make_aware(dt.datetime.combine(day, dt.time(10, 0)), dt.UTC),
            count=3 + d,
            source="api" if d % 2 else "xapi",
        )


def build_world(per_course: int = 6, today: dt.date | None = None) -> World:
    today = today or timezone.localdate()
    start = today - dt.timedelta(days=40)
    course_a = CourseFactory(code="AAA_TEST_A", title="Alpha course", start_date=start)
    course_b = CourseFactory(code="BBB_TEST_B", title="Beta course", start_date=start)
    admin = UserFactory(username="admin_user", is_superuser=True, is_staff=True)
    analyst = UserFactory(username="analyst_user")
    analyst.groups.add(Group.objects.get_or_create(name=ANALYST_GROUP)[0])
    instructor_a = UserFactory(username="instructor_a")
    instructor_b = UserFactory(username="instructor_b")
    nobody = UserFactory(username="nobody_user")
    course_a.instructors.add(instructor_a)
    course_b.instructors.add(instructor_b)
    world = World(
        today=today,
        course_a=course_a,
        course_b=course_b,
        admin=admin,
        analyst=analyst,
        instructor_a=instructor_a,
        instructor_b=instructor_b,
        nobody=nobody,
    )
    world.learners[course_a.code] = add_learners(course_a, per_course, today=today, tag="A")
    world.learners[course_b.code] = add_learners(course_b, per_course, today=today, tag="B")
    # One learner of A also takes B: instructors of A must not see the B side.
    shared = world.learners[course_a.code][0]
    EnrollmentFactory(learner=shared, course=course_b, registered_on=start)
    add_activity(course_b, shared, index=2, today=today, items=list(course_b.items.all()))
    world.learners[course_b.code].append(shared)
    world.shared = shared
    ImportRun.objects.create(course=course_a, source="oulad", events=10)
    return world
