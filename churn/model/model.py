"""The churn model: a small PyTorch network, calibrated, explained, serializable.

Network (`ChurnNet`)
    flat features (standardized by `Preprocessor`) ----------------------\
    weekly sequence (log1p, scaled; oldest week first) -> GRU -> last h --+-> MLP -> logit
    (the GRU branch is optional, ``use_sequence``; it is off by default because it
    lost on the validation split, see docs/churn-model.md)
    The MLP is a stack of ordinary ``nn.Linear`` + ReLU + Dropout layers (a later
    compression step prunes / quantizes / low-ranks them). `ChurnEnsemble` averages
    the logits of networks trained with different seeds.

One expert per cut-off (default) or one model across cut-offs
    ``per_cutoff=True``: one `ChurnEnsemble` per training cut-off, wrapped in a
    `ChurnRouter` that sends each row to the expert of the nearest cut-off (it
    reads the cut-off day back from its standardized input column). On the
    validation split this was better at days 30/60 and about even on the mean
    (docs/churn-model.md). ``per_cutoff=False``: one ensemble over all cut-offs
    pooled, the cut-off day being an input feature. Either way the module is what
    a `ChurnPredictor` exposes as ``.module``; it may be replaced by a compressed
    module with the same ``forward(flat, seq) -> logits``.

Imbalance and calibration
    BCE with ``pos_weight`` (default: sqrt(negatives / positives), a compromise
    between plain and fully balanced weighting); the logits are then calibrated
    with Platt scaling (``sigmoid(a * logit + b)``) fitted on the validation set.

Training (`train_churn_model`)
    1. Each seed (of each expert) is trained on `train` with early stopping on
       `val` (later in time: the latest train presentation), watching the mean
       per-cut-off AUC (the expert's own cut-off with ``per_cutoff``).
    2. Platt scaling and the risk-band thresholds are fitted on the validation
       predictions of that ensemble.
    3. With ``refit=True`` each seed is retrained on train + val for its best number
       of epochs, and the calibration from step 2 is kept.

Explanations
    Integrated gradients of the logit w.r.t. the transformed inputs, from the
    training mean at the row's cut-off as baseline; the attributions of one-hot / missing-indicator
    columns are summed into their source feature, those of the weekly sequence into
    "recent weeks" and "earlier weeks". The largest ones are described in plain
    words from the raw feature values ("no activity in the last 12 days").
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import TensorDataset

from churn.model.features import RUN_LEVEL, SEQ_CHANNELS, ChurnFeatures, sequence_array
from eduplatform.ml.metrics import best_f1_threshold, roc_auc
from eduplatform.ml.preprocess import Preprocessor
from eduplatform.ml.train import TrainConfig
from eduplatform.ml.train import predict as predict_outputs

STATE_VERSION = 1
RECENT_WEEKS = 4


class _Dropout(nn.Dropout):
    """`nn.Dropout` with the same mask drawn 2x faster on CPU.

    PyTorch's CPU `bernoulli_` goes through a bernoulli distribution object per
    element (275 us for 512 x 64 here); `torch.rand` in float64 takes the same
    doubles from the same generator in half the time (134 us), so comparing
    them with the keep probability gives the identical mask, and the identical
    arithmetic (mask / keep, times the input) the identical outputs and
    gradients: a trained network is the same bit for bit
    (tests/churn/model/test_model.py::test_fast_dropout_is_torch_dropout_bit_for_bit)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * torch.zeros((), dtype=x.dtype, device=x.device)
        keep = 1 - self.p
        noise = (torch.rand(x.shape, dtype=torch.float64, device=x.device) < keep).to(x.dtype)
        noise.div_(keep)
        return x * noise


