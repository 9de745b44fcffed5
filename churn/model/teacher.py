"""The per-cut-off HGB teacher of the churn network (training only, never served).

`TunedHGB(settings).fit(train, inner_val)`: for each cut-off, one
`HistGradientBoostingClassifier` per grid point (``max_leaf_nodes`` in
``settings.leaf_nodes``; learning rate, L2 and minimum leaf size fixed) is fitted on
`train` with up to ``max_iter`` iterations and scored on `inner_val` every
``eval_every`` iterations (staged predictions); the best (shape, iterations) by
inner-validation AUC is refitted on train + inner_val.

* `stage_proba(frame)`: the chosen model as fitted on `train` alone (the soft targets
  of the network's early-stopping stage, which must not have seen `inner_val`);
* `predict_proba(frame)`: the refit (the soft targets of the refit, and the tuned
  HGB peer of `evaluate_churn`: the same object serves as both).

Inputs: every flat feature (the run-level ones included) plus the course module as a
categorical, raw values, categoricals natively (`hgb_frame`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from churn.model.features import CATEGORICAL, ChurnFeatures
from eduplatform.ml.metrics import roc_auc


@dataclass
class HGBSettings:
    """The teacher / HGB peer grid (research report: the 12-point grid at lr 0.05 gave the
    same fold AUC at 10x the time, so this 2-point grid is the product's)."""

    learning_rate: float = 0.1
    leaf_nodes: tuple[int, ...] = (7, 15)
    l2: float = 1.0
    min_samples_leaf: int = 100
    max_iter: int = 200
    eval_every: int = 10

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["leaf_nodes"] = list(self.leaf_nodes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | HGBSettings) -> HGBSettings:
        if isinstance(d, HGBSettings):
            return d
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "leaf_nodes" in known:
            known["leaf_nodes"] = tuple(int(v) for v in known["leaf_nodes"])
        return cls(**known)


def with_module(features: ChurnFeatures) -> ChurnFeatures:
    """The flat features plus the course module as a categorical (the product reads the
    module through its base-rate table, so the peers and the teacher get it too)."""
    if "module" not in features.frame or "module" in features.kinds:
        return features
    return ChurnFeatures(
        frame=features.frame,
        labels=features.labels,
        flat_columns=[*features.flat_columns, "module"],
        seq_columns=features.seq_columns,
        kinds={**features.kinds, "module": CATEGORICAL},
        n_weeks=features.n_weeks,
        channels=features.channels,
    )


def category_levels(frame: pd.DataFrame, kinds: dict[str, str]) -> dict[str, list[str]]:
    """Every categorical column's levels in `frame`, plus "missing"."""
    return {
        c: sorted(
            set(frame[c].astype(object).where(frame[c].notna(), "missing").astype(str))
            | {"missing"}
        )
        for c, k in kinds.items()
        if k == CATEGORICAL
    }


def hgb_frame(
    frame: pd.DataFrame, features: ChurnFeatures, levels: dict[str, list[str]]
) -> pd.DataFrame:
    """The flat columns of `frame`, categoricals as pandas categories of `levels`."""
    out = frame[features.flat_columns].copy()
    for col, kind in features.kinds.items():
        if kind == CATEGORICAL:
            values = out[col].astype(object).where(out[col].notna(), "missing").astype(str)
            values = values.where(values.isin(levels[col]), "missing")  # unseen level
            out[col] = pd.Categorical(values, categories=levels[col])
    return out


def nearest_cutoff(values: np.ndarray, grid: list[int]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    g = np.asarray(grid)
    return np.asarray(g[np.abs(values[:, None] - g[None, :]).argmin(axis=1)])


def _cut(features: ChurnFeatures) -> np.ndarray:
    return np.asarray(features.frame["cutoff"].to_numpy())


class TunedHGB:
    """Per-cut-off HGB, shape and iterations chosen on `inner_val`, refit on both."""

    name = "hgb"

    def __init__(self, settings: HGBSettings | None = None):
        self.settings = settings or HGBSettings()
        self.chosen: dict[str, Any] = {}
        self.models: dict[int, HistGradientBoostingClassifier] = {}
        self.stage_models: dict[int, tuple[HistGradientBoostingClassifier, int]] = {}
        self.threshold = 0.5
        self.features: ChurnFeatures | None = None
        self.levels: dict[str, list[str]] = {}
        # per cut-off: numeric columns with no value in its training rows (HGB cannot bin
        # them; they are read as 0, which no tree splits on)
        self.empty: dict[int, list[str]] = {}

    def _model(self, leaves: int, n_iter: int) -> HistGradientBoostingClassifier:
        s = self.settings
        return HistGradientBoostingClassifier(
            categorical_features="from_dtype",
            learning_rate=s.learning_rate,
            max_leaf_nodes=leaves,
            l2_regularization=s.l2,
            min_samples_leaf=s.min_samples_leaf,
            max_iter=n_iter,
            early_stopping=False,
            random_state=0,
        )

    def fit(self, train: ChurnFeatures, inner_val: ChurnFeatures) -> TunedHGB:
        train, inner_val = with_module(train.labelled()), with_module(inner_val.labelled())
        both = ChurnFeatures.concat([train, inner_val])
        self.features = train
        self.levels = category_levels(both.frame, train.kinds)
        s = self.settings
        with threadpool_limits(limits=1):
            for c in sorted(int(v) for v in np.unique(_cut(train))):
                tr = train.subset(_cut(train) == c)
                va = inner_val.subset(_cut(inner_val) == c)
                self.empty[c] = [
                    col
                    for col, kind in train.kinds.items()
                    if kind != CATEGORICAL and tr.frame[col].isna().all()
                ]
                x_tr = self._x(tr.frame, c)
                can_tune = len(va) > 0 and len(np.unique(va.labels)) == 2
                if len(np.unique(tr.labels)) < 2:
                    continue  # one class: nothing to learn at this cut-off
                best: tuple[int, int, float, HistGradientBoostingClassifier | None] = (
                    s.leaf_nodes[0],
                    s.max_iter,
                    float("nan"),
                    None,
                )
                for leaves in s.leaf_nodes:
                    model = self._model(leaves, s.max_iter).fit(x_tr, tr.labels)
                    if not can_tune:
                        best = (leaves, s.max_iter, float("nan"), model)
                        break
                    x_va = self._x(va.frame, c)
                    for i, p in enumerate(model.staged_predict_proba(x_va), start=1):
                        if i % s.eval_every == 0 or i == model.n_iter_:
                            auc = roc_auc(va.labels, p[:, 1])
                            if best[3] is None or auc > best[2] + 1e-5:
                                best = (leaves, i, auc, model)
                leaves, n_iter, auc, model = best
                assert model is not None
                self.stage_models[c] = (model, n_iter)
                self.chosen[str(c)] = {
                    "max_leaf_nodes": leaves,
                    "max_iter": n_iter,
                    "inner_auc": auc,
                }
                full = both.subset(_cut(both) == c)
                x_full = self._x(full.frame, c)
                self.models[c] = self._model(leaves, n_iter).fit(x_full, full.labels)
        if len(inner_val) and len(np.unique(inner_val.labels)) == 2 and self.stage_models:
            from eduplatform.ml.metrics import best_f1_threshold

            self.threshold = float(
                best_f1_threshold(inner_val.labels, self.stage_proba(inner_val.frame))
            )
        return self

    def _x(self, frame: pd.DataFrame, cutoff: int) -> pd.DataFrame:
        assert self.features is not None, "fit first"
        out = hgb_frame(frame, self.features, self.levels)
        empty = self.empty.get(cutoff, [])
        if empty:
            out[empty] = 0.0
        return out

    def _proba(self, frame: pd.DataFrame, stage: bool) -> np.ndarray:
        out = np.full(len(frame), np.nan)
        grid = sorted(self.stage_models if stage else self.models)
        if not grid or not len(frame):
            return out
        near = nearest_cutoff(frame["cutoff"].to_numpy(), grid)
        with threadpool_limits(limits=1):
            for c in grid:
                rows = near == c
                if not rows.any():
                    continue
                x = self._x(frame.loc[rows], c)
                if stage:
                    model, n_iter = self.stage_models[c]
                    p = None
                    for i, staged in enumerate(model.staged_predict_proba(x), start=1):
                        p = staged
                        if i == n_iter:
                            break
                    assert p is not None
                    out[rows] = p[:, 1]
                else:
                    out[rows] = self.models[c].predict_proba(x)[:, 1]
        return out

    def stage_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The chosen shape and iterations as fitted on `train` alone."""
        return self._proba(frame, stage=True)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The refit on train + inner_val."""
        return self._proba(frame, stage=False)


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), eps, 1 - eps)
    return np.asarray(np.log(q / (1 - q)))


def within_run_targets(probs: np.ndarray, frame: pd.DataFrame, own_logit: np.ndarray) -> np.ndarray:
    """The teacher's probabilities moved to each row's own run level:
    ``sigmoid(z - mean over (run, cut-off) of z + own_logit)``, z the teacher's logit
    (the network has the run level as its offset; the teacher's between-run level would
    fight it)."""
    z = pd.Series(logit(probs))
    keys = [frame["course_id"].astype(str).to_numpy(), frame["cutoff"].to_numpy()]
    moved = z - z.groupby(keys).transform("mean") + np.asarray(own_logit, dtype=float)
    return np.asarray(1.0 / (1.0 + np.exp(-moved.to_numpy(float))))
