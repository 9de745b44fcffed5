import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from eduplatform.ml.metrics import (
    best_f1_threshold,
    binary_report,
    brier,
    calibration_curve,
    f1_at,
    pr_auc,
    roc_auc,
)


def test_auc_matches_sklearn_and_perfect_ranking():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = rng.random(300)
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert pr_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0


def test_single_class_gives_nan():
    assert math.isnan(roc_auc([0, 0, 0], [0.1, 0.5, 0.9]))
    assert math.isnan(pr_auc([0, 0], [0.1, 0.2]))


def test_f1_and_brier_by_hand():
    y = [1, 1, 0, 0]
    p = [0.9, 0.4, 0.6, 0.1]
    f1, precision, recall = f1_at(y, p, 0.5)
    assert (precision, recall) == (0.5, 0.5)
    assert f1 == pytest.approx(0.5)
    assert brier(y, p) == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert best_f1_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.8)


def test_calibration_bins():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.05, 0.15, 0.95, 0.92, 0.99])
    curve = calibration_curve(y, p, n_bins=10)
    assert len(curve.bins) == 10
    assert [b.count for b in curve.bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    assert curve.bins[9].fraction_positive == 1.0
    assert math.isnan(curve.bins[5].mean_predicted)
    assert curve.expected_calibration_error == pytest.approx(
        (0.05 + 0.15 + 3 * (1 - np.mean([0.95, 0.92, 0.99]))) / 5
    )


def test_binary_report_dict():
    r = binary_report([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.1], threshold=0.5, with_calibration=True)
    assert r.n == 4 and r.positive_rate == 0.5 and r.roc_auc == 1.0 and r.f1 == 1.0
    d = r.to_dict()
    assert d["calibration"]["bins"][0]["count"] == 0


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        roc_auc([0, 1], [0.5])
