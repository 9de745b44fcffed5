"""Leakage guard of the recommender's offline evaluation (#30, recommender part).

* Clicks dated on or after the split day never reach a model: rewriting them leaves every
  score of the product, of the mlp_ranker candidate and of every peer bit-identical.
* Test items replaced by random unvisited items give the product an NDCG near the random
  baseline (the figure comes from the labels, not from something the models saw).
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from eduplatform.ml.data import LearningData
from recommender.model.evaluate import (
    CANDIDATES,
    PEERS,
    evaluate_scorer,
    peer_scorer,
    product_scorer,
    split_runs,
    timeline_scorer,
)
from recommender.model.tuned_peers import TUNED_PEERS

from .conftest import small_config

SPLIT = 42


def _rewrite_after_split(data: LearningData, seed: int = 5) -> LearningData:
    """Every click on or after the split: other items, other counts, plus new rows."""
    rng = np.random.default_rng(seed)
    ia = data.item_activity.copy()
    after = ia["day"] >= SPLIT
    items = ia["item_id"].to_numpy()
    ia.loc[after, "item_id"] = rng.permutation(items[after.to_numpy()])
    ia.loc[after, "clicks"] = rng.integers(1, 50, after.sum()).astype(ia["clicks"].dtype)
    extra = ia[after].sample(frac=0.5, random_state=1).assign(day=SPLIT + 3)
    act = data.activity.copy()
    act.loc[act["day"] >= SPLIT, "clicks"] = 999
    return dataclasses.replace(
        data, item_activity=pd.concat([ia, extra], ignore_index=True), activity=act
    )


@pytest.fixture(scope="module")
def both(synthetic_data):
    torch.set_num_threads(1)
    return synthetic_data, _rewrite_after_split(synthetic_data)


def _scores(scorer, splits):
    return [np.asarray(scorer(s), dtype=np.float64) for s in splits]


def test_id_based_peers_see_only_the_days_before_the_split(both):
    data, changed = both
    old, new = split_runs(data, SPLIT), split_runs(changed, SPLIT)
    assert [s.course_id for s in old] == [s.course_id for s in new]
    for a, b in zip(old, new, strict=True):
        assert np.array_equal(a.item_ids, b.item_ids)
        assert (a.train != b.train).nnz == 0 and np.array_equal(a.recent, b.recent)
        assert a.test.shape != b.test.shape or (a.test != b.test).nnz > 0  # test side changed
    pairs = zip(old, new, strict=True)
    same = [dataclasses.replace(b, test_rows=a.test_rows, test=a.test) for a, b in pairs]
    for name in ("popularity", "recent_popularity", "item_knn"):
        got = zip(_scores(peer_scorer(name), old), _scores(peer_scorer(name), same), strict=True)
        for x, y in got:
            assert np.array_equal(x, y), name


@pytest.mark.parametrize("name", [*TUNED_PEERS, *CANDIDATES])
def test_timeline_models_are_bit_identical(both, name):
    data, changed = both
    splits = split_runs(data, SPLIT)
    before, info = timeline_scorer(name, data, SPLIT)
    after, info2 = timeline_scorer(name, changed, SPLIT)
    assert info["chosen"] == info2["chosen"]
    for x, y in zip(_scores(before, splits), _scores(after, splits), strict=True):
        assert np.array_equal(x, y), name


def test_product_is_bit_identical(both):
    data, changed = both
    splits = split_runs(data, SPLIT)
    before, _ = product_scorer(data, SPLIT, small_config())
    after, _ = product_scorer(changed, SPLIT, small_config())
    for x, y in zip(_scores(before, splits), _scores(after, splits), strict=True):
        assert np.array_equal(x, y)


def test_every_listed_model_is_covered():
    covered = {"popularity", "recent_popularity", "item_knn", "als", "bpr", *TUNED_PEERS}
    assert set(PEERS) <= covered  # als / bpr: fitted on RunSplit.train only, like item_knn


def _permuted(splits, seed=0):
    """Each learner's test items replaced by as many random items they had not opened."""
    rng = np.random.default_rng(seed)
    out = []
    for s in splits:
        dense = s.test.toarray() > 0
        visited = s.visited
        new = np.zeros_like(dense)
        for u in range(len(dense)):
            free = np.flatnonzero(~visited[u])
            n = min(int(dense[u].sum()), len(free))
            new[u, rng.choice(free, n, replace=False)] = True
        out.append(dataclasses.replace(s, test=sp.csr_matrix(new.astype(np.float64))))
    return out


def test_permuted_test_items_give_the_random_baseline(synthetic_data):
    splits = split_runs(synthetic_data, SPLIT)
    scorer, _ = product_scorer(synthetic_data, SPLIT, small_config())
    real = evaluate_scorer(splits, scorer, 10)["ndcg"]
    shuffled = _permuted(splits)
    product = evaluate_scorer(shuffled, scorer, 10)["ndcg"]
    rng = np.random.default_rng(1)
    random = np.mean(
        [
            evaluate_scorer(shuffled, lambda s: rng.random(s.visited.shape), 10)["ndcg"]
            for _ in range(5)
        ]
    )
    assert abs(product - random) < 0.05, (product, random)
    assert real > random + 0.03, (real, random)
