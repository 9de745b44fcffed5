"""Shared shape of the prediction endpoints (churn risk, recommendations).

Model-extraction defences live here once: non-admin tokens get coarse
answers only (risk bands, item ids — no probabilities or scores), every
token has a per-minute rate limit and an hourly query budget, and access
goes through the per-object helpers (foreign learners and courses are 404).

These endpoints are the hot path of the API, so the database work of a
request is kept to two queries: the token with its user's role memberships
(`token_with_role`), and the enrolment of the learner in a course run
the user may see (`_authorised_enrolment`); and each process remembers
their grants until anything they depend on changes (eduplatform/core/authcache.py),
so a repeat caller's request asks the database nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.models import Course, Enrollment, Learner
from eduplatform.core import access, authcache, throttles
from eduplatform.core.caches import BoundedCache
from eduplatform.core.inputs import AsciiIntegerField, is_pseudonym
from eduplatform.core.throttles import PredictionBudgetThrottle, TokenRateThrottle


class PredictionQuery(serializers.Serializer):
    course = AsciiIntegerField(min_value=1)


class _Compiled:
    """A queryset shape compiled to SQL once per process; each call only binds its values.

    Django builds and compiles a queryset anew on every call, and on these
    endpoints that was most of a request's CPU. The shapes below depend only
    on a small key (the role), so each is compiled once with placeholder
    values, checked that every placeholder became a bound parameter (never
    SQL text), and reused with the request's values. Whatever does not fit
    (an empty queryset, a placeholder not bound) runs through the ORM as usual.
    Rows come back as ``values_list`` gives them, converters applied.
    """

    _EMPTY = object()
    _ORM = object()

    def __init__(self, build: Callable[..., QuerySet]) -> None:
        self._build = build
        # A handful of shapes (one per role and model); compiled SQL never goes stale.
        self._shapes = BoundedCache(
            f"prediction_api.compiled.{build.__name__}", maxsize=64, ttl=float("inf")
        )

    def rows(self, shape: tuple[Any, ...], values: dict[str, Any]) -> list[tuple[Any, ...]]:
        entry = self._shapes.get(shape)
        if entry is None:
            entry = self._compile(shape, list(values))
            self._shapes.put(shape, entry)
        if entry is self._ORM:
            return list(self._build(values, *shape))
        if entry is self._EMPTY:
            return []
        sql, params, slots, compiler, converters = entry
        bound = list(params)
        for index, name in slots:
            bound[index] = values[name]
        with connections[compiler.using].cursor() as cursor:
            cursor.execute(sql, bound)
            rows = cursor.fetchall()
        if converters:
            rows = [tuple(row) for row in compiler.apply_converters(rows, converters)]
        return rows

    def _compile(self, shape: tuple[Any, ...], names: list[str]) -> Any:
        placeholders: dict[str, Any] = {}
        for n, name in enumerate(names):
            # Integers far outside any id, strings no request sends.
            placeholders[name] = (
                -(10**15) - n if name.endswith("_id") else f"__placeholder_{n}_{name}__"
            )
        query = self._build(placeholders, *shape)
        compiler = query.query.get_compiler(using=query.db)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return self._EMPTY
        by_value = {value: name for name, value in placeholders.items()}
        slots = []
        for index, param in enumerate(params):
            if isinstance(param, (int, str)) and not isinstance(param, bool) and param in by_value:
                slots.append((index, by_value[param]))
        if any(str(value) in sql for value in placeholders.values()):
            return self._ORM  # a value inlined into the SQL text: not reusable
        columns = [col for col, _, _ in compiler.select]
        return sql, tuple(params), slots, compiler, compiler.get_converters(columns)

    def clear(self) -> None:
        self._shapes.clear()


def _token_fields(model: Any) -> tuple[list[str], list[str]]:
    return (
        [f.attname for f in model._meta.concrete_fields],
        [f.attname for f in get_user_model()._meta.concrete_fields],
    )


def token_query(values: dict[str, Any], model: Any) -> QuerySet:
    token_fields, user_fields = _token_fields(model)
    return (
        model.objects.filter(key=values["key"])
        .annotate(
            in_analyst_group=Exists(
                Group.objects.filter(user=OuterRef("user_id"), name=access.ANALYST_GROUP)
            ),
            teaches=Exists(Course.objects.filter(instructors=OuterRef("user_id"))),
        )
        .values_list(
            *token_fields, *(f"user__{f}" for f in user_fields), "in_analyst_group", "teaches"
        )
    )


token_rows = _Compiled(token_query)


def token_with_role(
    authenticator: TokenAuthentication, key: str, generation: str | None = None
) -> tuple[Any, Any]:
    """DRF's token lookup (same checks, same errors), reading the user's role in the same query.

    `access.role_of` asks the database once per request for group and
    instructor memberships; here both ride along with the token lookup as
    the same EXISTS subqueries, and the role is primed with the same rule
    (superuser > analyst > instructor > none; inactive users are refused
    before any role is used). tests/eduplatform/core/test_prediction_api.py
    checks it against `access.role_of` for every role.
    """
    model = authenticator.get_model()
    token_fields, user_fields = _token_fields(model)
    remembered_key = ("token", model, key)
    row = authcache.remembered.get(remembered_key, generation)
    if row is None:
        rows = token_rows.rows((model,), {"key": key}) if isinstance(key, str) else []
        if not rows:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        row = rows[0]
        if row[len(token_fields) + user_fields.index("is_active")]:
            authcache.remembered.put(remembered_key, generation, row)
    n = len(token_fields)
    db = router.db_for_read(model)
    token = model.from_db(db, token_fields, row[:n])
    user = get_user_model().from_db(db, user_fields, row[n : n + len(user_fields)])
    token.user = user
    in_analyst_group, teaches = row[n + len(user_fields) :]
    if not user.is_active:
        raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
    if user.is_superuser:
        role = access.ADMIN
    elif in_analyst_group:
        role = access.ANALYST
    elif teaches:
        role = access.INSTRUCTOR
    else:
        role = access.NO_ROLE
    # role_of's per-request cache on the user object (request.user lives for
    # one request), so role_of answers without its query.
    setattr(user, access._ROLE_ATTR, role)
    return user, token


def _learner_fields(personal: bool) -> list[str]:
    # As get_learner_for_user: for everyone but admins the encrypted name and
    # email are not even loaded.
    return [
        f.attname
        for f in Learner._meta.concrete_fields
        if personal or f.name not in ("name", "email")
    ]


def enrolment_query(values: dict[str, Any], role: str, personal: bool) -> QuerySet:
    # A stand-in user carrying the role: the visible runs are whatever
    # access.courses_for_user says for that role (by user id for instructors).
    viewer = get_user_model()(pk=values["user_id"], is_active=True)
    setattr(viewer, access._ROLE_ATTR, role)
    return Enrollment.objects.filter(
        course__in=access.courses_for_user(viewer),
        course_id=values["course_id"],
        learner__pseudonym=values["pseudonym"],
    ).values_list(
        *(f"learner__{f}" for f in _learner_fields(personal)),
        *(f"course__{f.attname}" for f in Course._meta.concrete_fields),
    )[:1]


enrolment_rows = _Compiled(enrolment_query)


def _authorised_enrolment(
    user: Any, pseudonym: str, course_id: int, generation: str | None = None
) -> tuple[Learner, Course]:
    """The learner and the course run, or Http404, as the access helpers decide.

    One query on the way in: the enrolment of the learner in this run among
    the runs `access.courses_for_user` allows. That holds exactly when the
    helpers would pass one by one: the run is visible, and a learner enrolled
    in a visible run is visible to every role (instructors see the learners
    of their runs, analysts and admins every enrolled learner). On a miss the
    helpers run one by one, so a refusal is the same 404 as before.
    """
    personal = access.can_see_personal_data(user)
    shape = (access.role_of(user), personal)
    remembered_key = ("enrolment", *shape, user.pk, course_id, pseudonym)
    rows = authcache.remembered.get(remembered_key, generation)
    if rows is None:
        rows = enrolment_rows.rows(
            shape, {"user_id": user.pk, "course_id": course_id, "pseudonym": pseudonym}
        )
        if rows and not personal:
            authcache.remembered.put(remembered_key, generation, rows)
    if rows:
        learner_fields = _learner_fields(personal)
        db = router.db_for_read(Enrollment)
        n = len(learner_fields)
        learner = Learner.from_db(db, learner_fields, rows[0][:n])
        course_fields = [f.attname for f in Course._meta.concrete_fields]
        return learner, Course.from_db(db, course_fields, rows[0][n:])
    learner = access.get_learner_for_user(user, pseudonym)
    course = access.get_course_for_user(user, course_id)
    if not Enrollment.objects.filter(learner=learner, course=course).exists():
        raise Http404("learner not enrolled in this course run")
    return learner, course


_INTEGER_FIELDS: dict[type, list[tuple[str, Any, Any, Any]] | None] = {}


def plain_integers(query_class: type[serializers.Serializer], params: Any) -> dict[str, int] | None:
    """What `query_class` validates the parameters to, when that needs no serializer.

    A query of integer fields only, every value given as plain digits within
    the field's bounds (or absent, with a default): the serializer would
    return exactly these ints, and building it costs a tenth of a request.
    Anything else (a sign, a blank, out of range, a missing required field,
    other field types): None, and the serializer decides and words the errors.
    """
    spec = _INTEGER_FIELDS.get(query_class, ())
    if spec == ():
        fields = query_class().fields
        spec = None
        if all(isinstance(f, AsciiIntegerField) for f in fields.values()):
            spec = [(name, f.min_value, f.max_value, f.default) for name, f in fields.items()]
        _INTEGER_FIELDS[query_class] = spec
    if spec is None:
        return None
    out: dict[str, int] = {}
    for name, low, high, default in spec:
        raw = params.get(name)
        if raw is None:
            if default is serializers.empty:
                return None
            out[name] = default
            continue
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
            return None
        value = int(raw)
        if (low is not None and value < low) or (high is not None and value > high):
            return None
        out[name] = value
    return out


def _header_token(request: Request) -> str | None:
    """The key of an ``Authorization: Token <key>`` header, as TokenAuthentication reads it."""
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != TokenAuthentication.keyword.lower().encode():
        return None
    try:
        return parts[1].decode()
    except UnicodeError:
        return None


class PredictionView(APIView):
    throttle_classes = [TokenRateThrottle, PredictionBudgetThrottle]
    query_serializer: type[serializers.Serializer] = PredictionQuery
    # The access generation this request files and finds remembered answers
    # under (eduplatform/core/authcache.py), read once before any access query.
    generation: str | None = None

    # Waits of the throttles when they were counted before authentication.
    _waits: list[float | None] | None = None
    # Values of `extra_reads`, by key (empty if they were not made together).
    read_values: dict[str, str] = {}

    def extra_reads(self, request: Request, pseudonym: str) -> list[throttles.Read]:
        """Cache keys an endpoint needs, read in the same round trip as the throttles."""
        return []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.read_values = {}
        key = _header_token(request)
        if key is None or not authcache.enabled() or not throttles.counted_in_redis():
            self.generation = authcache.current_generation()
        else:
            # One Redis round trip for the token's throttle counters (keyed by
            # its hash, as the throttles key a token), the generation and
            # whatever the endpoint reads (nothing is answered before access
            # is checked).
            generation = authcache.generation_read()
            self._waits, values = throttles.check_all(
                self.get_throttles(),
                request,
                self,
                ident=throttles.token_ident(key),
                reads=[generation, *self.extra_reads(request, kwargs.get("pseudonym", ""))],
            )
            self.generation = values.pop(generation.key, None)
            self.read_values = values
        super().initial(request, *args, **kwargs)

    def get_authenticators(self) -> list[Any]:
        authenticators = super().get_authenticators()
        for authenticator in authenticators:
            # The instance, not a subclass: the API schema keeps one "tokenAuth".
            if type(authenticator) is TokenAuthentication:
                authenticator.authenticate_credentials = lambda key, a=authenticator: (
                    token_with_role(a, key, self.generation)
                )
        return authenticators

    def check_throttles(self, request: Request) -> None:
        # Both throttles' counters in one cache round trip (unless counted already).
        waits = self._waits
        if waits is None:
            waits, _ = throttles.check_all(self.get_throttles(), request, self)
        if waits:
            self.throttled(request, max((w for w in waits if w is not None), default=None))

    def get(self, request: Request, pseudonym: str) -> Response:
        if not is_pseudonym(pseudonym):
            raise Http404("No such learner.")
        params = plain_integers(self.query_serializer, request.query_params)
        if params is None:
            query = self.query_serializer(data=request.query_params)
            if not query.is_valid():
                return Response(query.errors, status=400)
            params = query.validated_data
        learner, course = _authorised_enrolment(
            request.user, pseudonym, params["course"], self.generation
        )
        detailed = access.role_of(request.user) == access.ADMIN
        return Response(
            self.answer(learner=learner, course=course, params=params, detailed=detailed)
        )

    def answer(
        self, *, learner: Learner, course: Course, params: dict[str, Any], detailed: bool
    ) -> dict[str, Any]:
        raise NotImplementedError
