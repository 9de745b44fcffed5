"""Reads of the model registry for pages: a fixed number of queries, whatever the history length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from eduplatform.registry.kinds import get_kind, kind_names
from eduplatform.registry.models import ModelVersion

# The models page shows this many versions per kind (newest first), plus the
# active one when it is older.
RECENT_VERSIONS = 50


def _promoted_at(version: ModelVersion) -> datetime:
    assert version.promoted_at is not None  # only promoted versions are compared
    return version.promoted_at


@dataclass
class KindVersions:
    kind: str
    primary_metric: str
    versions: list[ModelVersion] = field(default_factory=list)  # newest first

    @property
    def active(self) -> ModelVersion | None:
        return next((v for v in self.versions if v.status == ModelVersion.Status.ACTIVE), None)

    @property
    def training(self) -> ModelVersion | None:
        return next((v for v in self.versions if v.status == ModelVersion.Status.TRAINING), None)

    @property
    def promotable(self) -> list[ModelVersion]:
        """Versions an admin may promote: finished, with an artifact, not serving."""
        return [
            v
            for v in self.versions
            if v.status in (ModelVersion.Status.CANDIDATE, ModelVersion.Status.RETIRED)
            and v.artifact_sha256
        ]

    @property
    def rollback_target(self) -> ModelVersion | None:
        """What a rollback without a version returns to (as services.model_version_rollback)."""
        active = self.active
        earlier = [
            v
            for v in self.versions
            if v.status == ModelVersion.Status.RETIRED
            and v.promoted_at is not None
            and v.artifact_sha256
            and (active is None or v.version < active.version)
        ]
        return max(earlier, key=_promoted_at, default=None)


def page_kinds() -> list[str]:
    """Every kind in the order the kinds registered (`register_kind_module(order=...)`)."""
    return kind_names()


def versions_for_page(
    kinds: Sequence[str] | None = None, *, limit: int = RECENT_VERSIONS
) -> list[KindVersions]:
    """Each kind's newest `limit` versions and its active one: one query for all kinds."""
    kinds = list(kinds) if kinds is not None else page_kinds()
    if not kinds:
        return []
    rows = (
        ModelVersion.objects.filter(kind__in=kinds)
        .defer("parameters", "artifact_path")
        .annotate(
            recent_rank=Window(RowNumber(), partition_by=F("kind"), order_by=F("version").desc())
        )
        .filter(Q(recent_rank__lte=limit) | Q(status=ModelVersion.Status.ACTIVE))
        .order_by("kind", "-version")
    )
    by_kind = {k: KindVersions(kind=k, primary_metric=get_kind(k).primary_metric) for k in kinds}
    for row in rows:
        by_kind[row.kind].versions.append(row)
    return [by_kind[k] for k in kinds]
