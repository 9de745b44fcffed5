"""The HGB teacher, distillation in `train_churn_model`, and the tuned peers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import churn.model.training as training
from churn.model.estimators import TunedLogReg
from churn.model.evaluate import split_by_time
from churn.model.features import build_dataset
from churn.model.predictor import ChurnPredictor
from churn.model.teacher import HGBSettings, TunedHGB, logit, within_run_targets
from churn.model.training import ChurnSettings, train_churn_model

SMALL_HGB = HGBSettings(min_samples_leaf=10, max_iter=30, leaf_nodes=(3, 7))
FAST = ChurnSettings(hidden=16, seeds=(0,), max_epochs=3, patience=2, teacher=SMALL_HGB)


@pytest.fixture(scope="module")
def sets(synth_data):
    f = build_dataset(synth_data, [30, 60]).labelled()
    is_val, _ = split_by_time(f, synth_data.courses)
    return f.subset(~is_val), f.subset(is_val)


def test_teacher_chooses_shape_and_iterations_on_inner_val(sets):
    train, val = sets
    teacher = TunedHGB(SMALL_HGB).fit(train, val)
    assert set(teacher.chosen) == {"30", "60"}
    for chosen in teacher.chosen.values():
        assert chosen["max_leaf_nodes"] in (3, 7)
        assert chosen["max_iter"] in (10, 20, 30)  # the staged search, every 10 up to 30
        assert 0.5 < chosen["inner_auc"] <= 1
    stage, refit = teacher.stage_proba(val.frame), teacher.predict_proba(val.frame)
    assert stage.shape == refit.shape == (len(val),)
    assert not np.allclose(stage, refit)  # the refit has seen the inner validation
    # the stage model is the chosen shape fitted on train alone, truncated at its iterations
    c = 30
    rows = val.frame["cutoff"].to_numpy() == c
    _, n_iter = teacher.stage_models[c]
    assert n_iter == teacher.chosen[str(c)]["max_iter"]
    again = teacher._model(teacher.chosen[str(c)]["max_leaf_nodes"], n_iter).fit(
        teacher._x(train.frame[train.frame["cutoff"] == c], c),
        train.labels[train.frame["cutoff"] == c],
    )
    np.testing.assert_allclose(
        again.predict_proba(teacher._x(val.frame.loc[rows], c))[:, 1], stage[rows], atol=1e-12
    )


def test_within_run_targets_keep_the_teacher_ranking_at_the_run_level():
    frame = pd.DataFrame({"course_id": ["a", "a", "a", "b", "b"], "cutoff": [30] * 5})
    probs = np.array([0.1, 0.2, 0.6, 0.5, 0.9])
    own = np.array([-1.0, -1.0, -1.0, 0.5, 0.5])
    out = within_run_targets(probs, frame, own)
    z = logit(out)
    np.testing.assert_allclose(z[:3].mean(), -1.0, atol=1e-9)
    np.testing.assert_allclose(z[3:].mean(), 0.5, atol=1e-9)
    np.testing.assert_allclose(np.diff(z[:3]), np.diff(logit(probs[:3])), atol=1e-9)


def test_distillation_uses_the_teacher_and_lambda_zero_does_not(sets, monkeypatch):
    train, val = sets
    fits = []
    real = TunedHGB.fit

    def counting(self, a, b):
        fits.append(1)
        return real(self, a, b)

    monkeypatch.setattr(TunedHGB, "fit", counting)
    distilled, _ = train_churn_model(train, val, FAST)
    assert len(fits) == 1
    assert distilled.info["teacher"] is not None and distilled.info["teacher_seconds"] > 0
    plain, _ = train_churn_model(
        train, val, ChurnSettings(**{**FAST.__dict__, "distill_lambda": 0.0})
    )
    assert len(fits) == 1 and plain.info["teacher"] is None
    assert not np.allclose(distilled.predict_proba(val.frame), plain.predict_proba(val.frame))


def test_distilled_predictor_round_trips_through_its_state(sets):
    train, val = sets
    predictor, _ = train_churn_model(train, val, FAST)
    tensors, config = predictor.to_state()
    assert not any("teacher" in k for k in tensors)  # the teacher is not served
    again = ChurnPredictor.from_state(tensors, config)
    np.testing.assert_array_equal(
        predictor.predict_proba(val.frame), again.predict_proba(val.frame)
    )
    assert config["info"]["settings"]["teacher"]["leaf_nodes"] == [3, 7]


def test_settings_from_json_parameters_rebuild_the_teacher_settings():
    s = ChurnSettings(teacher={"leaf_nodes": [5], "max_iter": 20})  # type: ignore[arg-type]
    assert s.teacher == HGBSettings(leaf_nodes=(5,), max_iter=20)
    assert ChurnSettings(**{**s.to_dict(), "seeds": (0,), "exclude": ()}).teacher == s.teacher
    assert training.ChurnSettings().distill_lambda == 1.0


def test_logreg_peer_chooses_c_per_cutoff_on_inner_val(sets):
    train, val = sets
    peer = TunedLogReg((0.003, 1.0)).fit(train, val)
    assert set(peer.chosen) == {"30", "60"}
    assert all(ch["C"] in (0.003, 1.0) for ch in peer.chosen.values())
    p = peer.predict_proba(val.frame)
    assert p.shape == (len(val),) and np.all((p > 0) & (p < 1))
    assert 0 < peer.threshold < 1
