"""Model versions in the admin: rows the registry writes; promote, roll back, retrain."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from eduplatform.registry import services
from eduplatform.registry.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "kind",
        "version",
        "status",
        "stage",
        "percent",
        "served_variant",
        "primary_score",
        "triggered_by",
        "created_at",
        "promoted_at",
    ]
    list_filter = ["kind", "status", "served_variant", "retrain_due"]
    search_fields = ["kind", "triggered_by", "status_reason"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["promote", "rollback_to", "retrain_kind"]

    @admin.display(description=_("score"))
    def primary_score(self, obj: ModelVersion) -> str:
        score = obj.metrics.get("score")
        return f"{score:.4f}" if isinstance(score, (int, float)) else "-"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A version is the registry's record of an artifact and of what served when:
        # it is retired, never deleted.
        return False

    @admin.action(description=_("Promote the selected version"))
    def promote(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for row in queryset:
            try:
                services.model_version_promote(kind=row.kind, version=row.version)
                self.message_user(
                    request,
                    gettext("%(kind)s v%(version)s is now active")
                    % {"kind": row.kind, "version": row.version},
                )
            except services.PromotionError as exc:
                self.message_user(request, str(exc), level=messages.ERROR)

    @admin.action(description=_("Roll back to the selected version"))
    def rollback_to(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        self.promote(request, queryset)

    @admin.action(description=_("Retrain the selected versions' kinds"))
    def retrain_kind(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for kind in sorted({row.kind for row in queryset}):
            try:
                version = services.retrain_request(
                    kind=kind, triggered_by=request.user.get_username()
                )
                self.message_user(request, f"{kind} v{version.version}: {version.status}")
            except (services.TrainingInProgress, services.BrokerUnavailable) as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
