"""Leakage guards (#30), through the code paths `evaluate_churn` and `--folds` use.

(a) no test (course run, learner) pair reaches any fit of the product or the peers;
(b) with permuted training labels the test AUC is chance (0.5 +/- 0.05);
(c) the test predictions do not change when the test labels are permuted.
Each guard is also run against the mutant "train on fit + test" (`fit_and_score` fitting
every model on the fitting rows plus the test rows) and must catch it.
(d), the database training sets, is in tests/churn/test_training_sets.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import churn.model.estimators as estimators
import churn.model.evaluate as evaluate_module
import churn.model.folds as folds_module
from churn.model.estimators import EvalSettings, ProductModel
from churn.model.evaluate import evaluate_churn
from churn.model.features import ChurnFeatures
from churn.model.folds import evaluate_folds
from churn.model.teacher import HGBSettings, TunedHGB
from churn.model.training import ChurnSettings
from tests.churn.model.synth import synthetic_learning_data

SMALL_HGB = HGBSettings(min_samples_leaf=10, max_iter=30)
FAST = EvalSettings(
    product=ChurnSettings(hidden=16, seeds=(0,), max_epochs=3, patience=2, teacher=SMALL_HGB),
    hgb=SMALL_HGB,
    logreg_c_grid=(0.01, 1.0),
)
CUTOFFS = [30, 60]
REAL_FIT_AND_SCORE = evaluate_module.fit_and_score


def _keys(f: ChurnFeatures) -> set[tuple[str, int]]:
    frame = f.frame
    return set(zip(frame["course_id"].astype(str), frame["learner_id"].astype(int), strict=True))


def mutant_fit_and_score(models, fit_part, val_part, test, cutoffs, say=lambda _m: None):
    """The leak the guards must catch: every model is fitted on fit + test rows."""
    return REAL_FIT_AND_SCORE(
        models, ChurnFeatures.concat([fit_part, test]), val_part, test, cutoffs, say
    )


def _use(monkeypatch, fit_and_score):
    monkeypatch.setattr(evaluate_module, "fit_and_score", fit_and_score)
    monkeypatch.setattr(folds_module, "fit_and_score", fit_and_score)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_learning_data(tmp_path_factory.mktemp("leak"), n_learners=150)


def _split(data):
    pres = data.courses.set_index("course_id")["presentation"]
    ids = list(data.courses["course_id"])
    return (
        data.subset_courses([c for c in ids if pres[c] != "2014B"]),
        data.subset_courses([c for c in ids if pres[c] == "2014B"]),
    )


# ---------------------------------------------------------------- (a) fit inputs
def _spy_fits(monkeypatch, wrapped):
    """Every fit of the product, its teacher and the peers checks its rows against the test
    rows of the `fit_and_score` call it runs in."""
    test_keys: list[set[tuple[str, int]]] = [set()]
    seen = {"fits": 0}

    def check(*parts: ChurnFeatures) -> None:
        seen["fits"] += 1
        for part in parts:
            leaked = _keys(part) & test_keys[0]
            assert not leaked, f"{len(leaked)} test (run, learner) pairs reached a fit"

    def spy_fit_and_score(models, fit_part, val_part, test, cutoffs, say=lambda _m: None):
        test_keys[0] = _keys(test)
        return wrapped(models, fit_part, val_part, test, cutoffs, say)

    real_train = estimators.train_churn_model
    real_hgb, real_logreg = TunedHGB.fit, estimators.TunedLogReg.fit

    def train_spy(train, val, *args, **kwargs):
        check(train, val)
        return real_train(train, val, *args, **kwargs)

    def hgb_spy(self, train, inner_val):
        check(train, inner_val)
        return real_hgb(self, train, inner_val)

    def logreg_spy(self, train, inner_val):
        check(train, inner_val)
        return real_logreg(self, train, inner_val)

    monkeypatch.setattr(estimators, "train_churn_model", train_spy)
    monkeypatch.setattr(TunedHGB, "fit", hgb_spy)
    monkeypatch.setattr(estimators.TunedLogReg, "fit", logreg_spy)
    _use(monkeypatch, spy_fit_and_score)
    return seen


def _guard_a(data) -> int:
    train, test = _split(data)
    evaluate_churn(train, test, CUTOFFS, settings=FAST)
    evaluate_folds(data, CUTOFFS, settings=FAST)
    return 0


def test_a_no_test_pair_reaches_any_fit(monkeypatch, data):
    seen = _spy_fits(monkeypatch, REAL_FIT_AND_SCORE)
    _guard_a(data)
    # evaluate_churn: 3 models; folds: 2 forward + 2 lomo modules, 3 models each
    assert seen["fits"] >= 3 + 4 * 3


def test_a_catches_training_on_test_rows(monkeypatch, data):
    _spy_fits(monkeypatch, mutant_fit_and_score)
    with pytest.raises(AssertionError, match="test \\(run, learner\\) pairs reached a fit"):
        _guard_a(data)


# ---------------------------------------------------------------- (b) permuted labels
def _permuted(f: ChurnFeatures, seed: int) -> ChurnFeatures:
    return _relabelled(f, np.random.default_rng(seed).permutation(f.labels))


def _relabelled(f: ChurnFeatures, labels: np.ndarray) -> ChurnFeatures:
    return ChurnFeatures(
        frame=f.frame,
        labels=labels,
        flat_columns=f.flat_columns,
        seq_columns=f.seq_columns,
        kinds=f.kinds,
        n_weeks=f.n_weeks,
        channels=f.channels,
    )


PERMUTATIONS = 10


def _guard_b(monkeypatch, data, inner) -> dict[str, float]:
    """Each model's test AUC (mean over cut-offs), averaged over `PERMUTATIONS` permutations
    of the training labels. One permutation is not enough: a model fitted to permuted labels
    ranks the test learners along a random direction of the (strongly correlated) features,
    so its AUC lands anywhere in about 0.4-0.6 (standard deviation about 0.05 on this data,
    centred on 0.5); the mean of 10 has about 0.02."""
    aucs: dict[str, list[float]] = {}
    train, test = _split(data)
    for seed in range(PERMUTATIONS):

        def permuting(models, fit_part, val_part, test, cutoffs, say=lambda _m: None, s=seed):
            # one permutation over fit + inner validation: permuting each part alone would
            # keep each presentation's churn rate, which RunPrior's line can still learn
            labels = np.random.default_rng(s).permutation(
                np.concatenate([fit_part.labels, val_part.labels])
            )
            fit_part = _relabelled(fit_part, labels[: len(fit_part)])
            val_part = _relabelled(val_part, labels[len(fit_part) :])
            return inner(models, fit_part, val_part, test, cutoffs, say)

        _use(monkeypatch, permuting)
        evaluation, _ = evaluate_churn(train, test, CUTOFFS, settings=FAST)
        for m in evaluation.models():
            aucs.setdefault(m, []).append(evaluation.mean_auc(m))
    return {m: float(np.mean(v)) for m, v in aucs.items()}


def test_b_permuted_training_labels_give_chance_auc(monkeypatch, data):
    for model, auc in _guard_b(monkeypatch, data, REAL_FIT_AND_SCORE).items():
        assert abs(auc - 0.5) <= 0.05, (model, auc)


def test_b_catches_training_on_test_rows(monkeypatch, data):
    aucs = _guard_b(monkeypatch, data, mutant_fit_and_score)
    assert any(abs(auc - 0.5) > 0.05 for auc in aucs.values()), aucs


# ---------------------------------------------------------------- (c) test labels
def _test_predictions(monkeypatch, data, inner, permute: bool) -> dict[str, np.ndarray]:
    captured: dict[str, np.ndarray] = {}

    def capture(models, fit_part, val_part, test, cutoffs, say=lambda _m: None):
        test = _permuted(test, 3) if permute else test
        scores, seconds, probs = inner(models, fit_part, val_part, test, cutoffs, say)
        captured.update(probs)
        return scores, seconds, probs

    _use(monkeypatch, capture)
    train, test = _split(data)
    evaluate_churn(train, test, CUTOFFS, settings=FAST)
    return captured


def _guard_c(monkeypatch, data, inner) -> None:
    plain = _test_predictions(monkeypatch, data, inner, permute=False)
    permuted = _test_predictions(monkeypatch, data, inner, permute=True)
    assert set(plain) == {"product", "logreg", "hgb"}
    for name, probs in plain.items():
        np.testing.assert_array_equal(probs, permuted[name], err_msg=name)


def test_c_test_labels_do_not_change_test_predictions(monkeypatch, data):
    _guard_c(monkeypatch, data, REAL_FIT_AND_SCORE)


def test_c_catches_training_on_test_rows(monkeypatch, data):
    with pytest.raises(AssertionError):
        _guard_c(monkeypatch, data, mutant_fit_and_score)


def test_product_reuses_the_hgb_peer_as_teacher_only_on_the_same_rows(monkeypatch, data):
    """The shared teacher is the peer fitted on exactly the product's (train, inner_val)."""
    calls = []
    real = TunedHGB.fit

    def counting(self, train, inner_val):
        calls.append(id(self))
        return real(self, train, inner_val)

    monkeypatch.setattr(TunedHGB, "fit", counting)
    train, test = _split(data)
    evaluation, predictor = evaluate_churn(train, test, CUTOFFS, settings=FAST)
    assert len(calls) == 1  # the peer; the product took it as its teacher
    assert predictor.info["teacher"] == evaluation.chosen["hgb"]
    other = ProductModel(FAST.product, teacher=estimators.SharedHGB(SMALL_HGB))
    assert other.teacher is not None and other.teacher.fitted_on is None
