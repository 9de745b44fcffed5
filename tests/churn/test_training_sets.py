"""Leakage guard (d) (#30): `churn.features.training_sets` splits in time.

The validation runs are the latest-starting ones, no run is on both sides, and no row
is built at a cut-off after `as_of`. The guard must fail on the mutant that validates on
the earliest-starting runs instead.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

import churn.features as churn_features
from analytics.models import Course
from churn.features import TrainingSets, training_sets
from eduplatform.core.clock import today

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def platform():
    call_command("seed_demo", "--learners", "120", "--courses", "4", "--days", "200", "--seed", "4")


def check_split(sets: TrainingSets, as_of: dt.date) -> None:
    courses = {c.id: c for c in Course.objects.all()}
    train_runs = set(sets.train.frame["course_id"])
    val_runs = set(sets.val.frame["course_id"])
    assert train_runs and val_runs
    assert not train_runs & val_runs, "a run on both sides"
    latest_train = max(courses[r].start_date for r in train_runs)
    earliest_val = min(courses[r].start_date for r in val_runs)
    assert earliest_val >= latest_train, "validation runs are not the latest-starting ones"
    for part in (sets.train, sets.val):
        for run, cutoff in (
            part.frame[["course_id", "cutoff"]].drop_duplicates().itertuples(index=False)
        ):
            built = courses[run].start_date + dt.timedelta(days=int(cutoff))
            assert built < as_of, f"run {run}: a row built at {built}, after as_of {as_of}"


def test_training_sets_split_in_time(platform):
    as_of = today()
    sets = training_sets(as_of=as_of)
    assert sets is not None
    check_split(sets, as_of)
    # an earlier as_of: fewer rows, none after it
    earlier = training_sets(as_of=as_of - dt.timedelta(days=60))
    if earlier is not None:
        check_split(earlier, as_of - dt.timedelta(days=60))
        assert len(earlier.train) + len(earlier.val) < len(sets.train) + len(sets.val)


def test_guard_catches_validation_on_the_earliest_runs(platform, monkeypatch):
    real = churn_features.split_in_time

    def earliest_validate(features, courses, as_of):
        return real(features, list(reversed(courses)), as_of)

    monkeypatch.setattr(churn_features, "split_in_time", earliest_validate)
    as_of = today()
    sets = training_sets(as_of=as_of)
    assert sets is not None
    with pytest.raises(AssertionError, match="latest-starting"):
        check_split(sets, as_of)
