"""`evaluate_churn` end to end, with the smallest settings that still train all three models.

Tiny synthetic data (two modules x three presentations, 30 learners a run, 120 days), one
seed, two epochs, small nets and a two-point logreg grid: the module's one training run
takes about 2 CPU seconds, so `make mutate` can rerun it for every mutant. The figures are
checked exactly against the returned predictor and `score_rows`, not by ranges only.
"""

import dataclasses
import json
import re
import time

import numpy as np
import pytest

from churn.model.estimators import EvalSettings
from churn.model.evaluate import MODELS, evaluate_churn, score_rows, split_by_time
from churn.model.features import build_dataset
from churn.model.teacher import HGBSettings
from churn.model.training import ChurnSettings
from tests.churn.model.synth import synthetic_learning_data

TINY_HGB = HGBSettings(min_samples_leaf=5, max_iter=10, eval_every=5, leaf_nodes=(3,))
TINY = EvalSettings(
    product=ChurnSettings(
        hidden=8, seq_hidden=4, seeds=(0,), max_epochs=2, patience=1, teacher=TINY_HGB
    ),
    hgb=TINY_HGB,
    logreg_c_grid=(0.1, 1.0),
)
CUTOFFS = [30, 60]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_learning_data(
        tmp_path_factory.mktemp("tiny"), n_learners=30, modules=("AAA", "BBB"), length=120
    )


def _split(data, test_presentation="2014B"):
    pres = data.courses.set_index("course_id")["presentation"]
    ids = list(data.courses["course_id"])
    return (
        data.subset_courses([c for c in ids if pres[c] != test_presentation]),
        data.subset_courses([c for c in ids if pres[c] == test_presentation]),
    )


def _evaluate(data):
    train, test = _split(data)
    said: list[str] = []
    started = time.perf_counter()
    evaluation, predictor = evaluate_churn(train, test, [60, 30], settings=TINY, log=said.append)
    return evaluation, predictor, said, time.perf_counter() - started


def _at(evaluation, model, cutoff):
    # not evaluation.score(): the report's methods have their own tests on hand-made rows,
    # and `make mutate` then runs no training for their mutants
    (found,) = [s for s in evaluation.scores if (s.model, s.cutoff) == (model, cutoff)]
    return found


def test_evaluate_churn_end_to_end(data):
    """One test, one training run: `make mutate` maps a test to the functions it calls, so
    checks split over tests sharing a cached run would not run for evaluate_churn's mutants."""
    evaluation, predictor, said, elapsed = _evaluate(data)
    _check_scores(data, evaluation, predictor)
    _check_split_and_choices(data, evaluation, predictor)
    _check_seconds_log_and_json(evaluation, said, elapsed)


def _check_scores(data, evaluation, predictor):
    _, test = _split(data)
    assert evaluation.cutoffs == CUTOFFS
    assert [(s.model, s.cutoff) for s in evaluation.scores] == [
        (m, c) for m in ("hgb", "logreg", "product") for c in CUTOFFS
    ]
    test_rows = build_dataset(test, CUTOFFS).labelled()
    cut = test_rows.frame["cutoff"].to_numpy()
    # the returned predictor is the scored product: its figures are recomputed exactly
    probs = predictor.predict_proba(test_rows.frame)
    for c in CUTOFFS:
        rows = cut == c
        threshold = predictor.thresholds[1]  # the product's one F1 threshold
        expected = score_rows("product", c, test_rows.labels[rows], probs[rows], threshold)
        assert _at(evaluation, "product", c) == expected
        for s in (_at(evaluation, m, c) for m in MODELS):
            assert s.n_learners == int(rows.sum()) > 0
            assert s.positive_rate == pytest.approx(float(np.mean(test_rows.labels[rows])))
        for peer in ("hgb", "logreg"):  # the synthetic signal is strong: peers beat chance
            assert _at(evaluation, peer, c).auc > 0.6, evaluation.table()


def _check_split_and_choices(data, evaluation, predictor):
    train, _ = _split(data)
    features = build_dataset(train, CUTOFFS).labelled()
    is_val, names = split_by_time(features, train.courses)
    assert evaluation.val_presentations == names == ["2013J"]
    assert (evaluation.n_train, evaluation.n_val) == (int((~is_val).sum()), int(is_val.sum()))
    assert evaluation.n_train > 0 and evaluation.n_val > 0
    assert set(evaluation.chosen) == set(MODELS)
    assert evaluation.chosen["product"]["teacher"] == predictor.info.get("teacher")
    assert evaluation.chosen["product"]["teacher"] == evaluation.chosen["hgb"]
    assert {v["C"] for v in evaluation.chosen["logreg"].values()} <= set(TINY.logreg_c_grid)
    info = evaluation.product_info
    assert {k: info[k] for k in predictor.info} == predictor.info
    assert info["thresholds"] == list(predictor.thresholds)
    assert set(info["val_auc_per_cutoff"]) == {"30", "60"}
    assert set(info) == set(predictor.info) | {"thresholds", "val_auc_per_cutoff"}