class ChurnNet(nn.Module):
    def __init__(
        self,
        n_flat: int,
        n_channels: int,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.2,
        seq_hidden: int = 16,
        use_sequence: bool = True,
        offset: bool = False,
    ):
        super().__init__()
        self.use_sequence = use_sequence
        # with `offset`, the last flat column is a logit added to the output as is
        # (the course module's base rate, `RunPrior`), the MLP reads the others
        self.n_mlp_flat = n_flat - 1 if offset else n_flat
        self.gru = nn.GRU(n_channels, seq_hidden, batch_first=True) if use_sequence else None
        width = self.n_mlp_flat + (seq_hidden if use_sequence else 0)
        mods: list[nn.Module] = []
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU(), _Dropout(dropout)]
            width = hidden
        mods.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*mods)

    @property
    def reads_sequence(self) -> bool:
        return self.gru is not None

    def forward(self, flat: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        x = flat[:, : self.n_mlp_flat]
        if self.gru is not None:
            _, h = self.gru(seq)
            x = torch.cat([x, h[-1]], dim=1)
        out = self.mlp(x).squeeze(1)
        if self.n_mlp_flat < flat.shape[1]:
            out = out + flat[:, self.n_mlp_flat]
        return out


class ChurnEnsemble(nn.Module):
    """Mean logit of several `ChurnNet`s (the seeds)."""

    def __init__(self, nets: Sequence[nn.Module]):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, flat: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(flat, seq) for net in self.nets]).mean(dim=0)


