"""Who may see what: the one place dashboards, exports and panels ask.

Roles
    admin       ``is_superuser``: every course run, personal data (name, email).
    analyst     member of the auth Group "analyst": every course run, pseudonyms
                only; aggregates over fewer than `MIN_GROUP_SIZE` learners are
                suppressed, so small groups cannot be singled out.
    instructor  listed in ``Course.instructors``: only the runs they teach,
                pseudonyms only.
    none        any other signed-in user: sees nothing.

There is one helper per object type (course, learner) so a view cannot forget
the check: it never loads a Course or Learner by id itself. Foreign and
missing objects both raise Http404, so ids of other runs leak nothing.

Every route declares who may use it (`declare` on our views, `INCLUDED_ROUTES` for
Django's and third-party apps'); tests/eduplatform/core/test_route_matrix.py requests
each route of the URL conf as each role and fails on an undeclared route or a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from analytics.models import Course, Enrollment, Learner
from eduplatform.core.inputs import is_pseudonym

ANALYST_GROUP = "analyst"
MIN_GROUP_SIZE = 5

ADMIN = "admin"
ANALYST = "analyst"
INSTRUCTOR = "instructor"
NO_ROLE = "none"

# English names (templates compare them); pages show them through {% translate %}.
ROLE_LABELS = {
    ADMIN: gettext_noop("Platform admin"),
    ANALYST: gettext_noop("Analyst"),
    INSTRUCTOR: gettext_noop("Instructor"),
    NO_ROLE: gettext_noop("No role"),
}

# Cached on the user object: request.user lives for one request, so a role
# change takes effect on the next request and a page asks the database once.
_ROLE_ATTR = "_eduplatform_role"


def role_of(user: Any) -> str:
    """The user's role name: one of ADMIN, ANALYST, INSTRUCTOR, NO_ROLE.

    At most one query, then cached on the user object for the request.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return NO_ROLE
    cached = getattr(user, _ROLE_ATTR, None)
    if cached is not None:
        return cached
    if user.is_superuser:
        role = ADMIN
    else:
        # One round trip for both memberships; analyst wins over instructor
        # because it is the wider scope.
        flags = (
            get_user_model()
            .objects.filter(pk=user.pk)
            .annotate(
                analyst=Exists(Group.objects.filter(user=OuterRef("pk"), name=ANALYST_GROUP)),
                teaches=Exists(Course.objects.filter(instructors=OuterRef("pk"))),
            )
            .values_list("analyst", "teaches")
            .first()
        )
        is_analyst, teaches = flags or (False, False)
        role = ANALYST if is_analyst else INSTRUCTOR if teaches else NO_ROLE
    setattr(user, _ROLE_ATTR, role)
    return role


def role_label(user: Any) -> str:
    return ROLE_LABELS[role_of(user)]


def can_see_personal_data(user: Any) -> bool:
    """Names and emails are for platform admins only."""
    return role_of(user) == ADMIN


def suppresses_small_groups(user: Any) -> bool:
    return role_of(user) == ANALYST


def courses_for_user(user: Any) -> QuerySet[Course]:
    """The course runs the user may see (lazy; evaluate once per request)."""
    role = role_of(user)
    if role in (ADMIN, ANALYST):
        return Course.objects.all()
    if role == INSTRUCTOR:
        return Course.objects.filter(instructors=user)
    return Course.objects.none()


def get_course_for_user(user: Any, course_id: int | str) -> Course:
    """The course run, or Http404 when it is missing or not the user's."""
    try:
        return courses_for_user(user).get(pk=int(course_id))
    except (Course.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("No such course run.")) from exc


def courses_for_staff(user: Any) -> QuerySet[Course]:
    """The runs whose learners the user may act on (record interventions): admins every run,
    instructors the runs they teach; analysts read aggregates only, so none."""
    role = role_of(user)
    if role == ADMIN:
        return Course.objects.all()
    if role == INSTRUCTOR:
        return Course.objects.filter(instructors=user)
    return Course.objects.none()


