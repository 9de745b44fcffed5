"""The intervention log on the pages (#27 item 5): the learner page's form and records, the
course page's outcome card and the CSV export's action columns."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from analytics import risk_bands
from analytics.models import Intervention
from analytics.pages import panels
from tests.analytics.pages.support import body, client_for, csv_rows
from tests.browser.world import World
from tests.factories import InterventionFactory

pytestmark = pytest.mark.django_db


def _learner(world: World, index: int = 0):
    return world.learners[world.course_a.code][index]


def _form(world: World, **overrides):
    return {
        "course": world.course_a.pk,
        "kind": "contacted",
        "date": world.today.isoformat(),
        "note": "Phoned about the TMA",
        **overrides,
    }


def test_the_instructor_records_an_action_from_the_learner_page(world: World) -> None:
    client = client_for(world.instructor_a)
    learner = _learner(world)
    page = body(client.get(f"/learners/{learner.pseudonym}/"))
    assert f'action="/learners/{learner.pseudonym}/interventions/"' in page
    assert "csrfmiddlewaretoken" in page
    response = client.post(f"/learners/{learner.pseudonym}/interventions/", _form(world))
    assert response.status_code == 302
    assert response["Location"] == f"/learners/{learner.pseudonym}/#actions"
    record = Intervention.objects.get()
    assert (record.learner, record.course, record.created_by) == (
        learner,
        world.course_a,
        world.instructor_a,
    )
    page = body(client.get(response["Location"]))
    assert "Action recorded." in page and "Phoned about the TMA" in page


def test_the_learner_page_lists_each_records_stored_band(world: World) -> None:
    """#27 item 5: each recorded action shows the band stored with it (the learner's band on
    the action's day), "not scored" when the run had none. Killed mutant: the band cell
    left out of the records table."""
    learner = _learner(world)
    InterventionFactory(
        course=world.course_a, learner=learner, date=world.today, risk_band="high", note="A"
    )
    InterventionFactory(
        course=world.course_a, learner=learner, kind="met", date=world.today, note="B"
    )
    page = body(client_for(world.instructor_a).get(f"/learners/{learner.pseudonym}/"))
    records = page.split('id="actions-title"', 1)[1].split("</table>", 1)[0]
    assert "Risk band that day" in records
    cells = re.findall(r'<td data-band="(\w*)">(.*?)</td>', records, re.S)
    assert sorted((band, text.strip()) for band, text in cells) == [
        ("", "not scored"),
        ("high", "high"),
    ]


def test_the_form_post_needs_its_csrf_token(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.instructor_a)
    url = f"/learners/{_learner(world).pseudonym}/interventions/"
    assert client.post(url, _form(world)).status_code == 403
    assert not Intervention.objects.exists()


def test_a_bad_form_says_why_and_records_nothing(world: World) -> None:
    client = client_for(world.instructor_a)
    learner = _learner(world)
    url = f"/learners/{learner.pseudonym}/interventions/"
    future = (world.today + dt.timedelta(days=3)).isoformat()
    response = client.post(url, _form(world, kind="phoned", date=future), follow=True)
    assert "The action was not recorded" in body(response)
    response = client.post(url, _form(world, date=future), follow=True)
    assert "The date must not be in the future." in body(response)
    assert not Intervention.objects.exists()


def test_others_cannot_post_or_see_the_records(world: World) -> None:
    learner = next(lrn for lrn in world.learners[world.course_a.code] if lrn != world.shared)
    InterventionFactory(course=world.course_a, learner=learner, note="Private note")
    url = f"/learners/{learner.pseudonym}/interventions/"
    for user in (world.instructor_b, world.analyst):
        assert client_for(user).post(url, _form(world)).status_code == 404
    # the learner both runs share: B's instructor may act on B only, not on A
    shared = f"/learners/{world.shared.pseudonym}/interventions/"
    assert client_for(world.instructor_b).post(shared, _form(world)).status_code == 302
    assert Intervention.objects.count() == 1
    analyst_page = body(client_for(world.analyst).get(f"/learners/{learner.pseudonym}/"))
    assert "Private note" not in analyst_page and "Record action" not in analyst_page
    assert "Private note" in body(client_for(world.admin).get(f"/learners/{learner.pseudonym}/"))


def test_the_at_risk_table_links_to_the_form(world: World) -> None:
    course_url = f"/courses/{world.course_a.pk}/"
    link = f'href="/learners/{_learner(world).pseudonym}/#actions"'
    assert link in body(client_for(world.instructor_a).get(course_url))
    assert link not in body(client_for(world.analyst).get(course_url))


def _flag_all_high(monkeypatch, world: World) -> None:
    """Every learner of run A scored high now and at any past day; records made from now
    on store "high" (the band hook churn registers, replaced)."""
    ids = {lrn.pk: (2.0, 0.9) for lrn in world.learners[world.course_a.code]}
    order = panels.RowOrder(label="Risk", keys=lambda course: ids, fine_for=lambda user: True)
    monkeypatch.setitem(panels._orders, "risk", order)
    history = risk_bands.BandHistory(
        flagged="high",
        bands_on=lambda course, day, learner_ids: {
            lid: "high" for lid in ids if learner_ids is None or lid in learner_ids
        },
    )
    monkeypatch.setattr(risk_bands, "_history", [history])


def _outcome_rows(html: str) -> list[list[str]]:
    card = html.split('id="outcomes"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'<tr data-group="\d">(.*?)</tr>', card, re.DOTALL)
    return [re.findall(r'<td class="num">(\d+)</td>', row) for row in rows]


def test_the_course_page_compares_flagged_learners_with_and_without_an_action(
    world: World, monkeypatch
) -> None:
    _flag_all_high(monkeypatch, world)
    learners = world.learners[world.course_a.code]
    acted_on = world.today - dt.timedelta(days=20)
    InterventionFactory(course=world.course_a, learner=learners[0], date=acted_on, risk_band="high")
    html = body(client_for(world.admin).get(f"/courses/{world.course_a.pk}/"))
    assert "Not a randomized comparison." in html
    with_action, without = _outcome_rows(html)
    assert with_action[0] == "1" and sum(map(int, with_action[1:])) == 1
    withdrawn_before = sum(
        1
        for e in world.course_a.enrollments.all()
        if e.unregistered_on and e.unregistered_on < world.today - dt.timedelta(days=14)
    )
    assert int(without[0]) == len(learners) - 1 - withdrawn_before
    assert sum(map(int, without[1:])) == int(without[0])


def test_the_export_has_the_action_columns(world: World) -> None:
    learners = world.learners[world.course_a.code]
    InterventionFactory(course=world.course_a, learner=learners[0], date=world.today)
    InterventionFactory(
        course=world.course_a, learner=learners[0], kind="extension", date=world.today
    )
    rows = csv_rows(
        client_for(world.instructor_a).get(f"/courses/{world.course_a.pk}/export.csv?status=all")
    )
    header = rows[0]
    by_learner = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert (
        by_learner[learners[0].pseudonym]["actions"],
        by_learner[learners[0].pseudonym]["latest_action"],
    ) == ("2", "extension")
    assert by_learner[learners[1].pseudonym]["actions"] == "0"


def test_analysts_see_small_outcome_groups_suppressed(world: World, monkeypatch) -> None:
    _flag_all_high(monkeypatch, world)
    learner = world.learners[world.course_a.code][0]
    InterventionFactory(
        course=world.course_a,
        learner=learner,
        date=world.today - dt.timedelta(days=20),
        risk_band="high",
    )
    html = body(client_for(world.analyst).get(f"/courses/{world.course_a.pk}/"))
    card = html.split('id="outcomes"', 1)[1].split("</section>", 1)[0]
    assert "suppressed (fewer than 5 learners)" in card
    assert _outcome_rows(html)[0] == []  # the one learner with an action is not counted out
