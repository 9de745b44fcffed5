"""Panel slots: provider templates and data, CSV cells, failures, query counts."""

import dataclasses

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from analytics.pages import panels
from tests.analytics.pages.support import (
    ORIGINAL_SLOTS,
    body,
    client_for,
    csv_rows,
)
from tests.browser.world import World, add_learners

pytestmark = pytest.mark.django_db


LOCMEM_TEMPLATES = {
    "fake/_course_risk_columns.html": (
        '<td class="risk">{{ panel.band|default:"none" }}</td><td>{{ panel.factors }}</td>'
    ),
    "fake/_learner_risk.html": '<p class="risk-now">risk {{ panel }}</p>',
}


def templates_with(extra: dict[str, str]) -> list[dict]:
    from django.conf import settings

    base = settings.TEMPLATES[0]
    return [
        {
            **base,
            "APP_DIRS": False,
            "OPTIONS": {
                **base["OPTIONS"],
                "loaders": [
                    ("django.template.loaders.locmem.Loader", extra),
                    "django.template.loaders.filesystem.Loader",
                    "django.template.loaders.app_directories.Loader",
                ],
            },
        }
    ]


@pytest.fixture
def risk_provider(world: World, monkeypatch: pytest.MonkeyPatch):
    """A fake churn app: templates (in a locmem loader) and data functions for two slots."""
    slots = dict(panels.SLOTS)
    templates = {
        "course_risk": "fake/_course_risk_columns.html",
        "learner_risk": "fake/_learner_risk.html",
    }
    for name, template in templates.items():
        slots[name] = dataclasses.replace(slots[name], template=template)
    monkeypatch.setattr(panels, "SLOTS", slots)
    calls = []

    def risk(course, learner_ids):
        calls.append(list(learner_ids))
        return {lid: {"band": "high", "factors": "=HYPERLINK(1)"} for lid in learner_ids}

    panels.register_panel_data(
        "course_risk", risk, csv=lambda v: ["", ""] if v is None else [v["band"], v["factors"]]
    )
    panels.register_panel_data("learner_risk", lambda learner, courses: "0.42")
    yield calls


def test_panel_slots_render_provider_templates_and_data(world: World, risk_provider) -> None:
    client = client_for(world.admin)
    with override_settings(TEMPLATES=templates_with(LOCMEM_TEMPLATES)):
        html = body(client.get(f"/courses/{world.course_a.pk}/?status=all"))
        learner_html = body(
            client.get(f"/learners/{world.learners[world.course_a.code][0].pseudonym}/")
        )
    assert html.count('<td class="risk">high</td>') == 6
    # The recommender slot has no template yet: still the fallback.
    assert html.count("no model yet") == 6
    assert len(risk_provider) == 1 and len(risk_provider[0]) == 6  # one batch per page
    assert '<p class="risk-now">risk 0.42</p>' in learner_html


def test_panel_csv_cells_are_exported_and_formula_safe(world: World, risk_provider) -> None:
    rows = csv_rows(client_for(world.admin).get(f"/courses/{world.course_a.pk}/export.csv"))
    assert rows[1][5:7] == ["high", "'=HYPERLINK(1)"]


def test_failing_panel_falls_back_without_breaking_the_page(world: World, caplog) -> None:
    def broken(course, learner_ids):
        raise RuntimeError("model file missing")

    panels.register_panel_data("course_risk", broken)
    response = client_for(world.admin).get(f"/courses/{world.course_a.pk}/")
    assert response.status_code == 200
    assert "no model yet" in body(response)
    assert "panel data failed slot=course_risk" in caplog.text


def test_unknown_slot_is_rejected() -> None:
    with pytest.raises(KeyError, match="unknown panel slot"):
        panels.register_panel_data("course_risks", lambda *a: {})


def test_installed_panels_keep_query_counts_flat(world: World, monkeypatch) -> None:
    """With whatever apps fill the slots in this project (churn, recommender), the course
    page, its export and the learner page still cost the same queries for 6 or 36 learners."""
    from django.apps import apps

    # Undo the isolation: re-register the installed apps' providers.
    monkeypatch.setattr(panels, "_providers", {})
    monkeypatch.setattr(panels, "SLOTS", dict(ORIGINAL_SLOTS))
    for config in apps.get_app_configs():
        if config.name in ("churn", "recommender"):
            config.ready()
    client = client_for(world.instructor_a)
    learner = world.learners[world.course_a.code][0]
    urls = [
        f"/courses/{world.course_a.pk}/?status=all",
        f"/courses/{world.course_a.pk}/export.csv?status=all",
        f"/learners/{learner.pseudonym}/",
    ]

    def measure() -> list[int]:
        counts = []
        for url in urls:
            # Warm up first: the serving caches of the model apps load the
            # active model version on a cold request, whatever the learners.
            body(client.get(url))
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
                body(response)
            assert response.status_code == 200
            counts.append(len(queries))
        return counts

    before = measure()
    add_learners(world.course_a, 30, today=world.today, tag="More", start=10)
    assert measure() == before
