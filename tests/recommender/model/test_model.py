import json

import numpy as np
import pytest
import torch
from torch import nn

from eduplatform.ml.artifacts import load_artifact, save_artifact
from recommender.model import Recommendation, Recommender, predictor
from recommender.model.evaluate import (
    evaluate_scorer,
    peer_scorer,
    product_scorer,
    split_runs,
    timeline_scorer,
    train_view,
)
from recommender.model.synthetic import build_synthetic

from .conftest import SPLIT, small_config


def _identical(x: torch.Tensor, y: torch.Tensor) -> bool:
    if x.dtype.is_floating_point:  # week_from holds NaN (unknown week)
        return (
            x.shape == y.shape
            and bool(torch.equal(x.isnan(), y.isnan()))
            and bool(torch.equal(x.nan_to_num(0.0), y.nan_to_num(0.0)))
        )
    return torch.equal(x, y)


def _product(rec):
    def score(s):
        scores, _ = rec.score_learners(s.course_id, s.learner_ids, SPLIT)
        return scores[:, np.searchsorted(rec.item_ids(s.course_id), s.item_ids)]

    return score


def test_learns_planted_timeline_pattern_better_than_popularity(synthetic_data, trained):
    splits = split_runs(synthetic_data, SPLIT)
    model = evaluate_scorer(splits, _product(trained), k=10)["ndcg"]
    recent = evaluate_scorer(splits, peer_scorer("recent_popularity"), k=10)["ndcg"]
    popular = evaluate_scorer(splits, peer_scorer("popularity"), k=10)["ndcg"]
    assert model > 1.2 * recent
    assert model > 1.2 * popular


def test_served_product_scores_exactly_as_the_evaluated_ranker(synthetic_data):
    # the compact run state answers the Snapshot's reads exactly at the as-of day
    torch.set_num_threads(1)
    splits = split_runs(synthetic_data, SPLIT)
    ranker, _ = timeline_scorer("mlp_ranker", synthetic_data, SPLIT, seed=7)
    product, _ = product_scorer(synthetic_data, SPLIT, small_config())
    for s in splits:
        np.testing.assert_allclose(product(s), ranker(s), rtol=1e-5, atol=1e-5)


def test_same_seed_gives_identical_weights_and_other_seed_does_not(synthetic_data, trained):
    data = train_view(synthetic_data, SPLIT)
    again = Recommender.fit(data, SPLIT, small_config())
    a, _ = trained.to_state()
    b, _ = again.to_state()
    assert a.keys() == b.keys()
    assert all(_identical(a[k], b[k]) for k in a)
    other = Recommender.fit(data, SPLIT, small_config(seed=8, epochs=1))
    c, _ = other.to_state()
    assert not torch.equal(a["net.out.weight"], c["net.out.weight"])


def test_state_round_trips_through_artifact_with_identical_scores(trained, tmp_path):
    tensors, config = trained.to_state()
    json.dumps(config)  # the config must be plain JSON
    sha = save_artifact(tmp_path / "rec.safetensors", tensors, config)
    art = load_artifact(tmp_path / "rec.safetensors", sha)
    loaded = Recommender.from_state(art.tensors, art.config)
    course = "SYN_A"
    learners = trained.runs[course].learner_ids[:20]
    s1, v1 = trained.score_learners(course, learners, SPLIT)
    s2, v2 = loaded.score_learners(course, learners, SPLIT)
    assert np.array_equal(s1, s2)
    assert np.array_equal(v1, v2)
    learner = int(learners[3])
    assert trained.recommend(learner, course, k=5) == loaded.recommend(learner, course, k=5)


def test_run_state_is_stored_in_small_integers(trained):
    tensors, _ = trained.to_state()
    for name in ("p_item", "p_first", "p_last", "offsets", "visits_recent", "last_active"):
        assert tensors[f"runs.0.{name}"].dtype == torch.int16, name
    assert tensors["runs.0.l_recent"].dtype in (torch.int16, torch.int32)


def test_from_state_refuses_foreign_config(trained):
    tensors, config = trained.to_state()
    with pytest.raises(ValueError):
        Recommender.from_state(tensors, {**config, "format": "something-else"})


