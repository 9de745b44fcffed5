import numpy as np
import pytest
import torch
from torch import nn

from churn.model.features import build_dataset
from churn.model.net import ChurnDropout, ChurnEnsemble, ChurnNet, ChurnRouter
from churn.model.predictor import ChurnPredictor
from churn.model.prior import RunPrior
from churn.model.training import ChurnSettings, train_churn_model
from eduplatform.ml.artifacts import load_artifact, save_artifact
from eduplatform.ml.metrics import roc_auc

SMALL = ChurnSettings(
    hidden=16,
    seq_hidden=8,
    use_sequence=True,
    seeds=(0, 1),
    max_epochs=5,
    patience=3,
    batch_size=64,
)


@pytest.fixture(scope="module")
def splits(synth_data):
    f = build_dataset(synth_data, [30, 60, 90])
    pres = f.frame["course_id"].str[-5:].to_numpy()
    return f.subset(pres == "2013B"), f.subset(pres == "2013J"), f.subset(pres == "2014B")


@pytest.fixture(scope="module")
def trained(splits):
    train, val, _ = splits
    return train_churn_model(train, val, SMALL)


def test_it_learns(trained, splits):
    predictor, report = trained
    test = splits[2]
    probs = predictor.predict_proba(test.frame)
    # The network ranks learners within a course run; the module base rate (RunPrior)
    # is noise in this synthetic world (no module effect, run rates vary by chance and
    # the order of the two modules flips in the test presentation), so the pooled AUC
    # is lower than the within-run one.
    runs = test.frame["course_id"].astype(str) + "@" + test.frame["cutoff"].astype(str)
    within = [
        roc_auc(test.labels[(runs == r).to_numpy()], probs[(runs == r).to_numpy()])
        for r in runs.unique()
    ]
    assert np.mean(within) > 0.75
    assert roc_auc(test.labels, probs) > 0.7
    assert report.val_auc > 0.75
    assert len(report.best_epochs) == 2  # one pooled ensemble x seeds
    assert isinstance(predictor.module, ChurnEnsemble)


def test_predictions_are_probabilities_with_bands(trained, splits):
    predictor, _ = trained
    frame = splits[2].frame.iloc[::12]
    preds = predictor.predict(frame, top_k=3)
    assert len(preds) == len(frame) > 20
    low_medium, medium_high = predictor.thresholds
    assert 0 < low_medium < medium_high < 1
    for p in preds:
        assert 0.0 <= p.probability <= 1.0
        expected = (
            "high"
            if p.probability >= medium_high
            else "medium"
            if p.probability >= low_medium
            else "low"
        )
        assert p.risk_band == expected
        assert len(p.top_factors) == 3
        feature, text, contribution, phrase = p.top_factors[0]
        assert isinstance(feature, str)
        assert isinstance(text, str) and text
        assert phrase.english() == text  # the same words, before translation (pages)
        assert abs(contribution) >= abs(p.top_factors[-1].contribution)
        # reasons about the learner only: never the run's base rate or the day (#27 item 2)
        assert not {f.feature for f in p.top_factors} & {"course_base_rate", "cutoff_day"}
    assert {p.learner_id for p in preds} == set(frame["learner_id"])
    assert predictor.predict(frame.iloc[:0]) == []


def test_band_helper_follows_thresholds(trained):
    predictor, _ = trained
    low_medium, medium_high = predictor.thresholds
    assert predictor.band(low_medium - 1e-6) == "low"
    assert predictor.band(low_medium) == "medium"
    assert predictor.band(medium_high) == "high"


def test_explanations_name_inactivity(trained, splits):
    predictor, _ = trained
    test = splits[2]
    frame = test.frame
    idle = frame.sort_values("days_since_last_activity", ascending=False).iloc[:5]
    assert idle["days_since_last_activity"].min() >= 10
    pred = predictor.predict(idle.iloc[:5], top_k=5)
    texts = " | ".join(f.text for p in pred for f in p.top_factors)
    assert "no activity" in texts or "activity" in texts
    attributions = predictor.attributions(idle.iloc[:5])
    # integrated gradients: attributions add up to logit(x) - logit(baseline)
    logits = predictor.logits(idle.iloc[:5])
    flat, seq = predictor.baselines(idle.iloc[:5])
    with torch.no_grad():
        base = predictor.module(flat, seq).numpy()
    np.testing.assert_allclose(attributions.sum(axis=1), logits - base, atol=0.15)


