"""Permutation ranking of the churn model's source features (#22 item 5).

`permutation_ranking(predictor, rows)`: for each source feature the network or the run
base rate reads, its values are permuted across the rows of each cut-off (so the cut-off
mix is kept) and the drop of the mean per-cut-off AUC is measured. Stored with each model
version (`churn.services.train`: ``metrics["feature_ranking"]``), largest drop first.
A drop near 0 (or below) means the model does not need the feature on these rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from churn.model.features import ChurnFeatures
from churn.model.predictor import ChurnPredictor
from eduplatform.ml.metrics import roc_auc


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


def permutation_ranking(
    predictor: ChurnPredictor,
    rows: ChurnFeatures,
    *,
    seed: int = 0,
    max_rows: int = 10_000,
) -> list[dict[str, float | str]]:
    """[{"feature", "auc_drop"}], largest drop first; [] without two classes."""
    rows = rows.labelled()
    if len(rows) == 0 or len(np.unique(rows.labels)) < 2:
        return []
    rng = np.random.default_rng(seed)
    if len(rows) > max_rows:
        rows = rows.subset(np.sort(rng.choice(len(rows), size=max_rows, replace=False)))
    frame, y = rows.frame, rows.labels
    cut = frame["cutoff"].to_numpy()
    base = _mean_cutoff_auc(y, predictor.predict_proba(frame), cut)
    groups = [np.flatnonzero(cut == c) for c in np.unique(cut)]
    out: list[dict[str, float | str]] = []
    for name in source_features(predictor):
        if name not in frame:
            continue
        shuffled = frame.copy()
        column = frame[name].to_numpy(copy=True)
        for index in groups:
            column[index] = column[rng.permutation(index)]
        shuffled[name] = pd.Series(column, index=frame.index).astype(frame[name].dtype)
        auc = _mean_cutoff_auc(y, predictor.predict_proba(shuffled), cut)
        out.append({"feature": name, "auc_drop": base - auc})
    out.sort(key=lambda r: -float(r["auc_drop"]))
    return out
