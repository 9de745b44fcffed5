import math

import numpy as np
import pytest

from eduplatform.ml.ranking import (
    catalogue_coverage,
    dcg_discounts,
    hit_matrix_metrics,
    ndcg_at_k,
    recall_at_k,
)


def test_recall_counts_hits_in_top_k_over_relevant():
    ranked, rel = ["a", "b", "c", "d"], {"b", "d", "x"}
    assert recall_at_k(ranked, rel, k=2, capped=False) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, rel, k=4, capped=False) == pytest.approx(2 / 3)


def test_capped_recall_divides_by_min_k_and_relevant():
    ranked, rel = ["a", "b", "c", "d"], {"b", "d", "x"}
    assert recall_at_k(ranked, rel, k=2) == pytest.approx(1 / 2)  # 1 hit / min(2, 3)
    assert recall_at_k(ranked, rel, k=4) == pytest.approx(2 / 3)  # 2 hits / min(4, 3)
    assert recall_at_k(["b", "d"], rel, k=2) == pytest.approx(1.0)


def test_recall_and_ndcg_are_zero_without_relevant_items():
    assert recall_at_k(["a"], set(), k=1) == 0.0
    assert ndcg_at_k(["a"], [], k=1) == 0.0


def test_ndcg_hand_computed():
    # hits at ranks 2 and 3; ideal: two hits at ranks 1 and 2
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["a", "b", "c"], {"b", "c"}, k=3) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(["b", "c", "a"], {"b", "c"}, k=3) == pytest.approx(1.0)


def test_ndcg_ideal_is_capped_at_k():
    # 5 relevant, k=2, both top items relevant -> perfect
    assert ndcg_at_k(["a", "b", "z"], {"a", "b", "c", "d", "e"}, k=2) == pytest.approx(1.0)
    # only rank 2 relevant: (1/log2 3) / (1 + 1/log2 3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["z", "b"], {"a", "b", "c"}, k=2) == pytest.approx(expected)


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        recall_at_k(["a"], {"a"}, k=0)
    with pytest.raises(ValueError):
        dcg_discounts(0)


def test_vectorized_metrics_match_scalar_versions():
    rng = np.random.default_rng(3)
    k = 4
    rankings = [list(rng.permutation(10)) for _ in range(6)]
    relevant = [set(rng.choice(10, size=int(rng.integers(1, 7)), replace=False)) for _ in range(6)]
    hits = np.array(
        [[item in rel for item in r[:k]] for r, rel in zip(rankings, relevant, strict=True)]
    )
    n_rel = np.array([len(r) for r in relevant])
    recall, ndcg = hit_matrix_metrics(hits, n_rel, k)
    plain, _ = hit_matrix_metrics(hits, n_rel, k, capped=False)
    for u in range(6):
        assert recall[u] == pytest.approx(recall_at_k(rankings[u], relevant[u], k))
        assert plain[u] == pytest.approx(recall_at_k(rankings[u], relevant[u], k, capped=False))
        assert ndcg[u] == pytest.approx(ndcg_at_k(rankings[u], relevant[u], k))


def test_vectorized_metrics_reject_learners_without_relevant_items():
    with pytest.raises(ValueError):
        hit_matrix_metrics(np.zeros((1, 2), dtype=bool), np.array([0]), 2)


def test_catalogue_coverage():
    assert catalogue_coverage([["a", "b"], ["b", "c"]], catalogue_size=8) == pytest.approx(3 / 8)
    assert catalogue_coverage([], catalogue_size=2) == 0.0
    with pytest.raises(ValueError):
        catalogue_coverage([["a"]], catalogue_size=0)
