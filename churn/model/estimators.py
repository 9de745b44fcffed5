"""The models `evaluate_churn` compares, behind one small interface.

    model = make_models(settings)[k]
    model.fit(train, inner_val)      # chooses its own settings on inner_val, refits on both
    probs = model.predict_proba(frame)

``train`` / ``inner_val`` are labelled `ChurnFeatures`; ``inner_val`` is the latest part
of the training data (`evaluate.split_by_time`) and nothing of the test data. Every model
chooses what it tunes on the same ``inner_val`` and then refits on train + inner_val;
``threshold`` is its F1-optimal threshold on inner_val (from the model fitted on train).

* ``product``: `train_churn_model` (the served `ChurnPredictor`), sharing the HGB peer
  as its teacher when that was fitted on the same rows with the same settings;
* ``logreg``: `LogisticRegression` per cut-off on the preprocessed flat features + module,
  C chosen per cut-off;
* ``hgb``: `TunedHGB` (the product's teacher) per cut-off on the raw flat features +
  module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from churn.model.features import ChurnFeatures
from churn.model.predictor import ChurnPredictor
from churn.model.teacher import HGBSettings, TunedHGB, nearest_cutoff, with_module
from churn.model.training import ChurnSettings, train_churn_model
from eduplatform.ml.metrics import best_f1_threshold, roc_auc
from eduplatform.ml.preprocess import Preprocessor

PRODUCT = "product"
LOGREG = "logreg"
HGB = "hgb"
MODELS = (PRODUCT, LOGREG, HGB)


@dataclass
class EvalSettings:
    """Every setting of the compared models (the peers' grids are searched on inner_val)."""

    product: ChurnSettings = field(default_factory=ChurnSettings)
    logreg_c_grid: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
    hgb: HGBSettings = field(default_factory=HGBSettings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product.to_dict(),
            "logreg_c_grid": list(self.logreg_c_grid),
            "hgb": self.hgb.to_dict(),
        }


class Estimator(Protocol):
    name: str
    chosen: dict[str, Any]
    threshold: float

    def fit(self, train: ChurnFeatures, inner_val: ChurnFeatures) -> Estimator: ...

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...


def _cut(features: ChurnFeatures) -> np.ndarray:
    return np.asarray(features.frame["cutoff"].to_numpy())


class SharedHGB(TunedHGB):
    """The tuned HGB peer; remembers the rows it was fitted on so that the product can
    take it as its teacher instead of fitting the same model again."""

    fitted_on: tuple[int, int] | None = None

    def fit(self, train: ChurnFeatures, inner_val: ChurnFeatures) -> SharedHGB:
        super().fit(train, inner_val)
        self.fitted_on = (id(train), id(inner_val))
        return self


class ProductModel:
    name = PRODUCT

    def __init__(self, settings: ChurnSettings | None = None, teacher: SharedHGB | None = None):
        self.settings = settings or ChurnSettings()
        self.teacher = teacher
        self.chosen: dict[str, Any] = {}
        self.threshold = 0.5
        self.predictor: ChurnPredictor | None = None
        self.report: Any = None

    def fit(self, train: ChurnFeatures, inner_val: ChurnFeatures) -> ProductModel:
        shared = self.teacher
        usable = (
            shared is not None
            and shared.fitted_on == (id(train), id(inner_val))
            and shared.settings == self.settings.teacher
        )
        self.predictor, self.report = train_churn_model(
            train, inner_val, self.settings, teacher=shared if usable else None
        )
        self.threshold = self.predictor.thresholds[1]
        self.chosen = {
            "best_epochs": self.report.best_epochs,
            "inner_val_auc": self.report.val_auc,
            "platt": list(self.predictor.platt),
            "teacher": self.predictor.info.get("teacher"),
            "cpu_seconds": self.report.cpu_seconds,
        }
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        assert self.predictor is not None, "fit first"
        return self.predictor.predict_proba(frame)


class TunedLogReg:
    """Per cut-off: `Preprocessor` + `LogisticRegression`, C chosen on inner_val."""

    name = LOGREG

    def __init__(self, c_grid: tuple[float, ...] = EvalSettings().logreg_c_grid):
        self.c_grid = tuple(c_grid)
        self.chosen: dict[str, Any] = {}
        self.threshold = 0.5
        self.models: dict[int, tuple[Preprocessor, LogisticRegression]] = {}

    @staticmethod
    def _fit_one(f: ChurnFeatures, c_value: float) -> tuple[Preprocessor, LogisticRegression]:
        pre = Preprocessor.fit(f.frame, f.kinds)
        model = LogisticRegression(C=c_value, max_iter=3000)
        return pre, model.fit(pre.transform_array(f.frame), f.labels)

    def fit(self, train: ChurnFeatures, inner_val: ChurnFeatures) -> TunedLogReg:
        train, inner_val = with_module(train.labelled()), with_module(inner_val.labelled())
        both = ChurnFeatures.concat([train, inner_val])
        val_probs = np.full(len(inner_val), np.nan)
        with threadpool_limits(limits=1):
            for c in sorted(int(v) for v in np.unique(_cut(train))):
                tr = train.subset(_cut(train) == c)
                va_rows = _cut(inner_val) == c
                va = inner_val.subset(va_rows)
                if len(np.unique(tr.labels)) < 2:
                    continue
                best_c, best_auc, best_p = self.c_grid[-1], float("nan"), np.zeros(len(va))
                if len(va) and len(np.unique(va.labels)) == 2:
                    for value in self.c_grid:
                        pre, m = self._fit_one(tr, value)
                        p = m.predict_proba(pre.transform_array(va.frame))[:, 1]
                        auc = roc_auc(va.labels, p)
                        if np.isnan(best_auc) or auc > best_auc + 1e-9:
                            best_c, best_auc, best_p = value, auc, p
                    val_probs[va_rows] = best_p
                self.chosen[str(c)] = {"C": best_c, "inner_auc": best_auc}
                self.models[c] = self._fit_one(both.subset(_cut(both) == c), best_c)
        known = ~np.isnan(val_probs)
        if known.any() and len(np.unique(inner_val.labels[known])) == 2:
            self.threshold = float(best_f1_threshold(inner_val.labels[known], val_probs[known]))
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.full(len(frame), np.nan)
        grid = sorted(self.models)
        if not grid or not len(frame):
            return out
        near = nearest_cutoff(frame["cutoff"].to_numpy(), grid)
        with threadpool_limits(limits=1):
            for c in grid:
                rows = near == c
                if rows.any():
                    pre, m = self.models[c]
                    out[rows] = m.predict_proba(pre.transform_array(frame.loc[rows]))[:, 1]
        return out


def make_models(settings: EvalSettings | None = None) -> list[Estimator]:
    """The compared models, in fitting order: the HGB peer first (the product reuses it
    as its teacher when it was fitted on the same rows)."""
    s = settings or EvalSettings()
    hgb = SharedHGB(s.hgb)
    hgb.name = HGB
    return [hgb, TunedLogReg(s.logreg_c_grid), ProductModel(s.product, teacher=hgb)]
