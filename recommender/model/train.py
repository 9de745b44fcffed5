"""Training: replay the course runs at past days and learn to rank what came next.

For every run and every cutoff day `t = as_of - offset` (offsets in
`cutoff_offsets`), the inputs are computed from clicks before `t` exactly as at
serving time, and the targets are the items each learner opened for the first
time in `[t, min(t + label_horizon, as_of))`. The loss is a full softmax
cross-entropy over the run's candidates (items the learner had not opened
before `t`), averaged over each learner's targets. Seeded; deterministic on CPU
for a fixed thread count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeAlias

import numpy as np
import torch

from recommender.model.features import (
    N_LEARNER_FEATURES,
    N_PAIR_FEATURES,
    ItemGraph,
    LearnerBatch,
    covisit_neighbours,
    follow_neighbours,
    item_features,
    learner_batch,
    n_item_features,
    pair_features,
)
from recommender.model.interactions import PairTable, pair_table
from recommender.model.model import ScoringNet
from recommender.model.runs import CourseRun


@dataclass
class TrainConfig:
    seed: int = 0
    half_life_days: float = 14.0
    follow_window: int = 14
    neighbours: int = 50
    cutoff_offsets: tuple[int, ...] = (7, 14, 21, 28, 35, 42)
    label_horizon: int = 28
    min_cutoff_day: int = 7
    max_learners_per_cutoff: int = 800
    train_candidates: int = 128  # sampled softmax size per learner (0 = all items)
    hidden: int = 32
    hidden2: int = 16
    emb_dim: int = 16
    epochs: int = 1  # more epochs overfit the replayed days (validation at days 60 and 80)
    min_steps: int = 100  # small data: repeat epochs until this many optimiser steps
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-5
    emb_weight_decay: float = 1e-4
    num_threads: int = 1  # torch threads while training (1: deterministic, robust to a busy box)
    # Warm start: share of the replay batches trained (the weights start from the
    # previous model's, so a shorter run at a lower peak rate keeps what it knew).
    warm_fraction: float = 0.5
    warm_lr: float = 1e-3

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cutoff_offsets"] = list(self.cutoff_offsets)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "cutoff_offsets" in known:
            known["cutoff_offsets"] = tuple(known["cutoff_offsets"])
        return cls(**known)


@dataclass
class Snapshot:
    """A run seen at day t: the model inputs shared by its learners, plus targets."""

    run: CourseRun
    t: int
    item_x: torch.Tensor
    item_type: torch.Tensor
    center: torch.Tensor
    center_known: torch.Tensor
    graph: ItemGraph
    pairs: PairTable
    offsets: np.ndarray
    learners: np.ndarray  # rows with at least one target
    targets: dict[int, np.ndarray] = field(default_factory=dict)  # learner row -> item rows


def snapshot(run: CourseRun, t: int, config: TrainConfig, n_types: int) -> Snapshot | None:
    raw = run.raw
    if raw is None or run.follow_all is None:
        raise ValueError("training needs runs built with keep_raw=True")
    pairs_t = pair_table(
        raw.learner, raw.item, raw.day, raw.clicks, run.n_items, t, config.half_life_days
    ).compact()
    if len(pairs_t) == 0:
        return None
    active = np.zeros(run.n_learners, dtype=bool)
    active[pairs_t.learner] = True
    end = min(t + config.label_horizon, run.as_of)
    p = run.pairs
    sel = (p.first_day >= t) & (p.first_day < end) & active[p.learner]
    if not sel.any():
        return None
    lrn, itm = p.learner[sel], p.item[sel]
    learners, starts = np.unique(lrn, return_index=True)
    bounds = np.r_[starts, len(lrn)]
    targets = {int(u): itm[bounds[k] : bounds[k + 1]] for k, u in enumerate(learners)}
    center, known = run.timeline.center(t)
    cov = covisit_neighbours(pairs_t, run.n_learners, run.n_items, t, config.neighbours)
    fol = follow_neighbours(run.follow_all, pairs_t, run.n_items, t, config.neighbours)
    return Snapshot(
        run=run,
        t=t,
        item_x=torch.from_numpy(
            item_features(run.timeline, t, run.item_type, run.week_from, n_types)
        ),
        item_type=torch.from_numpy(run.item_type),
        center=torch.from_numpy(center.astype(np.float32)),
        center_known=torch.from_numpy(known),
        graph=ItemGraph.build(cov, fol),
        pairs=pairs_t,
        offsets=np.searchsorted(pairs_t.learner, np.arange(run.n_learners + 1)),
        learners=learners,
        targets=targets,
    )


# (learner batch, pair features, targets) of one replay batch
BatchInputs: TypeAlias = tuple[LearnerBatch, torch.Tensor, torch.Tensor]


def batch_inputs(s: Snapshot, learners: np.ndarray, n_types: int) -> BatchInputs:
    lb = learner_batch(s.pairs, learners, s.run.n_items, s.t, s.offsets)
    px = pair_features(lb, s.graph, s.item_type, n_types, s.center, s.center_known)
    target = torch.zeros(len(learners), s.run.n_items, dtype=torch.bool)
    for b, u in enumerate(learners):
        target[b, torch.from_numpy(s.targets[int(u)])] = True
    return lb, px, target


class AdamW:
    """Plain AdamW (decoupled weight decay), deterministic.

    A dozen lines instead of torch.optim, whose first use imports torch._dynamo
    (seconds of a training budget measured in tens of seconds).
    """

    def __init__(
        self,
        groups: list[dict[str, Any]],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.groups = groups
        self.betas = betas
        self.eps = eps
        self.t = 0
        self.moments = [
            [(torch.zeros_like(p), torch.zeros_like(p)) for p in g["params"]] for g in groups
        ]

    def zero_grad(self) -> None:
        for g in self.groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        for g, moments in zip(self.groups, self.moments, strict=True):
            wd = g.get("weight_decay", 0.0)
            for p, (m, v) in zip(g["params"], moments, strict=True):
                if p.grad is None:
                    continue
                if wd:
                    p.mul_(1 - lr * wd)
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m, (v / bc2).sqrt_().add_(self.eps), value=-lr / bc1)


def one_cycle_lr(step: int, total: int, peak: float, warmup: float = 0.1) -> float:
    """Linear warm-up to `peak` over the first `warmup` share of steps, then cosine to ~0."""
    w = max(int(total * warmup), 1)
    if step < w:
        return peak * (step + 1) / w
    progress = (step - w) / max(total - w, 1)
    lr: float = peak * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0))))
    return lr


def sample_candidates(
    visited: torch.Tensor, target: torch.Tensor, size: int, gen: torch.Generator
) -> torch.Tensor:
    """(B, size) item indices per learner: its targets first, then random unvisited items."""
    key = torch.rand(visited.shape, generator=gen)
    key = key + 2.0 * target.to(key.dtype) - 4.0 * visited.to(key.dtype)
    return torch.topk(key, size, dim=1).indices


def ranking_loss(scores: torch.Tensor, visited: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy over the candidates, averaged over each learner's targets."""
    scores = scores.masked_fill(visited, float("-inf"))
    logp = torch.log_softmax(scores, dim=1)
    per = torch.where(target, logp, torch.zeros_like(logp)).sum(1) / target.sum(1).clamp_min(1)
    return -per.mean()


