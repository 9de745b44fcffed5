import copy
import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from churn.model.estimators import EvalSettings
from churn.model.evaluate import MODELS, evaluate_churn, split_by_time
from churn.model.features import build_dataset
from churn.model.teacher import HGBSettings
from churn.model.training import ChurnSettings

# 100 learners per run: the product's minimum leaf of 100 rows would leave HGB one leaf
SMALL_HGB = HGBSettings(min_samples_leaf=10, max_iter=40)
FAST = EvalSettings(
    product=ChurnSettings(
        hidden=16, seq_hidden=8, seeds=(0,), max_epochs=3, patience=2, teacher=SMALL_HGB
    ),
    hgb=SMALL_HGB,
)


def _split(data, test_presentation="2014B"):
    data = data.subset_courses([c for c in data.courses["course_id"] if c.startswith("AAA")])
    pres = data.courses.set_index("course_id")["presentation"]
    train_ids = [c for c in data.courses["course_id"] if pres[c] != test_presentation]
    test_ids = [c for c in data.courses["course_id"] if pres[c] == test_presentation]
    return data.subset_courses(train_ids), data.subset_courses(test_ids)


@pytest.fixture(scope="module")
def evaluated(synth_data):
    train, test = _split(synth_data)
    return evaluate_churn(train, test, [60, 30], settings=FAST)


def test_evaluation_reports_every_model_and_cutoff(synth_data, evaluated):
    _, test = _split(synth_data)
    evaluation, predictor = evaluated
    assert evaluation.cutoffs == [30, 60]
    assert evaluation.val_presentations == ["2013J"]
    assert {(s.model, s.cutoff) for s in evaluation.scores} == {
        (m, c) for m in MODELS for c in (30, 60)
    }
    test_rows = build_dataset(test, [30, 60])
    for s in evaluation.scores:
        rows = test_rows.frame["cutoff"] == s.cutoff
        assert s.n_learners == int(rows.sum())
        assert s.positive_rate == np.mean(test_rows.labels[rows.to_numpy()])
        assert 0.5 < s.auc <= 1.0  # the synthetic signal is strong
        assert 0 <= s.brier <= 1 and 0 <= s.f1 <= 1 and 0 < s.pr_auc <= 1
    product = evaluation.score("product", 30)
    assert product.threshold == predictor.thresholds[1]
    d = json.loads(json.dumps(evaluation.to_dict()))
    assert len(d["scores"]) == 6
    table = evaluation.table()
    assert "product" in table and "hgb" in table and "logreg" in table
    assert evaluation.seconds["product"] > 0


def test_split_by_time_uses_latest_presentation(synth_data):
    f = build_dataset(synth_data, [30])
    is_val, names = split_by_time(f, synth_data.courses)
    assert names == ["2014B"]
    assert set(f.frame.loc[is_val, "course_id"].str[-5:]) == {"2014B"}
    single = synth_data.subset_courses(["AAA_2013B", "BBB_2013B"])
    f1 = build_dataset(single, [30])
    is_val1, names1 = split_by_time(f1, single.courses)
    assert names1 == ["BBB_2013B"]
    assert 0 < is_val1.sum() < len(is_val1)


def test_to_dict_turns_nan_into_none(evaluated):
    evaluation = copy.deepcopy(evaluated[0])
    evaluation.scores[0].auc = math.nan
    assert evaluation.to_dict()["scores"][0]["auc"] is None
    assert isinstance(pd.DataFrame(evaluation.to_dict()["scores"]), pd.DataFrame)


@pytest.mark.parametrize("longer", ["train", "test"])
def test_a_cutoff_past_every_run_is_refused_before_training(synth_data, longer):
    """A cut-off day after the end of every run of one side stops with that side named."""
    train, test = _split(synth_data)
    day = int(synth_data.courses["length_days"].max()) + 10
    # the other side's runs last past `day`, so only one side has no one enrolled then
    if longer == "train":
        train = dataclasses.replace(train, courses=train.courses.assign(length_days=day + 30))
    else:
        test = dataclasses.replace(test, courses=test.courses.assign(length_days=day + 30))
    short = "test" if longer == "train" else "train"
    with pytest.raises(ValueError, match=f"no {short} learner is enrolled on cut-off day {day}$"):
        evaluate_churn(train, test, [30, day], settings=FAST)