class ChurnRouter(nn.Module):
    """One expert (a `ChurnEnsemble`) per training cut-off; each row goes to the expert
    of the nearest cut-off. The raw cut-off day is read back from its standardized
    input column, so the interface stays ``forward(flat, seq) -> logits``."""

    def __init__(
        self,
        experts: Sequence[nn.Module],
        cutoffs: Sequence[float],
        column: int,
        mean: float,
        std: float,
    ):
        super().__init__()
        self.experts = nn.ModuleList(experts)
        self.column = int(column)
        self.register_buffer("cutoffs", torch.tensor([float(c) for c in cutoffs]))
        self.register_buffer("scale", torch.tensor([float(mean), float(std)]))
        self.cutoffs: torch.Tensor
        self.scale: torch.Tensor

    def route(self, flat: torch.Tensor) -> torch.Tensor:
        raw = flat[:, self.column] * self.scale[1] + self.scale[0]
        return torch.argmin((raw[:, None] - self.cutoffs[None, :]).abs(), dim=1)

    def forward(self, flat: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        index = self.route(flat)
        if len(self.experts) == 1:
            return self.experts[0](flat, seq)
        if len(index) and bool((index == index[0]).all()):  # one cut-off (e.g. batch 1)
            return self.experts[int(index[0])](flat, seq)
        outs = torch.stack([expert(flat, seq) for expert in self.experts], dim=1)
        return outs.gather(1, index[:, None]).squeeze(1)


PRIOR_FEATURE = "course_base_rate"


@dataclass
class RunPrior:
    """Churn rate of a course run at a cut-off, learnt from the training runs.

    The network only ranks learners within their course run (it is trained with
    the logit of its own run's churn rate at that cut-off as a fixed offset); at
    prediction time the offset is this estimate of the run's rate.

    Two parts, both fitted per training cut-off on the logit scale (`fit`):

    * the run itself (when the frame has ``run_recent_withdrawal``, the share of
      its learners who unregistered in the 30 days before ``c``):
      ``intercept[c] + slope * logit(run_recent_withdrawal)``, a weighted least
      squares line over the training runs x cut-offs (one common slope). Runs that
      are losing learners now keep losing them; this is what a module never seen
      in training gets (OULAD leave-one-module-out, logit RMSE of the run rate
      0.32 against 0.59 for the overall rate, docs/churn-model.md);
    * the module (``frame["module"]``): what its training runs deviated from that
      line, shrunk towards 0 by empirical Bayes over course runs (factor
      tau2 / (tau2 + w2 / k), k runs of the module, w2 the spread between runs of
      one module, tau2 the spread between modules beyond it). Course runs of one
      module keep similar churn rates across presentations (OULAD: DDD 0.23-0.28,
      GGG 0.04-0.08 at day 30), which run-level network inputs could not carry to
      new runs.

    Without the run's withdrawal share (an older frame, or fewer than
    `MIN_RUNS_FOR_SLOPE` training runs) the module table alone is used: each
    module's rate shrunk towards the overall rate the same way, the overall rate
    for an unknown module. The nearest training cut-off is used for other days."""

    cutoffs: list[int]
    overall: list[float]
    modules: dict[str, list[float]]
    slope: float | None = None
    intercepts: list[float] | None = None
    effects: dict[str, list[float]] | None = None

    MIN_RUNS_FOR_SLOPE = 3

    @classmethod
    def fit(
        cls,
        modules: np.ndarray | None,
        cutoffs: np.ndarray,
        labels: np.ndarray,
        runs: np.ndarray | None = None,
        recent: np.ndarray | None = None,
    ) -> RunPrior:
        runs = np.arange(len(labels)) * 0 if runs is None else runs
        frame = pd.DataFrame(
            {
                "m": modules if modules is not None else None,
                "c": cutoffs,
                "y": labels,
                "r": runs,
                "x": np.nan if recent is None else np.asarray(recent, dtype=float),
            }
        ).dropna(subset=["y"])
        grid = sorted(int(c) for c in frame["c"].unique())
        overall = frame.groupby("c")["y"].mean()
        per_run = frame.dropna(subset=["m"]).groupby(["c", "m", "r"])["y"].agg(["mean", "count"])
        names = sorted({str(k[1]) for k in per_run.index})
        table: dict[str, list[float]] = {m: [] for m in names}
        for c in grid:
            base = float(_logit(np.array([overall[c]]))[0])
            shrunk = {m: float(overall[c]) for m in names}
            if c in per_run.index.get_level_values(0):
                rows = per_run.loc[c]
                z = pd.Series(_logit(rows["mean"].to_numpy(float)), index=rows.index)
                for m, dev in _shrunk_effects(z - base, rows).items():
                    shrunk[m] = float(1 / (1 + np.exp(-(base + dev))))
            for m in names:
                table[m].append(shrunk[m])
        prior = cls(grid, [float(overall[c]) for c in grid], table)
        prior._fit_slope(frame, grid, names)
        return prior

    def _fit_slope(self, frame: pd.DataFrame, grid: list[int], names: list[str]) -> None:
        """The run-level line and the modules' shrunk deviations from it (see the class)."""
        runs = (
            frame.dropna(subset=["x"])
            .groupby(["c", "r"])
            .agg(y=("y", "mean"), n=("y", "size"), x=("x", "mean"), m=("m", "first"))
        )
        c_of = runs.index.get_level_values(0).to_numpy()
        if runs.index.get_level_values(1).nunique() < self.MIN_RUNS_FOR_SLOPE or set(
            int(c) for c in c_of
        ) != set(grid):
            return
        design = np.column_stack(
            [(c_of == c).astype(float) for c in grid] + [_logit(runs["x"].to_numpy(float))]
        )
        z = _logit(runs["y"].to_numpy(float))
        w = np.sqrt(runs["n"].to_numpy(float))
        beta = np.linalg.lstsq(design * w[:, None], z * w, rcond=None)[0]
        residual = pd.Series(z - design @ beta, index=runs.index)
        # A module's deviation from the line is estimated per cut-off, but the variances
        # that decide how far to trust it are pooled over the cut-offs (6-7 modules per
        # cut-off give a noisy tau2; leave-one-run-out on OULAD: logit RMSE 0.227 pooled,
        # 0.233 per cut-off).
        parts = {}
        for c in grid:
            rows = runs.loc[c].dropna(subset=["m"])
            if rows.empty:
                continue
            index = pd.MultiIndex.from_arrays([rows["m"], rows.index])
            res = pd.Series(residual.loc[c].loc[rows.index].to_numpy(), index=index)
            stats = pd.DataFrame(
                {"mean": rows["y"].to_numpy(), "count": rows["n"].to_numpy()}, index=index
            )
            parts[c] = _variance_parts(res, stats)
        raw_tau2 = [v[3] for v in parts.values() if not math.isnan(v[3])]
        w2 = float(np.mean([v[2] for v in parts.values()])) if parts else 0.0
        tau2 = max(0.0, float(np.mean(raw_tau2))) if raw_tau2 else 0.0
        effects: dict[str, list[float]] = {m: [] for m in names}
        for c in grid:
            if c not in parts:
                for m in names:
                    effects[m].append(0.0)
                continue
            means, k = parts[c][0], parts[c][1]
            for m in names:
                factor = tau2 / (tau2 + w2 / float(k[m])) if tau2 > 0 and m in k else 0.0
                effects[m].append(factor * float(means[m]) if m in means else 0.0)
        self.slope = float(beta[-1])
        self.intercepts = [float(b) for b in beta[:-1]]
        self.effects = effects

    def rate(self, modules, cutoffs, recent=None) -> np.ndarray:
        cutoffs = np.asarray(cutoffs, dtype=float)
        grid = np.asarray(self.cutoffs, dtype=float)
        index = np.abs(cutoffs[:, None] - grid[None, :]).argmin(axis=1)
        out = np.asarray(self.overall, dtype=float)[index]
        keys = pd.Series(modules).astype(object) if modules is not None else None
        if keys is not None:
            for m, rates in self.modules.items():
                hit = (keys == m).to_numpy()
                out[hit] = np.asarray(rates)[index[hit]]
        if self.slope is None or self.intercepts is None or recent is None:
            return out
        x = np.asarray(recent, dtype=float)
        ok = np.isfinite(x)
        z = np.asarray(self.intercepts)[index] + self.slope * _logit(np.where(ok, x, 0.5))
        if keys is not None:
            for m, devs in (self.effects or {}).items():
                hit = (keys == m).to_numpy()
                z[hit] += np.asarray(devs)[index[hit]]
        return np.where(ok, 1 / (1 + np.exp(-z)), out)

    def rate_of(self, frame: pd.DataFrame) -> np.ndarray:
        """The estimated churn rate of each row's course run (`rate` on a feature frame)."""
        modules = frame["module"].astype(str).to_numpy() if "module" in frame else None
        cutoffs = frame["cutoff"] if "cutoff" in frame else frame["cutoff_day"]
        recent = (
            frame["run_recent_withdrawal"].to_numpy(float)
            if "run_recent_withdrawal" in frame
            else None
        )
        return self.rate(modules, cutoffs.to_numpy(float), recent)

    def logit(self, frame: pd.DataFrame) -> np.ndarray:
        return _logit(self.rate_of(frame))

    def to_config(self) -> dict[str, Any]:
        return {
            "cutoffs": self.cutoffs,
            "overall": self.overall,
            "modules": self.modules,
            "slope": self.slope,
            "intercepts": self.intercepts,
            "effects": self.effects,
        }

    @classmethod
    def from_config(cls, d: dict[str, Any] | None) -> RunPrior | None:
        if not d:
            return None
        return cls(
            [int(c) for c in d["cutoffs"]],
            list(d["overall"]),
            dict(d["modules"]),
            None if d.get("slope") is None else float(d["slope"]),
            None if d.get("intercepts") is None else [float(v) for v in d["intercepts"]],
            None if d.get("effects") is None else dict(d["effects"]),
        )


def _variance_parts(z: pd.Series, rows: pd.DataFrame) -> tuple[pd.Series, pd.Series, float, float]:
    """Per module, from `z` (one value per run, index (module, run)): the mean and the
    number of runs, then w2 (spread between runs of one module; the sampling noise from
    `rows` mean / count when no module has 2 runs) and the raw tau2 (spread of the
    module means beyond w2 / k; may be negative, NaN with fewer than 2 modules)."""
    r = np.clip(rows["mean"].to_numpy(float), 0.005, 0.995)
    sampling = 1.0 / (rows["count"].to_numpy(float) * r * (1 - r))
    by_module = z.groupby(level=0)
    k = by_module.size()
    means = by_module.mean()
    within = by_module.var(ddof=1).dropna()
    w2 = float(within.mean()) if len(within) else float(np.mean(sampling))
    tau2 = float(np.var(means, ddof=1)) - w2 / float(k.mean()) if len(means) >= 2 else math.nan
    return means, k, w2, tau2


def _shrunk_effects(z: pd.Series, rows: pd.DataFrame) -> dict[str, float]:
    """Empirical Bayes per module: each module's mean of `z` (centred on the pooled
    level) shrunk towards 0 by tau2 / (tau2 + w2 / k) (`_variance_parts`). Modules that
    differ no more than their runs do get 0."""
    means, k, w2, tau2 = _variance_parts(z, rows)
    out = {str(m): 0.0 for m in means.index}
    if len(means) >= 2 and tau2 > 0:
        for m in means.index:
            out[str(m)] = tau2 / (tau2 + w2 / float(k[m])) * float(means[m])
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 0.005, 0.995)
    return np.log(p / (1 - p))


