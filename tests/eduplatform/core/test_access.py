"""The access helpers (`eduplatform.core.access`): roles, scoped objects, suppression and
route declarations. The role matrix over the pages is test_access_pages.py; these call the
helpers directly and are `make mutate`'s tests for the module."""

from __future__ import annotations

import pytest
from django.http import Http404
from django.utils import translation

from eduplatform.core import access
from tests.browser.world import World, build_world
from tests.factories import LearnerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


# -- helpers -------------------------------------------------------------------


def test_roles(world: World, django_assert_max_num_queries) -> None:
    assert access.role_of(world.admin) == access.ADMIN
    assert access.role_of(world.analyst) == access.ANALYST
    assert access.role_of(world.instructor_a) == access.INSTRUCTOR
    assert access.role_of(world.nobody) == access.NO_ROLE
    assert access.role_label(world.analyst) == "Analyst"
    # Cached on the user object for the rest of the request.
    with django_assert_max_num_queries(0):
        assert access.role_of(world.analyst) == access.ANALYST


def test_role_of_anonymous_and_inactive(world: World) -> None:
    from django.contrib.auth.models import AnonymousUser

    assert access.role_of(AnonymousUser()) == access.NO_ROLE
    world.admin.is_active = False
    assert access.role_of(world.admin) == access.NO_ROLE


def test_analyst_who_also_teaches_keeps_the_wider_scope(world: World) -> None:
    world.course_a.instructors.add(world.analyst)
    assert access.role_of(world.analyst) == access.ANALYST
    assert set(access.courses_for_user(world.analyst)) == {world.course_a, world.course_b}


def test_courses_for_user(world: World) -> None:
    both = {world.course_a, world.course_b}
    assert set(access.courses_for_user(world.admin)) == both
    assert set(access.courses_for_user(world.analyst)) == both
    assert list(access.courses_for_user(world.instructor_a)) == [world.course_a]
    assert list(access.courses_for_user(world.instructor_b)) == [world.course_b]
    assert list(access.courses_for_user(world.nobody)) == []


@pytest.mark.parametrize("bad_id", [0, 999_999, "abc", None])
def test_get_course_for_user_missing(world: World, bad_id) -> None:
    with pytest.raises(Http404):
        access.get_course_for_user(world.admin, bad_id)


def test_get_course_for_user_foreign_is_404(world: World) -> None:
    assert access.get_course_for_user(world.instructor_a, world.course_a.pk) == world.course_a
    with pytest.raises(Http404):
        access.get_course_for_user(world.instructor_a, world.course_b.pk)
    with pytest.raises(Http404):
        access.get_course_for_user(world.nobody, world.course_a.pk)


def test_get_learner_for_user(world: World) -> None:
    a_only = world.learners[world.course_a.code][-1]
    b_only = world.learners[world.course_b.code][-2]
    assert access.get_learner_for_user(world.instructor_a, a_only.pseudonym) == a_only
    assert access.get_learner_for_user(world.instructor_a, world.shared.pseudonym) == world.shared
    assert access.get_learner_for_user(world.analyst, b_only.pseudonym) == b_only
    for user, pseudonym in [
        (world.instructor_a, b_only.pseudonym),
        (world.instructor_b, a_only.pseudonym),
        (world.nobody, a_only.pseudonym),
        (world.admin, "no-such-learner"),
    ]:
        with pytest.raises(Http404):
            access.get_learner_for_user(user, pseudonym)


def test_learner_enrolled_nowhere_is_404_even_for_admins(world: World) -> None:
    loner = LearnerFactory()
    with pytest.raises(Http404):
        access.get_learner_for_user(world.admin, loner.pseudonym)


def test_non_admins_do_not_even_load_personal_fields(world: World) -> None:
    learner = world.learners[world.course_a.code][0]
    for user in (world.analyst, world.instructor_a):
        loaded = access.get_learner_for_user(user, learner.pseudonym)
        assert {"name", "email"} <= loaded.get_deferred_fields()
    loaded = access.get_learner_for_user(world.admin, learner.pseudonym)
    assert loaded.get_deferred_fields() == set()
    assert loaded.name == learner.name


def test_can_see_personal_data(world: World) -> None:
    assert access.can_see_personal_data(world.admin)
    for user in (world.analyst, world.instructor_a, world.nobody):
        assert not access.can_see_personal_data(user)


def test_suppress_small_groups(world: World) -> None:
    rows = [
        {"day": 1, "learners": 0, "clicks": 0},
        {"day": 2, "learners": 4, "clicks": 40},
        {"day": 3, "learners": 5, "clicks": 50},
    ]
    hidden = access.suppress_small_groups(world.analyst, rows, value_keys=("clicks",))
    assert [(r["learners"], r["clicks"], r["suppressed"]) for r in hidden] == [
        (0, 0, False),  # nobody is not identifying
        (None, None, True),
        (5, 50, False),
    ]
    for user in (world.admin, world.instructor_a):
        shown = access.suppress_small_groups(user, rows, value_keys=("clicks",))
        assert [r["clicks"] for r in shown] == [0, 40, 50]
        assert not any(r["suppressed"] for r in shown)
    assert rows[1]["clicks"] == 40  # input rows untouched


