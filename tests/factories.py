import datetime as dt

import factory
from django.contrib.auth import get_user_model

from analytics.models import (
    Assessment,
    ContentItem,
    Course,
    Enrollment,
    Intervention,
    Learner,
    LearningEvent,
    Submission,
)
from eduplatform.core.privacy import pseudonymise


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct-horse-battery")


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    code = factory.Sequence(lambda n: f"MOD{n}_2026J")
    module_code = factory.Sequence(lambda n: f"MOD{n}")
    presentation = "2026J"
    title = factory.Sequence(lambda n: f"Course {n}")
    start_date = dt.date(2026, 10, 1)
    length_days = 210
    iri = factory.LazyAttribute(lambda o: f"https://lms.example.org/courses/{o.code}")


class ContentItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContentItem

    course = factory.SubFactory(CourseFactory)
    external_id = factory.Sequence(lambda n: f"https://lms.example.org/items/{n}")
    activity_type = "resource"
    title = factory.Sequence(lambda n: f"Item {n}")
    week_from = 1


class LearnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Learner

    pseudonym = factory.Sequence(lambda n: pseudonymise("test", str(n)))
    name = factory.Sequence(lambda n: f"Learner Name{n}")
    email = factory.Sequence(lambda n: f"learner{n}@example.org")
    gender = "F"


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    learner = factory.SubFactory(LearnerFactory)
    course = factory.SubFactory(CourseFactory)
    registered_on = dt.date(2026, 9, 20)


class AssessmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assessment

    course = factory.SubFactory(CourseFactory)
    external_id = factory.Sequence(lambda n: f"A{n}")
    kind = "TMA"
    due_date = dt.date(2026, 10, 20)
    weight = 20


class SubmissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Submission

    assessment = factory.SubFactory(AssessmentFactory)
    learner = factory.SubFactory(LearnerFactory)
    submitted_on = dt.date(2026, 10, 19)
    score = 70


class LearningEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LearningEvent

    learner = factory.SubFactory(LearnerFactory)
    course = factory.SubFactory(CourseFactory)
    verb = "viewed"
    occurred_at = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC)
    source = "api"


class InterventionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Intervention

    course = factory.SubFactory(CourseFactory)
    learner = factory.SubFactory(LearnerFactory)
    kind = Intervention.Kind.CONTACTED
    date = dt.date(2026, 10, 20)
    note = "Phoned about the missed TMA"