class Factor(NamedTuple):
    feature: str
    text: str
    contribution: float  # signed, in logit units; > 0 pushes towards churn


@dataclass
class ChurnPrediction:
    course_id: Any
    learner_id: Any
    cutoff: int
    probability: float
    risk_band: str  # "low" | "medium" | "high"
    top_factors: list[Factor]


@dataclass
class ChurnSettings:
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.3
    seq_hidden: int = 16
    use_sequence: bool = False  # the GRU branch lost on validation (docs/churn-model.md)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 512
    max_epochs: int = 15
    # and at most this many Adam steps per network while early stopping (the epochs cap
    # shrinks as the rows grow), so a retrain's cost grows with its rows, not also with
    # more epochs. On all of OULAD (115 steps per epoch) the 15 epochs bind first and
    # the best epochs came at 230-345 steps (docs/churn-model.md, "Training budget").
    max_steps: int | None = 1500
    patience: int = 5  # 3 stopped some experts at a noisy epoch-2 peak
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    # True: one expert per training cut-off behind a router (nearest cut-off). With the
    # run-level inputs out and the module base rate as an offset, one pooled ensemble
    # over all cut-offs (the cut-off day an input) won on validation (docs/churn-model.md)
    per_cutoff: bool = False
    pos_weight: str | float | None = "sqrt"  # "sqrt" | "balanced" | number | None
    refit: bool = True
    # Warm start (a previous predictor given to train_churn_model): at most this many
    # epochs per network, starting from the previous weights.
    warm_max_epochs: int = 5
    num_threads: int = 1  # small nets: more threads only add overhead on a busy 2-core box
    # flat features the network does not read (run-level constants, see features.RUN_LEVEL)
    exclude: tuple[str, ...] = tuple(RUN_LEVEL)
    # the course module's churn rate as a fixed logit offset (`RunPrior`)
    run_prior: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        d["exclude"] = list(self.exclude)
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


