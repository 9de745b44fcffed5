"""How the registry learns about model kinds: each app registers one `ModelKind`.

The registry knows kinds by name only; `churn` and `recommender` register in
their AppConfig.ready(), so neither the registry nor the other app imports them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from eduplatform.ml.artifacts import Artifact


class TrainingRejected(Exception):
    """Not enough data (or similar): the version fails with this message as its reason."""


@dataclass
class TrainContext:
    version_id: int
    parameters: dict[str, Any]
    progress: Callable[[str, int], None]
    # The serving model of the active version (None when there is none):
    # the challenger is compared with it on the same validation data.
    champion: Any | None
    # The active version's fp32 training state (its checkpoint, else its artifact)
    # when a warm start is wanted; the kind decides whether the schema allows it.
    warm_start: Artifact | None
    # The active version's recorded metrics (for kinds that cannot re-score it).
    champion_metrics: dict[str, Any] | None = None


@dataclass
class TrainOutcome:
    tensors: dict[str, torch.Tensor]
    config: dict[str, Any]
    metrics: dict[str, Any]
    # The primary metric of the challenger and of the champion on the same data.
    score: float
    champion_score: float | None
    compression_report: dict[str, Any] = field(default_factory=dict)
    served_variant: str = "fp32"
    data_window: tuple[dt.datetime | None, dt.datetime | None] = (None, None)
    warm_started: bool = False
    # The fp32 state to warm-start the next run from, when `tensors`/`config`
    # hold a compressed variant (saved beside the artifact, never served).
    checkpoint: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None


@dataclass(frozen=True)
class ModelKind:
    name: str
    primary_metric: str
    # Largest allowed drop of the primary metric against the champion.
    gate_tolerance: Callable[[], float]
    train: Callable[[TrainContext], TrainOutcome]
    # Artifact -> the object served in requests (predictor / recommender).
    load: Callable[[Artifact], Any]
    # Optional: (served model, course ids, version) -> rows written for dashboards.
    score_batch: Callable[[Any, list[int], int], int] | None = None


_KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> None:
    _KINDS[kind.name] = kind


def get_kind(name: str) -> ModelKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(
            f"unknown model kind {name!r} (known: {', '.join(sorted(_KINDS))})"
        ) from None


def kind_names() -> list[str]:
    return sorted(_KINDS)
