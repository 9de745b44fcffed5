"""The serving object: preprocessing + network + calibration + risk bands + explanations.

Explanations are integrated gradients of the logit w.r.t. the transformed inputs, from
the training mean at the row's cut-off as baseline, summed per source feature and
described in plain words (`churn.model.explain`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from churn.model.explain import Phrase
from churn.model.features import SEQ_CHANNELS, sequence_array
from churn.model.net import RECENT_WEEKS, STATE_VERSION, build_module
from churn.model.prior import PRIOR_FEATURE, RunPrior
from eduplatform.ml.preprocess import Preprocessor
from eduplatform.ml.train import predict as predict_outputs

# attribution groups that are the same for every learner of a run at a cut-off
RUN_FACTORS = frozenset({PRIOR_FEATURE, "cutoff_day"})


class Factor(NamedTuple):
    feature: str
    text: str  # in English (the API and the CSV export)
    contribution: float  # signed, in logit units; > 0 pushes towards churn
    # `text` before translation: pages say it in the reader's language (churn/factor_texts.py).
    phrase: Phrase | None = None


@dataclass
class ChurnPrediction:
    course_id: Any
    learner_id: Any
    cutoff: int
    probability: float
    risk_band: str  # "low" | "medium" | "high"
    top_factors: list[Factor]


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
        from churn.model.explain import describe_phrase

        attr = self.attributions(frame)
        values = attr.to_numpy()
        if self.prior is not None:
            frame = frame.assign(**{PRIOR_FEATURE: self.prior.rate_of(frame)})
        names = list(attr.columns)
        result = []
        # Factors are about the learner (#27 item 2): the run's base rate and the day are
        # the same for every classmate, so they are never offered as a reason.
        strength = np.abs(values)
        strength[:, [j for j, n in enumerate(names) if n in RUN_FACTORS]] = -1.0
        order = np.argsort(-strength, axis=1, kind="stable")[:, :top_k]
        for i in range(len(frame)):
            row = frame.iloc[i]
            phrases = [(j, describe_phrase(names[j], row)) for j in order[i]]
            result.append(
                [Factor(names[j], p.english(), float(values[i, j]), p) for j, p in phrases]
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
    def from_state(cls, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> ChurnPredictor:
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


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