def test_recommendations_exclude_visited_items_unless_asked(trained):
    run = trained.runs["SYN_A"]
    learner = int(run.learner_ids[0])
    visited = set(run.item_ids[run.p_item[run.offsets[0] : run.offsets[1]]].tolist())
    assert visited
    recs = trained.recommend(learner, "SYN_A", k=run.n_items)
    ids = [r.item_id for r in recs]
    assert not visited & set(ids)
    assert len(ids) == run.n_items - len(visited) == len(set(ids))
    everything = trained.recommend(learner, "SYN_A", k=run.n_items, include_visited=True)
    assert {r.item_id for r in everything} == set(run.item_ids.tolist())


def test_recommend_agrees_with_batch_scores(trained):
    run = trained.runs["SYN_B"]
    learner = int(run.learner_ids[7])
    recs = trained.recommend(learner, "SYN_B", k=5)
    scores, visited = trained.score_learners("SYN_B", [learner])
    best = np.argsort(-np.where(visited[0], -np.inf, scores[0]), kind="stable")[:5]
    assert [r.item_id for r in recs] == [int(run.item_ids[i]) for i in best]


def test_recommendations_are_sorted_and_explained(trained):
    run = trained.runs["SYN_B"]
    recs = trained.recommend(int(run.learner_ids[5]), "SYN_B", k=10)
    assert len(recs) == 10
    assert all(isinstance(r, Recommendation) for r in recs)
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True)
    assert all(
        isinstance(r.reason, str) and r.reason.strip() and "\n" not in r.reason for r in recs
    )
    follows = [r for r in recs if r.reason.startswith("usually follows")]
    assert all(r.related_item is not None and str(r.related_item) in r.reason for r in follows)


def test_a_fresh_history_gives_a_follow_reason(trained):
    run = trained.runs["SYN_A"]
    opened = [int(i) for i in run.item_ids[10:13]]
    recs = trained.recommend(None, "SYN_A", k=10, history=[(i, SPLIT - 1, 3) for i in opened])
    follows = [r for r in recs if r.reason.startswith("usually follows")]
    assert follows and all(r.related_item in opened for r in follows)


def test_cold_start_learner_gets_the_cohorts_current_items(trained):
    run = trained.runs["SYN_A"]
    recs = trained.recommend(learner=999_999_999, course="SYN_A", k=5)
    assert len(recs) == 5
    assert all(r.reason for r in recs)
    # the cohort's recent favourites: every recommended item was used in the last week
    part = trained._item_part("SYN_A", SPLIT)
    used = {int(run.item_ids[i]) for i in np.flatnonzero(part.used_7d > 0)}
    assert {r.item_id for r in recs} <= used
    # an explicit empty history is the same cold start
    assert trained.recommend(None, "SYN_A", k=5, history=[]) == recs


def test_history_override_is_used_and_excluded(trained):
    run = trained.runs["SYN_A"]
    opened = [int(i) for i in run.item_ids[10:14]]
    recs = trained.recommend(None, "SYN_A", k=8, history=[(i, SPLIT - 2, 3) for i in opened])
    assert len(recs) == 8
    assert not set(opened) & {r.item_id for r in recs}
    assert recs != trained.recommend(None, "SYN_A", k=8)


def test_stored_learner_equals_the_same_history_given_in_the_request(synthetic_data, trained):
    run = trained.runs["SYN_A"]
    learner = int(run.learner_ids[4])
    ia = synthetic_data.item_activity
    rows = ia[(ia["course_id"] == "SYN_A") & (ia["learner_id"] == learner) & (ia["day"] < SPLIT)]
    history = rows[["item_id", "day", "clicks"]]
    assert trained.recommend(learner, "SYN_A", k=6) == trained.recommend(
        None, "SYN_A", k=6, history=history
    )


def test_later_days_are_served_and_earlier_days_as_of_training(trained):
    learner = int(trained.runs["SYN_A"].learner_ids[2])
    later = trained.recommend(learner, "SYN_A", k=5, now_day=SPLIT + 9)
    assert len(later) == 5 and all(np.isfinite(r.score) for r in later)
    assert trained.recommend(learner, "SYN_A", k=5, now_day=SPLIT - 5) == trained.recommend(
        learner, "SYN_A", k=5
    )


