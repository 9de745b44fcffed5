"""Permutation ranking of the churn model's source features (#22 item 5)."""

from __future__ import annotations

import numpy as np

from churn.model.evaluate import split_by_time
from churn.model.features import build_dataset
from churn.model.importance import permutation_ranking, source_features
from churn.model.teacher import HGBSettings
from churn.model.training import ChurnSettings, train_churn_model

FAST = ChurnSettings(
    hidden=16,
    seeds=(0,),
    max_epochs=3,
    patience=2,
    teacher=HGBSettings(min_samples_leaf=10, max_iter=20),
)


def test_ranking_covers_every_source_feature_and_is_deterministic(synth_data):
    f = build_dataset(synth_data, [30, 60]).labelled()
    is_val, _ = split_by_time(f, synth_data.courses)
    train, val = f.subset(~is_val), f.subset(is_val)
    predictor, _ = train_churn_model(train, val, FAST)
    ranking = permutation_ranking(predictor, val)
    names = [r["feature"] for r in ranking]
    assert sorted(names) == sorted(n for n in source_features(predictor) if n in val.frame)
    drops = [float(r["auc_drop"]) for r in ranking]
    assert drops == sorted(drops, reverse=True)
    assert drops[0] > 0  # some feature carries the synthetic signal
    assert ranking == permutation_ranking(predictor, val)
    # a column the predictor does not read cannot matter
    assert "cutoff_day" in names or "run_recent_withdrawal" in names
    assert permutation_ranking(predictor, val.subset(np.zeros(len(val), bool))) == []
