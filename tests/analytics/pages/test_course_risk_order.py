"""The at-risk table's default order: riskiest first (#27 item 1).

Admins see the probability order within a band; instructors and analysts band, then
pseudonym (a figure they do not see is not leaked by the order). Unscored learners last.
"""

import datetime as dt

import pytest
from django.utils import timezone

from churn.models import RiskScore
from tests.analytics.pages.support import body, client_for, csv_rows, table_pseudonyms
from tests.browser.world import World

pytestmark = pytest.mark.django_db

# (band, probability) per learner index of course A; learner 5 is not scored
SCORES = {
    0: ("low", 0.05),
    1: ("high", 0.61),
    2: ("medium", 0.2),
    3: ("high", 0.9),
    4: ("low", 0.09),
}


@pytest.fixture
def scored(world: World) -> list[str]:
    learners = world.learners[world.course_a.code]
    now = timezone.now()
    for i, (band, p) in SCORES.items():
        RiskScore.objects.create(
            course=world.course_a,
            learner=learners[i],
            model_version=1,
            as_of=dt.date(2026, 12, 1),
            scored_at=now,
            probability=p,
            band=band,
            factors=[],
        )
    return [lrn.pseudonym for lrn in learners]


RANK = {"high": 0, "medium": 1, "low": 2}


def test_admin_sees_probability_order(world: World, scored: list[str]) -> None:
    html = body(client_for(world.admin).get(f"/courses/{world.course_a.pk}/?status=all"))
    by_p = sorted(SCORES, key=lambda i: -SCORES[i][1])
    assert table_pseudonyms(html) == [scored[i] for i in by_p] + [scored[5]]
    assert 'data-sort="risk"' in html and "data-order-legend" in html


def test_instructor_sees_band_then_pseudonym(world: World, scored: list[str]) -> None:
    html = body(client_for(world.instructor_a).get(f"/courses/{world.course_a.pk}/?status=all"))
    shown = table_pseudonyms(html)
    expected = sorted(SCORES, key=lambda i: (RANK[SCORES[i][0]], scored[i]))
    assert shown == [scored[i] for i in expected] + [scored[5]]


def test_ascending_puts_low_risk_first_and_unscored_still_last(
    world: World, scored: list[str]
) -> None:
    html = body(client_for(world.admin).get(f"/courses/{world.course_a.pk}/?status=all&sort=risk"))
    by_p = sorted(SCORES, key=lambda i: SCORES[i][1])
    assert table_pseudonyms(html) == [scored[i] for i in by_p] + [scored[5]]
    assert 'aria-sort="ascending"' in html


def test_csv_export_follows_the_risk_order(world: World, scored: list[str]) -> None:
    response = client_for(world.admin).get(f"/courses/{world.course_a.pk}/export.csv?status=all")
    rows = csv_rows(response)
    by_p = sorted(SCORES, key=lambda i: -SCORES[i][1])
    assert [r[0] for r in rows[1:]] == [scored[i] for i in by_p] + [scored[5]]


def test_the_run_s_base_rate_is_said_once_above_the_table(world: World, scored) -> None:
    html = body(client_for(world.instructor_a).get(f"/courses/{world.course_a.pk}/?status=all"))
    expected = sum(p for _, p in SCORES.values())  # 1.85 of 5 scored learners
    assert html.count("data-order-summary") == 1
    assert f"about {round(expected)} of the 5 scored learners" in html
    assert f"({expected / 5:.0%})" in html