def test_state_round_trip_through_artifact(trained, splits, tmp_path):
    predictor, _ = trained
    tensors, config = predictor.to_state()
    sha = save_artifact(tmp_path / "churn.safetensors", tensors, config)
    art = load_artifact(tmp_path / "churn.safetensors", sha)
    again = ChurnPredictor.from_state(art.tensors, art.config)
    frame = splits[2].frame.iloc[:20]
    np.testing.assert_array_equal(again.predict_proba(frame), predictor.predict_proba(frame))
    a, b = predictor.predict(frame), again.predict(frame)
    assert [p.risk_band for p in a] == [p.risk_band for p in b]
    assert [p.top_factors for p in a] == [p.top_factors for p in b]
    assert again.thresholds == predictor.thresholds
    assert again.preprocessor.report == predictor.preprocessor.report


def test_same_seed_gives_identical_weights(splits):
    train, val, _ = splits
    settings = ChurnSettings(hidden=8, seq_hidden=4, seeds=(3,), max_epochs=2, patience=0)
    first, _ = train_churn_model(train, val, settings)
    second, _ = train_churn_model(train, val, settings)
    t1, _ = first.to_state()
    t2, _ = second.to_state()
    assert t1.keys() == t2.keys()
    for k in t1:
        assert torch.equal(t1[k], t2[k]), k
    other, _ = train_churn_model(train, val, ChurnSettings(**{**settings.to_dict(), "seeds": (4,)}))
    t3, _ = other.to_state()
    assert not all(torch.equal(t1[k], t3[k]) for k in t1)


def test_one_expert_per_cutoff_and_routing(splits):
    train, val, _ = splits
    settings = ChurnSettings(hidden=8, seeds=(0, 1), max_epochs=2, per_cutoff=True)
    predictor, report = train_churn_model(train, val, settings)
    assert len(report.best_epochs) == 3 * 2  # one expert per cut-off x seeds
    router = predictor.module
    assert isinstance(router, ChurnRouter)
    assert router.cutoffs.tolist() == [30.0, 60.0, 90.0]
    frame = splits[2].frame
    flat, _ = predictor.inputs(frame)
    routed = router.cutoffs[router.route(flat)].numpy()
    np.testing.assert_array_equal(routed, frame["cutoff"].to_numpy(float))
    # a day between cut-offs goes to the nearest expert
    row = frame.iloc[:1].assign(cutoff=70, cutoff_day=70.0)
    assert router.cutoffs[router.route(predictor.inputs(row)[0])].item() == 60.0


def test_pooled_model_when_asked(splits):
    train, val, test = splits
    settings = ChurnSettings(hidden=8, seeds=(0,), max_epochs=2, per_cutoff=False)
    predictor, _ = train_churn_model(train, val, settings)
    assert isinstance(predictor.module, ChurnEnsemble)
    assert 0 <= predictor.predict_proba(test.frame).min() <= 1


def test_module_is_replaceable_and_uses_plain_linear_layers(trained, splits):
    predictor, _ = trained
    linears = [m for m in predictor.module.modules() if isinstance(m, nn.Linear)]
    assert linears and all(type(m) is nn.Linear for m in linears)
    frame = splits[2].frame.iloc[:10]

    class Constant(nn.Module):
        def forward(self, flat, seq):
            return torch.zeros(flat.shape[0])

    original = predictor.module
    try:
        predictor.module = Constant()
        probs = predictor.predict_proba(frame)
        assert np.allclose(probs, predictor.calibrate(np.zeros(10)))
    finally:
        predictor.module = original