def _pos_weight(setting, labels: np.ndarray) -> float | None:
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


class ChurnPredictor:
    """Preprocessing + network + calibration + risk bands; the serving object."""

    def __init__(
        self,
        preprocessor: Preprocessor,
        seq_scale: np.ndarray,
        module: nn.Module,
        arch: dict[str, Any],
        platt: tuple[float, float] = (1.0, 0.0),
        thresholds: tuple[float, float] = (0.1, 0.3),
        baseline_flat: np.ndarray | None = None,
        baseline_seq: np.ndarray | None = None,
        n_weeks: int = 24,
        channels: list[str] | None = None,
        info: dict[str, Any] | None = None,
        prior: RunPrior | None = None,
    ):
        self.preprocessor = preprocessor
        self.prior = prior
        self.seq_scale = np.asarray(seq_scale, dtype=np.float32)
        self.module = module
        self.arch = arch
        self.platt = (float(platt[0]), float(platt[1]))
        self.thresholds = (float(thresholds[0]), float(thresholds[1]))
        n_in = len(preprocessor.output_columns) + (1 if prior is not None else 0)
        self.n_weeks = n_weeks
        self.channels = list(channels or SEQ_CHANNELS)
        # one baseline per expert cut-off (row k for baseline_cutoffs[k])
        self.baseline_flat = (
            np.zeros((1, n_in), np.float32)
            if baseline_flat is None
            else np.asarray(baseline_flat, np.float32).reshape(-1, n_in)
        )
        self.baseline_seq = (
            np.zeros((1, n_weeks, len(self.channels)), np.float32)
            if baseline_seq is None
            else np.asarray(baseline_seq, np.float32).reshape(-1, n_weeks, len(self.channels))
        )
        self.baseline_cutoffs = [float("nan")] * len(self.baseline_flat)
        self.info = info or {}

    # ---- inputs --------------------------------------------------------------
    def inputs(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        values = self.preprocessor.transform_array(frame)
        if self.prior is not None:
            offset = self.prior.logit(frame).astype(np.float32)
            values = np.concatenate([values, offset[:, None]], axis=1)
        flat = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        seq = np.log1p(np.maximum(sequence_array(frame, self.n_weeks, self.channels), 0))
        return flat, torch.from_numpy((seq / self.seq_scale).astype(np.float32))

    def logits(self, frame: pd.DataFrame) -> np.ndarray:
        flat, seq = self.inputs(frame)
        return predict_outputs(self.module, (flat, seq)).numpy().astype(float)

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        a, b = self.platt
        return 1.0 / (1.0 + np.exp(-(a * np.asarray(logits) + b)))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrate(self.logits(frame))

    def band(self, probability: float) -> str:
        low_medium, medium_high = self.thresholds
        if probability >= medium_high:
            return "high"
        if probability >= low_medium:
            return "medium"
        return "low"

    def predict(self, frame: pd.DataFrame, top_k: int = 3) -> list[ChurnPrediction]:
        """Calibrated probability, risk band and top factors per row of `frame`.

        `frame` is the ``ChurnFeatures.frame`` layout (flat + seq columns; key columns
        optional); missing columns are treated as missing values.
        """
        frame = frame.reset_index(drop=True)
        if len(frame) == 0:
            return []
        probs = self.predict_proba(frame)
        factors = self.explain(frame, top_k=top_k) if top_k else [[] for _ in range(len(frame))]
        out = []
        for i in range(len(frame)):
            out.append(
                ChurnPrediction(
                    course_id=_py(frame["course_id"].iloc[i]) if "course_id" in frame else None,
                    learner_id=_py(frame["learner_id"].iloc[i]) if "learner_id" in frame else None,
                    cutoff=int(frame["cutoff"].iloc[i]) if "cutoff" in frame else -1,
                    probability=float(probs[i]),
                    risk_band=self.band(float(probs[i])),
                    top_factors=factors[i],
                )
            )
        return out

    # ---- explanations ------------------------------------------------------------
    def baselines(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """The integrated-gradients baseline of each row: the training mean at its cut-off."""
        cut = np.asarray(self.baseline_cutoffs, dtype=float)
        if len(cut) == 1 or np.isnan(cut).any() or "cutoff" not in frame:
            index = np.zeros(len(frame), dtype=np.int64)
        else:
            rows = frame["cutoff"].to_numpy(float)
            index = np.abs(rows[:, None] - cut[None, :]).argmin(axis=1)
        return (
            torch.from_numpy(self.baseline_flat[index].astype(np.float32)),
            torch.from_numpy(self.baseline_seq[index].astype(np.float32)),
        )

    def attributions(self, frame: pd.DataFrame, steps: int = 16) -> pd.DataFrame:
        """Integrated gradients (logit units) grouped by source feature, one row per learner."""
        flat, seq = self.inputs(frame)
        b_flat, b_seq = self.baselines(frame)
        d_flat, d_seq = flat - b_flat, seq - b_seq
        g_flat = torch.zeros_like(flat)
        g_seq = torch.zeros_like(seq)
        self.module.eval()
        alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
        with torch.enable_grad():
            for alpha in alphas:
                xf = (b_flat + alpha * d_flat).detach().requires_grad_(True)
                xs = (b_seq + alpha * d_seq).detach().requires_grad_(True)
                out = self.module(xf, xs)
                gf, gs = torch.autograd.grad(out.sum(), (xf, xs), allow_unused=True)
                g_flat += gf if gf is not None else 0
                g_seq += gs if gs is not None else 0
        a_flat = (d_flat * g_flat / steps).numpy()
        a_seq = (d_seq * g_seq / steps).numpy()  # oldest week first
        groups: dict[str, np.ndarray] = {}
        for j, col in enumerate(self.preprocessor.output_columns):
            src = self.preprocessor.source_of(col)
            groups[src] = groups.get(src, 0) + a_flat[:, j]
        if self.prior is not None:
            groups[PRIOR_FEATURE] = a_flat[:, -1]
        groups["weekly_activity_recent"] = a_seq[:, -RECENT_WEEKS:, :].sum(axis=(1, 2))
        groups["weekly_activity_earlier"] = a_seq[:, :-RECENT_WEEKS, :].sum(axis=(1, 2))
        return pd.DataFrame(groups, index=frame.index)

    def explain(self, frame: pd.DataFrame, top_k: int = 3) -> list[list[Factor]]:
        from churn.model.explain import describe

        attr = self.attributions(frame)
        values = attr.to_numpy()
        if self.prior is not None:
            frame = frame.assign(**{PRIOR_FEATURE: self.prior.rate_of(frame)})
        names = list(attr.columns)
        result = []
        order = np.argsort(-np.abs(values), axis=1)[:, :top_k]
        for i in range(len(frame)):
            row = frame.iloc[i]
            result.append(
                [Factor(names[j], describe(names[j], row), float(values[i, j])) for j in order[i]]
            )
        return result

    # ---- state -------------------------------------------------------------------
    def to_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"module.{k}": v.detach().clone() for k, v in self.module.state_dict().items()}
        tensors["seq_scale"] = torch.from_numpy(self.seq_scale.copy())
        tensors["baseline_flat"] = torch.from_numpy(self.baseline_flat.astype(np.float32))
        tensors["baseline_seq"] = torch.from_numpy(self.baseline_seq.astype(np.float32))
        config = {
            "baseline_cutoffs": [None if math.isnan(c) else c for c in self.baseline_cutoffs],
            "kind": "churn",
            "version": STATE_VERSION,
            "arch": self.arch,
            "preprocessor": self.preprocessor.to_config(),
            "platt": list(self.platt),
            "thresholds": list(self.thresholds),
            "n_weeks": self.n_weeks,
            "channels": self.channels,
            "info": self.info,
            "prior": self.prior.to_config() if self.prior is not None else None,
        }
        return tensors, config

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], config: dict[str, Any]):
        if config.get("kind") != "churn" or config.get("version") != STATE_VERSION:
            raise ValueError("not a churn model state of a supported version")
        arch = config["arch"]
        module = build_module(arch)
        module.load_state_dict(
            {k[len("module.") :]: v for k, v in tensors.items() if k.startswith("module.")}
        )
        module.eval()
        predictor = cls(
            preprocessor=Preprocessor.from_config(config["preprocessor"]),
            seq_scale=tensors["seq_scale"].numpy(),
            module=module,
            arch=arch,
            platt=tuple(config["platt"]),
            thresholds=tuple(config["thresholds"]),
            baseline_flat=tensors["baseline_flat"].numpy(),
            baseline_seq=tensors["baseline_seq"].numpy(),
            n_weeks=int(config["n_weeks"]),
            channels=list(config["channels"]),
            info=config.get("info", {}),
            prior=RunPrior.from_config(config.get("prior")),
        )
        cuts = config.get("baseline_cutoffs") or [None]
        predictor.baseline_cutoffs = [float("nan") if c is None else float(c) for c in cuts]
        return predictor


