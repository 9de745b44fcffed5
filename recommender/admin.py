"""Batch recommendations in the admin: written by the scoring task only, so read-only."""

from django.contrib import admin

from eduplatform.core.admin import ReadOnlyAdmin
from recommender.models import NextItems


@admin.register(NextItems)
class NextItemsAdmin(ReadOnlyAdmin):
    list_display = ["learner", "course", "scored_at", "model_version"]
    list_filter = ["model_version", "course"]
    search_fields = ["=learner__pseudonym", "course__code"]
    list_select_related = ["learner", "course"]
    date_hierarchy = "scored_at"
