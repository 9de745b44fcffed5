"""Warm start: a retrain starts from the previous network (the ranker's features carry
no item identity, so the whole network always transfers)."""

import numpy as np
import torch

from recommender.model.predictor import Recommender
from recommender.model.ranker_net import RankerScoringNet
from recommender.model.synthetic import synthetic_learning_data
from recommender.model.timeline import Params

CONFIG = Params(epochs=1, seed=3)


def _data(n_items: int = 40, seed: int = 1):
    return synthetic_learning_data(n_items=n_items, n_learners=80, n_days=56, seed=seed)


def test_split_network_round_trips_to_the_training_form():
    before = Recommender.fit(_data(), 42, CONFIG)
    ranker = before.net.to_ranker(before.scaler)
    again, scaler = RankerScoringNet.from_ranker(ranker)
    for name, value in before.net.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
    assert torch.equal(scaler.std, before.scaler.std)


def test_fit_with_warm_start_starts_from_the_champion_and_records_it():
    before = Recommender.fit(_data(), 42, CONFIG)
    scratch = Recommender.fit(_data(), 49, CONFIG, epochs=1)
    warm = Recommender.fit(_data(), 49, CONFIG, warm_start=before, epochs=1)
    assert scratch.stats["warm_start"] is False and warm.stats["warm_start"] is True
    assert not torch.equal(warm.net.hidden.weight, scratch.net.hidden.weight)
    assert torch.equal(warm.scaler.mean, before.scaler.mean)  # kept, not re-estimated
    course = next(iter(warm.runs))
    scores, _ = warm.score_learners(course, warm.runs[course].learner_ids[:3])
    assert np.isfinite(scores).all()
    # a catalogue that grew is no obstacle: no item has a row of its own
    grown = Recommender.fit(_data(n_items=50), 42, CONFIG, warm_start=before, epochs=1)
    assert grown.stats["warm_start"] is True