def test_run_prior_keeps_real_module_differences_and_shrinks_chance_ones():
    rng = np.random.default_rng(0)
    modules, cutoffs, labels, runs = [], [], [], []
    for module, rate in (("AAA", 0.1), ("BBB", 0.4), ("CCC", 0.25)):
        for run in range(3):
            for c in (30, 60):
                modules += [module] * 400
                cutoffs += [c] * 400
                labels += list((rng.random(400) < rate).astype(float))
                runs += [f"{module}_{run}"] * 400
    prior = RunPrior.fit(np.array(modules), np.array(cutoffs), np.array(labels), np.array(runs))
    rates = prior.rate(np.array(["AAA", "BBB", "CCC", "ZZZ"]), np.array([30, 30, 61, 30]))
    assert abs(rates[0] - 0.1) < 0.03 and abs(rates[1] - 0.4) < 0.03
    assert abs(rates[2] - 0.25) < 0.03
    assert rates[3] == prior.overall[0]  # unknown module: the overall rate
    # same true rate everywhere: module differences are chance, shrunk to the overall rate
    flat = (rng.random(len(labels)) < 0.2).astype(float)
    same = RunPrior.fit(np.array(modules), np.array(cutoffs), flat, np.array(runs))
    for rates in same.modules.values():
        assert np.allclose(rates, same.overall, atol=0.02)
    assert RunPrior.from_config(prior.to_config()) == prior


def test_offset_input_is_the_module_prior(trained, splits):
    predictor, _ = trained
    frame = splits[2].frame.iloc[:30]
    flat, _ = predictor.inputs(frame)
    assert flat.shape[1] == len(predictor.preprocessor.output_columns) + 1
    expected = predictor.prior.logit(frame)
    np.testing.assert_allclose(flat[:, -1].numpy(), expected, rtol=1e-5)
    # unknown module -> the run-level estimate without a module deviation
    prior = predictor.prior
    other = frame.assign(module="ZZZ")
    bare = RunPrior(prior.cutoffs, prior.overall, {}, prior.slope, prior.intercepts, {})
    np.testing.assert_allclose(
        predictor.inputs(other)[0][:, -1].numpy(), bare.logit(frame), rtol=1e-5
    )
    # ... and without the run's withdrawal share, the overall rate
    np.testing.assert_allclose(
        predictor.inputs(other.drop(columns=["run_recent_withdrawal"]))[0][:, -1].numpy(),
        RunPrior(prior.cutoffs, prior.overall, {}).logit(frame),
        rtol=1e-5,
    )
    attributions = predictor.attributions(frame.iloc[:3])
    assert "course_base_rate" in attributions.columns


def _runs_with_recent_withdrawal(rng, n_modules=6, runs_per_module=2, size=400):
    """Course runs whose churn rate after the cut-off follows the share of their learners
    who withdrew in the 30 days before it (plus a per-module shift for module "M0")."""
    modules, cutoffs, labels, runs, recent = [], [], [], [], []
    for m in range(n_modules):
        for r in range(runs_per_module):
            share = rng.uniform(0.01, 0.15)
            for c in (30, 60):
                z = 0.5 + 0.8 * np.log(share / (1 - share)) + (1.0 if m == 0 else 0.0)
                rate = 1 / (1 + np.exp(-z))
                modules += [f"M{m}"] * size
                cutoffs += [c] * size
                labels += list((rng.random(size) < rate).astype(float))
                runs += [f"M{m}_{r}"] * size
                recent += [share] * size
    return (np.array(v) for v in (modules, cutoffs, labels, runs, recent))


