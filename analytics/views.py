"""Behaviour dashboards (HTML). Thin: parse input, one access helper, one page builder, render.

Every page requires a login and reads only what eduplatform.core.access allows;
foreign ids are 404s. Responses are never cached by browsers or proxies:
they carry learner data.

The gate (the object the URL names, the viewer's role) is read on the primary; the
page builder and the template then run inside `replica_reads()`, so with
DATABASE_REPLICA_URL set their reads go to the read replica
(eduplatform/core/db_router.py). The CSV export streams after the view returned,
outside that scope: it reads the primary.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from analytics.pages import panels
from analytics.pages.course import course_csv_rows, course_page
from analytics.pages.interventions import InterventionForm
from analytics.pages.learner import learner_page
from analytics.pages.overview import overview_page
from analytics.pages.quality import data_quality_page
from analytics.pages.segments import segments_page
from analytics.selectors.learner_table import LearnerTableQuery
from analytics.services import intervention_record
from eduplatform.core import access
from eduplatform.core.db_router import replica_reads
from eduplatform.core.inputs import ascii_int, storable_text


def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    context.setdefault("role_label", access.role_label(request.user))
    # The model registry pages belong to another app that may not be installed
    # yet; link to them only when the URL exists.
    try:
        resolve("/models/")
        context.setdefault("models_url", "/models/")
    except Resolver404:
        context.setdefault("models_url", None)
    return render(request, template, context)


def _table_query(request: HttpRequest) -> LearnerTableQuery:
    """The at-risk table's filters; 400 for text PostgreSQL cannot compare (a NUL)."""
    if not all(storable_text(v) for _, values in request.GET.lists() for v in values):
        raise BadRequest("Query parameters must not contain NUL characters.")
    orders = panels.row_orders()
    # riskiest first when an app ranks learners by risk (the first registered order)
    default = f"-{next(iter(orders))}" if orders else "activity_14d"
    return LearnerTableQuery.from_params(request.GET, orders=orders, default=default)


@access.declare(access.SIGNED_IN)
@require_GET
@never_cache
@login_required
def overview(request: HttpRequest) -> HttpResponse:
    courses = list(access.courses_for_user(request.user))
    with replica_reads():
        context = overview_page(request.user, courses, timezone.localdate())
        return _render(request, "analytics/overview.html", context)


@access.declare(access.COURSE_READERS)
@require_GET
@never_cache
@login_required
def course_detail(request: HttpRequest, course_id: int) -> HttpResponse:
    course = access.get_course_for_user(request.user, course_id)
    query = _table_query(request)
    with replica_reads():
        context = course_page(
            request.user, course, timezone.localdate(), query, request.GET.get("page")
        )
        return _render(request, "analytics/course.html", context)


class _Echo:
    """A file-like object whose write returns the line: csv.writer feeds a streaming response."""

    def write(self, value: str) -> str:
        return value


def _csv_safe(cell: Any) -> Any:
    # Spreadsheet formula injection: a text cell starting with =, +, - or @ is
    # run as a formula by Excel and LibreOffice; a leading quote keeps it text.
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


def _csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([_csv_safe(cell) for cell in row])


@access.declare(access.COURSE_READERS)
@require_GET
@never_cache
@login_required
def course_export(request: HttpRequest, course_id: int) -> StreamingHttpResponse:
    course = access.get_course_for_user(request.user, course_id)
    query = _table_query(request)
    rows = course_csv_rows(course, timezone.localdate(), query, request.user)
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    filename = f"{course.code}-learners.csv".replace('"', "")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@access.declare(access.COURSE_READERS)
@require_GET
@never_cache
@login_required
def course_segments(request: HttpRequest, course_id: int) -> HttpResponse:
    course = access.get_course_for_user(request.user, course_id)
    k = ascii_int(request.GET.get("k"))
    if k is not None and not 2 <= k <= 6:
        k = None
    with replica_reads():
        context = segments_page(request.user, course, timezone.localdate(), k)
        return _render(request, "analytics/segments.html", context)


@access.declare(access.COURSE_READERS)
@require_GET
@never_cache
@login_required
def learner_detail(request: HttpRequest, pseudonym: str) -> HttpResponse:
    learner = access.get_learner_for_user(request.user, pseudonym)
    courses = access.courses_for_user(request.user)
    with replica_reads():
        context = learner_page(request.user, learner, courses, timezone.localdate())
        return _render(request, "analytics/learner.html", context)


def _not_recorded(request: HttpRequest, errors: dict[str, list[str]]) -> None:
    detail = "; ".join(
        f"{field}: {' '.join(ms)}" if field else " ".join(ms) for field, ms in errors.items()
    )
    messages.error(request, _("The action was not recorded: %(errors)s") % {"errors": detail})


@access.declare(access.COURSE_STAFF)
@never_cache
@login_required
def learner_intervention_add(request: HttpRequest, pseudonym: str) -> HttpResponse:
    """The learner page's "record an action" form (CSRF-checked POST, then back to the page)."""
    # Access before the method: a GET from someone kept out is the same 404 as a POST.
    learner = access.get_learner_for_staff(request.user, pseudonym)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    courses = list(
        access.courses_for_staff(request.user).filter(enrollments__learner=learner).distinct()
    )
    form = InterventionForm(request.POST, courses=courses)
    page = reverse("analytics:learner", args=[learner.pseudonym]) + "#actions"
    if not form.is_valid():
        errors = {
            str(form.fields[f].label) if f in form.fields else "": [str(m) for m in e]
            for f, e in form.errors.items()
        }
        _not_recorded(request, errors)
        return redirect(page)
    course = next(c for c in courses if c.pk == form.cleaned_data["course"])
    try:
        intervention_record(
            user=request.user,
            course=course,
            learner=learner,
            kind=form.cleaned_data["kind"],
            date=form.cleaned_data["date"],
            note=form.cleaned_data["note"],
        )
    except ValidationError as error:
        _not_recorded(request, error.message_dict)
        return redirect(page)
    messages.success(request, _("Action recorded."))
    return redirect(page)


@access.declare(access.SIGNED_IN)
@require_GET
@never_cache
@login_required
def data_quality(request: HttpRequest) -> HttpResponse:
    courses = list(access.courses_for_user(request.user))
    with replica_reads():
        context = data_quality_page(request.user, courses, timezone.now())
        return _render(request, "analytics/data_quality.html", context)
