"""recommender/model/compression.py: the timed forward is batch scoring's."""

import torch

from recommender.model import compression
from recommender.model.compression import chunked_scoring, prepare_scoring, scoring_inputs
from recommender.model.synthetic import build_synthetic


def test_timed_scoring_splits_a_batch_by_the_pair_budget_with_the_same_scores(monkeypatch):
    rec = build_synthetic(n_items=300, seed=0, n_learners=100)
    inputs = prepare_scoring(rec.net, scoring_inputs(rec, 20))
    calls: list[int] = []
    net = rec.net

    def counted(*args):
        calls.append(int(args[1].shape[0]))
        return net(*args)

    with torch.inference_mode():
        whole = chunked_scoring(counted, inputs)
        assert calls == [20]
        calls.clear()
        monkeypatch.setattr(compression, "PAIR_BUDGET", 7 * 300)
        parts = chunked_scoring(counted, inputs)
    assert calls == [7, 7, 6]
    torch.testing.assert_close(parts, whole)
