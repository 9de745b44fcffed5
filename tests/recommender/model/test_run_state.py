"""The compact run state answers the ranker's reads as `timeline.Snapshot` does."""

import numpy as np
import pytest

from recommender.model import run_state
from recommender.model.evaluate import train_view
from recommender.model.ranker import block_parts, item_features, pair_parts
from recommender.model.run_state import RunDerived, RunState, RunView
from recommender.model.timeline import Params, Snapshot, runs_from_data

from .conftest import SPLIT


@pytest.fixture(scope="module")
def run(synthetic_data):
    return runs_from_data(train_view(synthetic_data, SPLIT), before_day=SPLIT)[0]


@pytest.mark.parametrize("later", [0, 1, 5, 30])
def test_features_at_the_as_of_day_and_later_days_equal_the_snapshots(run, later):
    # clicks stop at SPLIT, so Snapshot(run, SPLIT + later) knows what the state knows
    p = Params()
    state = RunState.build(run, SPLIT, p.half_lives)
    view = RunView(state, RunDerived(state), SPLIT + later)
    snap = Snapshot(run, SPLIT + later)
    rows = np.arange(run.n_learners)
    np.testing.assert_allclose(item_features(view, p), item_features(snap, p), rtol=1e-6)
    got, want = block_parts(view, view.learners(rows), p), pair_parts(snap, rows, p)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    if later == 0:  # bit-identical at the as-of day
        assert np.array_equal(item_features(view, p), item_features(snap, p))


def test_sparse_transitions_equal_the_dense_ones(run, monkeypatch):
    p = Params()
    state = RunState.build(run, SPLIT, p.half_lives)
    dense = RunDerived(state).transitions(p.trans_next, p.trans_window)
    monkeypatch.setattr(run_state, "DENSE_TRANSITIONS", 0)
    sparse = RunDerived(state).transitions(p.trans_next, p.trans_window)
    assert not isinstance(sparse, np.ndarray)
    np.testing.assert_allclose(sparse.toarray(), dense, rtol=1e-6)


def test_a_learners_own_rows_give_the_stored_learners_block(synthetic_data, run):
    p = Params()
    state = RunState.build(run, SPLIT, p.half_lives)
    view = RunView(state, RunDerived(state), SPLIT + 3)
    learner = int(run.learner_ids[9])
    ia = synthetic_data.item_activity
    mine = ia[(ia["course_id"] == run.course_id) & (ia["learner_id"] == learner)]
    block, used = view.history_block(mine[["item_id", "day", "clicks"]])
    stored = view.learners(np.array([9]))
    assert used == int((mine["day"] < SPLIT + 3).sum())  # rows before the serving day
    # the request's rows reach day SPLIT + 2 (newer than the model): first and last
    # days may move later, the stored ones are a prefix of them
    assert np.array_equal(np.isfinite(stored.first), np.isfinite(stored.first) & block.seen)
    clipped = view.history_block(mine[mine["day"] < SPLIT][["item_id", "day", "clicks"]])[0]
    for name in ("first", "last", "days", "since"):
        assert np.array_equal(getattr(clipped, name), getattr(stored, name)), name
