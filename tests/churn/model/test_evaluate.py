import copy
import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from churn.model.estimators import EvalSettings
from churn.model.evaluate import MODELS, evaluate_churn, fit_and_score, score_rows, split_by_time
from churn.model.features import ChurnFeatures, build_dataset
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


# -- the evaluation loop's parts on hand-made rows (no training: make mutate's fast tests) --


def _rows(course_ids, cutoffs, labels) -> ChurnFeatures:
    frame = pd.DataFrame(
        {
            "course_id": course_ids,
            "learner_id": range(len(course_ids)),
            "cutoff": cutoffs,
            "x": np.arange(len(course_ids), dtype=float),
        }
    )
    return ChurnFeatures(
        frame=frame,
        labels=np.asarray(labels, dtype=float),
        flat_columns=["x"],
        seq_columns=[],
        kinds={},
        n_weeks=0,
    )


def test_score_rows_figures_and_notes():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    s = score_rows("logreg", np.int64(30), y, p, 0.5)
    assert (s.model, s.cutoff, s.n_learners, s.note) == ("logreg", 30, 6, "")
    assert isinstance(s.cutoff, int)
    assert s.auc == pytest.approx(8 / 9)  # one discordant pair of nine
    assert s.positive_rate == pytest.approx(0.5)
    assert s.f1 == pytest.approx(0.8)  # threshold 0.5: 2 of 3 positives, no false positive
    assert s.brier == pytest.approx(np.mean((p - y) ** 2))
    assert s.threshold == 0.5 and s.ece >= 0
    assert s.pr_auc > 0.5
    none_pos = score_rows("hgb", 7, np.zeros(3), np.array([0.2, 0.3, 0.4]), 0.5)
    assert none_pos.note == "no positives" and math.isnan(none_pos.auc)
    assert none_pos.positive_rate == 0.0 and none_pos.n_learners == 3
    all_pos = score_rows("hgb", 7, np.ones(2), np.array([0.2, 0.9]), 0.5)
    assert all_pos.note == "no negatives" and math.isnan(all_pos.auc)
    empty = score_rows("hgb", 7, np.zeros(0), np.zeros(0), 0.5)
    assert empty.n_learners == 0 and math.isnan(empty.ece)


class _Recorder:
    """An estimator that records what it was fitted on and scores by a fixed column."""

    def __init__(self, name: str, threshold: float = 0.5):
        self.name, self.threshold = name, threshold
        self.fitted_on: tuple[list[int], list[int]] | None = None
        self.predicted_on: list[int] | None = None

    def fit(self, fit_part, val_part):
        self.fitted_on = (list(fit_part.frame["x"]), list(val_part.frame["x"]))

    def predict_proba(self, frame):
        self.predicted_on = list(frame["x"])
        return frame["x"].to_numpy() / 10


def test_fit_and_score_fits_on_the_given_parts_and_scores_each_cutoff():
    fit_part = _rows(["A"] * 2, [30, 60], [0, 1])
    val_part = _rows(["B"] * 2, [30, 60], [1, 0])
    val_part.frame["x"] = [7.0, 8.0]
    test = _rows(["C"] * 6, [30, 60, 30, 60, 30, 60], [0, 0, 1, 1, 0, 1])
    models = [_Recorder("a"), _Recorder("b", threshold=0.25)]
    said = []
    scores, seconds, probs = fit_and_score(models, fit_part, val_part, test, [30, 60], said.append)
    for m in models:
        assert m.fitted_on == ([0.0, 1.0], [7.0, 8.0])
        assert m.predicted_on == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        assert probs[m.name].tolist() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
        assert seconds[m.name] >= 0
    assert [(s.model, s.cutoff) for s in scores] == [("a", 30), ("a", 60), ("b", 30), ("b", 60)]
    at_30 = scores[0]  # rows 0, 2, 4: labels 0, 1, 0 with probabilities 0, 0.2, 0.4
    assert at_30.n_learners == 3 and at_30.positive_rate == pytest.approx(1 / 3)
    assert at_30.auc == pytest.approx(0.5)
    assert scores[1].auc == pytest.approx(1.0)  # rows 1, 3, 5: 0, 1, 1 at 0.1, 0.3, 0.5
    assert [s.threshold for s in scores] == [0.5, 0.5, 0.25, 0.25]
    assert len(said) == 2 and said[0].startswith("a fitted and scored in ")


def test_fit_and_score_with_no_test_rows():
    part = _rows(["A"], [30], [1])
    empty = part.subset(np.array([False]))
    model = _Recorder("a")
    scores, _, probs = fit_and_score([model], part, part, empty, [30])
    assert model.predicted_on is None  # nothing to predict: not called
    assert probs["a"].shape == (0,)
    assert scores[0].n_learners == 0


def test_split_by_time_on_hand_made_runs():
    courses = pd.DataFrame(
        {
            "course_id": ["A_2013J", "A_2014B", "B_2013J", "A_2013B", "A_2013B"],
            "presentation": ["2013J", "2014B", "2013J", "2013B", "2013B"],
        }
    )
    f = _rows(["A_2013B", "A_2014B", "B_2013J", "A_2014B", "A_2013J"], [30] * 5, [0] * 5)
    is_val, names = split_by_time(f, courses)
    assert names == ["2014B"]
    assert is_val.tolist() == [False, True, False, True, False]
    # Two presentations are enough to split by time.
    two = _rows(["A_2013J", "A_2014B", "B_2013J"], [30] * 3, [0] * 3)
    is_val2, names2 = split_by_time(two, courses)
    assert names2 == ["2014B"] and is_val2.tolist() == [False, True, False]
    # One presentation: the last quarter of the runs (sorted by id, at least one) validate.
    one = courses.assign(presentation="2013J")
    runs = [f"R{i}" for i in range(8)]
    f8 = _rows(runs[::-1], [30] * 8, [0] * 8)
    is_val8, names8 = split_by_time(f8, pd.DataFrame({"course_id": runs, "presentation": "X"}))
    assert names8 == ["R6", "R7"]
    assert is_val8.tolist() == [True, True] + [False] * 6
    f3 = _rows(["A_2013J", "B_2013J", "A_2013J"], [30] * 3, [0] * 3)
    is_val3, names3 = split_by_time(f3, one)
    assert names3 == ["B_2013J"] and is_val3.tolist() == [False, True, False]
    # A single run cannot be split: no validation rows.
    f1 = _rows(["A_2013J"] * 2, [30] * 2, [0] * 2)
    is_val1, names1 = split_by_time(f1, one)
    assert names1 == [] and not is_val1.any()