def get_course_for_staff(user: Any, course_id: int | str) -> Course:
    """A run the user may act on, or Http404 (missing, not theirs, or an analyst)."""
    try:
        return courses_for_staff(user).get(pk=int(course_id))
    except (Course.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("No such course run.")) from exc


def get_learner_for_staff(user: Any, pseudonym: str) -> Learner:
    """The learner if enrolled in a run the user may act on (`courses_for_staff`), else Http404
    (as for every foreign object); name and email are not loaded."""
    if not is_pseudonym(pseudonym):
        raise Http404(_("No such learner."))
    learner = (
        Learner.objects.filter(
            pk__in=Enrollment.objects.filter(course__in=courses_for_staff(user)).values(
                "learner_id"
            ),
            pseudonym=pseudonym,
        )
        .defer("name", "email")
        .first()
    )
    if learner is None:
        raise Http404(_("No such learner."))
    return learner


def get_learner_for_user(user: Any, pseudonym: str) -> Learner:
    """The learner, or Http404 unless enrolled in a course run the user may see.

    For everyone but admins the encrypted name and email are not even loaded:
    a template that reached for them would show nothing (and cost a query the
    view tests would catch) instead of leaking.
    """
    role = role_of(user)
    if role == NO_ROLE or not is_pseudonym(pseudonym):
        raise Http404(_("No such learner."))
    learners = Learner.objects.filter(pseudonym=pseudonym)
    if role != ADMIN:
        learners = learners.defer("name", "email")
    if role == INSTRUCTOR:
        learners = learners.filter(
            pk__in=Enrollment.objects.filter(course__in=courses_for_user(user)).values("learner_id")
        )
    elif role in (ADMIN, ANALYST):
        learners = learners.filter(pk__in=Enrollment.objects.values("learner_id"))
    learner = learners.first()
    if learner is None:
        raise Http404(_("No such learner."))
    return learner


def suppress_small_groups(
    user: Any,
    rows: Iterable[Mapping[str, Any]],
    *,
    size_key: str = "learners",
    value_keys: Sequence[str] = (),
    min_size: int = MIN_GROUP_SIZE,
) -> list[dict[str, Any]]:
    """Rows of an aggregate, with small groups blanked for analysts.

    Each row describes one group (a day, a week, a segment, ...) and carries its
    number of distinct learners under ``size_key``. For analysts, a row with
    fewer than ``min_size`` learners (but more than none) gets ``size_key`` and
    every ``value_keys`` entry set to None and ``suppressed`` True; charts draw
    a gap and the data table says "suppressed". Empty groups stay: "nobody" is
    not identifying. Other roles get the rows unchanged (``suppressed`` False).
    """
    suppress = suppresses_small_groups(user)
    out: list[dict[str, Any]] = []
    for row in rows:
        new = dict(row)
        size = new.get(size_key)
        hide = suppress and size is not None and 0 < size < min_size
        if hide:
            new[size_key] = None
            for key in value_keys:
                new[key] = None
        new["suppressed"] = hide
        out.append(new)
    return out


# ---------------------------------------------------------------------------
# Who may use each route
# ---------------------------------------------------------------------------

# Not a role of `role_of` (that needs a user): the visitor without a session or token.
ANONYMOUS = "anonymous"
SIGNED_IN_ROLES = frozenset({NO_ROLE, INSTRUCTOR, ANALYST, ADMIN})


@dataclass(frozen=True)
class RouteAccess:
    """Who may use a route; tests/eduplatform/core/test_route_matrix.py holds every route to it.

    ``roles``: the roles let in (ANONYMOUS included for public routes). ``own_runs_only``:
    instructors only for objects of runs they teach (everyone else outside ``roles``, and
    instructors of other runs, get 404, so ids leak nothing). ``permission``: users holding
    it are let in whatever their role (the ingestion token of an LMS is a no-role user).
    """

    name: str
    roles: frozenset[str]
    own_runs_only: bool = False
    permission: str | None = None