def _py(value):
    return value.item() if hasattr(value, "item") else value


def build_module(arch: dict[str, Any]) -> nn.Module:
    """The module of an architecture: an ensemble, or a router over per-cut-off ensembles."""
    if arch.get("route_cutoffs"):
        member = {**arch, "route_cutoffs": None}
        experts = [build_module(member) for _ in arch["route_cutoffs"]]
        return ChurnRouter(
            experts, arch["route_cutoffs"], arch["route_column"], 0.0, 1.0
        )  # the scale buffer is restored by load_state_dict
    return _ensemble(arch)


def _ensemble(arch: dict[str, Any]) -> ChurnEnsemble:
    nets = [
        ChurnNet(
            arch["n_flat"],
            arch["n_channels"],
            hidden=arch["hidden"],
            layers=arch["layers"],
            dropout=arch["dropout"],
            seq_hidden=arch["seq_hidden"],
            use_sequence=arch["use_sequence"],
            offset=bool(arch.get("offset", False)),
        )
        for _ in range(arch["n_members"])
    ]
    return ChurnEnsemble(nets)


def _fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: a, b minimising the log loss of sigmoid(a * logit + b)."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    z = torch.tensor(logits, dtype=torch.float64)
    t = torch.tensor(y, dtype=torch.float64)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(params[0] * z + params[1], t)
        loss.backward()
        return loss

    opt.step(closure)
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
) -> tuple[ChurnPredictor, TrainReport]:
    """Train, calibrate and band; `val` must be later in time than `train`.

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
        return _train(train.labelled(), val.labelled(), settings, start, warm_start)
    finally:
        torch.set_num_threads(threads)


def _nearest(values: np.ndarray, cutoffs: list[int]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.asarray(cutoffs)[
        np.abs(values[:, None] - np.asarray(cutoffs)[None, :]).argmin(axis=1)
    ]


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
    fresh = _ensemble({**arch, "n_members": 1}).nets[0].state_dict()
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
) -> tuple[int, list[float | None]]:
    """Train one network in place (Adam, BCE with ``pos_weight``, gradient clipping);
    with `val_set`, early stopping on the mean per-cut-off validation AUC, restoring
    the best epoch's weights. Returns (best epoch or epochs run, validation history).

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
        x, q, y = train_set.tensors
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
                loss = loss_fn(net(x[b], q[b] if reads_sequence else no_sequence), y[b])
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


