"""Batch risk scores in the admin: written by the scoring task only, so read-only."""

from django.contrib import admin

from churn.models import RiskHistory, RiskScore
from eduplatform.core.admin import ReadOnlyAdmin


@admin.register(RiskScore)
class RiskScoreAdmin(ReadOnlyAdmin):
    list_display = ["learner", "course", "band", "probability", "as_of", "model_version"]
    list_filter = ["band", "model_version", "course"]
    search_fields = ["=learner__pseudonym", "course__code"]
    list_select_related = ["learner", "course"]
    date_hierarchy = "as_of"


@admin.register(RiskHistory)
class RiskHistoryAdmin(ReadOnlyAdmin):
    list_display = ["learner", "course", "as_of", "band", "probability"]
    list_filter = ["band", "course"]
    search_fields = ["=learner__pseudonym", "course__code"]
    list_select_related = ["learner", "course"]
    date_hierarchy = "as_of"
