"""Course runs as click timelines, cut at a day: the shared base of the time-aware peers
and of the `mlp_ranker` candidate (ported from the research recipe, REPORT.md #23).

Everything ranks the items of ONE course run for learners of that run at a cut day `t`
using only clicks dated before `t`. Item ids are not shared between runs, so whatever is
learned across runs (history presentations) goes through item-level features only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from eduplatform.ml.data import LearningData
from eduplatform.ml.ranking import hit_matrix_metrics

DAY0 = 30  # OULAD days start at about -25; array slot = day + DAY0
RECENT_SLOTS = 28  # learner features look at the clicks of the last 28 days only


@dataclass(frozen=True)
class Params:
    """Every setting of the tuned peers and of the ranker (grids are searched on inner
    validation; see docs/recommender-model.md)."""

    # --- ranker features
    half_lives: tuple[float, ...] = (1.0, 3.0, 7.0, 14.0, 28.0)
    window_days: tuple[int, ...] = (1, 2)
    trans_next: int = 5
    trans_window: int = 14
    trans_src_half_lives: tuple[float, ...] = (2.0, 7.0)
    src_days: int = 28
    # --- ranker training (replayed cut days)
    replay_min_day: int = 14
    inner_back: tuple[int, ...] = (7, 14, 21, 28, 35, 42, 49, 56)
    history_cut_step: int = 14
    max_learners_per_cut: int = 300
    train_list: int = 160
    hidden: tuple[int, ...] = (64, 32)
    epochs: int = 8  # upper bound; the count is chosen on inner validation
    # Inner epochs without a better NDCG before the choice stops; the schedule stays the
    # 8-epoch one, so the epochs run are unchanged and only the tail is skipped. 0 = never.
    # Never before `min_epochs`: the one-cycle peak learning rate can dip the curve in the
    # first epochs before it climbs higher (seen on the small synthetic runs).
    patience: int = 2
    min_epochs: int = 4
    # Without a run to validate on (every run finished): the count inner validation chose
    # on 3 of the 4 forward folds (docs/recommender-model.md).
    default_epochs: int = 5
    batch_learners: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    # --- peers (grids searched on inner validation)
    peer_half_lives: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 7.0, 14.0, 28.0)
    peer_trans_windows: tuple[int, ...] = (7, 14, 28)
    peer_trans_next: tuple[int, ...] = (1, 3, 10)
    peer_trans_src: tuple[float, ...] = (1.0, 3.0, 7.0)
    peer_calendar_weeks: tuple[tuple[int, int], ...] = ((0, 1), (0, 0), (-1, 1), (0, 2))


TYPES = [
    "<other>", "resource", "subpage", "url", "oucontent", "forumng", "quiz", "page",
    "oucollaborate", "questionnaire", "ouwiki", "ouelluminate", "externalquiz",
    "dataplus", "dualpane", "homepage", "glossary",
]  # fmt: skip
TYPE_CODE = {t: n for n, t in enumerate(TYPES)}


@dataclass
class Run:
    """One course run: catalogue, click rows sorted by (learner, item, day), calendar."""

    course_id: Any
    item_ids: np.ndarray  # (I,) int64 sorted
    item_type: np.ndarray  # (I,) code into TYPES (0 = other)
    week_from: np.ndarray  # (I,) float, NaN = unknown
    learner_ids: np.ndarray  # (L,) sorted
    lrow: np.ndarray
    irow: np.ndarray
    day: np.ndarray
    clicks: np.ndarray
    end_day: int  # labels of replayed cuts stop here (split day, or the run's length)
    due_days: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_learners(self) -> int:
        return len(self.learner_ids)


def runs_from_data(data: LearningData, before_day: int | None = None) -> list[Run]:
    """Runs of `data`; clicks dated >= `before_day` are dropped.

    The catalogue is the run's items plus any item clicked before the cut, as in
    `evaluate.split_runs`; learners are those with a click before the cut.
    """
    runs = []
    items_by = dict(tuple(data.items.groupby("course_id", sort=False)))
    due_by = dict(tuple(data.assessments.groupby("course_id", sort=False)))
    length = dict(zip(data.courses["course_id"], data.courses["length_days"], strict=False))
    for cid, rows in data.item_activity.groupby("course_id", sort=True):
        if before_day is not None:
            rows = rows[rows["day"] < before_day]
        if rows.empty:
            continue
        meta = items_by.get(cid)
        vle_ids = meta["item_id"].to_numpy(np.int64) if meta is not None else np.zeros(0, np.int64)
        ids = np.unique(np.concatenate([vle_ids, rows["item_id"].to_numpy(np.int64)]))
        types = np.zeros(len(ids), np.int64)
        weeks = np.full(len(ids), np.nan)
        if meta is not None:
            m = meta.drop_duplicates("item_id")
            pos = np.searchsorted(ids, m["item_id"].to_numpy(np.int64))
            types[pos] = [TYPE_CODE.get(str(t), 0) for t in m["activity_type"]]
            weeks[pos] = m["week_from"].to_numpy(float)
        rows = rows.sort_values(["learner_id", "item_id", "day"], kind="stable")
        lids = np.unique(rows["learner_id"].to_numpy())
        due = due_by.get(cid)
        end = before_day if before_day is not None else int(length.get(cid, 300))
        runs.append(
            Run(
                course_id=cid,
                item_ids=ids,
                item_type=types,
                week_from=weeks,
                learner_ids=lids,
                lrow=np.searchsorted(lids, rows["learner_id"].to_numpy()),
                irow=np.searchsorted(ids, rows["item_id"].to_numpy(np.int64)),
                day=rows["day"].to_numpy(np.int64),
                clicks=rows["clicks"].to_numpy(np.float64),
                end_day=int(end),
                due_days=(
                    np.sort(due["due_day"].dropna().to_numpy(float))
                    if due is not None
                    else np.zeros(0)
                ),
            )
        )
    return runs


def truncate(run: Run, day: int) -> Run:
    """The run as known before `day` (labels of its replayed cuts stop there)."""
    m = run.day < day
    return replace(
        run, lrow=run.lrow[m], irow=run.irow[m], day=run.day[m], clicks=run.clicks[m], end_day=day
    )


@dataclass
class LearnerBlock:
    """What the ranker's learner and pair features need of some learners at a cut day."""

    first: np.ndarray  # (n, I) float32 first day each item was opened, inf = never
    last: np.ndarray  # (n, I) float32 last day, -inf = never
    days: np.ndarray  # (n, RECENT_SLOTS) clicks on days t - 28 .. t - 1
    since: np.ndarray  # (n,) days since the last day with clicks (99 = none)

    @property
    def seen(self) -> np.ndarray:
        out: np.ndarray = np.isfinite(self.first)
        return out