def _epochs_cap(s: ChurnSettings, n_rows: int, *, warm: bool) -> int:
    """Epochs one network may run while early stopping: `max_epochs` (or
    `warm_max_epochs` from a warm start), fewer where that many epochs of `n_rows`
    would take more than `max_steps` optimizer steps; at least one."""
    cap = min(s.max_epochs, s.warm_max_epochs) if warm else s.max_epochs
    if s.max_steps is None or n_rows == 0:
        return cap
    steps_per_epoch = math.ceil(n_rows / s.batch_size)
    return max(1, min(cap, s.max_steps // steps_per_epoch))


def _train_members(arch, config, seeds, train_set, val_set, val_groups, init=None):
    """One network per seed, early-stopped on `val_set` (mean per-cut-off AUC); each
    starts from `init[k]` (a state dict) when given."""

    nets: list[nn.Module] = []
    epochs: list[int] = []
    history: list[list[float | None]] = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = _ensemble({**arch, "n_members": 1}).nets[0]
        if init is not None:
            net.load_state_dict(init[len(nets)])
        cfg = TrainConfig(**{**config.to_dict(), "seed": seed})
        best, hist = _fit_member(net, train_set, val_set, cfg, val_groups)
        nets.append(net)
        epochs.append(best)
        history.append(hist)
    return nets, epochs, history


def _modules(features: ChurnFeatures) -> np.ndarray | None:
    frame = features.frame
    return frame["module"].astype(str).to_numpy() if "module" in frame else None


def _fit_prior(features: ChurnFeatures) -> RunPrior:
    frame = features.frame
    return RunPrior.fit(
        _modules(features),
        frame["cutoff"].to_numpy(),
        features.labels,
        frame["course_id"].astype(str).to_numpy(),
        frame["run_recent_withdrawal"].to_numpy(float)
        if "run_recent_withdrawal" in frame
        else None,
    )


def own_run_logit(features: ChurnFeatures) -> np.ndarray:
    """Logit of each row's own course run churn rate at its cut-off."""
    frame = features.frame
    rate = (
        pd.Series(features.labels)
        .groupby([frame["course_id"].astype(str).to_numpy(), frame["cutoff"].to_numpy()])
        .transform("mean")
    )
    return _logit(rate.to_numpy(float))


def _train(
    train: ChurnFeatures,
    val: ChurnFeatures,
    s: ChurnSettings,
    start,
    warm_start: ChurnPredictor | None = None,
):
    excluded = set(s.exclude) - {"cutoff_day"}  # the router reads the cut-off day
    pre = Preprocessor.fit(train.frame, {k: v for k, v in train.kinds.items() if k not in excluded})
    raw_seq = np.log1p(np.maximum(train.sequence(), 0))
    seq_scale = raw_seq.reshape(-1, raw_seq.shape[2]).std(axis=0) + 1e-6
    cutoffs = sorted(int(c) for c in np.unique(train.frame["cutoff"]))
    per_cutoff = s.per_cutoff and len(cutoffs) > 1
    prior = _fit_prior(train) if s.run_prior else None
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
        _ensemble(arch),
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
            max_epochs=_epochs_cap(s, int(tm.sum()), warm=warm is not None),
            patience=s.patience,
            pos_weight=_pos_weight(s.pos_weight, train.labels[tm]),
        )
        group_val = has_val and len(np.unique(val.labels[vm])) == 2
        nets, epochs, hist = _train_members(
            arch,
            config,
            s.seeds,
            TensorDataset(x_tr[tm], q_tr[tm], y_tr[tm]),
            TensorDataset(x_va[vm], q_va[vm], y_va[vm]) if group_val else None,
            val_groups[vm],
            init=warm[gi] if warm is not None else None,
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
            nets = []
            for seed, n_epochs in zip(s.seeds, epochs, strict=True):
                torch.manual_seed(seed)
                net = _ensemble({**arch, "n_members": 1}).nets[0]
                if warm is not None:
                    net.load_state_dict(warm[gi][len(nets)])
                cfg = TrainConfig(**{**config.to_dict(), "seed": seed, "max_epochs": n_epochs})
                _fit_member(net, TensorDataset(x_all, q_all, y_all), None, cfg)
                nets.append(net)
            refit.append(ChurnEnsemble(nets))
        predictor.module = assemble(refit)
        if prior is not None:
            predictor.prior = _fit_prior(ChurnFeatures.concat([train, val]))
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
    }
    return predictor, report
