"""statements_store's batch paths (#25 throughput): re-sent ids within a batch, placement by
a known activity in one lookup, and the memoised agent tokens."""

import uuid

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from analytics.ingest.lrs import StatementConflict, authority_of, statements_store
from analytics.models import LearningEvent, Statement
from analytics.statement_privacy import opened, sealed
from tests.analytics.ingest.test_lrs import COURSE, statement
from tests.factories import ContentItemFactory, CourseFactory

pytestmark = pytest.mark.django_db
AUTHORITY = authority_of(None, "tester")


def store(statements):
    return statements_store(statements=statements, client=None, authority=AUTHORITY)


def test_a_batch_with_a_resent_statement_stores_and_counts_only_the_new_ones():
    CourseFactory(code="MOODLE_7", iri=COURSE)
    first = store([statement(1), statement(2)])
    assert (first.stored, first.events) == (2, 2)
    again = store([statement(2), statement(3), statement(1)])
    assert again.ids == [str(uuid.UUID(int=n)) for n in (2, 3, 1)]
    assert (again.stored, again.unplaced, again.events) == (1, 0, 1)
    assert Statement.objects.count() == 3
    assert LearningEvent.objects.count() == 3


def test_a_conflicting_id_in_a_batch_stores_nothing():
    store([statement(1)])
    changed = statement(1, verb={"id": "http://adlnet.gov/expapi/verbs/failed"})
    with pytest.raises(StatementConflict):
        store([statement(4), changed])
    assert list(Statement.objects.values_list("statement_id", flat=True)) == [uuid.UUID(int=1)]


def test_an_activity_known_in_one_run_places_the_statement():
    course = CourseFactory(code="RUN_A", iri="https://lms.example.org/course/a")
    ContentItemFactory(course=course, external_id="https://lms.example.org/page/1")
    ContentItemFactory(course=course, external_id="https://lms.example.org/page/2")
    other = CourseFactory(code="RUN_B", iri="https://lms.example.org/course/b")
    ContentItemFactory(course=other, external_id="https://lms.example.org/page/2")
    plain = {"context": {"platform": "test"}}
    only_a = statement(1, object={"id": "https://lms.example.org/page/1"}, **plain)
    in_both = statement(2, object={"id": "https://lms.example.org/page/2"}, **plain)
    result = store([only_a, in_both])
    assert (result.stored, result.unplaced) == (2, 1)
    placed = dict(Statement.objects.values_list("statement_id", "course__code"))
    assert placed == {uuid.UUID(int=1): "RUN_A", uuid.UUID(int=2): None}


def test_sealed_tokens_follow_the_field_keys():
    data = statement(1)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[old]):
        first, second = sealed(data), sealed(data)
        assert first["actor"]["name"] != "Ada"
        assert opened(first) == data
    with override_settings(FIELD_ENCRYPTION_KEYS=[new]):
        # A token made under the old key would not open with the new key alone.
        assert opened(sealed(data)) == data
    assert first == second
