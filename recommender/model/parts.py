"""What the `Recommender` serving object answers and caches: a recommendation, and the
per-run, per-day item inputs every learner of the run shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recommender.model.features import ItemGraph


@dataclass(frozen=True)
class Recommendation:
    item_id: int
    score: float
    reason: str
    related_item: int | None = None  # the item named in the reason, if any


@dataclass
class ItemPart:
    """Per-run, per-day inputs shared by every learner (cached)."""

    item_x: torch.Tensor
    item_h: torch.Tensor
    item_type: torch.Tensor
    center: torch.Tensor
    center_known: torch.Tensor
    graph: ItemGraph
    rows: torch.Tensor
    used_7d: np.ndarray
    used_7d_rank: np.ndarray
    first_active: np.ndarray