def source_weights(t: int, last: np.ndarray, half_life: float, days: int) -> np.ndarray:
    """Recency weight of each item a learner opened: 0.5 ** (age of the last visit /
    half_life), 0 when older than `days` or never opened."""
    age = (t - 1) - last
    # Only the opened items within `days` get a weight: a learner has opened few of the
    # run's items, and the power over the whole catalogue was most of a request's cost.
    keep = age < days
    w = np.zeros(np.shape(last), np.float32)
    w[keep] = np.power(0.5, np.minimum(age[keep], 1e3) / half_life)
    return w


def trans_product(weights: np.ndarray, trans: Any) -> np.ndarray:
    """weights (n, I) @ transitions (I, I), dense or scipy sparse."""
    if isinstance(trans, np.ndarray):
        out: np.ndarray = weights @ trans
        return out
    # Only the source rows some learner weighs: the same products summed in the same
    # order (a zero weight adds an exact 0), without a pass over the whole matrix.
    src = np.flatnonzero(weights.any(axis=0))
    if not len(src):
        return np.zeros((weights.shape[0], trans.shape[1]), np.float32)
    return np.asarray((trans[src].T @ weights[:, src].T).T, dtype=np.float32)


@dataclass
class Case:
    """A run cut at day `t`: learners with clicks before t; labels = items first opened in
    [t, run.end_day) that were not opened before t."""

    run: Run
    t: int

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """(learner rows with >= 1 label, dense bool labels (n, I))."""
        r, t = self.run, self.t
        before = r.day < t
        seen = np.zeros((r.n_learners, r.n_items), bool)
        seen[r.lrow[before], r.irow[before]] = True
        after = (r.day >= t) & (r.day < r.end_day)
        lab = np.zeros_like(seen)
        lab[r.lrow[after], r.irow[after]] = True
        lab &= ~seen
        rows = np.flatnonzero(seen.any(axis=1) & lab.any(axis=1))
        return rows, lab[rows]


