"""Warm start of the churn predictor from a previous version's weights."""

import dataclasses

import pytest
import torch

from churn.model.features import build_dataset
from churn.model.predictor import ChurnPredictor
from churn.model.training import ChurnSettings, train_churn_model
from eduplatform.ml.compress import build_variant
from eduplatform.ml.metrics import roc_auc

SMALL = ChurnSettings(hidden=16, seeds=(0,), max_epochs=6, patience=3, batch_size=64)


def _first_net(module):
    """The first network of a pooled ensemble or of a router's first expert."""
    ensemble = module.experts[0] if hasattr(module, "experts") else module
    return ensemble.nets[0]


@pytest.fixture(scope="module")
def splits(synth_data):
    f = build_dataset(synth_data, [30, 60, 90])
    pres = f.frame["course_id"].str[-5:].to_numpy()
    return f.subset(pres == "2013B"), f.subset(pres == "2013J"), f.subset(pres == "2014B")


@pytest.fixture(scope="module")
def previous(splits):
    train, val, _ = splits
    predictor, _ = train_churn_model(train, val, SMALL)
    # What the registry hands over: the fp32 state read back from its checkpoint.
    return ChurnPredictor.from_state(*predictor.to_state())


def test_warm_start_starts_from_the_previous_weights(splits, previous):
    train, val, test = splits
    settings = dataclasses.replace(SMALL, warm_max_epochs=1, patience=1)
    warm, report = train_churn_model(train, val, settings, warm_start=previous)
    assert warm.info["warm_start"] is True
    assert all(e <= 1 for e in report.best_epochs)
    # One more epoch from the old weights stays close to them (a fresh net would not).
    before = _first_net(previous.module).mlp[0].weight
    after = _first_net(warm.module).mlp[0].weight
    assert torch.linalg.norm(after - before) < 0.5 * torch.linalg.norm(before)
    assert roc_auc(test.labels, warm.predict_proba(test.frame)) > 0.6


def test_a_changed_schema_or_a_compressed_network_trains_from_scratch(splits, previous):
    train, val, _ = splits
    wider = dataclasses.replace(SMALL, hidden=24)
    fresh, _ = train_churn_model(train, val, wider, warm_start=previous)
    assert fresh.info["warm_start"] is False
    compressed = ChurnPredictor.from_state(*previous.to_state())
    compressed.module = build_variant("structured", compressed.module)
    again, _ = train_churn_model(train, val, SMALL, warm_start=compressed)
    assert again.info["warm_start"] is False
