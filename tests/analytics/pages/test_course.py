"""The course run page: charts, the at-risk table, its cache and the CSV export."""

import pytest
from django.utils import timezone

from analytics.models import DailyActivity
from analytics.pages import course as course_module
from analytics.pages.course import (
    COURSE_CACHE_MAX_RUNS,
    PAGE_SIZE,
    cached_course_bundle,
    course_bundles,
)
from analytics.selectors.learner_table import (
    LearnerTableQuery,
    course_learner_rows,
)
from eduplatform.core import caches
from tests.analytics.pages.support import (
    DAY,
    body,
    chart_json,
    client_for,
    csv_rows,
    table_pseudonyms,
)
from tests.browser.world import World, add_learners
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    LearnerFactory,
)

pytestmark = pytest.mark.django_db


def test_course_page_with_data(world: World) -> None:
    html = body(client_for(world.instructor_a).get(f"/courses/{world.course_a.pk}/?status=all"))
    data = chart_json(html, "course-data")
    assert set(data) == {"course-weekly", "course-types", "course-content", "course-scores"}
    assert sum(data["course-scores"]["datasets"][0]["data"]) == 6  # one submission each
    assert "Least used content" in html
    for learner in world.learners[world.course_a.code]:
        assert learner.pseudonym in html
    assert '<caption id="learners-caption">' in html
    # Risk and recommendation columns exist, with the "no model yet" fallback.
    assert "Risk band" in html and "Recommended next items" in html
    assert html.count("no model yet") == 3 * 6


def test_course_page_empty_states(world: World) -> None:
    empty = CourseFactory(code="EMPTY_RUN")
    html = body(client_for(world.admin).get(f"/courses/{empty.pk}/"))
    assert html.count("No events yet.") == 2
    assert "No scored submissions yet." in html
    assert "No content items in this course run yet." in html
    assert "No learners enrolled yet." in html
    assert chart_json(html, "course-data") == {}


def test_course_table_activity_sort_puts_least_active_first(world: World) -> None:
    html = body(
        client_for(world.admin).get(f"/courses/{world.course_a.pk}/?status=all&sort=activity_14d")
    )
    shown = table_pseudonyms(html)
    rows = list(
        course_learner_rows(
            world.course_a,
            anchor=world.today,
            query=LearnerTableQuery(status="all"),
        )
    )
    activity = [r["activity_14d"] for r in rows]
    assert activity == sorted(activity)
    assert shown == [r["pseudonym"] for r in rows]


@pytest.mark.parametrize("sort", ["pseudonym", "-pseudonym", "last_active", "-activity_14d"])
def test_course_table_sorts(world: World, sort: str) -> None:
    html = body(
        client_for(world.admin).get(f"/courses/{world.course_a.pk}/?status=all&sort={sort}")
    )
    shown = table_pseudonyms(html)
    learners = {lrn.pseudonym: lrn for lrn in world.learners[world.course_a.code]}
    assert set(shown) == set(learners)
    key = sort.lstrip("-")
    values = {
        r["pseudonym"]: r[key]
        for r in course_learner_rows(
            world.course_a, anchor=world.today, query=LearnerTableQuery(status="all")
        )
    }
    ordered = [values[p] for p in shown]
    assert ordered == sorted(ordered, reverse=sort.startswith("-"))
    state = "descending" if sort.startswith("-") else "ascending"
    assert f'aria-sort="{state}"' in html


def test_course_table_filters(world: World) -> None:
    client = client_for(world.admin)
    url = f"/courses/{world.course_a.pk}/"
    learners = world.learners[world.course_a.code]
    withdrawn = learners[1].pseudonym

    default = table_pseudonyms(body(client.get(url)))
    assert withdrawn not in default and len(default) == 5

    only_withdrawn = table_pseudonyms(body(client.get(url + "?status=withdrawn")))
    assert only_withdrawn == [withdrawn]

    target = learners[3].pseudonym
    found = table_pseudonyms(body(client.get(url + f"?status=all&q={target[:10].upper()}")))
    assert found == [target]

    # Inactive for 7+ days: nobody here was away that long but the least active
    # (learner 5: one active day, 2 days ago); an old-only learner shows up.
    old = LearnerFactory()
    EnrollmentFactory(learner=old, course=world.course_a)
    DailyActivity.objects.create(
        course=world.course_a,
        learner=old,
        date=world.today - 20 * DAY,
        activity_type="quiz",
        events=1,
        clicks=1,
    )
    never = LearnerFactory()
    EnrollmentFactory(learner=never, course=world.course_a)
    inactive = table_pseudonyms(body(client.get(url + "?inactive=7")))
    assert set(inactive) == {old.pseudonym, never.pseudonym}
    html = body(client.get(url + "?q=zzzz"))
    assert "No learners match these filters." in html


def test_course_table_bad_params_fall_back(world: World) -> None:
    response = client_for(world.admin).get(
        f"/courses/{world.course_a.pk}/?sort=name;drop&status=evil&inactive=3&page=abc"
    )
    assert response.status_code == 200
    query = response.context["query"]
    # the default order: riskiest first (churn registers the "risk" row order)
    assert (query.sort, query.descending) == ("risk", True)
    assert (query.status, query.inactive_days) == ("current", None)


