"""The served ranker's compact run state: what its features need of one course run at
its as-of day A (clicks dated before A), in small integer arrays (#23 item 6).

Per run: the catalogue; every learner's opened items as CSR rows (item, first day, last
day as int16 where they fit); the per-item learner-visits and clicks of the last 7 days;
the decayed visit counts at A for the feature half-lives; every learner's clicks of the
last 28 days and last active day. Transitions, opened counts, first/last/mean first
visit days of items are derived from the pairs at load (cached).

`RunView(state, now)` answers the reads of `timeline.Snapshot` that
`ranker.item_features` / `block_parts` make, at a day `now >= A` (earlier days are
served as of A). At `now == A` it gives the Snapshot's values exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recommender.model.timeline import DAY0, RECENT_SLOTS, LearnerBlock, Run

ITEM_DAYS = 7  # per-item daily counts kept: the features' windows are at most 7 days
DENSE_TRANSITIONS = 2048  # larger catalogues keep their transitions sparse
NO_DAY = -32768


def _small_int(a: np.ndarray) -> np.ndarray:
    """The array in the smallest of int16 / int32 / int64 that holds it."""
    a = np.asarray(a)
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return a.astype(dtype)
    return a.astype(np.int64)


def _counts(a: np.ndarray) -> np.ndarray:
    """Integral counts as small ints, anything else as float64 (exact either way)."""
    if a.size and not np.array_equal(a, np.round(a)):
        return a.astype(np.float64)
    return _small_int(np.round(a))


@dataclass
class RunState:
    course_id: Any
    as_of: int
    item_ids: np.ndarray  # (I,) int64, sorted
    item_type: np.ndarray  # (I,) codes into timeline.TYPES
    week_from: np.ndarray  # (I,) float64, NaN = unknown
    due_days: np.ndarray  # assessment due days, float64
    learner_ids: np.ndarray  # (L,) sorted
    offsets: np.ndarray  # (L + 1,) CSR of the pairs by learner
    p_item: np.ndarray  # (P,) item row of each opened (learner, item)
    p_first: np.ndarray  # (P,) first day
    p_last: np.ndarray  # (P,) last day
    visits_recent: np.ndarray  # (I, 7) learner-visits on days A - 7 .. A - 1
    clicks_recent: np.ndarray  # (I, 7) clicks on the same days
    decayed: np.ndarray  # (H, I) float64 decayed visits at A, one row per half-life
    half_lives: tuple[float, ...]
    l_recent: np.ndarray  # (L, 28) each learner's clicks on days A - 28 .. A - 1
    last_active: np.ndarray  # (L,) last day with clicks (NO_DAY = none)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_learners(self) -> int:
        return len(self.learner_ids)

    @classmethod
    def build(cls, run: Run, as_of: int, half_lives: Sequence[float]) -> RunState:
        """The state of `run` at `as_of` from its click rows (sorted by learner, item, day),
        computed as `Snapshot(run, as_of)` computes them, without its dense matrices.

        Long because every stored array is one short computation over the same rows."""
        m = run.day < as_of
        lr, ir, d, c = run.lrow[m], run.irow[m], run.day[m], run.clicks[m]
        n_l, n_i = run.n_learners, run.n_items
        key = lr * n_i + ir
        if len(key):
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            ends = np.r_[starts[1:] - 1, len(key) - 1]
        else:
            starts = ends = np.zeros(0, np.int64)
        ns = max(as_of + DAY0, 1)
        slot = np.clip(d + DAY0, 0, ns - 1)
        visits = np.bincount(ir * ns + slot, minlength=n_i * ns).reshape(n_i, ns)
        age = (as_of - 1) - (np.arange(ns) - DAY0)
        decayed = np.stack([visits.astype(np.float64) @ np.power(0.5, age / h) for h in half_lives])
        recent = slot >= ns - ITEM_DAYS
        col = slot[recent] - (ns - ITEM_DAYS)
        flat = ir[recent] * ITEM_DAYS + col
        vr = np.bincount(flat, minlength=n_i * ITEM_DAYS).reshape(n_i, ITEM_DAYS)
        cr = np.bincount(flat, weights=c[recent], minlength=n_i * ITEM_DAYS)
        lrec = slot >= ns - RECENT_SLOTS
        lcol = slot[lrec] - (ns - RECENT_SLOTS)
        l_recent = np.bincount(
            lr[lrec] * RECENT_SLOTS + lcol, weights=c[lrec], minlength=n_l * RECENT_SLOTS
        )
        active_day = np.full(n_l, NO_DAY, np.int64)
        pos = c > 0
        np.maximum.at(active_day, lr[pos], slot[pos] - DAY0)
        pl = lr[starts]
        return cls(
            course_id=run.course_id,
            as_of=int(as_of),
            item_ids=run.item_ids.astype(np.int64),
            item_type=run.item_type.astype(np.int8),
            week_from=run.week_from.astype(np.float64),
            due_days=np.asarray(run.due_days, np.float64),
            learner_ids=np.asarray(run.learner_ids).astype(np.int64),
            offsets=_small_int(np.searchsorted(pl, np.arange(n_l + 1))),
            p_item=_small_int(ir[starts]),
            p_first=_small_int(d[starts]),
            p_last=_small_int(d[ends]),
            visits_recent=_small_int(vr),
            clicks_recent=_counts(cr.reshape(n_i, ITEM_DAYS)),
            decayed=decayed,
            half_lives=tuple(float(h) for h in half_lives),
            l_recent=_counts(l_recent.reshape(n_l, RECENT_SLOTS)),
            last_active=_small_int(active_day),
        )

    # ------------------------------------------------------------------ new items

    def add_items(self, item_ids: np.ndarray, types: np.ndarray, weeks: np.ndarray) -> None:
        """Items created after training (no clicks known): appended to the catalogue."""
        n = len(item_ids)
        self.item_ids = np.concatenate([self.item_ids, item_ids.astype(np.int64)])
        self.item_type = np.concatenate([self.item_type, types.astype(np.int8)])
        self.week_from = np.concatenate([self.week_from, weeks.astype(np.float64)])
        self.visits_recent = np.concatenate(
            [self.visits_recent, np.zeros((n, ITEM_DAYS), self.visits_recent.dtype)]
        )
        self.clicks_recent = np.concatenate(
            [self.clicks_recent, np.zeros((n, ITEM_DAYS), self.clicks_recent.dtype)]
        )
        self.decayed = np.concatenate([self.decayed, np.zeros((len(self.decayed), n))], axis=1)
        if self.n_items > np.iinfo(self.p_item.dtype).max:
            self.p_item = self.p_item.astype(np.int32)

    # ------------------------------------------------------------------ tensors

    def to_tensors(self, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                tensors[prefix + f.name] = torch.from_numpy(np.ascontiguousarray(value).copy())
        config = {
            "course_id": self.course_id,
            "as_of": self.as_of,
            "half_lives": list(self.half_lives),
        }
        return tensors, config

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, torch.Tensor], prefix: str, config: dict[str, Any]
    ) -> RunState:
        arrays = {
            f.name: tensors[prefix + f.name].numpy().copy()
            for f in fields(cls)
            if prefix + f.name in tensors
        }
        return cls(
            course_id=config["course_id"],
            as_of=int(config["as_of"]),
            half_lives=tuple(float(h) for h in config["half_lives"]),
            **arrays,
        )


class RunDerived:
    """What is derived from a state's pairs once (cached per state, any serving day)."""

    def __init__(self, state: RunState) -> None:
        s = state
        n_i = s.n_items
        item = s.p_item.astype(np.int64)
        per_learner: np.ndarray = np.diff(s.offsets.astype(np.int64))
        self.learner = np.repeat(np.arange(s.n_learners), per_learner)
        self.opened = np.bincount(item, minlength=n_i)
        first = np.full(n_i, np.inf, np.float32)
        last = np.full(n_i, -np.inf, np.float32)
        np.minimum.at(first, item, s.p_first.astype(np.float32))
        np.maximum.at(last, item, s.p_last.astype(np.float32))
        has = self.opened > 0
        self.first_any = np.where(has, first, np.float32(np.nan)).astype(np.float32)
        self.last_any = np.where(has, last, np.float32(np.nan)).astype(np.float32)
        total = np.bincount(item, weights=s.p_first.astype(np.float64), minlength=n_i)
        self.mean_first = np.where(has, total / np.maximum(self.opened, 1), np.nan)
        self._trans: dict[tuple[int, int], Any] = {}
        self.state = state
        self.item_index = {int(i): k for k, i in enumerate(s.item_ids)}
        self.learner_index = {int(u): k for k, u in enumerate(s.learner_ids)}
        self._item_learners: tuple[np.ndarray, np.ndarray] | None = None

    def item_learners(self) -> tuple[np.ndarray, np.ndarray]:
        """(pair order by item, CSR offsets by item): who opened each item."""
        if self._item_learners is None:
            item = self.state.p_item.astype(np.int64)
            order = np.argsort(item, kind="stable")
            off = np.searchsorted(item[order], np.arange(self.state.n_items + 1))
            self._item_learners = (order, off)
        return self._item_learners

    def transitions(self, next_n: int, window: int) -> Any:
        """`Snapshot.transitions` from the pairs (first visits): dense (I, I) float32,
        or CSR for catalogues over DENSE_TRANSITIONS items."""
        key = (next_n, window)
        if key in self._trans:
            return self._trans[key]
        s = self.state
        n_i = s.n_items
        ei, ed = s.p_item.astype(np.int64), s.p_first.astype(np.int64)
        order = np.lexsort((ei, ed, self.learner))
        el, ei, ed = self.learner[order], ei[order], ed[order]
        src, dst = [], []
        for step in range(1, next_n + 1):
            if len(el) <= step:
                break
            ok = (el[step:] == el[:-step]) & (ed[step:] - ed[:-step] <= window)
            src.append(ei[:-step][ok])
            dst.append(ei[step:][ok])
        opened = self.opened.astype(float)
        a = np.concatenate(src) if src else np.zeros(0, np.int64)
        b = np.concatenate(dst) if dst else np.zeros(0, np.int64)
        out: Any
        if n_i <= DENSE_TRANSITIONS:
            counts = np.bincount(a * n_i + b, minlength=n_i * n_i).astype(float)
            out = (counts.reshape(n_i, n_i) / (opened[:, None] + 5.0)).astype(np.float32)
        else:
            mat = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n_i, n_i)).tocsr()
            mat.sum_duplicates()
            out = sp.csr_matrix(sp.diags(1.0 / (opened + 5.0)) @ mat, dtype=np.float32)
        self._trans[key] = out
        return out