def test_new_item_gets_a_prior_from_type_and_release_week(trained):
    rec = Recommender.from_state(*trained.to_state())
    week = SPLIT // 7
    rec.add_items("SYN_A", [5_000_001, 5_000_002], ["resource", "resource"], [week, week + 5])
    recs = rec.recommend(None, "SYN_A", k=rec.runs["SYN_A"].n_items)
    by_id = {r.item_id: r for r in recs}
    assert 5_000_001 in by_id and 5_000_002 in by_id
    assert np.isfinite(by_id[5_000_001].score)
    assert by_id[5_000_001].reason == "new this week for your course"
    # similar items of a new item fall back to the same activity type
    sims = rec.similar_items(5_000_001, k=3)
    assert len(sims) == 3
    assert all(r.reason == "same kind of content (resource)" for r in sims)


def test_similar_items(trained):
    run = trained.runs["SYN_B"]
    item = int(run.item_ids[20])
    sims = trained.similar_items(item, k=5)
    assert len(sims) == 5
    ids = [r.item_id for r in sims]
    assert item not in ids and len(set(ids)) == 5
    assert set(ids) <= set(run.item_ids.tolist())
    assert all(r.reason for r in sims)
    with pytest.raises(KeyError):
        trained.similar_items(-1)


def test_unknown_course_is_a_key_error(trained):
    with pytest.raises(KeyError):
        trained.recommend(1, "NOPE", k=3)


def test_network_uses_plain_linear_layers(trained):
    kinds = {type(m) for m in trained.net.modules()} - {type(trained.net)}
    assert kinds == {nn.Linear}


def test_build_synthetic_catalogue_of_n_items():
    rec = build_synthetic(n_items=3000, seed=0, n_learners=300)
    run = rec.runs["SYN_BENCH"]
    assert run.n_items == 3000
    recs = rec.recommend(int(run.learner_ids[0]), "SYN_BENCH", k=10)
    assert len(recs) == 10
    assert len(rec.similar_items(recs[0].item_id, k=5)) == 5


def test_batch_scoring_keeps_each_network_call_within_the_pair_budget(monkeypatch):
    """A 50,000-item run scored 256 learners at a time took 3.3 GB per call (killed at
    22 GB): batches shrink to the pair budget, with the same scores."""
    rec = build_synthetic(n_items=3000, seed=0, n_learners=300)
    learners = rec.runs["SYN_BENCH"].learner_ids[:40]
    sizes: list[int] = []
    score = rec._score
    monkeypatch.setattr(
        rec, "_score", lambda part, lb: (sizes.append(len(lb.seen)), score(part, lb))[1]
    )
    whole, _ = rec.score_learners("SYN_BENCH", learners)
    assert sizes == [40]  # 40 x 3,000 pairs: within the default budget, one call
    sizes.clear()
    monkeypatch.setattr(predictor, "PAIR_BUDGET", 16 * 3000)
    chunked, _ = rec.score_learners("SYN_BENCH", learners)
    assert sizes == [16, 16, 8]
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)


def test_product_scorer_rows_align_with_the_protocol(synthetic_data):
    scorer, rec = product_scorer(synthetic_data, SPLIT, small_config(epochs=1))
    s = split_runs(synthetic_data, SPLIT)[0]
    scores = scorer(s)
    assert scores.shape == (len(s.test_rows), len(s.item_ids))
    direct, _ = rec.score_learners(s.course_id, s.learner_ids[:1], SPLIT)
    col = int(np.searchsorted(rec.item_ids(s.course_id), s.item_ids[7]))
    assert scores[0, 7] == pytest.approx(direct[0, col], rel=1e-5)


def test_use_network_serves_the_new_network_not_the_old_item_blocks():
    """The item block of the first layer is cached per run-day: swapping in a compressed
    network must drop it, or requests mix the old network's item block with the new one."""
    rec = build_synthetic(n_items=200, seed=0, n_learners=100)
    learner = int(rec.runs["SYN_BENCH"].learner_ids[0])
    before, _ = rec.score_learners("SYN_BENCH", [learner])
    other = predictor.RankerScoringNet()
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(3.0)
    rec.use_network(other)
    swapped, _ = rec.score_learners("SYN_BENCH", [learner])
    fresh = predictor.Recommender(other, rec.scaler, list(rec.runs.values()), rec.config)
    expected, _ = fresh.score_learners("SYN_BENCH", [learner])
    assert not np.allclose(swapped, before)
    np.testing.assert_array_equal(swapped, expected)
    assert not rec.net.training
