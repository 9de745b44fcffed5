"""Top-k ranking metrics with binary relevance.

A ranking is a sequence of item keys, best first; the relevant set is the
learner's test items. Everything here is plain Python / numpy and knows nothing
about the recommender that produced the ranking.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence

import numpy as np


def _check_k(k: int) -> None:
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")


def recall_at_k(
    ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int, capped: bool = True
) -> float:
    """Share of the relevant items found in the first k.

    capped (default, the product owner's definition): |top-k ∩ relevant| / min(k, |relevant|),
    so a perfect top-k scores 1 even for a learner with more than k relevant
    items; capped=False: the textbook |top-k ∩ relevant| / |relevant|.
    0.0 when there is nothing relevant (such learners are normally left out of
    the evaluation rather than counted).
    """
    _check_k(k)
    rel = set(relevant)
    if not rel:
        return 0.0
    hits = sum(1 for item in ranked[:k] if item in rel)
    return hits / (min(k, len(rel)) if capped else len(rel))


def dcg_discounts(k: int) -> np.ndarray:
    """1 / log2(rank + 1) for ranks 1..k."""
    _check_k(k)
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """Binary-relevance NDCG@k.

    DCG = sum over hit ranks r <= k of 1 / log2(r + 1); the ideal DCG puts
    min(k, |relevant|) hits at the top. 0.0 when there is nothing relevant.
    """
    _check_k(k)
    rel = set(relevant)
    if not rel:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in rel)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(rel))))
    return dcg / ideal


def hit_matrix_metrics(
    hits: np.ndarray, n_relevant: np.ndarray, k: int, capped: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized Recall@k and NDCG@k for many learners at once.

    `hits` is a (learners x <=k) boolean matrix: hits[u, r] is True when the
    item ranked r+1 for learner u is relevant. `n_relevant` is each learner's
    test-set size (> 0). Returns (recall, ndcg) arrays, one value per learner;
    `capped` as in `recall_at_k`.
    """
    _check_k(k)
    hits = np.asarray(hits, dtype=bool)[:, :k]
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    if hits.shape[0] != n_relevant.shape[0]:
        raise ValueError("hits and n_relevant disagree on the number of learners")
    if np.any(n_relevant <= 0):
        raise ValueError("every learner needs at least one relevant item")
    discounts = dcg_discounts(k)[: hits.shape[1]]
    recall = hits.sum(axis=1) / (np.minimum(n_relevant, k) if capped else n_relevant)
    dcg = (hits * discounts).sum(axis=1)
    ideal_cum = np.concatenate([[0.0], np.cumsum(dcg_discounts(k))])
    ideal = ideal_cum[np.minimum(n_relevant, k).astype(np.int64)]
    return recall, dcg / ideal


def catalogue_coverage(recommended: Iterable[Iterable[Hashable]], catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one recommendation list."""
    if catalogue_size <= 0:
        raise ValueError(f"catalogue_size must be positive, got {catalogue_size}")
    seen: set[Hashable] = set()
    for items in recommended:
        seen.update(items)
    return len(seen) / catalogue_size
