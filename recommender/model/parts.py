"""What the `Recommender` serving object answers (a recommendation) and caches (the
per-run, per-day item inputs every learner of the run shares)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recommender.model.run_state import RunView


@dataclass(frozen=True)
class Recommendation:
    item_id: int
    score: float
    reason: str
    related_item: int | None = None  # the item named in the reason, if any


@dataclass
class ItemPart:
    """Per-run, per-day inputs shared by every learner (cached)."""

    view: RunView
    item_x: torch.Tensor  # standardised item features
    item_h: torch.Tensor
    used_7d: np.ndarray
    used_7d_rank: np.ndarray
