import pandas as pd
import pytest
from django.core.management import call_command
from django.db.models import Sum

from analytics.models import Course, DailyActivity, Enrollment, Learner, LearningEvent
from eduplatform.ml.datasets.synthetic import generate


def test_generation_is_deterministic_for_a_seed():
    a = generate(learners=60, courses=2, days=70, seed=3)
    b = generate(learners=60, courses=2, days=70, seed=3)
    c = generate(learners=60, courses=2, days=70, seed=4)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    for x, y in zip(a.chunks, b.chunks, strict=True):
        pd.testing.assert_frame_equal(x.rows, y.rows)
    assert not a.chunks[0].rows.equals(c.chunks[0].rows)


def test_engagement_decays_before_withdrawal():
    platform = generate(learners=400, courses=1, days=200, seed=1)
    reg = platform.tables["studentRegistration"]
    withdrawn = reg.dropna(subset=["date_unregistration"])
    assert len(withdrawn) > 10
    clicks = platform.chunks[0].rows.merge(
        withdrawn[["id_student", "date_unregistration"]],
        left_on="learner_id",
        right_on="id_student",
    )
    before = clicks["date_unregistration"] - clicks["day"]
    last_week = clicks[before.between(0, 6)].groupby("learner_id")["clicks"].sum()
    month_earlier = clicks[before.between(28, 34)].groupby("learner_id")["clicks"].sum()
    assert last_week.sum() < 0.6 * month_earlier.sum()
    assert (before >= 0).all()  # no activity after withdrawal


@pytest.mark.django_db
def test_seed_demo_command_fills_database_consistently():
    call_command("seed_demo", "--learners", "80", "--courses", "2", "--days", "60", "--seed", "5")
    assert Course.objects.count() == 2
    assert Learner.objects.count() == 80
    assert Enrollment.objects.count() >= 80
    # Demo learners carry (encrypted) personal data, unlike OULAD.
    assert "@example.org" in Learner.objects.first().email
    events = LearningEvent.objects.aggregate(n=Sum("count"))["n"]
    assert events and events == DailyActivity.objects.aggregate(n=Sum("clicks"))["n"]
    call_command("seed_demo", "--learners", "80", "--courses", "2", "--days", "60", "--seed", "5")
    assert Learner.objects.count() == 80
