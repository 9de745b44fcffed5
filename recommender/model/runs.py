"""Course runs as arrays: catalogue, click history before the as-of day, co-visit and
follow neighbours. A `CourseRun` is what the serving object keeps per course run
and what training slices at past days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from eduplatform.ml.data import LearningData
from recommender.model.features import (
    FollowPairs,
    ItemTimeline,
    Neighbours,
    covisit_neighbours,
    follow_neighbours,
    follow_pairs,
)
from recommender.model.interactions import PairTable, pair_table

OTHER_TYPE = "<other>"


def as_int_ids(values: np.ndarray | pd.Series, what: str) -> np.ndarray:
    """Item / learner keys are stored as int64 tensors; refuse keys that are not integers."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    try:
        out = arr.astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} ids must be integers") from exc
    if not np.array_equal(out.astype(arr.dtype), arr):
        raise ValueError(f"{what} ids must be integers")
    return out


def type_vocabulary(items: pd.DataFrame) -> list[str]:
    return [OTHER_TYPE, *sorted({str(t) for t in items["activity_type"].dropna().unique()})]


CourseId = str | int  # a course run's id: the OULAD key (str) or a Course pk (int)


@dataclass
class RawRows:
    """Click rows of one run before the as-of day, with row indices instead of ids."""

    learner: np.ndarray
    item: np.ndarray
    day: np.ndarray
    clicks: np.ndarray


@dataclass
class CourseRun:
    course_id: CourseId
    item_ids: np.ndarray  # (n_items,) int64
    item_type: np.ndarray  # (n_items,) int64 into the type vocabulary
    week_from: np.ndarray  # (n_items,) float64, NaN = unknown
    emb_rows: np.ndarray  # (n_items,) int64 rows of the embedding tables
    learner_ids: np.ndarray  # (n_learners,) int64
    as_of: int
    timeline: ItemTimeline
    pairs: PairTable  # at as_of, sorted by (learner, item)
    covisit: Neighbours
    follows: Neighbours
    raw: RawRows | None = None  # training only
    follow_all: FollowPairs | None = None  # training only
    _offsets: np.ndarray | None = field(default=None, repr=False)
    _item_index: dict[int, int] | None = field(default=None, repr=False)
    _learner_index: dict[int, int] | None = field(default=None, repr=False)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_learners(self) -> int:
        return len(self.learner_ids)

    @property
    def offsets(self) -> np.ndarray:
        if self._offsets is None:
            self._offsets = np.searchsorted(self.pairs.learner, np.arange(self.n_learners + 1))
        return self._offsets

    @property
    def item_index(self) -> dict[int, int]:
        if self._item_index is None:
            self._item_index = {int(v): i for i, v in enumerate(self.item_ids)}
        return self._item_index

    @property
    def learner_index(self) -> dict[int, int]:
        if self._learner_index is None:
            self._learner_index = {int(v): i for i, v in enumerate(self.learner_ids)}
        return self._learner_index

    def reset_indexes(self) -> None:
        self._offsets = self._item_index = self._learner_index = None


def build_run(
    course_id: CourseId,
    items: pd.DataFrame,
    clicks: pd.DataFrame,
    as_of: int,
    type_vocab: list[str],
    emb_offset: int,
    half_life_days: float,
    follow_window: int,
    neighbours: int,
    keep_raw: bool,
    horizon_days: int | None = None,
) -> CourseRun:
    """One course run from its items and item_activity rows (rows dated >= as_of are ignored)."""
    clicks = clicks[clicks["day"] < as_of]
    ids = np.unique(
        np.concatenate(
            [as_int_ids(items["item_id"], "item"), as_int_ids(clicks["item_id"], "item")]
        )
    )
    n_items = len(ids)
    meta = items.drop_duplicates("item_id").set_index(
        as_int_ids(items.drop_duplicates("item_id")["item_id"], "item")
    )
    vocab = {t: i for i, t in enumerate(type_vocab)}
    types = meta["activity_type"].reindex(ids)
    item_type = (
        types.astype(object).map(lambda t: vocab.get(str(t), 0) if isinstance(t, str) else 0)
    ).to_numpy(np.int64, copy=True)
    week_from = pd.to_numeric(meta["week_from"].reindex(ids), errors="coerce").to_numpy(
        np.float64, copy=True
    )

    learner_ids = np.unique(as_int_ids(clicks["learner_id"], "learner"))
    lrow = np.searchsorted(learner_ids, as_int_ids(clicks["learner_id"], "learner"))
    irow = np.searchsorted(ids, as_int_ids(clicks["item_id"], "item"))
    day = clicks["day"].to_numpy(np.int64)
    nclk = clicks["clicks"].to_numpy(np.float64)
    # Rows in (learner, item) order once, stably: every later pair_table over a day
    # prefix (one per training snapshot) then finds them sorted and skips its sort,
    # which was half of a full-OULAD fit.
    order = np.argsort(lrow.astype(np.int64) * n_items + irow, kind="stable")
    lrow, irow, day, nclk = lrow[order], irow[order], day[order], nclk[order]
    pairs = pair_table(lrow, irow, day, nclk, n_items, as_of, half_life_days).compact()
    timeline = ItemTimeline.from_rows(irow, day, nclk, pairs, n_items, as_of, horizon_days)
    fp = follow_pairs(pairs, follow_window, n_items)
    return CourseRun(
        course_id=course_id,
        item_ids=ids,
        item_type=item_type,
        week_from=week_from,
        emb_rows=np.arange(emb_offset, emb_offset + n_items, dtype=np.int64),
        learner_ids=learner_ids,
        as_of=as_of,
        timeline=timeline,
        pairs=pairs,
        covisit=covisit_neighbours(pairs, len(learner_ids), n_items, as_of, neighbours),
        follows=follow_neighbours(fp, pairs, n_items, as_of, neighbours),
        raw=RawRows(lrow, irow, day, nclk) if keep_raw else None,
        follow_all=fp if keep_raw else None,
    )


def build_runs(
    data: LearningData,
    as_of_day: int | dict[Any, int],  # one day, or one per course id
    type_vocab: list[str],
    half_life_days: float,
    follow_window: int,
    neighbours: int,
    keep_raw: bool = False,
    course_ids: Sequence[CourseId] | None = None,
    horizon_days: int | None = None,
) -> list[CourseRun]:
    """Every course run of `data` (or those asked), in course_id order."""
    if course_ids is None:
        course_ids = sorted(
            set(data.items["course_id"].unique()) | set(data.item_activity["course_id"].unique()),
            key=str,
        )
    items_by = dict(tuple(data.items.groupby("course_id", sort=False)))
    clicks_by = dict(tuple(data.item_activity.groupby("course_id", sort=False)))
    runs: list[CourseRun] = []
    offset = 0
    empty_items = data.items.iloc[0:0]
    empty_clicks = data.item_activity.iloc[0:0]
    for cid in course_ids:
        as_of = as_of_day[cid] if isinstance(as_of_day, dict) else as_of_day
        run = build_run(
            cid,
            items_by.get(cid, empty_items),
            clicks_by.get(cid, empty_clicks),
            int(as_of),
            type_vocab,
            offset,
            half_life_days,
            follow_window,
            neighbours,
            keep_raw,
            horizon_days,
        )
        offset += run.n_items
        runs.append(run)
    return runs
