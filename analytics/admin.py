"""The behaviour data in the admin. Learners are erased through the erasure service only."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from analytics.ingest.lrs import PlacementRefused, statement_place
from analytics.ingest.lrs_auth import new_credentials, secret_digest
from analytics.models import (
    Assessment,
    ContentItem,
    Course,
    DailyActivity,
    Enrollment,
    EventClientId,
    ImportRun,
    Intervention,
    Learner,
    LearningEvent,
    LrsClient,
    Statement,
    StatementAttachment,
    Submission,
)
from analytics.selectors.learners import learner_export
from analytics.services import learner_erase
from eduplatform.core.admin import ReadOnlyAdmin


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    """Course runs; the course IRI field says which xAPI activity id is the run (#25)."""

    list_display = [
        "code", "title", "module_code", "presentation", "start_date", "length_days", "iri",
    ]  # fmt: skip
    list_filter = ["module_code", "presentation"]
    search_fields = ["code", "title", "iri"]
    filter_horizontal = ["instructors"]
    actions = ["place_statements"]

    @admin.action(description=_("Place held xAPI statements (on each run's course IRI)"))
    def place_statements(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        for course in queryset.exclude(iri__isnull=True).exclude(iri=""):
            placed = statement_place(iri=str(course.iri), course=course)
            self.message_user(
                request,
                gettext("%(run)s: %(n)s held statements placed")
                % {"run": course.code, "n": placed},
                messages.SUCCESS,
            )


class LrsClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"),
        choices=LrsClient.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[LrsClient.Scope.WRITE],
    )

    class Meta:
        model = LrsClient
        fields = ["name", "scopes", "is_active"]


@admin.register(LrsClient)
class LrsClientAdmin(admin.ModelAdmin):
    """xAPI credentials (#25): the key and secret are made on creation and the secret is
    shown once (only its SHA-256 is kept); a lost secret means a new client."""

    form = LrsClientForm
    list_display = ["name", "key", "scopes", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "=key"]
    readonly_fields = ["key", "created_at"]

    def save_model(self, request: HttpRequest, obj: LrsClient, form: Any, change: bool) -> None:
        if not change:
            key, secret = new_credentials()
            obj.key, obj.secret_sha256 = key, secret_digest(secret)
            self.message_user(
                request,
                gettext(
                    "xAPI credentials of %(name)s (HTTP Basic): key %(key)s, secret %(secret)s. "
                    "Copy the secret now: it is not shown again."
                )
                % {"name": obj.name, "key": key, "secret": secret},
                messages.WARNING,
            )
        super().save_model(request, obj, form, change)


class PlaceForm(forms.Form):
    course = forms.ModelChoiceField(label=_("course run"), queryset=Course.objects.all())


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    """Stored statements (read only). Held ones (no course run) can be mapped to a run:
    the action maps their IRI to the run chosen and turns them into events."""

    list_display = ["statement_id", "stored", "verb_id", "activity_id", "course", "place_iri"]
    list_filter = [("course", admin.EmptyFieldListFilter), "voided"]
    search_fields = ["=statement_id", "=place_iri", "=activity_id"]
    list_select_related = ["course"]
    exclude = ["data", "agents", "related_agents", "actor_key"]
    date_hierarchy = "stored"
    actions = ["map_to_course"]

    @admin.action(description=_("Map the held statements' IRI to a course run"))
    def map_to_course(
        self, request: HttpRequest, queryset: QuerySet[Statement]
    ) -> TemplateResponse | None:
        iris = sorted(set(queryset.filter(course__isnull=True).values_list("place_iri", flat=True)))
        if len(iris) != 1 or not iris[0]:
            self.message_user(
                request,
                gettext("Select held statements of one IRI (filter by course: empty)."),
                messages.ERROR,
            )
            return None
        form = PlaceForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_valid():
            course = form.cleaned_data["course"]
            try:
                placed = statement_place(iri=iris[0], course=course)
            except PlacementRefused:
                self.message_user(
                    request,
                    gettext("%(run)s already has another course IRI, or another run has this one.")
                    % {"run": course.code},
                    messages.ERROR,
                )
                return None
            self.message_user(
                request,
                gettext("%(iri)s is now %(run)s: %(n)s statements placed")
                % {"iri": iris[0], "run": course.code, "n": placed},
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "admin/analytics/statement/map_to_course.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Map a course IRI to a course run"),
                "opts": self.model._meta,
                "iri": iris[0],
                "form": form,
                "statements": list(queryset.values_list("pk", flat=True)),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(Intervention)
class InterventionAdmin(admin.ModelAdmin):
    """Recorded actions about learners (#27 item 5); for platform admins, so not scoped."""

    list_display = ["date", "kind", "risk_band", "course", "learner", "created_by", "created_at"]
    list_filter = ["kind", "risk_band", "course"]
    search_fields = ["learner__pseudonym", "course__code"]
    list_select_related = ["course", "learner", "created_by"]
    raw_id_fields = ["learner", "created_by"]
    # the band is read from the scores when the record is made, never typed in
    readonly_fields = ["risk_band", "created_at"]


@admin.register(ContentItem)
class ContentItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "course", "activity_type", "week_from", "week_to"]
    list_filter = ["activity_type", "course"]
    search_fields = ["external_id", "title"]
    list_select_related = ["course"]


