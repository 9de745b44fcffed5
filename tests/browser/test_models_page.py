"""The models page in a real browser: retrain churn with live progress, curves drawn.

Same setup as test_dashboards (Debian's chromium through Playwright against
live_server; missing chromium skips locally and fails with CI=true). Tasks run
in-process in tests, so the retrain POST returns when training is over while
the page polls the versions API for progress.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from eduplatform.registry.models import ModelVersion
from tests.browser import test_dashboards as dashboards
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TRAINING_TIMEOUT_MS = 240_000
MIN_DRAWN_PIXELS = dashboards.MIN_DRAWN_PIXELS

# The dashboards' fixtures: one chromium per module, logged-in sessions.
browser = dashboards.browser
login = dashboards.login


@pytest.fixture
def tiny_platform(settings, tmp_path) -> dict[str, object]:
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    call_command(
        "seed_demo",
        "--learners",
        "120",
        "--courses",
        "3",
        "--days",
        "200",
        "--seed",
        "3",
        stdout=io.StringIO(),
    )
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    return {"admin": admin}


def test_admin_retrains_churn_with_live_progress(login, tiny_platform) -> None:
    session = login("admin")
    session.open("/models/")
    page = session.page
    churn = page.locator("#model-churn")
    assert churn.locator("[data-no-model]").is_visible()  # empty state before any training
    assert page.locator("main h1").inner_text() == "Models"

    churn.get_by_role("button", name="Retrain").click()
    progress = churn.get_by_role("progressbar")
    progress.wait_for(state="visible")
    assert progress.get_attribute("aria-valuenow") is not None
    assert churn.get_by_role("button", name="Retrain").is_disabled()  # no double submit

    # Done: the bar is full, then the page reloads with the new active version.
    page.wait_for_selector(
        '#model-churn [data-progress][data-state="done"]', timeout=TRAINING_TIMEOUT_MS
    )
    row = ModelVersion.objects.get(kind="churn")
    assert row.status == ModelVersion.Status.ACTIVE, row.status_reason
    page.wait_for_selector(
        f'#model-churn [data-active-version="{row.version}"]', timeout=TRAINING_TIMEOUT_MS
    )
    page.wait_for_selector("html[data-charts-ready]")
    message = churn.locator("[data-message]")
    assert message.get_attribute("aria-live") == "polite"
    assert f"churn v{row.version} finished: active" in message.inner_text()
    assert churn.locator('[data-versions-table] tr[data-status="active"]').count() == 1

    drawn = session.drawn_pixels()
    assert {"churn-history", "churn-roc", "churn-pr", "churn-calibration"} <= set(drawn)
    blank = {chart: n for chart, n in drawn.items() if n < MIN_DRAWN_PIXELS}
    assert not blank, f"blank canvases {blank}"
    for chart in ("churn-roc", "churn-pr", "churn-calibration"):
        assert page.locator(f"canvas#{chart}").get_attribute("role") == "img"
        assert page.locator(f"#{chart}-title ~ * table, figure:has(#{chart}) table").count() >= 1
    session.screenshot("models")
    assert session.errors == []  # no script errors, no CSP violations, no failed polls

    # A run started elsewhere after the page loaded: Retrain gets 409, the
    # error is announced and the page follows that run until it ends.
    recommender = page.locator("#model-recommender")
    running = ModelVersion.objects.create(
        kind="recommender", version=1, status="training", stage="train", percent=30
    )
    recommender.get_by_role("button", name="Retrain").click()
    page.wait_for_selector("#model-recommender [data-message].model-message--error")
    assert "already in progress" in recommender.locator("[data-message]").inner_text()
    page.wait_for_function(
        "() => document.querySelector('#model-recommender [role=progressbar]')"
        ".getAttribute('aria-valuenow') === '30'"
    )
    ModelVersion.objects.filter(pk=running.pk).update(status="failed", status_reason="stopped")
    page.wait_for_selector('#model-recommender [data-progress][data-state="failed"]')
    page.wait_for_selector('#model-recommender tr[data-version="1"][data-status="failed"]')
    assert "finished: failed (stopped)" in recommender.locator("[data-message]").inner_text()
    # The refused POST is the only console error (the browser logs every 4xx).
    assert all("409" in error for error in session.errors), session.errors
