import numpy as np
import torch

from recommender.model.features import (
    ItemTimeline,
    Neighbours,
    covisit_neighbours,
    dense_neighbours,
    follow_neighbours,
    follow_pairs,
    item_features,
    percentile_rank,
    spread,
    top_m,
)
from recommender.model.interactions import pair_table


def _random_pairs(seed=0, n_learners=12, n_items=9, n_rows=150):
    rng = np.random.default_rng(seed)
    learner = rng.integers(0, n_learners, n_rows)
    item = rng.integers(0, n_items, n_rows)
    day = rng.integers(0, 40, n_rows)
    clicks = rng.integers(1, 5, n_rows)
    return pair_table(learner, item, day, clicks, n_items, now_day=35), (learner, item, day, clicks)


def test_follow_pairs_match_brute_force():
    pairs, _ = _random_pairs()
    fp = follow_pairs(pairs, window=5, n_items=9)
    got = sorted(zip(fp.src.tolist(), fp.dst.tolist(), fp.dst_day.tolist(), strict=True))
    expected = []
    for a in range(len(pairs)):
        for b in range(len(pairs)):
            if a == b or pairs.learner[a] != pairs.learner[b]:
                continue
            gap = pairs.first_day[b] - pairs.first_day[a]
            if 0 <= gap <= 5:
                expected.append((int(pairs.item[a]), int(pairs.item[b]), float(pairs.first_day[b])))
    assert got == sorted(expected)
    assert np.all(np.diff(fp.key) >= 0)


def test_follow_neighbours_are_shares_of_the_source_items_visitors():
    pairs, _ = _random_pairs(seed=1)
    fp = follow_pairs(pairs, window=7, n_items=9)
    nb = follow_neighbours(fp, pairs, n_items=9, t=30, m=9)
    dense = dense_neighbours(torch.from_numpy(nb.idx), torch.from_numpy(nb.val)).numpy()
    for j in range(9):
        visitors = {
            int(u)
            for u, i, f in zip(pairs.learner, pairs.item, pairs.first_day, strict=True)
            if i == j and f < 30
        }
        for i in range(9):
            if i == j:
                continue
            followers = {
                int(u)
                for u in visitors
                if any(
                    pairs.learner[q] == u
                    and pairs.item[q] == i
                    and pairs.first_day[q] < 30
                    and 0
                    <= pairs.first_day[q]
                    - pairs.first_day[(pairs.learner == u) & (pairs.item == j)][0]
                    <= 7
                    for q in range(len(pairs))
                )
            }
            expected = len(followers) / len(visitors) if visitors else 0.0
            assert dense[j, i] == np.float32(expected)


def test_top_m_keeps_largest_per_row_and_breaks_ties_by_column():
    rows = np.array([0, 0, 0, 0, 1, 1, 2])
    cols = np.array([1, 2, 3, 0, 0, 2, 2])
    vals = np.array([0.5, 0.9, 0.5, 0.7, 0.1, 0.0, 0.3])
    nb = top_m(rows, cols, vals, n_items=3, m=2)
    # row 0: the diagonal (0, 0) is dropped; 0.9 (col 2), then 0.5 tie -> col 1 before col 3
    assert nb.idx[0].tolist() == [2, 1]
    assert np.allclose(nb.val[0], [0.9, 0.5])
    # row 1: zero values are no neighbours
    assert nb.idx[1].tolist() == [0, 0] and np.allclose(nb.val[1], [0.1, 0.0])
    # row 2: only the diagonal -> empty
    assert np.allclose(nb.val[2], 0.0)


def test_covisit_is_cosine_over_learners():
    learner = np.array([0, 0, 1, 1, 2])
    item = np.array([0, 1, 0, 1, 0])
    pt = pair_table(learner, item, np.zeros(5, int), np.ones(5), n_items=3, now_day=1)
    nb = covisit_neighbours(pt, n_learners=3, n_items=3, t=1, m=2)
    # item 0 seen by 3 learners, item 1 by 2, both by 2 -> 2 / sqrt(6)
    assert nb.idx[0, 0] == 1 and np.isclose(nb.val[0, 0], 2 / np.sqrt(6))
    assert nb.idx[1, 0] == 0 and np.isclose(nb.val[1, 0], 2 / np.sqrt(6))


def test_spread_scatter_equals_dense_matmul():
    rng = np.random.default_rng(2)
    nb = Neighbours(rng.integers(0, 30, (30, 4)), rng.random((30, 4)).astype(np.float32))
    idx, val = torch.from_numpy(nb.idx), torch.from_numpy(nb.val)
    x = torch.from_numpy((rng.random((20, 30)) * (rng.random((20, 30)) < 0.2)).astype(np.float32))
    dense = dense_neighbours(idx, val)
    assert torch.allclose(spread(x, idx, val), x @ dense, atol=1e-6)
    assert torch.allclose(spread(x[:1], idx, val, dense), x[:1] @ dense, atol=1e-6)


def test_item_features_use_only_clicks_before_t():
    pairs, (learner, item, day, clicks) = _random_pairs(seed=3)
    full = ItemTimeline.from_rows(item, day, clicks, pairs, n_items=9, end_day=35)
    before = day < 20
    pairs20 = pair_table(learner[before], item[before], day[before], clicks[before], 9, now_day=20)
    cut = ItemTimeline.from_rows(item[before], day[before], clicks[before], pairs20, 9, end_day=20)
    types = np.arange(9) % 3
    weeks = np.full(9, np.nan)
    a = item_features(full, 20, types, weeks, n_types=3)
    b = item_features(cut, 20, types, weeks, n_types=3)
    assert np.allclose(a, b)
    # and something did change later
    assert not np.allclose(item_features(full, 35, types, weeks, 3), a)


def test_window_counts_learner_days():
    # item 0: learner 0 on days 1, 2 and 5; learner 1 on day 5
    learner, item = np.array([0, 0, 0, 1]), np.zeros(4, int)
    day, clicks = np.array([1, 2, 5, 5]), np.ones(4)
    pt = pair_table(learner, item, day, clicks, 1, now_day=6)
    tl = ItemTimeline.from_rows(item, day, clicks, pt, n_items=1, end_day=6)
    assert tl.window(tl.cum_rows, 6, 1)[0] == 2  # day 5
    assert tl.window(tl.cum_rows, 6, 3)[0] == 2  # days 3..5
    assert tl.window(tl.cum_rows, 6, None)[0] == 4
    assert tl.window(tl.cum_first, 6, 3)[0] == 1  # learner 1 first came on day 5
    assert tl.n_learners(6) == 2 and tl.n_learners(2) == 1
    center, known = tl.center(6)
    assert known[0] and np.isclose(center[0], ((1 + 5) / 2 - 6) / 28)


def test_percentile_rank_ties_share_rank():
    assert percentile_rank(np.array([5.0, 1.0, 5.0, 3.0])).tolist() == [
        (2 + 3) / 2 / 3,
        0.0,
        (2 + 3) / 2 / 3,
        1 / 3,
    ]
