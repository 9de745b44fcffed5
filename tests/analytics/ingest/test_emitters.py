"""Moodle logstore_xapi and Open edX event-routing-backends shapes (#25): every batch stored,
site-level statements held and counted, course statements placed once their IRI is mapped."""

import pytest

from analytics.ingest.lrs import statement_place
from analytics.models import LearningEvent, Statement
from analytics.selectors.statements import unplaced_by_iri
from tests.analytics.ingest.emitter_shapes import (
    EDX_COURSE,
    MOODLE,
    MOODLE_COURSE,
    edx_batches,
    moodle_batches,
)
from tests.analytics.ingest.test_lrs import URL, lrs_client
from tests.factories import CourseFactory

pytestmark = pytest.mark.django_db


def test_every_batch_of_both_emitters_is_stored_on_a_fresh_install():
    client, _ = lrs_client(scopes=["statements/write"])
    batches = moodle_batches() + edx_batches()
    failed = [
        i for i, b in enumerate(batches) if client.post(URL, b, format="json").status_code != 200
    ]
    assert failed == []
    assert Statement.objects.count() == 300
    # Nothing is known yet: all held, counted by IRI; the Moodle site carries the
    # site-level ones (login, logout, user created, search).
    held = {row["place_iri"]: row["statements"] for row in unplaced_by_iri()}
    assert held == {MOODLE_COURSE: 120, MOODLE: 80, EDX_COURSE: 100}
    assert LearningEvent.objects.count() == 0
    # The admin maps the two course IRIs: the course statements become events.
    moodle_run = CourseFactory(code="STAT101_2026", iri=None)
    edx_run = CourseFactory(code="DEMOX_2026", iri=None)
    assert statement_place(iri=MOODLE_COURSE, course=moodle_run) == 120
    assert statement_place(iri=EDX_COURSE, course=edx_run) == 100
    # Group actors give one event per member (20 group statements of 2 members).
    assert LearningEvent.objects.filter(course=moodle_run).count() == 100 + 2 * 20
    assert LearningEvent.objects.filter(course=edx_run).count() == 100
    assert {row["place_iri"] for row in unplaced_by_iri()} == {MOODLE}
    quiz = LearningEvent.objects.filter(course=moodle_run, verb="completed").first()
    assert quiz is not None and quiz.duration_seconds == 432


def test_retried_batches_are_no_ops():
    client, _ = lrs_client(scopes=["statements/write"])
    CourseFactory(code="DEMOX_2026", iri=EDX_COURSE)
    batch = edx_batches(1)[0]
    assert client.post(URL, batch, format="json").status_code == 200
    assert client.post(URL, batch, format="json").status_code == 200
    assert Statement.objects.count() == 20
    assert LearningEvent.objects.count() == 20