class Snapshot:
    """Everything known about a run at cut day `t` (clicks dated < t)."""

    def __init__(self, run: Run, t: int):
        self.run, self.t = run, t
        m = run.day < t
        lr, ir, d, c = run.lrow[m], run.irow[m], run.day[m], run.clicks[m]
        n_l, n_i = run.n_learners, run.n_items
        self.L, self.I = n_l, n_i
        ns = max(t + DAY0, 1)
        self.n_slots = ns
        slot = np.clip(d + DAY0, 0, ns - 1)
        self.visits = (
            np.bincount(ir * ns + slot, minlength=n_i * ns).reshape(n_i, ns).astype(np.float64)
        )
        self.clicks = np.bincount(ir * ns + slot, weights=c, minlength=n_i * ns).reshape(n_i, ns)
        key = lr * n_i + ir
        if len(key):
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            ends = np.r_[starts[1:] - 1, len(key) - 1]
        else:
            starts = ends = np.zeros(0, np.int64)
        self.first = np.full((n_l, n_i), np.inf, np.float32)
        self.last = np.full((n_l, n_i), -np.inf, np.float32)
        self.first.reshape(-1)[key[starts]] = d[starts]
        self.last.reshape(-1)[key[ends]] = d[ends]
        self.seen = np.isfinite(self.first)
        self.first_visits = (
            np.bincount(ir[starts] * ns + slot[starts], minlength=n_i * ns)
            .reshape(n_i, ns)
            .astype(float)
        )
        self.l_day = np.zeros((n_l, ns))
        np.add.at(self.l_day, (lr, slot), c)
        self.ev_l, self.ev_i, self.ev_d = lr[starts], ir[starts], d[starts]
        self._trans: dict[tuple[int, int], np.ndarray] = {}
        self._mean_first: np.ndarray | None = None

    @property
    def mean_first(self) -> np.ndarray:
        """(I,) the cohort's mean first-visit day of each item (NaN = never opened)."""
        if self._mean_first is None:
            opened = self.seen.sum(axis=0)
            total = np.where(self.seen, self.first.astype(np.float64), 0.0).sum(axis=0)
            self._mean_first = np.where(opened > 0, total / np.maximum(opened, 1), np.nan)
        return self._mean_first

    def age_weights(self, half_life: float) -> np.ndarray:
        age = (self.t - 1) - (np.arange(self.n_slots) - DAY0)
        w: np.ndarray = np.power(0.5, age / half_life)
        return w

    def decayed(self, half_life: float, unit: str = "visits") -> np.ndarray:
        mat = self.visits if unit == "visits" else self.clicks
        out: np.ndarray = mat @ self.age_weights(half_life)
        return out

    def window(self, mat: np.ndarray, days: int) -> np.ndarray:
        out: np.ndarray = mat[:, max(0, self.n_slots - days) :].sum(axis=1)
        return out

    def active_learners(self, days: int = 14) -> int:
        return max(1, int((self.l_day[:, max(0, self.n_slots - days) :] > 0).any(axis=1).sum()))

    def current_week(self) -> int:
        return self.t // 7

    def calendar_mask(self, lo: int, hi: int) -> np.ndarray:
        w = self.run.week_from
        cw = self.current_week()
        out: np.ndarray = np.isfinite(w) & (w >= cw + lo) & (w <= cw + hi)
        return out

    def transitions(self, next_n: int, window: int) -> np.ndarray:
        """P[j, i]: share of the learners who first opened j that first opened i among their
        next `next_n` first visits within `window` days (+5 smoothing)."""
        key = (next_n, window)
        if key not in self._trans:
            order = np.lexsort((self.ev_i, self.ev_d, self.ev_l))
            el, ei, ed = self.ev_l[order], self.ev_i[order], self.ev_d[order]
            n_i = self.I
            counts = np.zeros(n_i * n_i)
            for s in range(1, next_n + 1):
                if len(el) <= s:
                    break
                ok = (el[s:] == el[:-s]) & (ed[s:] - ed[:-s] <= window)
                counts += np.bincount(ei[:-s][ok] * n_i + ei[s:][ok], minlength=n_i * n_i)
            opened = np.bincount(ei, minlength=n_i).astype(float)
            self._trans[key] = (counts.reshape(n_i, n_i) / (opened[:, None] + 5.0)).astype(
                np.float32
            )
        return self._trans[key]

    def source_weights(self, rows: np.ndarray, half_life: float, days: int) -> np.ndarray:
        return source_weights(self.t, self.last[rows], half_life, days)

    # The cohort and learner reads of the ranker's features; `run_state.RunView` answers
    # the same from the compact serving state.

    def visits_window(self, days: int) -> np.ndarray:
        return self.window(self.visits, days)

    def first_visits_window(self, days: int) -> np.ndarray:
        return self.window(self.first_visits, days)

    def clicks_window(self, days: int) -> np.ndarray:
        return self.window(self.clicks, days)

    def opened_count(self) -> np.ndarray:
        out: np.ndarray = self.seen.sum(axis=0)
        return out

    def first_last_any(self) -> tuple[np.ndarray, np.ndarray]:
        """(I,) earliest first and latest last visit day by anyone (NaN = never opened)."""
        opened = self.seen.any(axis=0)
        first = np.where(opened, self.first.min(axis=0, initial=np.inf), np.nan)
        last = np.where(opened, self.last.max(axis=0, initial=-np.inf), np.nan)
        return first.astype(np.float32), last.astype(np.float32)

    def learners(self, rows: np.ndarray) -> LearnerBlock:
        ns = self.n_slots
        days = self.l_day[rows]
        active = days > 0
        any_active = active.any(axis=1)
        last_active = np.where(any_active, ns - 1 - np.argmax(active[:, ::-1], axis=1), -1)
        since = np.where(last_active >= 0, ns - 1 - last_active, 99)
        recent = days[:, -RECENT_SLOTS:]
        if recent.shape[1] < RECENT_SLOTS:
            recent = np.pad(recent, ((0, 0), (RECENT_SLOTS - recent.shape[1], 0)))
        return LearnerBlock(self.first[rows], self.last[rows], recent, since)

    def trans_scores(
        self, rows: np.ndarray, next_n: int, window: int, half_life: float, days: int
    ) -> np.ndarray:
        out: np.ndarray = self.source_weights(rows, half_life, days) @ self.transitions(
            next_n, window
        )
        return out


def top_k(scores: np.ndarray, visited: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best unvisited items per row (ties: lower index first)."""
    masked = np.where(visited, -np.inf, scores.astype(np.float64))
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    ok = np.take_along_axis(masked, order, axis=1) > -np.inf
    out: np.ndarray = np.where(ok, order, -1)
    return out


def ndcg_of_scores(
    scores: np.ndarray, seen: np.ndarray, labels: np.ndarray, k: int = 10
) -> np.ndarray:
    """NDCG@k per learner for dense scores; visited items are never recommended."""
    top = top_k(scores, seen, k)
    valid = top >= 0
    hits = np.take_along_axis(labels, np.where(valid, top, 0), axis=1) & valid
    return hit_matrix_metrics(hits, labels.sum(axis=1), k)[1]


def inner_cases(train_part: Sequence[Run], history: Sequence[Run], split: int) -> list[Case]:
    """Inner validation of the peers' settings: the runs under test cut at split-14 and
    split-28 (labels up to the split) and the history runs at the split day (labels to
    their end). Never the test days."""
    cases = [Case(r, split - b) for r in train_part for b in (14, 28) if split - b >= 7]
    cases += [Case(r, split) for r in history if r.end_day > split]
    return cases