PUBLIC = RouteAccess("anyone", SIGNED_IN_ROLES | {ANONYMOUS})
SIGNED_IN = RouteAccess("signed-in users, each seeing only their runs", SIGNED_IN_ROLES)
COURSE_READERS = RouteAccess(
    "readers of the object's run (admins, analysts, its instructors)",
    frozenset({ADMIN, ANALYST, INSTRUCTOR}),
    own_runs_only=True,
)
COURSE_STAFF = RouteAccess(
    "staff of the object's run (admins, its instructors)",
    frozenset({ADMIN, INSTRUCTOR}),
    own_runs_only=True,
)
PLATFORM_READERS = RouteAccess("platform admins and analysts", frozenset({ADMIN, ANALYST}))
ADMINS = RouteAccess("platform admins", frozenset({ADMIN}))
EVENT_WRITERS = RouteAccess(
    "platform admins and tokens granted analytics.add_learningevent",
    frozenset({ADMIN}),
    permission="analytics.add_learningevent",
)
# The admin's catch-all: a 404 (or a trailing-slash redirect) for every unknown admin path.
NOBODY = RouteAccess("nobody (a 404 for every role)", frozenset())

ROUTE_ACCESS_ATTR = "route_access"
V = TypeVar("V")


def declare(policy: RouteAccess) -> Callable[[V], V]:
    """Declare who may use a view (a function or a class): the outermost decorator.

    The declaration is what the role x route matrix test checks the view's answers
    against, so a route that lets the wrong role in, or has no declaration, fails it.
    """

    def mark(view: V) -> V:
        setattr(view, ROUTE_ACCESS_ATTR, policy)
        return view

    return mark


# Routes of Django and third-party apps, declared here by URL name because their views
# are not ours to decorate. "<namespace>:*" covers a whole namespace: the admin site
# checks is_staff on every view it wraps, so a newly registered model is covered by it.
INCLUDED_ROUTES: dict[str, RouteAccess] = {
    "admin:login": PUBLIC,
    "admin:(?P<url>.*)$": NOBODY,  # the unnamed catch-all, by its pattern
    # No model has get_absolute_url and no admin has autocomplete fields: these answer
    # 404 / 403 to every role, admins included. Giving a model a page or an admin an
    # autocomplete field makes them answer admins, and the matrix test asks for this line.
    "admin:view_on_site": NOBODY,
    "admin:autocomplete": NOBODY,
    "admin:*": ADMINS,
    "login": PUBLIC,
    "logout": PUBLIC,
    "password_change": SIGNED_IN,
    "password_change_done": SIGNED_IN,
    "password_reset": PUBLIC,
    "password_reset_done": PUBLIC,
    "password_reset_confirm": PUBLIC,
    "password_reset_complete": PUBLIC,
    "captcha-image": PUBLIC,
    "captcha-image-2x": PUBLIC,
    "captcha-audio": PUBLIC,
    "captcha-refresh": PUBLIC,
    "set_language": PUBLIC,
}


def route_access(callback: Any, name: str) -> RouteAccess | None:
    """A route's declaration: on its view (function, Django or DRF class), else by name."""
    for owner in (callback, getattr(callback, "view_class", None), getattr(callback, "cls", None)):
        policy = getattr(owner, ROUTE_ACCESS_ATTR, None) if owner is not None else None
        if isinstance(policy, RouteAccess):
            return policy
    if name in INCLUDED_ROUTES:
        return INCLUDED_ROUTES[name]
    # The top namespace (an unnamed route's pattern may hold a colon: <path:object_id>).
    namespace, colon, _ = name.partition(":")
    return INCLUDED_ROUTES.get(f"{namespace}:*") if colon else None
