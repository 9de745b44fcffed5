"""Warm start: a retrain starts from the previous network where the schema allows."""

import torch

from recommender.model.model import ScoringNet
from recommender.model.predictor import Recommender
from recommender.model.synthetic import synthetic_learning_data
from recommender.model.train import TrainConfig, WarmStart, apply_warm_start

CONFIG = TrainConfig(epochs=1, min_steps=10, max_learners_per_cutoff=60)


def _data(n_items: int = 40, seed: int = 1):
    return synthetic_learning_data(n_items=n_items, n_learners=80, n_days=56, seed=seed)


def test_dense_layers_and_known_item_rows_are_copied():
    before = Recommender.fit(_data(), 42, CONFIG)
    after = Recommender.fit(_data(), 49, CONFIG)  # a week later: same items
    warm = WarmStart.of(before.net, list(before.runs.values()), before.type_vocab)
    fresh = ScoringNet(
        after.net.item_in.in_features,
        after.net.learner_in.in_features,
        after.net.pair_in.in_features,
        after.net.n_items,
        hidden=CONFIG.hidden,
        hidden2=CONFIG.hidden2,
        emb_dim=CONFIG.emb_dim,
    )
    summary = apply_warm_start(fresh, warm, list(after.runs.values()), after.type_vocab)
    assert summary == {"items_known": 40, "items_new": 0}
    assert torch.equal(fresh.hidden.weight, before.net.hidden.weight)
    assert torch.equal(fresh.item_emb.weight[:40], before.net.item_emb.weight[:40])


def test_fit_with_warm_start_trains_fewer_batches_and_records_it():
    before = Recommender.fit(_data(), 42, CONFIG)
    scratch = Recommender.fit(_data(), 49, CONFIG)
    warm = Recommender.fit(_data(), 49, CONFIG, warm_start=before)
    assert scratch.stats["warm_start"] is None
    assert warm.stats["warm_start"] == {"items_known": 40, "items_new": 0}
    assert warm.stats["batches"] < scratch.stats["batches"]
    scores, _ = warm.score_learners(next(iter(warm.runs)), [0, 1, 2])
    assert scores.shape[1] == 40 and torch.isfinite(torch.as_tensor(scores)).all()


def test_new_items_get_fresh_rows_and_a_changed_schema_trains_from_scratch():
    before = Recommender.fit(_data(n_items=40), 42, CONFIG)
    grown = Recommender.fit(_data(n_items=50), 42, CONFIG, warm_start=before)
    warm = grown.stats["warm_start"]
    assert warm is not None and warm["items_new"] > 0
    assert warm["items_known"] + warm["items_new"] == 50
    before.type_vocab = [*before.type_vocab[:-1], "renamed"]  # a different feature schema
    other = Recommender.fit(_data(n_items=40), 42, CONFIG, warm_start=before)
    assert other.stats["warm_start"] is None
