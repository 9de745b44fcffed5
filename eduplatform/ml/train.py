"""A small, deterministic PyTorch training loop shared by the models.

- Losses by name: "bce" (binary, on logits, optional ``pos_weight``),
  "cross_entropy" (multi-class logits vs integer targets) and "mse".
- Optimizers by name: "sgd" (with momentum), "adam", "rmsprop".
- Early stopping on a validation set that the caller builds so that it is later
  in time than the training set (`time_ordered_split` does it from timestamps):
  the model weights of the best validation epoch are restored at the end.
- Determinism: `seed_everything` seeds Python, NumPy and torch, and the loop runs
  under ``torch.use_deterministic_algorithms(True)``; the shuffling generator is
  seeded from the config, so two runs with the same seed give identical weights
  on CPU.
- ``num_workers`` (DataLoader worker processes) defaults to 0. The datasets
  here are tensors already in memory: a batch is a slice, so worker processes
  only add start-up (fork + import of torch, ~1 s each) and inter-process copies,
  while on a 2-core machine they also compete with torch's own intra-op threads.
  Workers pay off only when building a batch is expensive (decoding files,
  augmentation), which is why the option exists.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.optim.optimizer import ParamsT
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

LOSSES = ("bce", "cross_entropy", "mse")
OPTIMIZERS = ("sgd", "adam", "rmsprop")


@dataclass
class TrainConfig:
    loss: str = "bce"
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd and rmsprop
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 5  # epochs without improvement before stopping; 0 = never stop early
    min_delta: float = 1e-4
    seed: int = 0
    num_workers: int = 0  # see the module docstring
    pos_weight: float | None = None  # bce only: weight of the positive class
    balanced_sampling: bool = False  # bce/cross_entropy: sample classes equally
    grad_clip: float | None = 5.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    val_loss: float | None
    val_score: float | None


@dataclass
class TrainResult:
    best_epoch: int  # 1-based; 0 when no validation set
    best_score: float | None
    epochs_run: int
    stopped_early: bool
    seconds: float
    history: list[EpochLog] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def time_ordered_split(
    times: npt.ArrayLike, val_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): the latest `val_fraction` of rows by time are validation.

    Rows sharing the boundary time all go to the same side (validation), so no
    moment is split across the two sets.
    """
    times = np.asarray(times)
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be in (0, 1)")
    order = np.argsort(times, kind="stable")
    boundary = times[order[int(np.floor(len(times) * (1 - val_fraction)))]]
    val = np.flatnonzero(times >= boundary)
    train = np.flatnonzero(times < boundary)
    return train, val


def make_loss(config: TrainConfig) -> nn.Module:
    if config.loss == "bce":
        pw = None if config.pos_weight is None else torch.tensor(float(config.pos_weight))
        return nn.BCEWithLogitsLoss(pos_weight=pw)
    if config.loss == "cross_entropy":
        return nn.CrossEntropyLoss()
    if config.loss == "mse":
        return nn.MSELoss()
    raise ValueError(f"loss must be one of {LOSSES}, got {config.loss!r}")


def make_optimizer(params: ParamsT, config: TrainConfig) -> torch.optim.Optimizer:
    name = config.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")


def _loader(
    dataset: TensorDataset, config: TrainConfig, shuffle: bool, generator: torch.Generator
) -> DataLoader[tuple[torch.Tensor, ...]]:
    sampler = None
    if shuffle and config.balanced_sampling and config.loss in ("bce", "cross_entropy"):
        y = dataset.tensors[-1].long().reshape(-1)
        counts = torch.bincount(y).double().clamp(min=1)
        weights = (1.0 / counts)[y]
        sampler = WeightedRandomSampler(
            weights.tolist(), len(y), replacement=True, generator=generator
        )
        shuffle = False
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=shuffle,
        sampler=sampler,
        generator=generator if shuffle else None,
        num_workers=config.num_workers,
        persistent_workers=config.num_workers > 0,
    )


def _targets(y: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    return y.long() if config.loss == "cross_entropy" else y.float()


def evaluate_loss(model: nn.Module, dataset: TensorDataset, config: TrainConfig) -> float:
    loss_fn = make_loss(config)
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=4096):
            *inputs, y = batch
            out = model(*inputs)
            total += float(loss_fn(out, _targets(y, config))) * len(y)
            n += len(y)
    return total / max(n, 1)


def predict(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], batch_size: int = 8192
) -> torch.Tensor:
    """Model outputs for in-memory inputs, in eval mode, without gradients."""
    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(inputs[0]), batch_size):
            outs.append(model(*(x[start : start + batch_size] for x in inputs)))
    return torch.cat(outs) if outs else torch.empty(0)


def fit(
    model: nn.Module,
    train: TensorDataset,
    val: TensorDataset | None,
    config: TrainConfig,
    val_score: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
) -> TrainResult:
    """Train `model` in place; tensors of the datasets are (*inputs, target).

    Early stopping watches `val_score(outputs, targets)` (higher is better) or,
    by default, minus the validation loss. The best epoch's weights are restored.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        return _fit(model, train, val, config, val_score)
    finally:
        torch.use_deterministic_algorithms(previous)


def _fit(
    model: nn.Module,
    train: TensorDataset,
    val: TensorDataset | None,
    config: TrainConfig,
    val_score: Callable[[torch.Tensor, torch.Tensor], float] | None,
) -> TrainResult:
    start = time.perf_counter()
    seed_everything(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = make_loss(config)
    optimizer = make_optimizer(model.parameters(), config)
    loader = _loader(train, config, shuffle=True, generator=generator)
    best_score = -np.inf
    best_state = copy.deepcopy(model.state_dict())
    best_epoch, bad_epochs, stopped = 0, 0, False
    history: list[EpochLog] = []
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        total, n = 0.0, 0
        for batch in loader:
            *inputs, y = batch
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(*inputs), _targets(y, config))
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            total += float(loss.detach()) * len(y)
            n += len(y)
        log = EpochLog(epoch=epoch, train_loss=total / max(n, 1), val_loss=None, val_score=None)
        if val is not None and len(val):
            log.val_loss = evaluate_loss(model, val, config)
            if val_score is not None:
                *vin, vy = val.tensors
                log.val_score = float(val_score(predict(model, tuple(vin)), vy))
            else:
                log.val_score = -log.val_loss
            if log.val_score > best_score + config.min_delta:
                best_score, best_epoch, bad_epochs = log.val_score, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
        history.append(log)
        if val is not None and config.patience and bad_epochs >= config.patience:
            stopped = True
            break
    if val is not None and len(val) and best_epoch > 0:
        model.load_state_dict(best_state)
    return TrainResult(
        best_epoch=best_epoch,
        best_score=None if best_epoch == 0 else float(best_score),
        epochs_run=epoch,
        stopped_early=stopped,
        seconds=time.perf_counter() - start,
        history=history,
    )
