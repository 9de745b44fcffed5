"""`mlp_ranker`: the research recipe (REPORT.md, #23) as an evaluated candidate.

Candidates = every item of the run the learner has not opened. 65 features per
(learner, item) pair, without item identity (so history presentations transfer):
46 item (cohort) features, 8 learner features, 9 pair features. An MLP 65->64->32->1
trained with a listwise softmax loss on replayed cut days (history runs too); the epoch
count is chosen at an inner cut (split - 14), then the net is refitted on every case.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from recommender.model.timeline import (
    TYPES,
    Case,
    LearnerBlock,
    Params,
    Run,
    Snapshot,
    ndcg_of_scores,
    source_weights,
    trans_product,
    truncate,
)


def _percentile(v: np.ndarray) -> np.ndarray:
    if len(v) <= 1:
        return np.zeros(len(v))
    out: np.ndarray = pd.Series(v).rank(pct=True).to_numpy()
    return out


def item_features(snap: Any, p: Params) -> np.ndarray:
    """(I, 46) cohort-level features of each item at the cut day.

    `snap` is a `timeline.Snapshot` (evaluation, training) or a `run_state.RunView`
    (serving): both answer the same reads."""
    t, run = snap.t, snap.run
    act = snap.active_learners(14)
    cols: list[np.ndarray] = []
    for h in p.half_lives:
        pop = snap.decayed(h)
        cols += [np.log1p(100 * pop / (act * h)), _percentile(pop)]
    for days in p.window_days:
        cols.append(np.log1p(100 * snap.visits_window(days) / (act * days)))
    for days in (3, 7, 14):
        fv = snap.first_visits_window(days)
        cols += [np.log1p(100 * fv / act), _percentile(fv)]
    ever = snap.opened_count()
    cols.append(ever / max(1, snap.L))
    cpv = snap.clicks_window(7) / np.maximum(snap.visits_window(7), 1)
    cols.append(np.log1p(cpv))
    has = ever > 0
    first_any, last_any = snap.first_last_any()
    with np.errstate(invalid="ignore"):
        cols.append(np.where(has, np.clip((t - first_any) / 60, 0, 3), 0))
        cols.append(np.where(has, np.clip((snap.mean_first - t) / 60, -3, 1), 0))
        cols.append(np.where(has, np.clip((t - last_any) / 30, 0, 3), 3))
    cols.append((~has).astype(float))
    w = run.week_from
    known = np.isfinite(w)
    cw = snap.current_week()
    cols += [np.clip(np.where(known, (w - cw) / 4, 0), -3, 3), known.astype(float)]
    cols += [
        (known & (w >= cw + a) & (w <= cw + b)).astype(float)
        for a, b in ((-1, -1), (0, 0), (1, 1), (2, 3))
    ]
    future_due = run.due_days[run.due_days >= t]
    to_due = (future_due[0] - t) / 30 if len(future_due) else 3.0
    cols.append(np.full(snap.I, min(float(to_due), 3.0)))
    cols.append(np.full(snap.I, t / 250))
    onehot = np.zeros((snap.I, len(TYPES)))
    onehot[np.arange(snap.I), run.item_type] = 1.0
    return np.column_stack([*cols, onehot]).astype(np.float32)


def learner_features(snap: Any, lb: LearnerBlock) -> tuple[np.ndarray, np.ndarray]:
    """(n, 8) learner features and each learner's pace (the cohort's mean first-visit day
    of the items they started in the last 14 days)."""
    t = snap.t
    days = lb.days
    active = days > 0
    seen = lb.seen
    recent_new = seen & (lb.first >= t - 14)
    mean_first = np.nan_to_num(snap.mean_first, nan=t)
    pos = (recent_new * mean_first).sum(1) / np.maximum(recent_new.sum(1), 1)
    pos = np.where(recent_new.any(1), pos, t)
    feats = np.column_stack(
        [
            np.log1p(lb.since),
            np.log1p(seen.sum(1)),
            seen.mean(1),
            np.log1p(days[:, -7:].sum(1)),
            active[:, -14:].mean(1),
            active[:, -28:].mean(1),
            np.log1p(recent_new.sum(1)),
            np.clip((pos - t) / 30, -3, 3),
        ]
    ).astype(np.float32)
    return feats, pos


def pair_parts(snap: Snapshot, rows: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """(learner features (n, 8), pair features (n, I, 9)) of the learners `rows`."""
    return block_parts(snap, snap.learners(rows), p)


def block_parts(snap: Any, lb: LearnerBlock, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """`pair_parts` of a block of learners (stored rows or a request's own history)."""
    n = len(lb.first)
    lf, pos = learner_features(snap, lb)
    pair: list[np.ndarray] = []
    trans = snap.transitions(p.trans_next, p.trans_window)
    for h in p.trans_src_half_lives:
        tr = trans_product(source_weights(snap.t, lb.last, h, p.src_days), trans)
        mx = tr.max(axis=1, keepdims=True, initial=0.0)
        pair += [np.log1p(10 * tr), tr / np.maximum(mx, 1e-6)]
    sw = source_weights(snap.t, lb.last, 14.0, 10_000)
    types = snap.run.item_type
    tw = np.zeros((n, len(TYPES)), np.float32)
    for ty in np.unique(types):
        tw[:, ty] = sw[:, types == ty].sum(1)
    tw /= np.maximum(tw.sum(1, keepdims=True), 1e-6)
    pair.append(tw[:, types])
    mean_first = snap.mean_first
    has = np.isfinite(mean_first)
    align = np.where(has[None, :], (np.nan_to_num(mean_first)[None, :] - pos[:, None]) / 30, 0)
    pair += [np.clip(align, -3, 3), np.clip(np.abs(align), 0, 3)]
    w = snap.run.week_from
    wk = np.where(np.isfinite(w)[None, :], (w[None, :] * 7 - pos[:, None]) / 30, 0)
    pair.append(np.clip(wk, -3, 3))
    return lf, np.stack(pair, axis=2).astype(np.float32)


def pair_features(snap: Snapshot, rows: np.ndarray, p: Params, item_x: np.ndarray) -> np.ndarray:
    """(n, I, 65) = [item | learner | pair] features (the training layout)."""
    n, n_i = len(rows), snap.I
    lf, pair_x = pair_parts(snap, rows, p)
    return np.concatenate(
        [
            np.broadcast_to(item_x[None], (n, n_i, item_x.shape[1])),
            np.broadcast_to(lf[:, None, :], (n, n_i, lf.shape[1])),
            pair_x,
        ],
        axis=2,
    )


class RankerNet(nn.Module):
    """Standardisation buffers + Linear(65,64)-ReLU-Linear(64,32)-ReLU-Linear(32,1)."""

    def __init__(self, n_features: int, hidden: Sequence[int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net((x - self.mean) / self.std).squeeze(-1)
        return out

    def _first(self) -> nn.Linear:
        first = self.net[0]
        assert isinstance(first, nn.Linear)
        return first

    def item_part(self, item_x: torch.Tensor) -> torch.Tensor:
        """First-layer pre-activation of the item block (+ bias), (I, H): once per run-day."""
        fi = item_x.shape[-1]
        first = self._first()
        x = (item_x - self.mean[:fi]) / self.std[:fi]
        return x @ first.weight[:, :fi].T + first.bias

    def forward_parts(
        self, item_h: torch.Tensor, learner_x: torch.Tensor, pair_x: torch.Tensor
    ) -> torch.Tensor:
        """`forward` on the concatenated features without building them: the first layer
        split into item / learner / pair column blocks."""
        first = self._first()
        fl, fp = learner_x.shape[-1], pair_x.shape[-1]
        fi = first.in_features - fl - fp
        m, sd = self.mean, self.std
        lw, pw = first.weight[:, fi : fi + fl], first.weight[:, fi + fl :]
        lh = ((learner_x - m[fi : fi + fl]) / sd[fi : fi + fl]) @ lw.T
        ph = ((pair_x - m[fi + fl :]) / sd[fi + fl :]) @ pw.T
        h = torch.relu(ph + lh[:, None, :] + item_h[None])
        out: torch.Tensor = self.net[2:](h).squeeze(-1)
        return out


@dataclass
class _ValCase:
    """A validation case's inputs, kept across epochs."""

    item_x: torch.Tensor
    parts: list[tuple[torch.Tensor, torch.Tensor]]  # (learner, pair) features per chunk
    seen: np.ndarray
    labels: np.ndarray


@dataclass
class Batch:
    x: torch.Tensor  # (n, C, F)
    y: torch.Tensor  # (n, C) float 0/1
    seen: torch.Tensor  # (n, C) bool (padding slots too)


def _sample_index(
    lab: np.ndarray, seen: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per learner: up to 30 % targets plus random unvisited non-targets, as item columns
    (n, size) and a padding mask (padding counts as seen)."""
    n = len(lab)
    idx = np.zeros((n, size), np.int64)
    pad = np.ones((n, size), bool)
    max_pos = int(size * 0.3)
    for u in range(n):
        pos = np.flatnonzero(lab[u])
        neg = np.flatnonzero(~lab[u] & ~seen[u])
        if len(pos) > max_pos:
            pos = rng.choice(pos, max_pos, replace=False)
        neg = rng.choice(neg, min(len(neg), size - len(pos)), replace=False)
        sel = np.concatenate([pos, neg])
        idx[u, : len(sel)] = sel
        pad[u, : len(sel)] = False
    return idx, pad


def case_examples(case: Case, p: Params, rng: np.random.Generator) -> Batch | None:
    rows, lab = case.labels()
    if len(rows) == 0:
        return None
    if len(rows) > p.max_learners_per_cut:
        pick = np.sort(rng.choice(len(rows), p.max_learners_per_cut, replace=False))
        rows, lab = rows[pick], lab[pick]
    snap = Snapshot(case.run, case.t)
    seen = snap.seen[rows]
    item_x = item_features(snap, p)
    if p.train_list and p.train_list < snap.I:
        # Sample the lists first and gather only their columns: the same rows as
        # gathering them from `pair_features`, without building (n, I, 65) first.
        lf, px = pair_parts(snap, rows, p)
        idx, pad = _sample_index(lab, seen, p.train_list, rng)
        r = np.arange(len(rows))[:, None]
        lab, seen = lab[r, idx] & ~pad, pad
        n, c = idx.shape
        x = np.concatenate(
            [item_x[idx], np.broadcast_to(lf[:, None, :], (n, c, lf.shape[1])), px[r, idx]],
            axis=2,
        )
    else:
        x = pair_features(snap, rows, p, item_x)
    return Batch(
        torch.from_numpy(np.ascontiguousarray(x)),
        torch.from_numpy(lab.astype(np.float32)),
        torch.from_numpy(np.ascontiguousarray(seen)),
    )


def listwise_loss(scores: torch.Tensor, y: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy over each learner's unvisited candidates, averaged over targets."""
    s = scores.masked_fill(seen, -1e9)
    logp = s - torch.logsumexp(s, dim=1, keepdim=True)
    return -((logp * y).sum(1) / y.sum(1).clamp(min=1)).mean()


class MLPRanker:
    """The research recipe: candidate features -> MLP, listwise loss on replayed cuts."""

    name = "mlp_ranker"

    def __init__(self, params: Params | None = None):
        self.p = params or Params()
        self.net: RankerNet | None = None
        self.chosen: dict[str, Any] = {}
        self.stats: dict[str, Any] = {}
        self._item_cache: tuple[Snapshot, torch.Tensor] | None = None

    def training_cases(self, history: Sequence[Run], train_part: Sequence[Run]) -> list[Case]:
        """History runs every `history_cut_step` days (labels to their end); runs under
        test at their end day (the split, or their as-of day) - inner_back (labels up to it)."""
        p = self.p
        cases = [
            Case(r, t)
            for r in history
            for t in range(p.replay_min_day, r.end_day - 14, p.history_cut_step)
        ]
        cases += [
            Case(r, r.end_day - b)
            for r in train_part
            for b in p.inner_back
            if r.end_day - b >= p.replay_min_day
        ]
        return cases

    def _train(
        self,
        batches: list[Batch],
        epochs: int,
        val: Sequence[Case] | None = None,
        init: RankerNet | None = None,
    ) -> list[float]:
        """Long because it is the one training loop (standardisation, optimiser, schedule,
        epochs with an optional validation curve) and reads best in one piece."""
        p = self.p
        torch.manual_seed(p.seed)
        rng = np.random.default_rng(p.seed)
        n_feat = batches[0].x.shape[2]
        net = RankerNet(n_feat, p.hidden)
        if init is not None:  # warm start: the champion's weights and standardisation
            net.load_state_dict(init.state_dict())
        else:
            flat = torch.cat([b.x.reshape(-1, n_feat)[::7] for b in batches])
            net.mean.copy_(flat.mean(0))
            net.std.copy_(flat.std(0).clamp(min=1e-3))
        opt = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        chunks = [
            (bi, s) for bi, b in enumerate(batches) for s in range(0, len(b.y), p.batch_learners)
        ]
        # At least 20 steps in the schedule: a shorter cycle has a warm-up phase
        # of zero steps, which OneCycleLR divides by (tiny runs in tests)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=p.lr, total_steps=max(epochs * len(chunks), 20), pct_start=0.1
        )
        curve: list[float] = []
        prepared = None if val is None else self._prepare_val(val)
        for _ in range(epochs):
            net.train()
            for ci in rng.permutation(len(chunks)):
                bi, s = chunks[ci]
                b = batches[bi]
                sl = slice(s, s + p.batch_learners)
                loss = listwise_loss(net(b.x[sl]), b.y[sl], b.seen[sl])
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                sched.step()
            self.net, self._item_cache = net, None
            if prepared is not None:
                curve.append(self._prepared_ndcg(prepared))
                stale = len(curve) - 1 - int(np.argmax(curve))
                if p.patience and len(curve) >= p.min_epochs and stale >= p.patience:
                    break
        self.net, self._item_cache = net.eval(), None
        return curve

    def inner_ndcg(self, cases: Sequence[Case]) -> float:
        return self._prepared_ndcg(self._prepare_val(cases))

    def _prepare_val(self, cases: Sequence[Case], chunk: int = 256) -> list[_ValCase]:
        """The validation cases' features, built once: they do not change between epochs
        (only the network does), and rebuilding them every epoch cost as much as an epoch."""
        out = []
        for case in cases:
            rows, lab = case.labels()
            if len(rows):
                snap = Snapshot(case.run, case.t)
                parts = [
                    pair_parts(snap, rows[s : s + chunk], self.p)
                    for s in range(0, len(rows), chunk)
                ]
                out.append(
                    _ValCase(
                        torch.from_numpy(item_features(snap, self.p)),
                        [(torch.from_numpy(lf), torch.from_numpy(px)) for lf, px in parts],
                        snap.seen[rows],
                        lab,
                    )
                )
        return out

    @torch.no_grad()
    def _prepared_ndcg(self, cases: list[_ValCase]) -> float:
        """`scores` + NDCG@10 of prepared cases (the same computation, features reused)."""
        assert self.net is not None, "fit first"
        self.net.eval()
        vals = []
        for c in cases:
            item_h = self.net.item_part(c.item_x)
            scores = torch.cat([self.net.forward_parts(item_h, lf, px) for lf, px in c.parts])
            vals.append(ndcg_of_scores(scores.numpy(), c.seen, c.labels))
        return float(np.concatenate(vals).mean()) if vals else 0.0

    def fit(
        self,
        history: Sequence[Run],
        train_part: Sequence[Run],
        split: int | None = None,
        *,
        epochs: int | None = None,
        init: RankerNet | None = None,
    ) -> MLPRanker:
        """Choose the epoch count at the inner cut (each run under test cut 14 days before
        its end day, `split` in the evaluation) with a model trained on cases strictly
        before it (history in full), then refit on every case with that count.

        `epochs` given: no inner choice (a retrain reusing its validation fit's count).
        `init`: start from that network (warm start) instead of a seeded initialisation.
        `split` is kept for the evaluation's call; the runs' end days carry it.
        """
        t0 = time.process_time()
        p = self.p
        rng = np.random.default_rng(p.seed)
        if epochs is None:
            val = [Case(r, r.end_day - 14) for r in train_part if r.end_day - 14 >= 7]
            inner_part = [truncate(r, r.end_day - 14) for r in train_part]
            inner = self.training_cases(history, inner_part)
            inner_batches = [b for c in inner if (b := case_examples(c, p, rng)) is not None]
            epochs = p.default_epochs
            if inner_batches and val:
                curve = self._train(inner_batches, p.epochs, val)
                epochs = int(np.argmax(curve)) + 1
                self.chosen = {"epochs": epochs, "inner_curve": [round(v, 4) for v in curve]}
        batches = [
            b
            for c in self.training_cases(history, train_part)
            if (b := case_examples(c, p, rng)) is not None
        ]
        if not batches:
            raise ValueError("mlp_ranker: no replayed cut day with labels to train on")
        self._train(batches, epochs, init=init)
        self.chosen.setdefault("epochs", epochs)
        self.stats = {
            "fit_cpu_seconds": round(time.process_time() - t0, 1),
            "train_lists": int(sum(len(b.y) for b in batches)),
            "epochs": epochs,
            "warm_start": init is not None,
        }
        return self

    @torch.no_grad()
    def item_part(self, snap: Snapshot) -> torch.Tensor:
        """The first layer's item block at the snapshot's day (kept for the last snapshot:
        one per run-day when serving)."""
        assert self.net is not None, "fit first"
        if self._item_cache is None or self._item_cache[0] is not snap:
            item_x = torch.from_numpy(item_features(snap, self.p))
            self._item_cache = (snap, self.net.item_part(item_x))
        return self._item_cache[1]

    @torch.no_grad()
    def scores(self, snap: Snapshot, rows: np.ndarray, chunk: int = 256) -> np.ndarray:
        """(n, I) scores of the learners `rows` at the snapshot's day."""
        assert self.net is not None, "fit first"
        self.net.eval()
        item_h = self.item_part(snap)
        out = np.zeros((len(rows), snap.I), np.float32)
        for s in range(0, len(rows), chunk):
            lf, px = pair_parts(snap, rows[s : s + chunk], self.p)
            out[s : s + chunk] = self.net.forward_parts(
                item_h, torch.from_numpy(lf), torch.from_numpy(np.ascontiguousarray(px))
            ).numpy()
        return out
