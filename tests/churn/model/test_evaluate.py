"""`churn.model.evaluate` on hand-made rows: no training, no synthetic dataset.

These are `make mutate`'s selection for the module together with
`test_evaluate_trained.py` (the end-to-end run on tiny synthetic data): each mutant runs in
seconds. The leakage guards (`test_leakage.py`) stay in the suite, outside the selection.
"""

import json
import math
import re
import time

import numpy as np
import pandas as pd
import pytest

from churn.model.evaluate import (
    ChurnEvaluation,
    ModelScore,
    clean_json,
    fit_and_score,
    score_rows,
    split_by_time,
)
from churn.model.features import ChurnFeatures


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
    assert s.threshold == 0.5
    # one row per bin: (0.1 + 0.2 + 0.65 + 0.4 + 0.2 + 0.1) / 6
    assert s.ece == pytest.approx(0.275)
    assert s.pr_auc == pytest.approx(11 / 12)  # precision 1, 1, 3/4 at the three positives
    assert isinstance(s.ece, float) and isinstance(s.threshold, float)
    none_pos = score_rows("hgb", 7, np.zeros(3), np.array([0.2, 0.3, 0.4]), 0.5)
    assert none_pos.note == "no positives" and math.isnan(none_pos.auc)
    assert none_pos.positive_rate == 0.0 and none_pos.n_learners == 3
    assert none_pos.ece == pytest.approx(0.3)  # (0.2 + 0.3 + 0.4) / 3, one row per bin
    assert none_pos.brier == pytest.approx((0.04 + 0.09 + 0.16) / 3)
    all_pos = score_rows("hgb", 7, np.ones(2), np.array([0.2, 0.9]), 0.5)
    assert all_pos.note == "no negatives" and math.isnan(all_pos.auc)
    # the threshold reaches the F1: at 0.3, 0.35 and 0.4 are positive calls (3 TP, 1 FP)
    low = score_rows("logreg", 30, y, p, 0.3)
    assert low.f1 == pytest.approx(6 / 7) and low.threshold == 0.3
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
    started = time.perf_counter()
    scores, seconds, probs = fit_and_score(models, fit_part, val_part, test, [30, 60], said.append)
    elapsed = time.perf_counter() - started
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
    assert len(said) == 2
    assert re.fullmatch(r"a fitted and scored in \d+\.\d s", said[0]), said
    assert re.fullmatch(r"b fitted and scored in \d+\.\d s", said[1]), said
    assert set(seconds) == {"a", "b"} and set(probs) == {"a", "b"}
    # bookkeeping, not speed: each model's seconds lie within the call that measured them
    assert sum(seconds.values()) <= elapsed


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
            # a run listed twice with different details: one presentation per run still
            "length_days": [240, 240, 240, 240, 241],
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


# -- the report: clean_json, ChurnEvaluation's look-ups, JSON and table --


def _score(model, cutoff, auc, note="", **kw) -> ModelScore:
    figures = dict(pr_auc=0.5, f1=0.25, brier=0.125, n_learners=40, positive_rate=0.25)
    figures.update(kw)
    return ModelScore(
        model=model, cutoff=cutoff, auc=auc, threshold=0.5, ece=0.0625, note=note, **figures
    )


def _evaluation() -> ChurnEvaluation:
    return ChurnEvaluation(
        cutoffs=[30, 60],
        scores=[
            _score("hgb", 30, 0.75),
            _score("hgb", 60, 0.875, n_learners=38, positive_rate=0.5),
            _score("product", 30, math.nan, note="no positives", positive_rate=0.0),
            _score("product", 60, 0.625),
            _score("logreg", 60, 0.5),  # no logreg row at 30: the table skips it
        ],
        seconds={"hgb": 1.5},
        n_train=10,
        n_val=4,
        val_presentations=["2013J"],
        product_info={"auc": math.nan, 3: (1.0, math.nan)},
        chosen={"hgb": {"30": {"leaf": 7}}},
    )