# -- staff helpers (who may act on a run's learners) -------------------------------


def test_courses_for_staff(world: World) -> None:
    assert set(access.courses_for_staff(world.admin)) == {world.course_a, world.course_b}
    assert list(access.courses_for_staff(world.instructor_a)) == [world.course_a]
    assert list(access.courses_for_staff(world.instructor_b)) == [world.course_b]
    # Analysts read aggregates only: they act on no run.
    assert list(access.courses_for_staff(world.analyst)) == []
    assert list(access.courses_for_staff(world.nobody)) == []


def test_get_course_for_staff(world: World) -> None:
    assert access.get_course_for_staff(world.admin, world.course_b.pk) == world.course_b
    assert access.get_course_for_staff(world.instructor_a, str(world.course_a.pk)) == world.course_a
    for user, course_id in [
        (world.instructor_a, world.course_b.pk),
        (world.analyst, world.course_a.pk),
        (world.nobody, world.course_a.pk),
        (world.admin, 999_999),
        (world.admin, "abc"),
        (world.admin, None),
    ]:
        with pytest.raises(Http404):
            access.get_course_for_staff(user, course_id)


def test_get_learner_for_staff(world: World) -> None:
    a_only = world.learners[world.course_a.code][-1]
    b_only = world.learners[world.course_b.code][-2]
    loaded = access.get_learner_for_staff(world.instructor_a, a_only.pseudonym)
    assert loaded == a_only
    assert {"name", "email"} <= loaded.get_deferred_fields()
    assert access.get_learner_for_staff(world.instructor_a, world.shared.pseudonym) == world.shared
    assert access.get_learner_for_staff(world.admin, b_only.pseudonym) == b_only
    for user, pseudonym in [
        (world.instructor_a, b_only.pseudonym),
        (world.analyst, a_only.pseudonym),
        (world.nobody, a_only.pseudonym),
        (world.admin, "ffffffffffffffffffffffff"),
        (world.admin, "not a pseudonym!"),
    ]:
        with pytest.raises(Http404):
            access.get_learner_for_staff(user, pseudonym)


def test_malformed_pseudonym_is_404_before_any_query(world: World, django_assert_num_queries):
    access.role_of(world.admin)  # the role is cached on the user: no query left
    for pseudonym in ("", "x" * 33, "a/b", "é"):
        with django_assert_num_queries(0), pytest.raises(Http404):
            access.get_learner_for_user(world.admin, pseudonym)
        with django_assert_num_queries(0), pytest.raises(Http404):
            access.get_learner_for_staff(world.admin, pseudonym)


def test_role_labels_and_suppression_flag(world: World) -> None:
    labels = {
        user: access.role_label(getattr(world, user))
        for user in ("admin", "analyst", "instructor_a", "nobody")
    }
    assert labels == {
        "admin": "Platform admin",
        "analyst": "Analyst",
        "instructor_a": "Instructor",
        "nobody": "No role",
    }
    assert access.suppresses_small_groups(world.analyst)
    for user in (world.admin, world.instructor_a, world.nobody):
        assert not access.suppresses_small_groups(user)


def test_no_user_other_groups_and_deleted_users_have_no_role(world: World) -> None:
    from django.contrib.auth.models import Group

    assert access.role_of(None) == access.NO_ROLE  # code outside a request: no user at all
    support = Group.objects.create(name="support")
    world.nobody.groups.add(support)  # a group, but not the analyst group
    assert access.role_of(world.nobody) == access.NO_ROLE
    # Deleted after the request authenticated it: its row is gone, so are its roles.
    world.instructor_a.delete()
    assert access.role_of(world.instructor_a) == access.NO_ROLE
    world.analyst.delete()
    assert access.role_of(world.analyst) == access.NO_ROLE


def test_role_change_takes_effect_on_a_fresh_user_object(world: World) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    assert access.role_of(world.nobody) == access.NO_ROLE
    world.nobody.groups.add(Group.objects.get(name=access.ANALYST_GROUP))
    assert access.role_of(world.nobody) == access.NO_ROLE  # cached for this request
    fresh = get_user_model().objects.get(pk=world.nobody.pk)
    assert access.role_of(fresh) == access.ANALYST


