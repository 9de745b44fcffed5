"""The speed-ups of the ranker's fit and of a request change no number: early stopping of
the inner choice, validation features built once, lists sampled before their features
are gathered, and source weights / sparse transition products over opened items only."""

import dataclasses

import numpy as np
import scipy.sparse as sp
import torch

from recommender.model.evaluate import train_view
from recommender.model.ranker import MLPRanker
from recommender.model.timeline import Params, runs_from_data, source_weights, trans_product

from .conftest import SPLIT


def test_early_stopping_keeps_the_choice_and_the_network(synthetic_data):
    torch.set_num_threads(1)
    runs = runs_from_data(train_view(synthetic_data, SPLIT), before_day=SPLIT)
    p = Params(seed=0, epochs=8, train_list=30)  # 50 items: lists are sampled
    full = MLPRanker(dataclasses.replace(p, patience=0)).fit([], runs, SPLIT)
    early = MLPRanker(p).fit([], runs, SPLIT)
    curve, short = full.chosen["inner_curve"], early.chosen["inner_curve"]
    best = int(np.argmax(curve))
    # this seed's curve peaks at epoch 5 and falls: the choice stops 2 epochs later
    assert len(curve) == 8 and best == 4 and short == curve[:7]
    assert early.chosen["epochs"] == full.chosen["epochs"] == 5
    a, b = full.net.state_dict(), early.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_no_stop_before_min_epochs(synthetic_data):
    # seed 1: the curve dips after epoch 1 and climbs from epoch 4 (the one-cycle warm-up)
    runs = runs_from_data(train_view(synthetic_data, SPLIT), before_day=SPLIT)
    fit = MLPRanker(Params(seed=1, epochs=8, train_list=30)).fit([], runs, SPLIT)
    assert len(fit.chosen["inner_curve"]) == 8 and fit.chosen["epochs"] == 8


def _old_source_weights(t, last, half_life, days):
    age = (t - 1) - last
    return np.where(age < days, np.power(0.5, np.minimum(age, 1e3) / half_life), 0.0).astype(
        np.float32
    )


def test_source_weights_and_sparse_products_are_bit_identical():
    rng = np.random.default_rng(0)
    n, n_items = 7, 3000
    last = np.full((n, n_items), -np.inf, np.float32)
    opened = rng.random((n, n_items)) < 0.02
    last[opened] = rng.integers(-10, 99, opened.sum()).astype(np.float32)
    last[3] = -np.inf  # a learner with no opened item
    dense = (rng.random((n_items, n_items)) < 0.01) * rng.random((n_items, n_items))
    trans = sp.csr_matrix(dense / 7, dtype=np.float32)
    for half_life, days in [(2.0, 28), (14.0, 10_000)]:
        w = source_weights(100, last, half_life, days)
        assert w.dtype == np.float32
        assert np.array_equal(w, _old_source_weights(100, last, half_life, days))
        want = np.asarray((trans.T @ w.T).T, dtype=np.float32)
        assert np.array_equal(trans_product(w, trans), want)
    assert not trans_product(np.zeros((2, n_items), np.float32), trans).any()