class RunView:
    """A run's state as the ranker's features read it at day `now` (>= its as-of day)."""

    def __init__(self, state: RunState, derived: RunDerived, now: int) -> None:
        self.run = state
        self.derived = derived
        self.t = max(int(now), state.as_of)
        self.I, self.L = state.n_items, state.n_learners
        self.mean_first = derived.mean_first
        self._shift = self.t - state.as_of

    def current_week(self) -> int:
        return self.t // 7

    def decayed(self, half_life: float) -> np.ndarray:
        row = self.run.half_lives.index(float(half_life))
        out: np.ndarray = self.run.decayed[row]
        if self._shift:
            out = out * np.power(0.5, self._shift / half_life)
        return out

    def _recent(self, mat: np.ndarray, days: int) -> np.ndarray:
        if days > ITEM_DAYS:
            raise ValueError(f"only the last {ITEM_DAYS} days of item counts are kept")
        lo = max(0, ITEM_DAYS - days + self._shift)
        out: np.ndarray = mat[:, lo:].sum(axis=1).astype(np.float64)
        return out

    def visits_window(self, days: int) -> np.ndarray:
        return self._recent(self.run.visits_recent, days)

    def clicks_window(self, days: int) -> np.ndarray:
        return self._recent(self.run.clicks_recent, days)

    def first_visits_window(self, days: int) -> np.ndarray:
        s = self.run
        m = s.p_first >= self.t - days
        return np.bincount(s.p_item[m].astype(np.int64), minlength=self.I).astype(np.float64)

    def opened_count(self) -> np.ndarray:
        return self.derived.opened

    def first_last_any(self) -> tuple[np.ndarray, np.ndarray]:
        return self.derived.first_any, self.derived.last_any

    def active_learners(self, days: int = 14) -> int:
        la = self.run.last_active
        return max(1, int(((la != NO_DAY) & (la >= self.t - days)).sum()))

    def transitions(self, next_n: int, window: int) -> Any:
        return self.derived.transitions(next_n, window)

    def learners(self, rows: np.ndarray) -> LearnerBlock:
        """Stored learners (rows of `learner_ids`) at this day."""
        s = self.run
        n = len(rows)
        first = np.full((n, self.I), np.inf, np.float32)
        last = np.full((n, self.I), -np.inf, np.float32)
        off = s.offsets.astype(np.int64)
        for k, r in enumerate(rows):
            sl = slice(off[r], off[r + 1])
            cols = s.p_item[sl].astype(np.int64)
            first[k, cols] = s.p_first[sl]
            last[k, cols] = s.p_last[sl]
        days = np.zeros((n, RECENT_SLOTS))
        if self._shift < RECENT_SLOTS:
            days[:, : RECENT_SLOTS - self._shift] = s.l_recent[rows, self._shift :]
        la = s.last_active[rows].astype(np.int64)
        since = np.where(la != NO_DAY, (self.t - 1) - la, 99)
        return LearnerBlock(first, last, days, since)

    def cold_block(self) -> LearnerBlock:
        """A learner with no history (cold start)."""
        return LearnerBlock(
            np.full((1, self.I), np.inf, np.float32),
            np.full((1, self.I), -np.inf, np.float32),
            np.zeros((1, RECENT_SLOTS)),
            np.array([99]),
        )

    def history_block(self, frame: pd.DataFrame) -> tuple[LearnerBlock, int]:
        """One learner from their own click rows (item_id, day, clicks): rows dated before
        now on items of the catalogue. Also returns how many rows were used."""
        index = pd.Index(self.run.item_ids)
        day = frame["day"].to_numpy(np.int64)
        col = index.get_indexer(frame["item_id"].to_numpy(np.int64))
        clicks = frame["clicks"].to_numpy(np.float64)
        ok = (col >= 0) & (day < self.t)
        col, day, clicks = col[ok], day[ok], clicks[ok]
        first = np.full((1, self.I), np.inf, np.float32)
        last = np.full((1, self.I), -np.inf, np.float32)
        np.minimum.at(first[0], col, day.astype(np.float32))
        np.maximum.at(last[0], col, day.astype(np.float32))
        slot = np.maximum(day, -DAY0) - (self.t - RECENT_SLOTS)
        rec = slot >= 0
        days = np.bincount(slot[rec], weights=clicks[rec], minlength=RECENT_SLOTS)[None, :]
        pos = clicks > 0
        since = np.array([(self.t - 1) - max(int(day[pos].max()), -DAY0) if pos.any() else 99])
        return LearnerBlock(first, last, days[:, :RECENT_SLOTS], since), int(ok.sum())
