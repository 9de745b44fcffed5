"""How the registry learns about model kinds: each app registers one `ModelKind`.

The registry knows kinds by name only; `churn` and `recommender` register in
their AppConfig.ready(), so neither the registry nor the other app imports them.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eduplatform.ml.artifacts import Artifact

if TYPE_CHECKING:
    import torch
    from django_stubs_ext import StrOrPromise

    from eduplatform.ml.compress import CompressionResult, CompressionSettings, SelectionPolicy
    from eduplatform.ml.data import LearningData


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
    # A kind with a `features` fan-out: its chunks, built by any worker and gathered in
    # plan order (eduplatform/registry/features.py); None for the other kinds.
    features: TrainingFeatures | None = None


@dataclass
class FeatureChunk:
    """One chunk of course runs' training features: named frames and plain JSON metadata."""

    frames: dict[str, Any]  # name -> pandas DataFrame (stored as Parquet)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingFeatures:
    """Every chunk of a run's plan, in plan order, with the day the plan was made for."""

    as_of: dt.date
    course_ids: list[int]  # the plan's runs, in plan order
    chunks: list[FeatureChunk]
    digest: str  # sha256 of the gathered frames (recorded in the run's metrics)


@dataclass(frozen=True)
class FeatureFanout:
    """A kind whose training features are built per course run (nothing crosses runs), so
    chunks of runs can be built by workers on any machine and gathered in order."""

    # The runs whose features a training as of that day reads, in the order to gather them.
    runs: Callable[[dt.date], list[int]]
    # One chunk's features: (course ids of the chunk, as_of) -> FeatureChunk.
    build: Callable[[list[int], dt.date], FeatureChunk]


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


@dataclass
class CompressionRequest:
    """What `compression_report` hands a kind: its options and the shared plumbing."""

    options: dict[str, Any]
    # The command's OULAD folder (or a generated one) as frames, and a label for it.
    load_data: Callable[[], tuple[LearningData, str]]
    # Applies the command's overrides to the kind's own defaults (raises on a bad one).
    tune: Callable[[CompressionSettings, SelectionPolicy], None]
    log: Callable[[str], None]


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
    # Optional: train on a request's data, build every compressed variant, and
    # return (the variant table, its title) for `manage.py compression_report`.
    compression_report: Callable[[CompressionRequest], tuple[CompressionResult, str]] | None = None
    # Optional: training features fanned out over chunks of course runs (a Celery chord).
    features: FeatureFanout | None = None


@dataclass(frozen=True)
class KindInfo:
    """What the registry knows of a kind before importing it (pages list kinds cheaply)."""

    name: str
    module: str
    title: StrOrPromise  # a lazy translation string
    order: int


_KINDS: dict[str, ModelKind] = {}
# Kinds registered by module path, imported on first use: a kind module pulls
# in PyTorch and scikit-learn (seconds), which most processes (manage.py
# commands, the web workers' start) do not need until a model is asked for.
_MODULES: dict[str, KindInfo] = {}


def register_kind(kind: ModelKind) -> None:
    _KINDS[kind.name] = kind


def register_kind_module(
    name: str, module: str, *, title: StrOrPromise | None = None, order: int = 100
) -> None:
    """Kind `name` is `module.KIND`, imported when the kind is first asked for.

    `title` names it on pages; kinds are listed by `order`, then name.
    """
    _MODULES[name] = KindInfo(
        name=name, module=module, title=title or f"{name.title()} model", order=order
    )


def get_kind(name: str) -> ModelKind:
    if name not in _KINDS and name in _MODULES:
        module = _MODULES[name].module
        kind = importlib.import_module(module).KIND
        if kind.name != name:
            raise KeyError(f"{module}.KIND is named {kind.name!r}, not {name!r}")
        _limit_torch_threads()
        register_kind(kind)
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"unknown model kind {name!r} (known: {', '.join(kind_names())})") from None


def _limit_torch_threads() -> None:
    # Small networks at batch 1: extra intra-op threads only add overhead, and
    # web workers already run one request per core (trainings set their own).
    import torch
    from django.conf import settings

    torch.set_num_threads(settings.TORCH_THREADS)


def kind_names() -> list[str]:
    """Every kind, in page order (registered order, then name)."""
    names = set(_KINDS) | set(_MODULES)
    return sorted(names, key=lambda n: (_MODULES[n].order if n in _MODULES else 1_000, n))


def kind_title(name: str) -> StrOrPromise:
    info = _MODULES.get(name)
    return info.title if info is not None else f"{name.title()} model"