def test_run_prior_reads_the_runs_recent_withdrawals():
    rng = np.random.default_rng(1)
    modules, cutoffs, labels, runs, recent = _runs_with_recent_withdrawal(rng)
    prior = RunPrior.fit(modules, cutoffs, labels, runs, recent)
    assert prior.slope is not None and 0.5 < prior.slope < 1.1
    # an unseen module: its rate follows its recent withdrawals
    low, high = prior.rate(np.array(["NEW", "NEW"]), np.array([30, 30]), np.array([0.02, 0.12]))
    assert low < high
    expected = 1 / (1 + np.exp(-(0.5 + 0.8 * np.log(0.12 / 0.88))))
    assert abs(high - expected) < 0.05
    # a seen module keeps (shrunk) what set it apart from the line
    m0, m1 = prior.rate(np.array(["M0", "M1"]), np.array([60, 60]), np.array([0.05, 0.05]))
    assert m0 > m1 + 0.05
    # no withdrawal share (older frame): the module table
    np.testing.assert_allclose(
        prior.rate(np.array(["M1"]), np.array([30])), [prior.modules["M1"][0]]
    )
    # missing share for one row: that row falls back to the table
    both = prior.rate(np.array(["M1", "M1"]), np.array([30, 30]), np.array([np.nan, 0.05]))
    assert both[0] == prior.modules["M1"][0] and both[1] != both[0]
    assert RunPrior.from_config(prior.to_config()) == prior


def test_run_prior_needs_enough_runs_for_the_line():
    rng = np.random.default_rng(2)
    modules, cutoffs, labels, runs, recent = _runs_with_recent_withdrawal(
        rng, n_modules=2, runs_per_module=1
    )
    prior = RunPrior.fit(modules, cutoffs, labels, runs, recent)
    assert prior.slope is None and prior.effects is None
    rates = prior.rate(np.array(["NEW"]), np.array([30]), np.array([0.12]))
    assert rates[0] == prior.overall[0]


def test_step_budget_caps_the_epochs_as_rows_grow(splits):
    from churn.model.training import epochs_cap

    s = ChurnSettings(batch_size=100, max_epochs=15, max_steps=60, warm_max_epochs=5)
    assert epochs_cap(s, 300, warm=False) == 15  # 3 steps per epoch: the epochs bind
    assert epochs_cap(s, 1000, warm=False) == 6  # 10 steps per epoch
    assert epochs_cap(s, 10_000, warm=False) == 1  # at least one epoch
    assert epochs_cap(s, 1000, warm=True) == 5  # a warm start's own cap still holds
    assert (
        epochs_cap(ChurnSettings(max_steps=None), 10**7, warm=False) == ChurnSettings().max_epochs
    )

    train, val, _ = splits
    steps_per_epoch = -(-len(train) // 64)
    budget = ChurnSettings(
        hidden=8,
        seeds=(0,),
        batch_size=64,
        max_epochs=15,
        patience=0,
        max_steps=2 * steps_per_epoch,
    )
    _, report = train_churn_model(train, val, budget)
    assert [len(h) for h in report.history] == [2]
    assert report.best_epochs[0] <= 2


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_fast_dropout_is_torch_dropout_bit_for_bit(p: float) -> None:
    """Same generator state in, same mask, outputs and gradients out as `torch.dropout`,
    and the generator left where `torch.dropout` leaves it."""
    x = torch.randn(512, 64)
    grad = torch.randn(512, 64)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    layer = ChurnDropout(p).train()
    torch.manual_seed(11)
    out = layer(ours)
    after_ours = torch.rand(3)
    torch.manual_seed(11)
    expected = torch.dropout(theirs, p, True)
    after_theirs = torch.rand(3)
    out.backward(grad)
    expected.backward(grad)
    assert torch.equal(out, expected)
    assert torch.equal(ours.grad, theirs.grad)
    assert torch.equal(after_ours, after_theirs)
    assert 0.2 < float((out == 0).float().mean()) < 0.6  # it does drop


def test_fast_dropout_outside_training_and_at_the_edges() -> None:
    x = torch.randn(64, 8)
    assert torch.equal(ChurnDropout(0.3).eval()(x), x)
    assert torch.equal(ChurnDropout(0.0).train()(x), x)
    assert torch.equal(ChurnDropout(1.0).train()(x), torch.zeros_like(x))
    net = ChurnNet(n_flat=5, n_channels=2, use_sequence=False)
    assert sum(isinstance(m, ChurnDropout) for m in net.modules()) == 2
    assert not net.reads_sequence
    assert ChurnNet(n_flat=5, n_channels=2, use_sequence=True).reads_sequence
