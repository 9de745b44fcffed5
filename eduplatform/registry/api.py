"""Model operations API: versions, retrain, promote, rollback (kind = churn | recommender)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from eduplatform.core.access import ADMINS, declare
from eduplatform.core.inputs import AsciiIntegerField
from eduplatform.registry import services
from eduplatform.registry.kinds import kind_names
from eduplatform.registry.models import ModelVersion
from eduplatform.registry.reasons import status_reason_text


class IsPlatformAdmin(permissions.BasePermission):
    message = "Only platform admins may operate models."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_superuser)


class ModelVersionSerializer(serializers.ModelSerializer):
    # The stored reason stays English (data for tools); the models page's live message
    # shows this one, in the request's language (reasons.py; as stored when unknown).
    status_reason_text = serializers.SerializerMethodField()

    def get_status_reason_text(self, version: ModelVersion) -> str:
        return status_reason_text(version.status_reason)

    class Meta:
        model = ModelVersion
        fields = [
            "kind",
            "version",
            "status",
            "status_reason",
            "status_reason_text",
            "stage",
            "percent",
            "metrics",
            "compression_report",
            "served_variant",
            "artifact_sha256",
            "artifact_bytes",
            "data_window_start",
            "data_window_end",
            "parameters",
            "triggered_by",
            "retrain_due",
            "created_at",
            "started_at",
            "finished_at",
            "promoted_at",
        ]


class VersionInput(serializers.Serializer):
    version = AsciiIntegerField(min_value=1, required=False)


class RetrainInput(serializers.Serializer):
    from_scratch = serializers.BooleanField(default=False)


# The kinds by name in the schema (an enum), so clients and the fuzz suite know them; an
# unknown one is still a 404. The kinds register in AppConfig.ready, before the URL conf
# (the only importer of this module) loads.
KIND = OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=kind_names())


def _unknown_kind(kind: str) -> Response | None:
    if kind not in kind_names():
        return Response(
            {"detail": f"unknown model kind; use one of: {', '.join(kind_names())}"},
            status=status.HTTP_404_NOT_FOUND,
        )
    return None


@declare(ADMINS)
class VersionsView(APIView):
    # Versions name validation runs, their churn rates and who triggered them: admins only
    # (the README's promise; any authenticated token could read them before).
    permission_classes = [IsPlatformAdmin]

    @extend_schema(
        parameters=[KIND],
        responses=ModelVersionSerializer(many=True),
        summary="List model versions",
    )
    def get(self, request: Request, kind: str) -> Response:
        if (error := _unknown_kind(kind)) is not None:
            return error
        rows = ModelVersion.objects.filter(kind=kind).order_by("-version")[:100]
        return Response(ModelVersionSerializer(rows, many=True).data)


@declare(ADMINS)
class RetrainView(APIView):
    permission_classes = [IsPlatformAdmin]

    @extend_schema(
        parameters=[KIND],
        request=RetrainInput,
        responses={
            202: ModelVersionSerializer,
            409: OpenApiResponse(description="A training run of this kind is in progress"),
            503: OpenApiResponse(description="The task broker is unavailable"),
        },
        summary="Start a retraining run",
    )
    def post(self, request: Request, kind: str) -> Response:
        if (error := _unknown_kind(kind)) is not None:
            return error
        data = RetrainInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            version = services.retrain_request(
                kind=kind,
                triggered_by=request.user.get_username(),
                warm_start=not data.validated_data["from_scratch"],
            )
        except services.TrainingInProgress as exc:
            return Response(
                {"detail": str(exc), "version": exc.version.version},
                status=status.HTTP_409_CONFLICT,
            )
        except services.BrokerUnavailable as exc:
            response = Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
            response["Retry-After"] = "30"
            return response
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)


@declare(ADMINS)
class PromoteView(APIView):
    permission_classes = [IsPlatformAdmin]
    rollback = False

    @extend_schema(
        parameters=[KIND], request=VersionInput, responses={200: ModelVersionSerializer, 400: None}
    )
    def post(self, request: Request, kind: str) -> Response:
        if (error := _unknown_kind(kind)) is not None:
            return error
        data = VersionInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = data.validated_data.get("version")
        try:
            if self.rollback:
                row = services.model_version_rollback(kind=kind, to_version=version)
            elif version is None:
                return Response(
                    {"version": ["This field is required."]}, status=status.HTTP_400_BAD_REQUEST
                )
            else:
                row = services.model_version_promote(kind=kind, version=version)
        except services.PromotionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ModelVersionSerializer(row).data)


@declare(ADMINS)
class RollbackView(PromoteView):
    rollback = True
