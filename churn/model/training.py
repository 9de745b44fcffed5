"""Training the churn predictor: seeds with early stopping, Platt calibration, bands.

1. Each seed (of each expert) is trained on `train` with early stopping on `val`
   (later in time), watching the mean per-cut-off AUC.
2. Platt scaling and the risk-band thresholds are fitted on the validation predictions.
3. With ``refit=True`` each seed is retrained on train + val for its best number of
   epochs; the calibration from step 2 is kept.

Distillation (``distill_lambda > 0``, the default): a per-cut-off HGB teacher
(`churn.model.teacher.TunedHGB`, shape and iterations chosen on `val`) gives each
training row a soft target, its probability moved to the row's own run level; the loss
is BCE(y) + distill_lambda x BCE(soft target). Step 1 uses the teacher as fitted on
`train` alone, step 3 its refit on train + val. The teacher is not served.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from churn.model.features import RUN_LEVEL, ChurnFeatures
from churn.model.importance import teacher_selection
from churn.model.net import ChurnEnsemble, ChurnRouter, ensemble_of
from churn.model.predictor import ChurnPredictor
from churn.model.prior import fit_prior, own_run_logit
from churn.model.teacher import HGBSettings, TunedHGB, within_run_targets
from eduplatform.ml.metrics import best_f1_threshold, roc_auc
from eduplatform.ml.preprocess import Preprocessor
from eduplatform.ml.train import TrainConfig
from eduplatform.ml.train import predict as predict_outputs


@dataclass
class ChurnSettings:
    """The product recipe (docs/churn-model.md, "The recipe"). The pre-#22 product is
    ``distill_lambda=0, pos_weight="sqrt", max_epochs=15, patience=4 -> 5``."""

    hidden: int = 64
    layers: int = 2
    dropout: float = 0.3
    seq_hidden: int = 16
    use_sequence: bool = False  # the GRU branch lost on validation (docs/churn-model.md)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 512
    max_epochs: int = 20
    # and at most this many Adam steps per network while early stopping (the epochs cap
    # shrinks as the rows grow), so a retrain's cost grows with its rows, not also with
    # more epochs. On all of OULAD (115 steps per epoch) the 15 epochs bind first and
    # the best epochs came at 230-345 steps (docs/churn-model.md, "Training budget").
    max_steps: int | None = 1500
    patience: int = 4
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    # True: one expert per training cut-off behind a router (nearest cut-off). With the
    # run-level inputs out and the module base rate as an offset, one pooled ensemble
    # over all cut-offs (the cut-off day an input) won on validation (docs/churn-model.md)
    per_cutoff: bool = False
    # None: the distilled recipe has no positive weight (its soft targets carry the teacher's
    # calibrated rates); "sqrt" | "balanced" | number
    pos_weight: str | float | None = None
    refit: bool = True
    # Warm start (a previous predictor given to train_churn_model): at most this many
    # epochs per network, starting from the previous weights.
    warm_max_epochs: int = 5
    num_threads: int = 1  # small nets: more threads only add overhead on a busy 2-core box
    # flat features the network does not read (run-level constants, see features.RUN_LEVEL)
    exclude: tuple[str, ...] = tuple(RUN_LEVEL)
    # the course module's churn rate as a fixed logit offset (`RunPrior`)
    run_prior: bool = True
    # loss = BCE(y) + distill_lambda x BCE(teacher's within-run soft target); 0: no teacher
    distill_lambda: float = 1.0
    teacher: HGBSettings = field(default_factory=HGBSettings)
    # Selection step (#22 item 5): None keeps every feature; a number drops the network
    # inputs whose permutation costs the teacher (fitted on `train`) less than this much
    # mean per-cut-off AUC on `val` (`importance.teacher_selection`).
    select_min_drop: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.teacher, dict):  # from a retrain's JSON parameters
            self.teacher = HGBSettings.from_dict(self.teacher)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        d["exclude"] = list(self.exclude)
        d["teacher"] = self.teacher.to_dict()
        return d


@dataclass
class TrainReport:
    seconds: float
    cpu_seconds: float
    best_epochs: list[int]
    val_auc: float
    val_auc_per_cutoff: dict[int, float]
    n_train: int
    n_val: int
    history: list[list[float | None]] = field(default_factory=list)


def _pos_weight(setting: str | float | None, labels: np.ndarray) -> float | None:
    pos = float(np.sum(labels == 1))
    neg = float(np.sum(labels == 0))
    if setting is None or pos == 0:
        return None
    if setting == "balanced":
        return neg / pos
    if setting == "sqrt":
        return math.sqrt(neg / pos)
    return float(setting)


def _mean_group_auc(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> float:
    aucs = [roc_auc(y[groups == g], p[groups == g]) for g in np.unique(groups)]
    aucs = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def _fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: a, b minimising the log loss of sigmoid(a * logit + b)."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    z = torch.tensor(logits, dtype=torch.float64)
    t = torch.tensor(y, dtype=torch.float64)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(params[0] * z + params[1], t)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    a, b = (float(v) for v in params.detach())
    if not (math.isfinite(a) and math.isfinite(b)):
        return 1.0, 0.0
    return a, b


def _risk_thresholds(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """medium from the validation churn rate, high at the validation F1-optimal threshold."""
    base = float(np.mean(y)) if len(y) else 0.1
    high = best_f1_threshold(y, probs)
    medium = base
    if medium >= high:
        medium = high / 2
    return float(medium), float(high)


def train_churn_model(
    train: ChurnFeatures,
    val: ChurnFeatures,
    settings: ChurnSettings | None = None,
    warm_start: ChurnPredictor | None = None,
    teacher: TunedHGB | None = None,
) -> tuple[ChurnPredictor, TrainReport]:
    """Train, calibrate and band; `val` must be later in time than `train`.

    `teacher`: an HGB teacher already fitted on exactly (`train`, `val`) with
    ``settings.teacher`` (evaluation shares it with the HGB peer); else one is fitted here.

    With `warm_start` (the previous fp32 predictor) every network starts from its
    counterpart's weights when the feature columns and architecture are the same
    (`info["warm_start"]` says whether they were), for at most
    `settings.warm_max_epochs` epochs.
    """
    settings = settings or ChurnSettings()
    start = (time.perf_counter(), time.process_time())
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, settings.num_threads))
    try:
        return _train(train.labelled(), val.labelled(), settings, start, warm_start, teacher)
    finally:
        torch.set_num_threads(threads)


def _nearest(values: np.ndarray, cutoffs: list[int]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.asarray(
        np.asarray(cutoffs)[np.abs(values[:, None] - np.asarray(cutoffs)[None, :]).argmin(axis=1)]
    )


def _warm_states(
    warm: ChurnPredictor | None, arch: dict[str, Any], columns: list[str]
) -> list[list[dict[str, torch.Tensor]]] | None:
    """Per expert, per seed: the previous network's weights, or None when the schema differs
    (other feature columns or architecture, or a compressed network)."""
    if warm is None or list(warm.preprocessor.output_columns) != list(columns):
        return None
    if dict(warm.arch) != arch:
        return None
    module = warm.module
    experts = list(module.experts) if isinstance(module, ChurnRouter) else [module]
    ensembles = [e for e in experts if isinstance(e, ChurnEnsemble)]
    if len(ensembles) != len(experts):
        return None
    states = [[net.state_dict() for net in e.nets] for e in ensembles]
    fresh = ensemble_of({**arch, "n_members": 1}).nets[0].state_dict()
    for expert in states:
        for state in expert:
            if state.keys() != fresh.keys() or any(state[k].shape != fresh[k].shape for k in fresh):
                return None
    return states


def _fit_member(
    net: nn.Module,
    train_set: TensorDataset,
    val_set: TensorDataset | None,
    config: TrainConfig,
    val_groups: np.ndarray | None = None,
    distill: float = 0.0,
) -> tuple[int, list[float | None]]:
    """Train one network in place (Adam, BCE with ``pos_weight``, gradient clipping);
    with `val_set`, early stopping on the mean per-cut-off validation AUC, restoring
    the best epoch's weights. Returns (best epoch or epochs run, validation history).
    A fourth tensor in `train_set` is the soft target: ``distill`` x BCE(soft) is added.

    Same recipe as `eduplatform.ml.train.fit`, but batches are tensor slices of a
    seeded permutation instead of a DataLoader collating rows one by one (several
    times less CPU for these small networks)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        generator = torch.Generator().manual_seed(config.seed)
        pw = None if config.pos_weight is None else torch.tensor(float(config.pos_weight))
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=pw)
        # foreach: the same arithmetic as the per-parameter loop (same weights, bit for
        # bit), in a few calls per step instead of a dozen per parameter.
        optimizer = torch.optim.Adam(
            net.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
        )
        x, q, y = train_set.tensors[:3]
        soft = train_set.tensors[3] if len(train_set.tensors) > 3 and distill > 0 else None
        bce = nn.functional.binary_cross_entropy_with_logits
        # A network without the GRU branch ignores the weekly sequence: gathering its
        # 24 x 9 values per row for every batch took more time than the flat rows.
        reads_sequence = getattr(net, "reads_sequence", True)
        no_sequence = q[:0]
        best_score, best_epoch, bad = -math.inf, 0, 0
        best_state = None
        history: list[float | None] = []
        epoch = 0
        for epoch in range(1, config.max_epochs + 1):
            net.train()
            order = torch.randperm(len(y), generator=generator)
            for begin in range(0, len(y), config.batch_size):
                b = order[begin : begin + config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                out = net(x[b], q[b] if reads_sequence else no_sequence)
                loss = loss_fn(out, y[b])
                if soft is not None:
                    loss = loss + distill * bce(out, soft[b])
                loss.backward()
                if config.grad_clip:
                    nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
                optimizer.step()
            if val_set is None:
                continue
            assert val_groups is not None, "a validation set comes with its cut-off groups"
            xv, qv, yv = val_set.tensors
            out = predict_outputs(net, (xv, qv)).numpy()
            score = _mean_group_auc(yv.numpy(), out, val_groups)
            history.append(score)
            if score > best_score + config.min_delta:
                best_score, best_epoch, bad = score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if config.patience and bad >= config.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        return (best_epoch or epoch), history
    finally:
        torch.use_deterministic_algorithms(previous)


def epochs_cap(s: ChurnSettings, n_rows: int, *, warm: bool) -> int:
    """Epochs one network may run while early stopping: `max_epochs` (or
    `warm_max_epochs` from a warm start), fewer where that many epochs of `n_rows`
    would take more than `max_steps` optimizer steps; at least one."""
    cap = min(s.max_epochs, s.warm_max_epochs) if warm else s.max_epochs
    if s.max_steps is None or n_rows == 0:
        return cap
    steps_per_epoch = math.ceil(n_rows / s.batch_size)
    return max(1, min(cap, s.max_steps // steps_per_epoch))


def _train_members(
    arch: dict[str, Any],
    config: TrainConfig,
    seeds: tuple[int, ...],
    train_set: TensorDataset,
    val_set: TensorDataset | None,
    val_groups: np.ndarray,
    init: list[dict[str, torch.Tensor]] | None = None,
    distill: float = 0.0,
) -> tuple[list[nn.Module], list[int], list[list[float | None]]]:
    """One network per seed, early-stopped on `val_set` (mean per-cut-off AUC); each
    starts from `init[k]` (a state dict) when given."""

    nets: list[nn.Module] = []
    epochs: list[int] = []
    history: list[list[float | None]] = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = ensemble_of({**arch, "n_members": 1}).nets[0]
        if init is not None:
            net.load_state_dict(init[len(nets)])
        cfg = TrainConfig(**{**config.to_dict(), "seed": seed})
        best, hist = _fit_member(net, train_set, val_set, cfg, val_groups, distill)
        nets.append(net)
        epochs.append(best)
        history.append(hist)
    return nets, epochs, history


def _train(
    train: ChurnFeatures,
    val: ChurnFeatures,
    s: ChurnSettings,
    start: tuple[float, float],
    warm_start: ChurnPredictor | None = None,
    teacher: TunedHGB | None = None,
) -> tuple[ChurnPredictor, TrainReport]:
    """Long because the training recipe reads best top to bottom: teacher, members,
    calibration, bands, refit, report.
    """
    excluded = set(s.exclude) - {"cutoff_day"}  # the router reads the cut-off day
    teacher_seconds = 0.0
    selection: dict[str, Any] | None = None
    if s.select_min_drop is not None and len(np.unique(train.labels)) == 2:
        t_teacher = time.perf_counter()
        teacher = teacher if teacher is not None else TunedHGB(s.teacher).fit(train, val)
        names = [k for k in train.kinds if k not in excluded and k != "cutoff_day"]
        chosen = teacher_selection(teacher.stage_proba, val, names, min_drop=s.select_min_drop)
        excluded |= set(names) - set(chosen.selected)
        selection = {"reason": chosen.reason, "kept": chosen.selected, "drops": chosen.scores}
        teacher_seconds += time.perf_counter() - t_teacher
    pre = Preprocessor.fit(train.frame, {k: v for k, v in train.kinds.items() if k not in excluded})
    raw_seq = np.log1p(np.maximum(train.sequence(), 0))
    seq_scale = raw_seq.reshape(-1, raw_seq.shape[2]).std(axis=0) + 1e-6
    cutoffs = sorted(int(c) for c in np.unique(train.frame["cutoff"]))
    per_cutoff = s.per_cutoff and len(cutoffs) > 1
    prior = fit_prior(train) if s.run_prior else None
    arch: dict[str, Any] = {
        "n_flat": len(pre.output_columns) + (1 if prior is not None else 0),
        "n_channels": len(train.channels),
        "hidden": s.hidden,
        "layers": s.layers,
        "dropout": s.dropout,
        "seq_hidden": s.seq_hidden,
        "use_sequence": s.use_sequence,
        "n_members": len(s.seeds),
        "route_cutoffs": cutoffs if per_cutoff else None,
        "route_column": pre.output_columns.index("cutoff_day") if per_cutoff else None,
    }
    if prior is not None:
        arch["offset"] = True
    predictor = ChurnPredictor(
        pre,
        seq_scale,
        ensemble_of(arch),
        arch,
        n_weeks=train.n_weeks,
        channels=train.channels,
        prior=prior,
    )
    warm = _warm_states(warm_start, arch, pre.output_columns)
    x_tr, q_tr = predictor.inputs(train.frame)
    y_tr = torch.tensor(train.labels, dtype=torch.float32)
    x_va, q_va = predictor.inputs(val.frame)
    y_va = torch.tensor(val.labels, dtype=torch.float32)
    if prior is not None:
        # training rows: their own run's churn rate as the offset (the network learns
        # the ranking within a run); validation rows keep the prior of their module
        x_tr[:, -1] = torch.from_numpy(own_run_logit(train).astype(np.float32))
        x_va_own = x_va.clone()
        x_va_own[:, -1] = torch.from_numpy(own_run_logit(val).astype(np.float32))
    else:
        x_va_own = x_va
    val_groups = val.frame["cutoff"].to_numpy()
    has_val = len(val) > 0 and len(np.unique(val.labels)) == 2
    distill = float(s.distill_lambda) if len(np.unique(train.labels)) == 2 else 0.0
    soft_tr = soft_all = None
    if distill > 0:
        t_teacher = time.perf_counter()
        if teacher is None:
            teacher = TunedHGB(s.teacher).fit(train, val)
        soft_tr, soft_all = _soft_targets(teacher, train, val, prior is not None)
        teacher_seconds += time.perf_counter() - t_teacher
    tr_route = train.frame["cutoff"].to_numpy()
    va_route = _nearest(val_groups, cutoffs) if len(val) else val_groups
    groups: list[int | None] = list(cutoffs) if per_cutoff else [None]

    experts: list[nn.Module] = []
    plan = []
    best_epochs: list[int] = []
    history: list[list[float | None]] = []
    for gi, g in enumerate(groups):
        tm = np.ones(len(train), bool) if g is None else tr_route == g
        vm = np.ones(len(val), bool) if g is None else va_route == g
        config = TrainConfig(
            loss="bce",
            optimizer="adam",
            lr=s.lr,
            weight_decay=s.weight_decay,
            batch_size=s.batch_size,
            max_epochs=epochs_cap(s, int(tm.sum()), warm=warm is not None),
            patience=s.patience,
            pos_weight=_pos_weight(s.pos_weight, train.labels[tm]),
        )
        group_val = has_val and len(np.unique(val.labels[vm])) == 2
        nets, epochs, hist = _train_members(
            arch,
            config,
            s.seeds,
            TensorDataset(x_tr[tm], q_tr[tm], y_tr[tm], *_rows(soft_tr, tm)),
            TensorDataset(x_va[vm], q_va[vm], y_va[vm]) if group_val else None,
            val_groups[vm],
            init=warm[gi] if warm is not None else None,
            distill=distill,
        )
        experts.append(ChurnEnsemble(nets))
        plan.append((tm, vm, config, epochs, group_val))
        best_epochs += epochs
        history += hist

    def assemble(members: list[nn.Module]) -> nn.Module:
        if not per_cutoff:
            return members[0]
        column = arch["route_column"]
        return ChurnRouter(
            members, cutoffs, column, pre.means["cutoff_day"], pre.stds["cutoff_day"]
        )

    predictor.module = assemble(experts)
    if has_val:
        val_logits = predict_outputs(predictor.module, (x_va, q_va)).numpy().astype(float)
        predictor.platt = _fit_platt(val_logits, val.labels)
        val_probs = predictor.calibrate(val_logits)
        predictor.thresholds = _risk_thresholds(val_probs, val.labels)
        val_auc = _mean_group_auc(val.labels, val_logits, val_groups)
        per_cutoff_auc = {
            int(c): roc_auc(val.labels[val_groups == c], val_logits[val_groups == c])
            for c in np.unique(val_groups)
        }
    else:
        train_logits = predict_outputs(predictor.module, (x_tr, q_tr)).numpy().astype(float)
        predictor.platt = _fit_platt(train_logits, train.labels)
        predictor.thresholds = _risk_thresholds(predictor.calibrate(train_logits), train.labels)
        val_auc, per_cutoff_auc = float("nan"), {}
    if s.refit and has_val:
        refit: list[nn.Module] = []
        for gi, (tm, vm, config, epochs, _) in enumerate(plan):
            x_all = torch.cat([x_tr[tm], x_va_own[vm]])
            q_all = torch.cat([q_tr[tm], q_va[vm]])
            y_all = torch.cat([y_tr[tm], y_va[vm]])
            soft = (
                []
                if soft_all is None
                else [torch.cat([soft_all[: len(train)][tm], soft_all[len(train) :][vm]])]
            )
            nets = []
            for seed, n_epochs in zip(s.seeds, epochs, strict=True):
                torch.manual_seed(seed)
                net = ensemble_of({**arch, "n_members": 1}).nets[0]
                if warm is not None:
                    net.load_state_dict(warm[gi][len(nets)])
                cfg = TrainConfig(**{**config.to_dict(), "seed": seed, "max_epochs": n_epochs})
                _fit_member(
                    net, TensorDataset(x_all, q_all, y_all, *soft), None, cfg, None, distill
                )
                nets.append(net)
            refit.append(ChurnEnsemble(nets))
        predictor.module = assemble(refit)
        if prior is not None:
            predictor.prior = fit_prior(ChurnFeatures.concat([train, val]))
    predictor.module.eval()
    predictor.baseline_flat = np.stack([x_tr[tm].numpy().mean(axis=0) for tm, *_ in plan])
    predictor.baseline_seq = np.stack([q_tr[tm].numpy().mean(axis=0) for tm, *_ in plan])
    predictor.baseline_cutoffs = [float(g) if g is not None else float("nan") for g in groups]
    report = TrainReport(
        seconds=time.perf_counter() - start[0],
        cpu_seconds=time.process_time() - start[1],
        best_epochs=best_epochs,
        val_auc=val_auc,
        val_auc_per_cutoff=per_cutoff_auc,
        n_train=len(train),
        n_val=len(val),
        history=history,
    )
    predictor.info = {
        "settings": s.to_dict(),
        "best_epochs": best_epochs,
        "val_auc": None if math.isnan(val_auc) else val_auc,
        "n_train": len(train),
        "n_val": len(val),
        "train_cutoffs": cutoffs,
        "warm_start": warm is not None,
        "teacher": None if teacher is None or distill == 0 else teacher.chosen,
        "teacher_seconds": teacher_seconds,
        "selection": selection,
    }
    return predictor, report


def _rows(soft: torch.Tensor | None, mask: np.ndarray) -> list[torch.Tensor]:
    return [] if soft is None else [soft[mask]]


def _soft_targets(
    teacher: TunedHGB, train: ChurnFeatures, val: ChurnFeatures, offset: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(soft targets of the train rows from the teacher fitted on train alone, soft targets
    of train + val rows from its refit), moved to each row's own run level when the
    network has the run offset."""
    both = ChurnFeatures.concat([train, val])
    p_tr, p_all = teacher.stage_proba(train.frame), teacher.predict_proba(both.frame)
    if offset:
        p_tr = within_run_targets(p_tr, train.frame, own_run_logit(train))
        p_all = within_run_targets(p_all, both.frame, own_run_logit(both))
    # a cut-off the teacher could not fit (one class): the label itself
    p_tr = np.where(np.isnan(p_tr), train.labels, p_tr)
    p_all = np.where(np.isnan(p_all), both.labels, p_all)
    return (
        torch.from_numpy(np.asarray(p_tr, dtype=np.float32)),
        torch.from_numpy(np.asarray(p_all, dtype=np.float32)),
    )
