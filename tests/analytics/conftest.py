"""Fixtures shared by the analytics tests."""

import pytest

from tests.browser.world import World, build_world


@pytest.fixture
def world() -> World:
    """Two course runs with learners, activity and submissions, as the browser tests use."""
    return build_world()
