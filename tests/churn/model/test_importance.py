"""Permutation ranking of the churn model's source features (#22 item 5)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from churn.model.evaluate import split_by_time
from churn.model.features import build_dataset
from churn.model.importance import permutation_ranking, source_features, teacher_selection
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


def _split(synth_data):
    f = build_dataset(synth_data, [30, 60]).labelled()
    is_val, _ = split_by_time(f, synth_data.courses)
    return f.subset(~is_val), f.subset(is_val)


def test_teacher_selection_keeps_the_signal_and_drops_noise(synth_data):
    _, val = _split(synth_data)

    def predict(frame):
        # a scorer that reads one feature only: every other feature's drop is 0
        return -frame["total_clicks"].to_numpy(float)

    chosen = teacher_selection(
        predict, val, ["total_clicks", "gender", "studied_credits"], min_drop=0.001
    )
    assert chosen.selected == ["total_clicks"]
    assert chosen.scores["total_clicks"] > 0.001
    assert chosen.scores["gender"] == 0.0
    # one class: nothing to rank, everything kept
    one = val.subset(val.labels == 0)
    assert teacher_selection(predict, one, ["gender"], min_drop=0.0).selected == ["gender"]


def test_selection_step_narrows_the_network_inputs_and_is_recorded(synth_data):
    train, val = _split(synth_data)
    full, _ = train_churn_model(train, val, FAST)
    strict = replace(FAST, select_min_drop=0.005)
    narrow, _ = train_churn_model(train, val, strict)
    selection = narrow.info["selection"]
    assert full.info["selection"] is None
    kept = set(selection["kept"])
    read = {narrow.preprocessor.source_of(c) for c in narrow.preprocessor.output_columns}
    assert read == kept | {"cutoff_day"}
    assert len(narrow.preprocessor.output_columns) < len(full.preprocessor.output_columns)
    assert all(selection["drops"][k] >= 0.005 for k in kept)
    assert narrow.predict_proba(val.frame).shape == (len(val),)