def cutoffs(run: CourseRun, config: TrainConfig) -> list[int]:
    return [run.as_of - o for o in config.cutoff_offsets if run.as_of - o >= config.min_cutoff_day]


@dataclass
class WarmStart:
    """A previous network to start training from, and where its items' embedding rows are."""

    state: dict[str, torch.Tensor]
    type_vocab: list[str]
    rows: dict[tuple[str, int], int]  # (course run, item id) -> embedding row

    @classmethod
    def of(cls, net: ScoringNet, runs: list[CourseRun], type_vocab: list[str]) -> WarmStart:
        rows = {
            (str(run.course_id), int(item)): int(row)
            for run in runs
            for item, row in zip(run.item_ids, run.emb_rows, strict=True)
        }
        state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return cls(state, list(type_vocab), rows)


def apply_warm_start(
    net: ScoringNet, warm: WarmStart, runs: list[CourseRun], type_vocab: list[str]
) -> dict[str, int] | None:
    """Copy `warm`'s weights into the fresh `net`; None (nothing copied) when the schemas differ.

    1. The activity-type vocabulary and every dense layer's shape must match
       (they encode the feature schema); otherwise training starts from scratch.
    2. Dense layers are copied as they are.
    3. Embedding rows are copied for the items both know (same course run and
       item id); new items keep their fresh rows, items gone are dropped.
    """
    if list(type_vocab) != warm.type_vocab:
        return None
    fresh = net.state_dict()
    dense = {k: v for k, v in warm.state.items() if "emb" not in k}
    if set(dense) != {k for k in fresh if "emb" not in k} or any(
        fresh[k].shape != v.shape for k, v in dense.items()
    ):
        return None
    emb = [k for k in fresh if "emb" in k]
    if any(k not in warm.state or warm.state[k].shape[1] != fresh[k].shape[1] for k in emb):
        return None
    new_rows, old_rows = [], []
    for run in runs:
        for item, row in zip(run.item_ids, run.emb_rows, strict=True):
            old = warm.rows.get((str(run.course_id), int(item)))
            if old is not None:
                new_rows.append(int(row))
                old_rows.append(old)
    with torch.no_grad():
        for k, v in dense.items():
            fresh[k].copy_(v)
        if new_rows:
            new_idx, old_idx = torch.tensor(new_rows), torch.tensor(old_rows)
            for k in emb:
                fresh[k][new_idx] = warm.state[k][old_idx]
    total = sum(run.n_items for run in runs)
    return {"items_known": len(new_rows), "items_new": total - len(new_rows)}