def test_suppress_small_groups_keys_and_bounds(world: World) -> None:
    rows = [
        {"week": 1, "n": 1, "score": 0.5, "clicks": 3},
        {"week": 2, "n": 2, "score": 0.6, "clicks": 4},
        {"week": 3, "n": 3, "score": 0.7, "clicks": 5},
        {"week": 4, "score": 0.8},  # no size: nothing to count, nothing hidden
        {"week": 5, "n": None, "score": 0.9},
    ]
    hidden = access.suppress_small_groups(
        world.analyst, rows, size_key="n", value_keys=("score",), min_size=3
    )
    assert [(r.get("n"), r["score"], r["suppressed"]) for r in hidden] == [
        (None, None, True),
        (None, None, True),
        (3, 0.7, False),
        (None, 0.8, False),
        (None, 0.9, False),
    ]
    # Keys outside value_keys stay, and the other rows keep every key.
    assert [r.get("clicks") for r in hidden] == [3, 4, 5, None, None]
    assert [r["week"] for r in hidden] == [1, 2, 3, 4, 5]
    # The default threshold is MIN_GROUP_SIZE (5) and the default size key "learners".
    default = access.suppress_small_groups(world.analyst, [{"learners": 4}, {"learners": 5}])
    assert [r["suppressed"] for r in default] == [True, False]


# -- route declarations --------------------------------------------------------------


def test_declare_marks_the_view_and_returns_it() -> None:
    def view(request):
        return None

    assert access.declare(access.ADMINS)(view) is view
    assert access.route_access(view, "anything") is access.ADMINS


def test_route_access_reads_django_and_drf_class_views() -> None:
    from django.views import View
    from rest_framework.views import APIView
    from rest_framework.viewsets import ViewSet

    @access.declare(access.COURSE_READERS)
    class Page(View):
        pass

    @access.declare(access.PLATFORM_READERS)
    class Api(APIView):
        pass

    @access.declare(access.ADMINS)
    class Rows(ViewSet):
        def list(self, request):
            return None

    assert access.route_access(Page.as_view(), "page") is access.COURSE_READERS
    assert access.route_access(Api.as_view(), "api") is access.PLATFORM_READERS
    # A viewset's view function carries the class as `cls` only.
    rows = Rows.as_view({"get": "list"})
    assert not hasattr(rows, "view_class")
    assert access.route_access(rows, "rows") is access.ADMINS


def test_route_access_by_name_and_namespace() -> None:
    def undeclared(request):
        return None

    assert access.route_access(undeclared, "login") is access.PUBLIC
    assert access.route_access(undeclared, "admin:login") is access.PUBLIC
    assert access.route_access(undeclared, "admin:view_on_site") is access.NOBODY
    # Any other admin route falls to the namespace's catch-all.
    assert access.route_access(undeclared, "admin:auth_user_changelist") is access.ADMINS
    # An unnamed route is known by its pattern, which may hold colons of its own.
    assert access.route_access(undeclared, "admin:<path:object_id>/") is access.ADMINS
    # The namespace's line covers names inside it only.
    assert access.route_access(undeclared, "admin") is None
    # Undeclared elsewhere: None, so the route matrix test fails on it.
    assert access.route_access(undeclared, "courses:detail") is None
    assert access.route_access(undeclared, "unknown") is None
    assert access.route_access(undeclared, "") is None
    # A declaration that is not a RouteAccess does not count.
    undeclared.route_access = "admins"  # type: ignore[attr-defined]
    assert access.route_access(undeclared, "unknown") is None


def test_404_messages_name_the_missing_object(world: World) -> None:
    """The API answers a helper's Http404 with its message as `detail` (DRF's handler)."""
    a_only = world.learners[world.course_a.code][-1]
    cases = [
        (access.get_learner_for_user, world.nobody, a_only.pseudonym, "No such learner."),
        (access.get_learner_for_user, world.admin, "bad pseudonym", "No such learner."),
        (access.get_learner_for_user, world.admin, "ffffffffffffffff", "No such learner."),
        (access.get_learner_for_staff, world.admin, "bad pseudonym", "No such learner."),
        (access.get_learner_for_staff, world.analyst, a_only.pseudonym, "No such learner."),
        (access.get_course_for_user, world.admin, "abc", "No such course run."),
        (access.get_course_for_staff, world.analyst, world.course_a.pk, "No such course run."),
    ]
    for helper, user, key, message in cases:
        with pytest.raises(Http404) as missing:
            helper(user, key)
        assert str(missing.value) == message, (helper.__name__, key)


def test_404_messages_are_translated(world: World) -> None:
    """The API shows these messages to users: they follow the request's language."""
    with translation.override("zh-hans"):
        with pytest.raises(Http404) as learner:
            access.get_learner_for_user(world.admin, "bad pseudonym")
        with pytest.raises(Http404) as course:
            access.get_course_for_user(world.admin, "abc")
    assert str(learner.value) == "没有这个学习者。"
    assert str(course.value) == "没有这个开课期。"