@admin.register(Learner)
class LearnerAdmin(admin.ModelAdmin):
    """Learners, with the data-subject rights as actions.

    "Export" and "erase" call the services behind ``export_learner`` and ``erase_learner``;
    deleting a learner here (the delete button or the bulk action) is an erasure too, so
    events, rollups and predictions go with it and the active models are marked for
    retraining.
    """

    list_display = ["pseudonym", "gender", "age_band", "region", "created_at"]
    list_filter = ["gender", "age_band", "highest_education", "region", "enrollments__course"]
    # Names and emails are encrypted: they cannot be searched, by design.
    search_fields = ["=pseudonym"]
    show_full_result_count = False
    actions = ["export", "erase"]

    @admin.action(description=_("Export the selected learners' data (JSON)"))
    def export(self, request: HttpRequest, queryset: QuerySet[Learner]) -> HttpResponse:
        data = {
            learner.pseudonym: learner_export(pseudonym=learner.pseudonym)
            for learner in queryset.order_by("pseudonym")
        }
        response = HttpResponse(
            json.dumps(data, cls=DjangoJSONEncoder, indent=2, sort_keys=True) + "\n",
            content_type="application/json",
        )
        name = next(iter(data)) if len(data) == 1 else "learners"
        response["Content-Disposition"] = f'attachment; filename="export-{name}.json"'
        return response

    @admin.action(
        description=_("Erase the selected learners (all their data)"), permissions=["delete"]
    )
    def erase(self, request: HttpRequest, queryset: QuerySet[Learner]) -> TemplateResponse | None:
        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "admin/analytics/learner/erase_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": gettext("Erase learners?"),
                    "opts": self.model._meta,
                    "learners": list(queryset.order_by("pseudonym")),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        self.delete_queryset(request, queryset)
        return None

    def erase_learners(self, request: HttpRequest, pseudonyms: list[str]) -> None:
        for pseudonym in pseudonyms:
            result = learner_erase(pseudonym=pseudonym)
            if result.found:
                self.message_user(
                    request,
                    gettext(
                        "erased %(pseudonym)s: %(events)s events, %(rollup)s rollup rows, "
                        "%(submissions)s submissions, %(enrolments)s enrolments; active models "
                        "marked for retraining"
                    )
                    % {
                        "pseudonym": pseudonym,
                        "events": result.events,
                        "rollup": result.rollup_rows,
                        "submissions": result.submissions,
                        "enrolments": result.enrollments,
                    },
                    messages.SUCCESS,
                )

    def delete_model(self, request: HttpRequest, obj: Learner) -> None:
        self.erase_learners(request, [obj.pseudonym])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Learner]) -> None:
        self.erase_learners(request, list(queryset.values_list("pseudonym", flat=True)))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # "Delete selected" would also erase, but "erase" says what happens.
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        """The confirmation page names the learners and what erasure removes.

        Django's default lists every related row (thousands of events) and asks for delete
        permission on each type, which the read-only event and prediction admins never give.
        """
        learners = list(objs)
        summary = [
            gettext(
                "%(pseudonym)s: personal data, enrolments, submissions, events, daily activity "
                "and predictions"
            )
            % {"pseudonym": learner.pseudonym}
            for learner in learners
        ]
        return summary, {str(Learner._meta.verbose_name_plural): len(learners)}, set(), []


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["learner", "course", "registered_on", "unregistered_on", "final_result"]
    list_filter = ["final_result", "course"]
    search_fields = ["=learner__pseudonym"]
    list_select_related = ["learner", "course"]
    raw_id_fields = ["learner"]
    show_full_result_count = False


@admin.register(Assessment)
class AssessmentAdmin(admin.ModelAdmin):
    list_display = ["external_id", "kind", "course", "due_date", "weight"]
    list_filter = ["kind", "course"]
    search_fields = ["external_id", "title"]
    list_select_related = ["course"]


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["assessment", "learner", "submitted_on", "score", "is_late", "is_banked"]
    list_filter = ["is_late", "is_banked", "assessment__course"]
    search_fields = ["=learner__pseudonym"]
    list_select_related = ["assessment", "learner"]
    raw_id_fields = ["learner", "assessment"]
    show_full_result_count = False


@admin.register(LearningEvent)
class LearningEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "occurred_at", "learner", "course", "item", "verb", "count", "source"]
    list_filter = ["source", "verb"]
    search_fields = ["=learner__pseudonym"]
    list_select_related = ["learner", "course", "item"]
    date_hierarchy = "occurred_at"


@admin.register(EventClientId)
class EventClientIdAdmin(ReadOnlyAdmin):
    """The events API's stored client ids (its dedup), for looking one up."""

    list_display = ["source", "client_event_id", "occurred_at"]
    list_filter = ["source"]
    search_fields = ["=client_event_id"]
    show_full_result_count = False


@admin.register(DailyActivity)
class DailyActivityAdmin(ReadOnlyAdmin):
    list_display = ["date", "learner", "course", "activity_type", "events", "clicks"]
    list_filter = ["activity_type"]
    search_fields = ["=learner__pseudonym"]
    list_select_related = ["learner", "course"]


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin):
    list_display = ["course", "source", "events", "finished_at"]
    list_filter = ["source"]
    search_fields = ["course__code"]
    list_select_related = ["course"]


@admin.register(StatementAttachment)
class StatementAttachmentAdmin(ReadOnlyAdmin):
    list_display = ["sha2", "content_type", "length", "stored"]
    list_filter = ["content_type"]
    search_fields = ["=sha2"]
    exclude = ["content"]
