"""mlp_ranker (the research recipe, evaluated-only candidate): features, network, fit."""

import numpy as np
import torch

from recommender.model.evaluate import train_view
from recommender.model.ranker import (
    MLPRanker,
    RankerNet,
    item_features,
    pair_features,
    pair_parts,
)
from recommender.model.timeline import Params, Snapshot, runs_from_data

SPLIT = 42


def _runs(data):
    return runs_from_data(train_view(data, SPLIT), before_day=SPLIT)


def test_65_features_and_split_first_layer_equals_the_plain_forward(synthetic_data):
    run = _runs(synthetic_data)[0]
    snap = Snapshot(run, SPLIT)
    rows = np.arange(min(20, run.n_learners))
    p = Params()
    item_x = item_features(snap, p)
    x = pair_features(snap, rows, p, item_x)
    assert x.shape == (len(rows), run.n_items, 65) and np.isfinite(x).all()
    torch.manual_seed(0)
    net = RankerNet(65, p.hidden).eval()
    net.std.uniform_(0.5, 2.0)
    lf, px = pair_parts(snap, rows, p)
    with torch.no_grad():
        plain = net(torch.from_numpy(np.ascontiguousarray(x)))
        parts = net.forward_parts(
            net.item_part(torch.from_numpy(item_x)), torch.from_numpy(lf), torch.from_numpy(px)
        )
    assert torch.allclose(plain, parts, atol=1e-5)


def test_fit_is_seeded_and_chooses_epochs_on_the_inner_cut(synthetic_data):
    torch.set_num_threads(1)
    runs = _runs(synthetic_data)
    p = Params(epochs=3)
    a, b = MLPRanker(p).fit([], runs, SPLIT), MLPRanker(p).fit([], runs, SPLIT)
    assert a.chosen["epochs"] in (1, 2, 3) and len(a.chosen["inner_curve"]) == 3
    snap = Snapshot(runs[0], SPLIT)
    rows = np.arange(runs[0].n_learners)
    assert np.array_equal(a.scores(snap, rows), b.scores(snap, rows))