def replay_loss(
    net: ScoringNet, s: Snapshot, inputs: BatchInputs, config: TrainConfig, gen: torch.Generator
) -> torch.Tensor:
    """The ranking loss of one replay batch (`inputs` from `batch_inputs`), over a sampled
    candidate subset when the run has more than `config.train_candidates` items."""
    lb, px, target = inputs
    rows = torch.from_numpy(s.run.emb_rows)
    visited = lb.visited
    cand = None
    if config.train_candidates and s.run.n_items > config.train_candidates:
        cand = sample_candidates(visited, target, config.train_candidates, gen)
        px = torch.gather(px, 1, cand.unsqueeze(-1).expand(-1, -1, px.shape[2]))
        visited = torch.gather(visited, 1, cand)
        target = torch.gather(target, 1, cand)
    scores = net(net.item_hidden(s.item_x), lb.learner_x, px, rows, lb.weight, cand)
    return ranking_loss(scores, visited, target)


def train_net(
    runs: list[CourseRun],
    n_types: int,
    config: TrainConfig,
    log: Callable[[str], None] | None = None,
    warm_start: WarmStart | None = None,
    type_vocab: list[str] | None = None,
) -> tuple[ScoringNet, dict[str, Any]]:
    """Fit the scoring network on past-day replays of `runs`; returns (net, stats).

    With `warm_start` (and the `type_vocab` of `runs`), the network starts from the
    previous weights when the schema allows and trains on `config.warm_fraction`
    of the replay batches at peak rate `config.warm_lr`; `stats["warm_start"]`
    says what was reused (None: trained from scratch).
    """
    threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        return _train_net(runs, n_types, config, log, warm_start, type_vocab)
    finally:
        torch.set_num_threads(threads)


def _train_net(
    runs: list[CourseRun],
    n_types: int,
    config: TrainConfig,
    log: Callable[[str], None] | None = None,
    warm_start: WarmStart | None = None,
    type_vocab: list[str] | None = None,
) -> tuple[ScoringNet, dict[str, Any]]:
    """Long because the training loop (batches, loss, early stopping, warm start) shares its state
    across epochs and reads best in order.
    """
    started = time.perf_counter()
    cpu_started = time.process_time()
    torch.set_flush_denormal(True)  # tiny Adam moments of rare embeddings are slow as denormals
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    n_items_total = sum(r.n_items for r in runs)
    net = ScoringNet(
        n_item_features(n_types),
        N_LEARNER_FEATURES,
        N_PAIR_FEATURES,
        n_items_total,
        hidden=config.hidden,
        hidden2=config.hidden2,
        emb_dim=config.emb_dim,
    )
    snaps = []
    for run in runs:
        for t in cutoffs(run, config):
            s = snapshot(run, t, config, n_types)
            if s is not None:
                snaps.append(s)
    batches = []
    for si, s in enumerate(snaps):
        learners = s.learners
        if config.max_learners_per_cutoff and len(learners) > config.max_learners_per_cutoff:
            learners = np.sort(rng.choice(learners, config.max_learners_per_cutoff, replace=False))
        order = rng.permutation(len(learners))
        for start in range(0, len(learners), config.batch_size):
            batches.append((si, learners[np.sort(order[start : start + config.batch_size])]))
    warm = None
    if warm_start is not None and type_vocab is not None:
        warm = apply_warm_start(net, warm_start, runs, type_vocab)
    peak_lr = config.lr
    if warm is not None and batches:
        keep = max(1, round(len(batches) * config.warm_fraction))
        batches = [batches[i] for i in np.sort(rng.choice(len(batches), keep, replace=False))]
        peak_lr = config.warm_lr
    cache: dict[int, BatchInputs] = {}
    prep_s = time.perf_counter() - started
    emb_params = [p for n, p in net.named_parameters() if "emb" in n]
    other = [p for n, p in net.named_parameters() if "emb" not in n]
    groups = [{"params": other, "weight_decay": config.weight_decay}]
    if emb_params:
        groups.append({"params": emb_params, "weight_decay": config.emb_weight_decay})
    opt = AdamW(groups)
    epochs = config.epochs
    if batches and config.min_steps and warm is None:
        epochs = max(epochs, -(-config.min_steps // len(batches)))
    total_steps = max(epochs * len(batches), 1)
    step = 0
    losses = []
    net.train()
    for epoch in range(epochs):
        perm = rng.permutation(len(batches))
        total = 0.0
        for bi in perm:
            si, learners = batches[bi]
            s = snaps[si]
            if bi not in cache:
                cache[bi] = batch_inputs(s, learners, n_types)
            loss = replay_loss(net, s, cache[bi], config, gen)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch 2.13
            opt.step(one_cycle_lr(step, total_steps, peak_lr))
            step += 1
            total += float(loss.detach())
        losses.append(total / max(len(batches), 1))
        if log:
            log(f"epoch {epoch + 1}: loss {losses[-1]:.4f} ({time.perf_counter() - started:.1f}s)")
    net.eval()
    stats = {
        "snapshots": len(snaps),
        "batches": len(batches),
        "epochs": epochs,
        "examples": int(sum(len(b[1]) for b in batches)),
        "prepare_seconds": round(prep_s, 2),
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_cpu_seconds": round(time.process_time() - cpu_started, 2),
        "losses": [round(x, 5) for x in losses],
        "warm_start": warm,
    }
    return net, stats
