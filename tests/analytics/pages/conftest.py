"""Fixtures of the dashboard page tests."""

import dataclasses

import pytest

from analytics.pages import panels


@pytest.fixture(autouse=True)
def analytics_only_panels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test analytics on its own: no installed panel providers, slot templates that do not exist.

    Churn and recommender fill the slots when installed; their panels have
    their own tests. Here every slot shows analytics' fallback unless a test
    registers a provider, and query counts are analytics' own.
    See test_installed_panels_keep_query_counts_flat for the real thing.
    """
    monkeypatch.setattr(panels, "_providers", {})
    monkeypatch.setattr(
        panels,
        "SLOTS",
        {
            name: dataclasses.replace(slot, template=f"no-such-app/{name}.html")
            for name, slot in panels.SLOTS.items()
        },
    )
