from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from analytics.models import (
    Assessment,
    ContentItem,
    Course,
    DailyActivity,
    Enrollment,
    ImportRun,
    Learner,
    LearningEvent,
    Submission,
)


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["code", "title", "module_code", "presentation", "start_date", "length_days"]
    list_filter = ["module_code", "presentation"]
    search_fields = ["code", "title"]
    filter_horizontal = ["instructors"]


@admin.register(ContentItem)
class ContentItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "course", "activity_type", "week_from", "week_to"]
    list_filter = ["activity_type", "course"]
    search_fields = ["external_id", "title"]
    list_select_related = ["course"]


@admin.register(Learner)
class LearnerAdmin(admin.ModelAdmin):
    list_display = ["pseudonym", "gender", "age_band", "region", "created_at"]
    list_filter = ["gender", "age_band", "highest_education"]
    # Names and emails are encrypted: they cannot be searched, by design.
    search_fields = ["=pseudonym"]
    show_full_result_count = False


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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Raw behaviour data is written by ingestion only."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LearningEvent)
class LearningEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "occurred_at", "learner", "course", "item", "verb", "count", "source"]
    list_filter = ["source", "verb"]
    search_fields = ["=learner__pseudonym"]
    list_select_related = ["learner", "course", "item"]
    date_hierarchy = "occurred_at"


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