def test_course_table_paginates_server_side(world: World) -> None:
    add_learners(world.course_a, 30, today=world.today, tag="P", start=10)
    client = client_for(world.admin)
    url = f"/courses/{world.course_a.pk}/?status=all&sort=pseudonym"
    first = table_pseudonyms(body(client.get(url)))
    second_html = body(client.get(url + "&page=2"))
    second = table_pseudonyms(second_html)
    assert len(first) == PAGE_SIZE
    assert len(second) == 36 - PAGE_SIZE
    assert not set(first) & set(second)
    assert first + second == sorted(first + second)
    assert "Page 2 of 2" in second_html
    # Pagination links keep the filters and sort.
    assert "status=all&amp;sort=pseudonym&amp;page=1" in second_html


def test_course_page_cache_follows_new_data_and_erasure(
    world: World, django_assert_num_queries
) -> None:
    """The run-wide reads are cached per data version: new rows show at once, erased
    learners leave at once, and a hit costs session, user, course, the version check and
    the run's risk scores (read on every request: scores change without new data), once
    for the risk order and the outcome card (#27: nobody is scored here, so the card reads
    nothing more)."""
    from analytics.services import learner_erase

    client = client_for(world.admin)
    url = f"/courses/{world.course_a.pk}/?status=all"
    learners = world.learners[world.course_a.code]
    assert learners[0].pseudonym in table_pseudonyms(body(client.get(url)))
    with django_assert_num_queries(5):  # the session is read from the database (#24 item 4)
        body(client.get(url))
    newcomer = LearnerFactory()
    EnrollmentFactory(learner=newcomer, course=world.course_a)
    assert newcomer.pseudonym in table_pseudonyms(body(client.get(url)))
    learner_erase(pseudonym=learners[0].pseudonym)
    html = body(client.get(url))
    assert learners[0].pseudonym not in html
    assert learners[2].pseudonym in table_pseudonyms(html)


def test_csv_export_follows_filters_and_sort(world: World) -> None:
    client = client_for(world.instructor_a)
    response = client.get(f"/courses/{world.course_a.pk}/export.csv?status=all&sort=-pseudonym")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="AAA_TEST_A-learners.csv"'
    rows = csv_rows(response)
    assert rows[0] == [
        "learner",
        "status",
        "registered_on",
        "last_active",
        "activity_14d",
        "risk_band",
        "top_factors",
        "recommended_next_items",
        "actions",
        "latest_action",
    ]
    pseudonyms = [r[0] for r in rows[1:]]
    assert pseudonyms == sorted(
        (lrn.pseudonym for lrn in world.learners[world.course_a.code]), reverse=True
    )
    statuses = {r[0]: r[1] for r in rows[1:]}
    assert statuses[world.learners[world.course_a.code][1].pseudonym] == "Withdrawn"
    withdrawn_only = csv_rows(
        client.get(f"/courses/{world.course_a.pk}/export.csv?status=withdrawn")
    )
    assert len(withdrawn_only) == 2


def test_csv_export_of_empty_course_has_a_header_only(world: World) -> None:
    empty = CourseFactory()
    rows = csv_rows(client_for(world.admin).get(f"/courses/{empty.pk}/export.csv"))
    assert len(rows) == 1 and rows[0][0] == "learner"


def test_course_bundles_are_bounded_and_reset_with_every_cache(world: World) -> None:
    """The per-process bundle cache keeps at most COURSE_CACHE_MAX_RUNS runs (the least
    recently stored go first) and is one of the caches `reset_all` clears."""
    assert course_bundles in caches.registered()
    assert course_bundles.name == "analytics.course_bundles"
    assert course_bundles.maxsize == COURSE_CACHE_MAX_RUNS
    fillers = [-(n + 1) for n in range(COURSE_CACHE_MAX_RUNS)]  # no course has these pks
    for pk in fillers:
        course_bundles.put(pk, (("stale",), None))
    assert len(course_bundles) == COURSE_CACHE_MAX_RUNS
    client = client_for(world.admin)
    body(client.get(f"/courses/{world.course_a.pk}/"))
    body(client.get(f"/courses/{world.course_b.pk}/"))
    assert len(course_bundles) == COURSE_CACHE_MAX_RUNS
    assert world.course_a.pk in course_bundles and world.course_b.pk in course_bundles
    assert fillers[0] not in course_bundles and fillers[1] not in course_bundles
    assert fillers[2] in course_bundles
    caches.reset_all()
    assert len(course_bundles) == 0


def test_course_bundle_hit_costs_only_the_version_check(
    world: World, django_assert_num_queries
) -> None:
    """#30: a hit is shown by its queries and identity, not by an equal answer (a
    rebuild is equal too). A hit reads only data_version's one query and returns this
    process's object. Killed mutant: BoundedCache.get always missing (the shared cache's
    copy comes back: one query too, but another object)."""
    today = timezone.localdate()
    bundle = cached_course_bundle(world.course_a, today)
    with django_assert_num_queries(1):
        again = cached_course_bundle(world.course_a, today)
    assert again is bundle


def test_course_bundle_expires_after_its_ttl(world: World, monkeypatch) -> None:
    """The TTL is read at lookup: an entry older than COURSE_CACHE_SECONDS is rebuilt."""
    body(client_for(world.admin).get(f"/courses/{world.course_a.pk}/"))
    _, bundle = course_bundles.get(world.course_a.pk)
    assert cached_course_bundle(world.course_a, timezone.localdate()) is bundle
    monkeypatch.setattr(course_module, "COURSE_CACHE_SECONDS", 0)
    assert course_bundles.get(world.course_a.pk) is None
    assert world.course_a.pk in course_bundles  # held until replaced or pushed out
    assert cached_course_bundle(world.course_a, timezone.localdate()) is not bundle
