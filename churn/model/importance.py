"""Permutation ranking of the churn model's source features (#22 item 5).

`permutation_ranking(predictor, rows)`: for each source feature the network or the run
base rate reads, its values are permuted across the rows of each cut-off (so the cut-off
mix is kept) and the drop of the mean per-cut-off AUC is measured. Stored with each model
version (`churn.services.train`: ``metrics["feature_ranking"]``), largest drop first.
A drop near 0 (or below) means the model does not need the feature on these rows.

`teacher_selection(predict, rows, names, min_drop)`: the same drop for a frame scorer
(the training's HGB teacher as fitted on the fitting rows, scored on the inner
validation), then the kit's `select_top` keeps the features whose drop reaches
`min_drop`: the selection step of `train_churn_model` (``ChurnSettings.select_min_drop``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from churn.model.features import ChurnFeatures
from churn.model.predictor import ChurnPredictor
from eduplatform.ml.metrics import roc_auc
from eduplatform.ml.select import SelectionResult, select_top


def _mean_cutoff_auc(y: np.ndarray, p: np.ndarray, cut: np.ndarray) -> float:
    aucs = [roc_auc(y[cut == c], p[cut == c]) for c in np.unique(cut)]
    aucs = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def source_features(predictor: ChurnPredictor) -> list[str]:
    """The frame columns the predictor reads (network inputs, then the base rate's)."""
    pre = predictor.preprocessor
    names = list(dict.fromkeys(pre.source_of(c) for c in pre.output_columns))
    if predictor.prior is not None:
        names += [c for c in ("run_recent_withdrawal", "module") if c not in names]
    return names


def _drops(
    predict: Callable[[pd.DataFrame], np.ndarray],
    rows: ChurnFeatures,
    names: list[str],
    seed: int,
    max_rows: int,
) -> dict[str, float]:
    """{feature: drop of the mean per-cut-off AUC when it is permuted within each cut-off}."""
    rows = rows.labelled()
    if len(rows) == 0 or len(np.unique(rows.labels)) < 2:
        return {}
    rng = np.random.default_rng(seed)
    if len(rows) > max_rows:
        rows = rows.subset(np.sort(rng.choice(len(rows), size=max_rows, replace=False)))
    frame, y = rows.frame, rows.labels
    cut = frame["cutoff"].to_numpy()
    base = _mean_cutoff_auc(y, predict(frame), cut)
    groups = [np.flatnonzero(cut == c) for c in np.unique(cut)]
    out: dict[str, float] = {}
    for name in names:
        if name not in frame:
            continue
        shuffled = frame.copy()
        column = frame[name].to_numpy(copy=True)
        for index in groups:
            column[index] = column[rng.permutation(index)]
        shuffled[name] = pd.Series(column, index=frame.index).astype(frame[name].dtype)
        out[name] = base - _mean_cutoff_auc(y, predict(shuffled), cut)
    return out


def permutation_ranking(
    predictor: ChurnPredictor,
    rows: ChurnFeatures,
    *,
    seed: int = 0,
    max_rows: int = 10_000,
) -> list[dict[str, float | str]]:
    """[{"feature", "auc_drop"}], largest drop first; [] without two classes."""
    drops = _drops(predictor.predict_proba, rows, source_features(predictor), seed, max_rows)
    out: list[dict[str, float | str]] = [{"feature": k, "auc_drop": v} for k, v in drops.items()]
    out.sort(key=lambda r: -float(r["auc_drop"]))
    return out


def teacher_selection(
    predict: Callable[[pd.DataFrame], np.ndarray],
    rows: ChurnFeatures,
    names: list[str],
    *,
    min_drop: float,
    seed: int = 0,
    max_rows: int = 10_000,
) -> SelectionResult:
    """Rank `names` by their permutation drop under `predict` on `rows`, keep those whose
    drop is at least `min_drop` (all of them when `rows` has one class)."""
    drops = _drops(predict, rows, names, seed, max_rows)
    if not drops:
        return SelectionResult("permutation", list(names), {}, "no two classes: all kept")
    ranking = SelectionResult(
        method="permutation",
        selected=sorted(drops, key=lambda k: -drops[k]),
        scores=drops,
        reason="ranked by the drop of the teacher's mean per-cut-off inner-validation AUC "
        "when the feature is permuted within each cut-off",
    )
    return select_top(ranking, min_score=min_drop)
