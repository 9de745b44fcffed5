"""seed_events (#28 item 1): exactly N events, the same for the same seed, on real runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db.models import F

from analytics.models import Course, DailyActivity, Enrollment, Learner, LearningEvent
from eduplatform.ml.datasets.synthetic_scale import batches

TODAY = dt.date(2026, 11, 30)


def _rows(events: int, seed: int, batch_events: int) -> list:
    out = []
    for batch in batches(events=events, seed=seed, today=TODAY, batch_events=batch_events):
        for chunk in batch.platform.chunks:
            out.append((chunk.course_id, chunk.rows.to_numpy().tobytes()))
    return out


def test_batches_hold_exactly_n_events_and_repeat_by_seed():
    got = list(batches(events=25_000, seed=3, today=TODAY, batch_events=10_000))
    assert sum(b.events for b in got) == 25_000
    assert all(0 < b.events <= 10_000 for b in got) and got[0].events == 10_000
    assert sum(len(c.rows) for b in got for c in b.platform.chunks) == 25_000
    # Every batch its own runs and learners, ending a quarter before the previous one.
    keys = [k for b in got for k in b.platform.start_dates]
    assert len(keys) == len(set(keys)) == 10 * len(got)
    assert len({b.namespace for b in got}) == len(got)
    assert [b.today for b in got] == [TODAY - dt.timedelta(days=91 * i) for i in range(len(got))]
    assert _rows(25_000, 3, 10_000) == _rows(25_000, 3, 10_000)
    assert _rows(25_000, 3, 10_000) != _rows(25_000, 4, 10_000)


@pytest.mark.django_db
def test_seed_events_lands_n_events_on_real_runs_and_learners():
    call_command(
        "seed_events", "--events", "12000", "--seed", "1", "--today", "2026-11-30",
        "--batch-events", "5000", verbosity=0,
    )  # fmt: skip
    assert LearningEvent.objects.count() == 12_000
    assert Course.objects.count() % 10 == 0 and Course.objects.count() >= 30
    enrolled = set(Enrollment.objects.values_list("course_id", "learner_id"))
    events = set(LearningEvent.objects.values_list("course_id", "learner_id").distinct())
    assert events and events <= enrolled  # every event on a run its learner is enrolled in
    # No database foreign keys on the event table: every id must name a real row.
    assert not LearningEvent.objects.exclude(learner_id__in=Learner.objects.values("id")).exists()
    assert not LearningEvent.objects.filter(item__isnull=True).exists()
    assert not LearningEvent.objects.exclude(item__course_id=F("course_id")).exists()
    assert LearningEvent.objects.filter(occurred_at__date__gt=dt.date(2026, 11, 30)).count() == 0
    assert DailyActivity.objects.exists()
    # Run again: every batch's runs exist, nothing is added.
    call_command(
        "seed_events", "--events", "12000", "--seed", "1", "--today", "2026-11-30",
        "--batch-events", "5000", verbosity=0,
    )  # fmt: skip
    assert LearningEvent.objects.count() == 12_000
