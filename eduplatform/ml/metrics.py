"""Binary classification metrics as dataclasses (thin wrappers over scikit-learn).

A metric that is undefined for the data (AUC with one class only) is NaN rather
than an exception, so a report over many course runs / cut-offs never breaks on
one degenerate group.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import metrics as skm


@dataclass
class CalibrationBin:
    lower: float
    upper: float
    count: int
    mean_predicted: float  # NaN for an empty bin
    fraction_positive: float  # NaN for an empty bin


@dataclass
class CalibrationCurve:
    bins: list[CalibrationBin]
    expected_calibration_error: float  # count-weighted mean |predicted - observed|

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BinaryReport:
    n: int
    positive_rate: float
    roc_auc: float
    pr_auc: float
    f1: float
    threshold: float
    precision: float
    recall: float
    brier: float
    calibration: CalibrationCurve | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def _arrays(
    y_true: npt.ArrayLike, y_prob: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    y = np.asarray(y_true, dtype=float).reshape(-1)
    p = np.asarray(y_prob, dtype=float).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.shape[0]} values, y_prob {p.shape[0]}")
    return y, p


def roc_auc(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> float:
    y, p = _arrays(y_true, y_prob)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(skm.roc_auc_score(y, p))


def pr_auc(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> float:
    """Area under the precision-recall curve (average precision)."""
    y, p = _arrays(y_true, y_prob)
    if y.sum() == 0:
        return float("nan")
    return float(skm.average_precision_score(y, p))


def f1_at(
    y_true: npt.ArrayLike, y_prob: npt.ArrayLike, threshold: float = 0.5
) -> tuple[float, float, float]:
    """(f1, precision, recall) when predicting positive for probability >= threshold."""
    y, p = _arrays(y_true, y_prob)
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


def best_f1_threshold(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> float:
    """The threshold maximising F1 (chosen on validation data, applied to test)."""
    y, p = _arrays(y_true, y_prob)
    if y.sum() == 0:
        return 0.5
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12), 0)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def brier(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> float:
    y, p = _arrays(y_true, y_prob)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def calibration_curve(
    y_true: npt.ArrayLike, y_prob: npt.ArrayLike, n_bins: int = 10
) -> CalibrationCurve:
    """Equal-width probability bins on [0, 1]; empty bins are kept with count 0."""
    y, p = _arrays(y_true, y_prob)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    bins = []
    ece = 0.0
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        mean_p = float(p[mask].mean()) if count else float("nan")
        frac = float(y[mask].mean()) if count else float("nan")
        if count:
            ece += count * abs(mean_p - frac)
        bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), count, mean_p, frac))
    return CalibrationCurve(bins=bins, expected_calibration_error=ece / max(len(y), 1))


def binary_report(
    y_true: npt.ArrayLike,
    y_prob: npt.ArrayLike,
    threshold: float = 0.5,
    n_bins: int = 10,
    with_calibration: bool = False,
) -> BinaryReport:
    y, p = _arrays(y_true, y_prob)
    f1, precision, recall = f1_at(y, p, threshold)
    return BinaryReport(
        n=len(y),
        positive_rate=float(y.mean()) if len(y) else float("nan"),
        roc_auc=roc_auc(y, p),
        pr_auc=pr_auc(y, p),
        f1=f1,
        threshold=float(threshold),
        precision=precision,
        recall=recall,
        brier=brier(y, p),
        calibration=calibration_curve(y, p, n_bins) if with_calibration else None,
    )
