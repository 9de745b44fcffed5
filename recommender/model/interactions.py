"""Implicit feedback: learner x item interactions weighted by clicks and recency.

The weight of a learner-item pair at day `now` sums, over the days `d < now`
on which the learner opened the item, `log1p(clicks_d) * 0.5 ** ((now - d) / half_life)`.
`log1p` keeps one binge day from dominating many visits; the half-life makes
last week's items count more than the first week's. Because every term decays
by the same factor, the weight at a later day is the weight at `now` times
`0.5 ** ((later - now) / half_life)` -- the serving state stores it once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_HALF_LIFE_DAYS = 14.0


def decay(age_days: np.ndarray | float, half_life_days: float) -> np.ndarray:
    """0.5 ** (age / half_life); age 0 -> 1."""
    return np.power(0.5, np.asarray(age_days, dtype=np.float64) / half_life_days)


def interaction_weights(
    item_activity: pd.DataFrame,
    now_day: int,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> pd.DataFrame:
    """One row per course x learner x item seen before `now_day`.

    Columns: course_id, learner_id, item_id, weight (clicks and recency, see the
    module doc), clicks (sum), first_day, last_day, days (number of active days).
    """
    cols = [
        "course_id",
        "learner_id",
        "item_id",
        "weight",
        "clicks",
        "first_day",
        "last_day",
        "days",
    ]
    rows = item_activity[item_activity["day"] < now_day]
    if rows.empty:
        return pd.DataFrame({c: [] for c in cols})
    term = np.log1p(rows["clicks"].to_numpy(np.float64)) * decay(
        now_day - rows["day"].to_numpy(np.float64), half_life_days
    )
    frame = rows.assign(weight=term)
    out = frame.groupby(["course_id", "learner_id", "item_id"], as_index=False, sort=True).agg(
        weight=("weight", "sum"),
        clicks=("clicks", "sum"),
        first_day=("day", "min"),
        last_day=("day", "max"),
        days=("day", "size"),
    )
    return out[cols]


@dataclass
class PairTable:
    """Learner x item pairs of one course run at a day, parallel arrays sorted by (learner, item).

    `learner` / `item` are row indices into the run's learner and item arrays.
    """

    learner: np.ndarray  # int64
    item: np.ndarray  # int64
    weight: np.ndarray  # float64, decayed click weight at `day`
    clicks: np.ndarray  # float64
    first_day: np.ndarray  # float64
    last_day: np.ndarray  # float64
    day: int

    def __len__(self) -> int:
        return len(self.learner)

    def compact(self) -> PairTable:
        """The storage dtypes (int32 rows and days, float32 weights) kept by the serving state."""
        return PairTable(
            self.learner.astype(np.int32),
            self.item.astype(np.int32),
            self.weight.astype(np.float32),
            self.clicks.astype(np.float32),
            self.first_day.astype(np.int32),
            self.last_day.astype(np.int32),
            self.day,
        )

    def rescaled(self, now_day: int, half_life_days: float) -> PairTable:
        """The same pairs seen from a later day (weights decay, nothing new added)."""
        factor = float(decay(now_day - self.day, half_life_days))
        return PairTable(
            self.learner,
            self.item,
            (self.weight * factor).astype(self.weight.dtype),
            self.clicks,
            self.first_day,
            self.last_day,
            now_day,
        )


def pair_table(
    learner: np.ndarray,
    item: np.ndarray,
    day: np.ndarray,
    clicks: np.ndarray,
    n_items: int,
    now_day: int,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> PairTable:
    """Aggregate raw (learner, item, day, clicks) rows dated before `now_day` into pairs.

    The array version of `interaction_weights` for one run (indices instead of ids).
    """
    keep = day < now_day
    learner, item, day, clicks = learner[keep], item[keep], day[keep], clicks[keep]
    if len(learner) == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        empty_f = np.zeros(0, dtype=np.float64)
        return PairTable(empty_i, empty_i, empty_f, empty_f, empty_f, empty_f, now_day)
    key = learner.astype(np.int64) * n_items + item.astype(np.int64)
    if len(key) > 1 and bool(np.any(key[1:] < key[:-1])):
        order = np.argsort(key, kind="stable")
        key, day, clicks = key[order], day[order], clicks[order]
    day, clicks = day.astype(np.float64), clicks.astype(np.float64)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    term = np.log1p(clicks) * decay(now_day - day, half_life_days)
    uniq = key[starts]
    return PairTable(
        learner=uniq // n_items,
        item=uniq % n_items,
        weight=np.add.reduceat(term, starts),
        clicks=np.add.reduceat(clicks, starts),
        first_day=np.minimum.reduceat(day, starts),
        last_day=np.maximum.reduceat(day, starts),
        day=now_day,
    )