def test_clean_json_turns_nan_into_none_at_any_depth():
    value = {1: [math.nan, (2.5, math.nan)], "a": {"b": math.nan, "c": 0}, "d": "x", "e": 1.0}
    cleaned = clean_json(value)
    assert cleaned == {"1": [None, [2.5, None]], "a": {"b": None, "c": 0}, "d": "x", "e": 1.0}
    assert isinstance(cleaned["1"][1], list)
    assert clean_json(math.nan) is None and clean_json(0.5) == 0.5 and clean_json(None) is None
    assert clean_json((1, 2)) == [1, 2] and clean_json("nan") == "nan"


def test_score_models_and_mean_auc():
    e = _evaluation()
    assert e.score("hgb", 60) is e.scores[1]
    assert e.score("product", 30) is e.scores[2]
    with pytest.raises(KeyError) as err:
        e.score("logreg", 30)
    assert err.value.args == (("logreg", 30),)
    assert e.models() == ["hgb", "product", "logreg"]
    assert e.mean_auc("hgb") == pytest.approx(0.8125)
    assert e.mean_auc("product") == pytest.approx(0.625)  # the NaN cut-off is left out
    assert isinstance(e.mean_auc("hgb"), float)
    assert math.isnan(e.mean_auc("nobody"))
    only_nan = ChurnEvaluation(cutoffs=[30], scores=[_score("hgb", 30, math.nan, note="x")])
    assert math.isnan(only_nan.mean_auc("hgb"))


def test_to_dict_is_strict_json_with_nan_as_none():
    d = _evaluation().to_dict()
    text = json.dumps(d, allow_nan=False)  # no NaN left anywhere
    back = json.loads(text)
    assert back["scores"][2]["auc"] is None and back["scores"][2]["note"] == "no positives"
    assert back["scores"][0] == {
        "model": "hgb",
        "cutoff": 30,
        "auc": 0.75,
        "pr_auc": 0.5,
        "f1": 0.25,
        "brier": 0.125,
        "n_learners": 40,
        "positive_rate": 0.25,
        "threshold": 0.5,
        "ece": 0.0625,
        "note": "",
    }
    assert back["product_info"] == {"auc": None, "3": [1.0, None]}
    assert {k: back[k] for k in ("cutoffs", "seconds", "n_train", "n_val")} == {
        "cutoffs": [30, 60],
        "seconds": {"hgb": 1.5},
        "n_train": 10,
        "n_val": 4,
    }
    assert back["val_presentations"] == ["2013J"] and back["chosen"] == {"hgb": {"30": {"leaf": 7}}}
    assert isinstance(pd.DataFrame(back["scores"]), pd.DataFrame)


def test_defaults_of_an_evaluation():
    e = ChurnEvaluation(cutoffs=[30], scores=[])
    assert (e.seconds, e.n_train, e.n_val, e.val_presentations) == ({}, 0, 0, [])
    assert (e.product_info, e.chosen) == ({}, {})
    assert e.models() == [] and e.table().endswith("mean AUC over cut-offs: ")
    assert math.isnan(ModelScore("m", 1, 0.5, 0.5, 0.5, 0.5, 1, 0.5, 0.5).ece)
    assert ModelScore("m", 1, 0.5, 0.5, 0.5, 0.5, 1, 0.5, 0.5).note == ""


TABLE = """\
cutoff  model       AUC PR-AUC     F1  Brier    ECE      n   pos%
-----------------------------------------------------------------
    30  hgb       0.750  0.500  0.250  0.125  0.062     40   25.0
    30  product  no positives  0.500  0.250  0.125  0.062     40    0.0
    60  hgb       0.875  0.500  0.250  0.125  0.062     38   50.0
    60  product   0.625  0.500  0.250  0.125  0.062     40   25.0
    60  logreg    0.500  0.500  0.250  0.125  0.062     40   25.0
mean AUC over cut-offs: hgb 0.8125  product 0.6250  logreg 0.5000"""


def test_table_rows_per_cutoff_and_model():
    assert _evaluation().table() == TABLE
    # a pair missing before the last model: that row is skipped, the next model still shown
    gap = _evaluation()
    gap.scores = [s for s in gap.scores if (s.model, s.cutoff) != ("product", 60)]
    rows = [line.split()[:2] for line in gap.table().splitlines()[2:-1]]
    assert rows == [["30", "hgb"], ["30", "product"], ["60", "hgb"], ["60", "logreg"]]
