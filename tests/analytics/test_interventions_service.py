"""analytics.services.intervention_record: scoping, validation, encryption at rest (#27 item 5)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404

from analytics.models import Intervention
from analytics.services import intervention_record
from tests.factories import CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _record(user, enrollment, **overrides):
    values = {
        "kind": "contacted",
        "date": dt.date(2026, 10, 20),
        "note": "Phoned Ada about her TMA",
        **overrides,
    }
    return intervention_record(
        user=user, course=enrollment.course, learner=enrollment.learner, **values
    )


def test_the_runs_instructor_records_an_action(run):
    enrollment, instructor = run
    record = _record(instructor, enrollment)
    stored = Intervention.objects.get()
    assert (stored.pk, stored.kind, stored.note, stored.created_by) == (
        record.pk,
        "contacted",
        "Phoned Ada about her TMA",
        instructor,
    )
    assert stored.created_at.tzinfo is not None


def test_the_note_is_encrypted_at_rest(run):
    enrollment, instructor = run
    record = _record(instructor, enrollment)
    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM analytics_intervention WHERE id = %s", [record.pk])
        (raw,) = cursor.fetchone()
    assert "Ada" not in raw and raw.startswith("gAAAA")  # a Fernet token


@pytest.mark.parametrize("who", ["other instructor", "analyst", "nobody"])
def test_others_may_not_record_on_the_run(run, who):
    from django.contrib.auth.models import Group

    enrollment, _ = run
    user = UserFactory()
    if who == "other instructor":
        CourseFactory().instructors.add(user)
    elif who == "analyst":
        user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    with pytest.raises(Http404):
        _record(user, enrollment)
    assert not Intervention.objects.exists()


def test_an_admin_records_on_any_run(run):
    enrollment, _ = run
    _record(UserFactory(is_superuser=True), enrollment)
    assert Intervention.objects.count() == 1


def test_the_learner_must_be_enrolled_in_the_run(run):
    enrollment, instructor = run
    other = EnrollmentFactory()
    with pytest.raises(Http404):
        intervention_record(
            user=instructor,
            course=enrollment.course,
            learner=other.learner,
            kind="met",
            date=dt.date(2026, 10, 20),
            note="",
        )


def test_bad_input_names_its_fields_and_writes_nothing(run):
    enrollment, instructor = run
    with pytest.raises(ValidationError) as error:
        _record(instructor, enrollment, kind="phoned", date=dt.date(2999, 1, 1), note="a\x00b")
    assert set(error.value.message_dict) == {"kind", "date", "note"}
    assert not Intervention.objects.exists()


def test_the_learners_export_holds_the_records_and_erasure_removes_them():
    from analytics.selectors.learners import learner_export
    from analytics.services import learner_erase
    from tests.factories import InterventionFactory

    record = InterventionFactory(note="Agreed a new deadline")
    export = learner_export(pseudonym=record.learner.pseudonym)
    assert [(r["kind"], r["note"]) for r in export["interventions"]] == [
        ("contacted", "Agreed a new deadline")
    ]
    learner_erase(pseudonym=record.learner.pseudonym)
    assert not Intervention.objects.exists()


def test_the_record_keeps_the_band_on_the_actions_day(run):
    """#27: the band stored is the learner's latest batch score on or before the action's
    day (churn's RiskHistory through analytics.risk_bands), not a later one; blank when not
    scored by then. Killed mutants: risk_band not stored; as_of__lte dropped (the newest
    band)."""
    from churn.models import RiskHistory

    enrollment, instructor = run
    for day, band in ((dt.date(2026, 10, 1), "medium"), (dt.date(2026, 10, 15), "high")):
        RiskHistory.objects.create(
            course=enrollment.course, learner=enrollment.learner, as_of=day, probability=0.5,
            band=band,
        )  # fmt: skip
    RiskHistory.objects.create(  # after the action: not the band that led to it
        course=enrollment.course, learner=enrollment.learner, as_of=dt.date(2026, 10, 25),
        probability=0.1, band="low",
    )  # fmt: skip
    assert _record(instructor, enrollment, date=dt.date(2026, 10, 20)).risk_band == "high"
    assert _record(instructor, enrollment, date=dt.date(2026, 10, 5)).risk_band == "medium"
    assert _record(instructor, enrollment, date=dt.date(2026, 9, 30)).risk_band == ""
    assert Intervention.objects.filter(risk_band="high").count() == 1
