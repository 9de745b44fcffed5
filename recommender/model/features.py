"""Features of one course run at a day `t`, computed only from clicks dated before `t`.

The same functions build the training examples (at several past days) and the
serving inputs (at the day asked), so there is one code path. Three groups:

* item features (cohort signal, shared by every learner of the run): how many
  learners opened the item in the last 1/3/7/14/28 days and how many opened it
  for the first time, as counts and as shares of the run's active learners and as
  within-run percentile ranks; when the item was first used relative to `t`; the
  cohort's average first-visit day relative to `t`; `week_from` relative to the
  current week; the activity type. None of them name an item, so they transfer
  across course runs (item ids do not).
* learner features: history size, clicks, days since the last visit, recent
  activity.
* learner x item features: co-visit (cosine over who opened what, top-M
  neighbours), "usually follows" (share of the learners who opened j that opened
  the item within `follow_window` days after j, from the items the learner
  started recently), the learner's share of clicks on the item's activity type,
  and the item's position on the cohort timeline relative to the learner's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recommender.model.interactions import PairTable, decay

WINDOWS = (1, 3, 7, 14, 28)
FIRST_WINDOWS = (3, 7, 14, 28)
TIME_SCALE = 28.0  # days -> feature units
RECENT_HALF_LIFE = 7.0  # of a learner's "current position" (recently started items)
RECENT_HORIZON = 28  # items first opened longer ago do not define the position


def n_item_features(n_types: int) -> int:
    return 2 * len(WINDOWS) + 2 * len(FIRST_WINDOWS) + 2 + 1 + 2 + 1 + 2 + 3 + n_types


N_LEARNER_FEATURES = 7
N_PAIR_FEATURES = 6


@dataclass
class ItemTimeline:
    """Per-item daily counts of one run as cumulative sums, so any window is two lookups.

    Column c of a cumulative array sums the days `< day0 + c`. Counts: `rows` =
    learner-days with a visit, `first` = learners visiting for the first time,
    `clicks`, `first_daysum` = sum of those first-visit days (for the cohort's mean
    first-visit day); `learners` (n_days + 1,) = learners whose first visit of any
    item is before the day; `first_active` = the item's first visit day (inf: none).
    """

    day0: int
    cum_rows: np.ndarray
    cum_first: np.ndarray
    cum_clicks: np.ndarray
    cum_first_daysum: np.ndarray
    cum_learners: np.ndarray
    first_active: np.ndarray

    @property
    def n_days(self) -> int:
        return int(self.cum_rows.shape[1]) - 1

    @property
    def end_day(self) -> int:
        """First day not covered (the run's as-of day)."""
        return self.day0 + self.n_days

    @classmethod
    def from_rows(
        cls,
        item: np.ndarray,
        day: np.ndarray,
        clicks: np.ndarray,
        pairs: PairTable,
        n_items: int,
        end_day: int,
        horizon_days: int | None = None,
    ) -> ItemTimeline:
        """Build from raw rows (one per learner x item x day) and the pair table at `end_day`.

        `horizon_days` keeps only the last days in the daily arrays (older days
        are folded into column 0) -- enough for serving, which never looks back
        more than the longest window.
        """
        keep = day < end_day
        item, day, clicks = item[keep], day[keep].astype(np.int64), clicks[keep]
        lo = int(min(day.min() if len(day) else end_day, end_day - 1))
        if horizon_days is not None:
            lo = max(lo, end_day - horizon_days)
        n_days = end_day - lo
        col = np.clip(day - lo, 0, None) + 1

        def cumulative(items: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
            flat = np.bincount(
                items * (n_days + 1) + cols, weights=weights, minlength=n_items * (n_days + 1)
            )
            return np.cumsum(flat.reshape(n_items, n_days + 1), axis=1)

        ones = np.ones(len(item))
        fday = pairs.first_day.astype(np.int64)
        fcol = np.clip(fday - lo, 0, None) + 1
        learner_first = np.full(int(pairs.learner.max()) + 1 if len(pairs) else 0, np.inf)
        np.minimum.at(learner_first, pairs.learner, pairs.first_day)
        learner_first = learner_first[np.isfinite(learner_first)]
        lcol = np.clip(learner_first.astype(np.int64) - lo, 0, None) + 1
        cum_learners = np.cumsum(np.bincount(lcol, minlength=n_days + 1)[: n_days + 1])
        first_active = np.full(n_items, np.inf)
        np.minimum.at(first_active, pairs.item, pairs.first_day)
        return cls(
            day0=lo,
            cum_rows=cumulative(item, col, ones).astype(np.float32),
            cum_first=cumulative(pairs.item, fcol, np.ones(len(pairs))).astype(np.float32),
            cum_clicks=cumulative(item, col, clicks.astype(np.float64)).astype(np.float32),
            cum_first_daysum=cumulative(pairs.item, fcol, pairs.first_day).astype(np.float64),
            cum_learners=cum_learners.astype(np.float64),
            first_active=first_active,
        )

    def _col(self, t: int) -> int:
        return int(np.clip(t - self.day0, 0, self.n_days))

    def window(self, cum: np.ndarray, t: int, w: int | None) -> np.ndarray:
        hi = cum[:, self._col(t)]
        if w is None:
            return hi.astype(np.float64)
        counts: np.ndarray = (hi - cum[:, self._col(t - w)]).astype(np.float64)
        return counts

    def n_learners(self, t: int) -> float:
        return float(max(self.cum_learners[self._col(t)], 1.0))

    def center(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Cohort mean first-visit day minus t (in TIME_SCALE units) and whether it is known."""
        n = self.window(self.cum_first, t, None)
        s = self.cum_first_daysum[:, self._col(t)]
        known = n > 0
        out = np.zeros(len(n))
        out[known] = (s[known] / n[known] - t) / TIME_SCALE
        return out, known


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """Within-array rank in [0, 1] (ties share their average rank); 0.5 for one value."""
    n = len(values)
    if n <= 1:
        return np.full(n, 0.5)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n)
    sorted_vals = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], n]
    avg = (starts + ends - 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks / (n - 1)


def item_features(
    timeline: ItemTimeline,
    t: int,
    item_type: np.ndarray,
    week_from: np.ndarray,
    n_types: int,
) -> np.ndarray:
    """(n_items, n_item_features) float32 at day t (clicks before t only)."""
    n_learn = timeline.n_learners(t)
    cols: list[np.ndarray] = []
    rows_w = {w: timeline.window(timeline.cum_rows, t, w) for w in WINDOWS}
    for w in WINDOWS:
        cols.append(np.log1p(rows_w[w]))
        cols.append(rows_w[w] / n_learn)
    first_w = {w: timeline.window(timeline.cum_first, t, w) for w in FIRST_WINDOWS}
    for w in FIRST_WINDOWS:
        cols.append(np.log1p(first_w[w]))
        cols.append(first_w[w] / n_learn)
    total = timeline.window(timeline.cum_first, t, None)
    cols.append(np.log1p(total))
    cols.append(total / n_learn)
    clicks7 = timeline.window(timeline.cum_clicks, t, 7)
    cols.append(np.log1p(clicks7 / np.maximum(rows_w[7], 1.0)))
    seen = timeline.first_active < t
    age = np.where(
        seen, np.clip((t - np.where(seen, timeline.first_active, t)) / TIME_SCALE, 0, 4), 0
    )
    cols.append(age)
    cols.append((~seen).astype(np.float64))
    center, _ = timeline.center(t)
    cols.append(np.clip(center, -4, 4))
    has_week = ~np.isnan(week_from)
    rel_week = np.where(has_week, (np.nan_to_num(week_from) * 7.0 - t) / TIME_SCALE, 0.0)
    cols.append(np.clip(rel_week, -4, 4))
    cols.append((~has_week).astype(np.float64))
    cols.append(percentile_rank(rows_w[7]))
    cols.append(percentile_rank(rows_w[1]))
    cols.append(percentile_rank(first_w[7]))
    onehot = np.zeros((len(item_type), n_types))
    onehot[np.arange(len(item_type)), item_type] = 1.0
    return np.concatenate([np.stack(cols, axis=1), onehot], axis=1).astype(np.float32)


# ---------------------------------------------------------------- item-item signals


@dataclass
class Neighbours:
    """Top-M neighbours per item: idx (n_items, M) int64, val (n_items, M) float32 (0 = none)."""

    idx: np.ndarray
    val: np.ndarray

    @classmethod
    def empty(cls, n_items: int, m: int) -> Neighbours:
        return cls(np.zeros((n_items, m), dtype=np.int64), np.zeros((n_items, m), dtype=np.float32))

    def append_items(self, n_new: int) -> Neighbours:
        m = self.idx.shape[1]
        return Neighbours(
            np.concatenate([self.idx, np.zeros((n_new, m), dtype=np.int64)]),
            np.concatenate([self.val, np.zeros((n_new, m), dtype=np.float32)]),
        )


def top_m(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_items: int, m: int) -> Neighbours:
    """Keep the m largest values per row of a sparse (rows, cols, vals) matrix.

    Ties keep the input order (callers pass entries sorted by (row, col): lower col first).
    """
    out = Neighbours.empty(n_items, m)
    keep = (vals > 0) & (rows != cols)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    if len(rows) == 0:
        return out
    # one stable sort on "row, then larger value first"; equal values keep the input
    # order, so the caller's column order breaks ties
    scaled = vals / vals.max()
    order = np.argsort(rows * 4.0 + (1.0 - scaled), kind="stable")
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    sel = rank < m
    out.idx[rows[sel], rank[sel]] = cols[sel]
    out.val[rows[sel], rank[sel]] = vals[sel]
    return out


def covisit_neighbours(
    pairs: PairTable, n_learners: int, n_items: int, t: int, m: int
) -> Neighbours:
    """Cosine similarity of items over the learners who opened them before t."""
    import scipy.sparse as sp

    keep = pairs.first_day < t
    if not keep.any():
        return Neighbours.empty(n_items, m)
    u, i = pairs.learner[keep].astype(np.int64), pairs.item[keep].astype(np.int64)
    b = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(n_learners, n_items))
    co = (b.T @ b).tocsr()
    co.sort_indices()
    co = co.tocoo()
    norms = np.sqrt(np.bincount(i, minlength=n_items).astype(np.float64))
    vals = co.data / (norms[co.row] * norms[co.col])
    return top_m(co.row.astype(np.int64), co.col.astype(np.int64), vals, n_items, m)


@dataclass
class FollowPairs:
    """(j, i, day of i) for every learner who first opened i within `window` days after j,
    sorted by `key` = j * n_items + i."""

    src: np.ndarray
    dst: np.ndarray
    dst_day: np.ndarray
    key: np.ndarray


def follow_pairs(pairs: PairTable, window: int, n_items: int) -> FollowPairs:
    """Ordered (j -> i) first-visit pairs of one learner with 0 <= day_i - day_j <= window."""
    order = np.lexsort((pairs.first_day, pairs.learner))
    lrn, itm, fday = pairs.learner[order], pairs.item[order], pairs.first_day[order]
    src, dst, dday = [], [], []
    n = len(lrn)
    # p -> p + k is a pair only if p -> p + k - 1 was (same learner, days sorted): keep
    # shrinking the set of starting points instead of rescanning every row for every k
    active = np.arange(n, dtype=np.int64)
    k = 1
    while len(active):
        active = active[active + k < n]
        ok = (lrn[active + k] == lrn[active]) & (fday[active + k] - fday[active] <= window)
        active = active[ok]
        if not len(active):
            break
        a = active
        src.append(itm[a])
        dst.append(itm[a + k])
        dday.append(fday[a + k])
        tie = fday[a + k] == fday[a]  # same day: order unknown, count both ways
        src.append(itm[a + k][tie])
        dst.append(itm[a][tie])
        dday.append(fday[a][tie])
        k += 1
    if not src:
        z = np.zeros(0, dtype=np.int64)
        return FollowPairs(z, z, np.zeros(0), z)
    s = np.concatenate(src).astype(np.int64)
    d = np.concatenate(dst).astype(np.int64)
    key = s * n_items + d
    o = np.argsort(key, kind="stable")
    return FollowPairs(s[o], d[o], np.concatenate(dday).astype(np.float64)[o], key[o])


def follow_neighbours(
    fp: FollowPairs, pairs: PairTable, n_items: int, t: int, m: int
) -> Neighbours:
    """P(opens i within the window after j | opened j), counted on first visits before t."""
    keep = fp.dst_day < t
    if not keep.any():
        return Neighbours.empty(n_items, m)
    key = fp.key[keep]  # sorted: count the runs
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    uniq = key[starts]
    src, dst = uniq // n_items, uniq % n_items
    visitors = np.bincount(pairs.item[pairs.first_day < t], minlength=n_items).astype(np.float64)
    vals = counts / np.maximum(visitors[src], 1.0)
    return top_m(src, dst, vals, n_items, m)


# ---------------------------------------------------------------- learner batches


@dataclass
class LearnerBatch:
    """Dense per-learner inputs for a batch of learners of one run at day t."""

    weight: torch.Tensor  # (B, n_items) decayed click weight, 0 = not visited
    recent: torch.Tensor  # (B, n_items) recency of first visit (position on the timeline)
    visited: torch.Tensor  # (B, n_items) bool
    learner_x: torch.Tensor  # (B, N_LEARNER_FEATURES)


def learner_batch(
    pairs: PairTable, learners: np.ndarray, n_items: int, t: int, offsets: np.ndarray | None = None
) -> LearnerBatch:
    """Inputs for `learners` (row indices) from a pair table sorted by learner.

    `offsets` (n_learners + 1) are the CSR row pointers of `pairs`; computed when None.
    """
    if offsets is None:
        offsets = np.searchsorted(pairs.learner, np.arange(int(learners.max(initial=-1)) + 2))
    b = len(learners)
    starts, ends = offsets[learners], offsets[learners + 1]
    lengths = ends - starts
    sel = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    rows = np.repeat(np.arange(b), lengths)
    items = pairs.item[sel]
    w = pairs.weight[sel]
    first = pairs.first_day[sel]
    last = pairs.last_day[sel]
    clicks = pairs.clicks[sel]
    age = t - first
    rec = np.where(age <= RECENT_HORIZON, decay(age, RECENT_HALF_LIFE), 0.0)

    weight = np.zeros((b, n_items), dtype=np.float32)
    weight[rows, items] = w
    recent = np.zeros((b, n_items), dtype=np.float32)
    recent[rows, items] = rec
    visited = np.zeros((b, n_items), dtype=bool)
    visited[rows, items] = True

    n = lengths.astype(np.float64)
    tot_clicks = np.bincount(rows, weights=clicks, minlength=b)
    last_day = np.full(b, -np.inf)
    np.maximum.at(last_day, rows, last)
    since = np.where(n > 0, np.clip((t - last_day) / TIME_SCALE, 0, 4), 4.0)
    last7 = np.bincount(rows, weights=(last >= t - 7).astype(np.float64), minlength=b)
    new14 = np.bincount(rows, weights=(first >= t - 14).astype(np.float64), minlength=b)
    lx = np.stack(
        [
            (n == 0).astype(np.float64),
            np.log1p(n),
            np.log1p(tot_clicks),
            since,
            np.log1p(last7),
            np.log1p(new14),
            n / max(n_items, 1),
        ],
        axis=1,
    ).astype(np.float32)
    return LearnerBatch(
        weight=torch.from_numpy(weight),
        recent=torch.from_numpy(recent),
        visited=torch.from_numpy(visited),
        learner_x=torch.from_numpy(lx),
    )


DENSE_SPREAD_MAX_ITEMS = 4096  # keep a dense copy of the neighbour matrices up to this size
DENSE_SPREAD_MIN_BATCH = 16  # a matmul pays off for batches; one learner scatters


def dense_neighbours(nb_idx: torch.Tensor, nb_val: torch.Tensor) -> torch.Tensor:
    """The top-M matrix as a dense (n_items, n_items) tensor."""
    n = nb_idx.shape[0]
    dense = torch.zeros(n, n, dtype=nb_val.dtype)
    dense.scatter_add_(1, nb_idx, nb_val)
    return dense


def spread(
    x: torch.Tensor,
    nb_idx: torch.Tensor,
    nb_val: torch.Tensor,
    dense: torch.Tensor | None = None,
) -> torch.Tensor:
    """out[b, i] = sum_j x[b, j] * S[j, i] for the sparse top-M matrix S = (nb_idx, nb_val).

    With `dense` (S as a dense matrix, for small catalogues) this is one matmul;
    otherwise a scatter over the learners' visited items (large catalogues).
    """
    if dense is not None and x.shape[0] >= DENSE_SPREAD_MIN_BATCH:
        return x @ dense
    b, n = x.shape
    out = torch.zeros(b, n, dtype=x.dtype)
    rows, src = torch.nonzero(x, as_tuple=True)
    if len(rows) == 0:
        return out
    contrib = (x[rows, src].unsqueeze(1) * nb_val[src]).reshape(-1)
    dst = (rows.unsqueeze(1) * n + nb_idx[src]).reshape(-1)
    out.view(-1).index_add_(0, dst, contrib)
    return out


@dataclass
class ItemGraph:
    """Co-visit and follow neighbours of a run as tensors (dense too when the run is small)."""

    covisit: tuple[torch.Tensor, torch.Tensor]
    follows: tuple[torch.Tensor, torch.Tensor]
    covisit_dense: torch.Tensor | None = None
    follows_dense: torch.Tensor | None = None

    @classmethod
    def build(cls, covisit: Neighbours, follows: Neighbours) -> ItemGraph:
        cov = (torch.from_numpy(covisit.idx.astype(np.int64)), torch.from_numpy(covisit.val))
        fol = (torch.from_numpy(follows.idx.astype(np.int64)), torch.from_numpy(follows.val))
        small = covisit.idx.shape[0] <= DENSE_SPREAD_MAX_ITEMS
        return cls(
            cov,
            fol,
            dense_neighbours(*cov) if small else None,
            dense_neighbours(*fol) if small else None,
        )


def pair_features(
    batch: LearnerBatch,
    graph: ItemGraph,
    item_type: torch.Tensor,
    n_types: int,
    center: torch.Tensor,
    center_known: torch.Tensor,
) -> torch.Tensor:
    """(B, n_items, N_PAIR_FEATURES) learner x item features."""
    w, r = batch.weight, batch.recent
    wsum = w.sum(1, keepdim=True).clamp_min(1e-6)
    rsum = r.sum(1, keepdim=True)
    co = spread(w, *graph.covisit, graph.covisit_dense) / wsum
    fol = spread(r, *graph.follows, graph.follows_dense) / rsum.clamp_min(1e-6)
    type_share = torch.zeros(w.shape[0], n_types, dtype=w.dtype)
    type_share.index_add_(1, item_type, w)
    type_share = type_share / wsum  # (B, n_types)
    type_aff = type_share[:, item_type]
    known_r = r * center_known.to(r.dtype).unsqueeze(0)
    ksum = known_r.sum(1, keepdim=True)
    pos = (known_r @ center.unsqueeze(1)) / ksum.clamp_min(1e-6)  # (B, 1)
    has = (ksum > 0) & center_known.unsqueeze(0)
    diff = torch.where(has, center.unsqueeze(0) - pos, torch.zeros(()))
    return torch.stack(
        [co, fol, type_aff, diff.clamp(-4, 4), diff.abs().clamp(0, 4), has.to(w.dtype)], dim=2
    )
