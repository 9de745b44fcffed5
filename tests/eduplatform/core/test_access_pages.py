"""The role matrix over every dashboard URL and the CSV export: who gets 200, 404 or the
login page, and what each role's pages never show.

The access helpers themselves are tested in test_access.py (`make mutate`'s fast tests for
eduplatform/core/access.py); these request the pages.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from tests.browser.world import World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def urls(world: World, course) -> dict[str, str]:
    learner = world.learners[course.code][-2]  # enrolled in this course only
    return {
        "course": f"/courses/{course.pk}/",
        "segments": f"/courses/{course.pk}/segments/",
        "export": f"/courses/{course.pk}/export.csv",
        "learner": f"/learners/{learner.pseudonym}/",
    }


# -- the role matrix over URLs ----------------------------------------------------

ROLES = ("admin", "analyst", "instructor_a", "instructor_b")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", ["course", "segments", "export", "learner"])
@pytest.mark.parametrize("course_key", ["course_a", "course_b"])
def test_matrix_course_pages(world: World, role: str, page: str, course_key: str) -> None:
    user = getattr(world, role)
    course = getattr(world, course_key)
    allowed = role in ("admin", "analyst") or role == f"instructor_{course_key[-1]}"
    response = client_for(user).get(urls(world, course)[page])
    assert response.status_code == (200 if allowed else 404)


@pytest.mark.parametrize("role", [*ROLES, "nobody"])
@pytest.mark.parametrize("url", ["/", "/data-quality/"])
def test_matrix_scope_pages_render_for_everyone(world: World, role: str, url: str) -> None:
    assert client_for(getattr(world, role)).get(url).status_code == 200


def test_nobody_gets_404_on_every_object(world: World) -> None:
    client = client_for(world.nobody)
    for course in (world.course_a, world.course_b):
        for url in urls(world, course).values():
            assert client.get(url).status_code == 404, url


def test_anonymous_is_sent_to_login(world: World) -> None:
    client = Client()
    for url in ["/", "/data-quality/", *urls(world, world.course_a).values()]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_missing_course_and_learner_are_404(world: World) -> None:
    client = client_for(world.admin)
    assert client.get("/courses/999999/").status_code == 404
    assert client.get("/courses/999999/export.csv").status_code == 404
    assert client.get("/learners/ffffffffffffffffffffffff/").status_code == 404


def test_instructor_lists_contain_no_foreign_rows(world: World) -> None:
    client = client_for(world.instructor_a)
    a_pseudonyms = {learner.pseudonym for learner in world.learners[world.course_a.code]}
    b_only = {learner.pseudonym for learner in world.learners[world.course_b.code]} - a_pseudonyms

    overview = body(client.get("/"))
    assert world.course_a.code in overview
    assert world.course_b.code not in overview

    course = body(client.get(f"/courses/{world.course_a.pk}/?status=all"))
    assert all(p not in course for p in b_only)
    assert sum(p in course for p in a_pseudonyms) == len(a_pseudonyms)

    rows = list(
        csv.reader(
            io.StringIO(body(client.get(f"/courses/{world.course_a.pk}/export.csv?status=all")))
        )
    )
    exported = {row[0] for row in rows[1:]}
    assert exported == a_pseudonyms
    assert not exported & b_only

    # The shared learner's page shows the A enrolment only.
    shared = body(client.get(f"/learners/{world.shared.pseudonym}/"))
    assert world.course_a.code in shared
    assert world.course_b.code not in shared

    quality = body(client.get("/data-quality/"))
    assert f"({len(a_pseudonyms)} enrolments)" in quality


def test_admin_and_analyst_exports_cover_only_the_requested_course(world: World) -> None:
    for user in (world.admin, world.analyst):
        response = client_for(user).get(f"/courses/{world.course_b.pk}/export.csv?status=all")
        rows = list(csv.reader(io.StringIO(body(response))))
        expected = {learner.pseudonym for learner in world.learners[world.course_b.code]}
        assert {row[0] for row in rows[1:]} == expected


def all_page_urls(world: World) -> list[str]:
    pages = ["/", "/data-quality/"]
    for course in (world.course_a, world.course_b):
        pages += [
            f"/courses/{course.pk}/?status=all",
            f"/courses/{course.pk}/segments/",
            f"/courses/{course.pk}/export.csv?status=all",
        ]
    pages += [f"/learners/{learner.pseudonym}/" for learner in world.all_learners()]
    return pages


@pytest.mark.parametrize("role", ["analyst", "instructor_a", "instructor_b"])
def test_non_admins_never_see_names_or_emails(world: World, role: str) -> None:
    client = client_for(getattr(world, role))
    secrets = world.personal_strings()
    assert secrets  # the check below must have something to find
    checked = 0
    for url in all_page_urls(world):
        response = client.get(url)
        if response.status_code == 404:
            continue
        html = body(response)
        leaked = [s for s in secrets if s in html]
        assert not leaked, f"{url} shows {leaked}"
        checked += 1
    assert checked >= 5


def test_admin_sees_personal_data_on_the_learner_page(world: World) -> None:
    learner = world.learners[world.course_a.code][0]
    html = body(client_for(world.admin).get(f"/learners/{learner.pseudonym}/"))
    assert learner.name in html
    assert learner.email in html


def test_analyst_sees_small_groups_suppressed(world: World) -> None:
    # Six learners per course: the score bands hold one or two learners each.
    html = body(client_for(world.analyst).get(f"/courses/{world.course_a.pk}/"))
    assert "suppressed (fewer than 5 learners)" in html
    admin_html = body(client_for(world.admin).get(f"/courses/{world.course_a.pk}/"))
    assert "suppressed (fewer than 5 learners)" not in admin_html