def _check_seconds_log_and_json(evaluation, said, elapsed):
    assert set(evaluation.seconds) == {"features", "hgb", "logreg", "product", "product_cpu"}
    assert all(v > 0 for v in evaluation.seconds.values())
    # bookkeeping, not speed: the parts are durations within the run that measured them
    parts = ("features", "hgb", "logreg", "product")
    assert sum(evaluation.seconds[k] for k in parts) <= elapsed
    assert evaluation.seconds["product_cpu"] == evaluation.chosen["product"]["cpu_seconds"]
    n_train, n_test = evaluation.n_train + evaluation.n_val, 2 * 60
    assert said[0].startswith(f"features: {n_train} train rows, ")
    assert re.fullmatch(rf"features: {n_train} train rows, \d+ test rows \(\d+\.\d s\)", said[0])
    assert (
        int(said[0].split(", ")[1].split()[0])
        == sum(_at(evaluation, "hgb", c).n_learners for c in CUTOFFS)
        <= n_test
    )
    assert [m.split()[0] for m in said[1:]] == ["hgb", "logreg", "product"]
    d = json.loads(json.dumps(evaluation.to_dict(), allow_nan=False))
    assert len(d["scores"]) == 6 and d["val_presentations"] == ["2013J"]


def test_split_by_time_uses_latest_presentation(data):
    f = build_dataset(data, [30])
    is_val, names = split_by_time(f, data.courses)
    assert names == ["2014B"]
    assert set(f.frame.loc[is_val, "course_id"].str[-5:]) == {"2014B"}
    single = data.subset_courses(["AAA_2013B", "BBB_2013B"])
    f1 = build_dataset(single, [30])
    is_val1, names1 = split_by_time(f1, single.courses)
    assert names1 == ["BBB_2013B"]
    assert is_val1.tolist() == (f1.frame["course_id"] == "BBB_2013B").tolist()


@pytest.mark.parametrize("longer", ["train", "test"])
def test_a_cutoff_past_every_run_is_refused_before_training(data, longer):
    """A cut-off day after the end of every run of one side stops with that side named."""
    train, test = _split(data)
    day = int(data.courses["length_days"].max()) + 10
    # the other side's runs last past `day`, so only one side has no one enrolled then
    if longer == "train":
        train = dataclasses.replace(train, courses=train.courses.assign(length_days=day + 30))
    else:
        test = dataclasses.replace(test, courses=test.courses.assign(length_days=day + 30))
    short = "test" if longer == "train" else "train"
    with pytest.raises(ValueError, match=f"no {short} learner is enrolled on cut-off day {day}$"):
        evaluate_churn(train, test, [30, day], settings=TINY)


def test_every_missing_cutoff_is_named(data):
    train, test = _split(data)
    day = int(data.courses["length_days"].max()) + 10
    with pytest.raises(
        ValueError, match=f"^no train learner is enrolled on cut-off day {day}, {day + 5}$"
    ):
        evaluate_churn(train, test, [day + 5, 30, day], settings=TINY)


def test_a_train_side_without_a_validation_part_is_refused(data):
    """One train run, one presentation: nothing to validate on (refused before training)."""
    _, test = _split(data)
    one_run = data.subset_courses(["AAA_2013B"])
    with pytest.raises(ValueError, match=r"^need train rows both before and in the validation"):
        evaluate_churn(one_run, test, CUTOFFS, settings=TINY)


def test_product_settings_alone_train_the_product_with_them(data):
    """`settings` may be the product's `ChurnSettings`: the peers take their defaults."""
    train, test = _split(data)
    evaluation, _ = evaluate_churn(train, test, CUTOFFS, settings=TINY.product)
    chosen = evaluation.chosen["product"]
    assert len(chosen["best_epochs"]) == 1  # one seed, as TINY.product says
    assert max(chosen["best_epochs"]) <= TINY.product.max_epochs
    assert {v["C"] for v in evaluation.chosen["logreg"].values()} <= set(
        EvalSettings().logreg_c_grid
    )
