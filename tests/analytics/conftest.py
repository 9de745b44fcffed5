"""Fixtures shared by the analytics tests."""

import pytest

from tests.browser.world import World, build_world


@pytest.fixture
def world() -> World:
    """Two course runs with learners, activity and submissions, as the browser tests use."""
    return build_world()


@pytest.fixture
def run():
    """An enrolment and an instructor of its course run (the intervention-log tests)."""
    from tests.factories import EnrollmentFactory, UserFactory

    enrollment = EnrollmentFactory()
    instructor = UserFactory()
    enrollment.course.instructors.add(instructor)
    return enrollment, instructor
