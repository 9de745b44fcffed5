import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from eduplatform.ml.data import (
    ACTIVITY_COLUMNS,
    ASSESSMENT_COLUMNS,
    COURSE_COLUMNS,
    ENROLMENT_COLUMNS,
    SUBMISSION_COLUMNS,
    LearningData,
)
from recommender.model.evaluate import (
    PRODUCT,
    RunSplit,
    evaluate,
    evaluate_scorer,
    format_table,
    peer_scorer,
    split_runs,
    top_k,
    train_view,
)

from .conftest import small_config

SPLIT = 10


def _data(rows, items) -> LearningData:
    clicks = pd.DataFrame(rows, columns=["course_id", "learner_id", "item_id", "day", "clicks"])
    return LearningData(
        courses=pd.DataFrame(columns=COURSE_COLUMNS),
        enrolments=pd.DataFrame(columns=ENROLMENT_COLUMNS),
        activity=pd.DataFrame(columns=ACTIVITY_COLUMNS).assign(day=pd.Series(dtype=int)),
        item_activity=clicks,
        items=pd.DataFrame(items, columns=["course_id", "item_id", "activity_type"]).assign(
            week_from=np.nan, week_to=np.nan
        ),
        assessments=pd.DataFrame(columns=ASSESSMENT_COLUMNS),
        submissions=pd.DataFrame(columns=SUBMISSION_COLUMNS),
    )


@pytest.fixture
def tiny():
    items = [("C", i, "resource") for i in (1, 2, 3, 4, 5)] + [("D", 9, "url")]
    rows = [
        # learner 100: opened 1 and 2 before the split; after it 2 again (not a test item),
        # 3 (test) and 4 twice (one test item)
        ("C", 100, 1, 0, 3),
        ("C", 100, 2, 9, 1),
        ("C", 100, 2, 10, 5),
        ("C", 100, 3, 10, 1),
        ("C", 100, 4, 12, 1),
        ("C", 100, 4, 20, 1),
        # learner 200: only after the split -> not a test learner (nothing to personalise)
        ("C", 200, 5, 11, 1),
        # learner 300: only before the split -> empty test set -> not a test learner
        ("C", 300, 1, 3, 2),
        ("C", 300, 5, 8, 4),
        # learner 400: item 5 at the split day is a test item; item 1 the day before is not
        ("C", 400, 1, 9, 1),
        ("C", 400, 5, 10, 1),
        # course D: learner 100 again, a different enrolment
        ("D", 100, 9, 1, 1),
    ]
    return _data(rows, items)


def test_test_set_is_exactly_first_visits_on_or_after_the_split(tiny):
    splits = split_runs(tiny, SPLIT)
    assert [s.course_id for s in splits] == ["C"]  # D has no test learner
    s = splits[0]
    assert list(s.item_ids) == [1, 2, 3, 4, 5]
    assert list(s.train_learners) == [100, 300, 400]
    assert list(s.learner_ids) == [100, 400]
    test = {
        int(u): set(s.item_ids[s.test[r].indices].tolist()) for r, u in enumerate(s.learner_ids)
    }
    assert test == {100: {3, 4}, 400: {5}}
    visited = {
        int(u): set(s.item_ids[np.flatnonzero(v)].tolist())
        for u, v in zip(s.learner_ids, s.visited, strict=True)
    }
    assert visited == {100: {1, 2}, 400: {1}}
    # clicks summed before the split only
    assert s.train[0].toarray().tolist() == [[3.0, 1.0, 0.0, 0.0, 0.0]]
    # recent popularity: clicks in the 14 days before the split
    assert s.recent.tolist() == [6.0, 1.0, 0.0, 0.0, 4.0]


def test_train_view_drops_clicks_from_the_split_day_on(tiny):
    view = train_view(tiny, SPLIT)
    assert view.item_activity["day"].max() == 9
    assert len(view.item_activity) == 6


def test_ranking_skips_visited_items_and_breaks_ties_by_catalogue_order():
    scores = np.array([[5.0, 1.0, 1.0, 9.0], [0.0, 0.0, 0.0, 0.0]])
    visited = np.array([[False, False, False, True], [True, True, True, True]])
    top = top_k(scores, visited, 3)
    assert top.tolist() == [[0, 1, 2], [-1, -1, -1]]


def test_peer_metrics_on_the_tiny_run(tiny):
    splits = split_runs(tiny, SPLIT)
    # popularity (distinct learners before the split): item 1 (3), 2 (1), 5 (1), 3, 4 (0)
    # learner 100 (visited 1, 2): ranks 5, 3, 4 -> hits at 2 and 3 of {3, 4}
    # learner 400 (visited 1): ranks 2, 5, ... -> hit at rank 2 of {5}
    m = evaluate_scorer(splits, peer_scorer("popularity"), k=2)
    ndcg_100 = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    ndcg_400 = (1 / np.log2(3)) / 1.0
    assert m["learners"] == 2
    assert m["ndcg"] == pytest.approx((ndcg_100 + ndcg_400) / 2)
    assert m["recall"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    # coverage: items in some top-2 list / catalogue -> {5, 3} | {2, 5} = 3 of 5
    assert m["coverage"] == pytest.approx(3 / 5)


def test_evaluate_reports_every_model_on_synthetic_data(synthetic_data):
    result = evaluate(
        synthetic_data,
        42,
        peers=("popularity", "recent_popularity", "item_knn"),
        config=small_config(epochs=1),
        candidates=("mlp_ranker",),
    )
    assert set(result["models"]) == {
        PRODUCT,
        "mlp_ranker",
        "popularity",
        "recent_popularity",
        "item_knn",
    }
    assert result["test_learners"] == sum(len(s.test_rows) for s in split_runs(synthetic_data, 42))
    for m in result["models"].values():
        assert 0.0 <= m["ndcg"] <= 1.0 and 0.0 <= m["recall"] <= 1.0
        assert 0.0 < m["coverage"] <= 1.0
    assert result["best_peer"] in {"popularity", "recent_popularity", "item_knn"}
    table = format_table(result)
    assert "NDCG@10" in table and "recent_popularity" in table


# -- the protocol's boundaries, one by one (make mutate's tests for the split) ----------


def test_train_view_cuts_both_click_frames_and_keeps_the_rest(tiny):
    activity = pd.DataFrame(
        {"course_id": "C", "learner_id": 100, "day": [8, 9, 10, 11], "clicks": [1, 2, 3, 4]}
    )
    data = dataclasses.replace(tiny, activity=activity)
    view = train_view(data, SPLIT)
    assert view.activity["day"].tolist() == [8, 9]
    assert view.activity.index.tolist() == [0, 1]
    assert view.item_activity.index.tolist() == list(range(6))
    # the same frames, fewer rows: no column added (the old index is dropped)
    assert list(view.activity.columns) == list(activity.columns)
    assert list(view.item_activity.columns) == list(tiny.item_activity.columns)
    for name in ("courses", "enrolments", "items", "assessments", "submissions"):
        assert getattr(view, name) is getattr(data, name)


def test_recent_popularity_counts_the_14_days_before_the_split():
    items = [("C", i, "resource") for i in (1, 2, 3, 4)]  # item 4: never opened
    rows = [
        ("C", 1, 1, 5, 100),  # 15 days before the split: too old
        ("C", 1, 2, 6, 10),  # 14 days before: in
        ("C", 2, 3, 19, 1),  # the day before: in
        ("C", 2, 1, 20, 7),  # the split day: a test click, not popularity
    ]
    (s,) = split_runs(_data(rows, items), 20)
    assert s.recent.tolist() == [0.0, 10.0, 1.0, 0.0]
    assert s.train.toarray().tolist() == [[100.0, 10.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
    assert list(s.learner_ids) == [2] and s.test.toarray().tolist() == [[1.0, 0.0, 0.0, 0.0]]


def test_catalogue_without_an_items_table_and_unknown_test_items():
    # Course E has no row in `items`: its catalogue is the items clicked before the split.
    rows = [
        ("E", 1, 7, 1, 2),
        ("E", 1, 5, 2, 1),
        ("E", 2, 7, 3, 1),
        ("E", 1, 8, 12, 1),  # not in the catalogue: not a test item
        ("E", 2, 5, 12, 3),
        ("E", 2, 5, 13, 1),  # the same first visit twice: one test item
    ]
    (s,) = split_runs(_data(rows, [("C", 1, "resource")]), SPLIT)
    assert s.course_id == "E"
    assert list(s.item_ids) == [5, 7]
    assert list(s.learner_ids) == [2]
    assert s.test.toarray().tolist() == [[1.0, 0.0]]
    assert s.visited.tolist() == [[False, True]]
    assert s.item_ids.dtype == np.int64  # item ids stay integers


def test_runs_come_in_course_order_whatever_the_row_order(tiny):
    rows = tiny.item_activity
    shuffled = dataclasses.replace(tiny, item_activity=rows.iloc[::-1].reset_index(drop=True))
    more = pd.concat(
        [shuffled.item_activity, rows.assign(course_id="B")], ignore_index=True
    )  # run B: a copy of C, listed last
    splits = split_runs(dataclasses.replace(tiny, item_activity=more), SPLIT)
    assert [s.course_id for s in splits] == ["B", "C"]


def test_a_run_of_one_learner_is_evaluated():
    rows = [("C", 1, 1, 2, 1), ("C", 1, 2, 12, 1)]
    (s,) = split_runs(_data(rows, [("C", i, "resource") for i in (1, 2)]), SPLIT)
    assert list(s.learner_ids) == [1] and s.test.toarray().tolist() == [[0.0, 1.0]]


def test_skipped_runs_do_not_stop_the_others(tiny):
    extra = pd.DataFrame(
        [
            ("A", 1, 1, 12, 1),  # A: clicks after the split only (no learner)
            ("B", 1, 1, 1, 1),  # B: before only (no test item)
        ],
        columns=tiny.item_activity.columns,
    )
    data = dataclasses.replace(
        tiny, item_activity=pd.concat([extra, tiny.item_activity], ignore_index=True)
    )
    assert [s.course_id for s in split_runs(data, SPLIT)] == ["C"]


def test_runs_without_learners_or_test_items_are_left_out():
    items = [("C", 1, "resource"), ("D", 2, "resource")]
    rows = [
        ("C", 1, 1, 12, 1),  # C: clicks after the split only
        ("D", 1, 2, 1, 1),  # D: before only
    ]
    assert split_runs(_data(rows, items), SPLIT) == []


def test_metrics_count_padding_as_no_hit():
    # Learner 0 has three unvisited items for k = 4: the fourth slot is padding (-1), which
    # must not read item 0 (relevant) as a hit.
    scores = np.array([[0.0, 3.0, 2.0, 1.0, 0.0]])
    visited = np.array([[True, False, False, False, True]])
    test = sp.csr_matrix(np.array([[1.0, 0.0, 0.0, 1.0, 0.0]]))
    top = top_k(scores, visited, 4)
    assert top.tolist() == [[1, 2, 3, -1]]
    split = RunSplit(
        course_id="C",
        item_ids=np.arange(5),
        train_learners=np.array([7]),
        train=sp.csr_matrix(visited.astype(float)),
        recent=np.zeros(5),
        test_rows=np.array([0]),
        test=test,
    )
    m = evaluate_scorer([split], lambda s: scores, k=4, per_learner=True)
    assert m["recall"] == pytest.approx(0.5)  # one of two relevant items (3), not two
    assert m["ndcg"] == pytest.approx((1 / np.log2(4)) / (1 + 1 / np.log2(3)))
    assert m["per_learner_ndcg"].tolist() == pytest.approx([m["ndcg"]])
    assert m["coverage"] == pytest.approx(3 / 5)
    assert "per_learner_ndcg" not in evaluate_scorer([split], lambda s: scores, k=4)


def test_metrics_of_several_learners_and_the_first_item():
    # Two learners; item 0 is relevant to both and ranked first for learner 1.
    scores = np.array([[0.0, 3.0, 2.0], [9.0, 1.0, 0.0]])
    test = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    split = RunSplit(
        course_id="C",
        item_ids=np.arange(3),
        train_learners=np.array([1, 2]),
        train=sp.csr_matrix((2, 3)),
        recent=np.zeros(3),
        test_rows=np.array([0, 1]),
        test=test,
    )
    m = evaluate_scorer([split], lambda s: scores, k=1, per_learner=True)
    # learner 0's top item is 1 (a miss), learner 1's is item 0 (a hit)
    assert m["per_learner_ndcg"].tolist() == [0.0, 1.0]
    assert m["recall"] == pytest.approx(0.5)
    nobody = evaluate_scorer([], lambda s: scores, k=1, per_learner=True)
    assert nobody["per_learner_ndcg"].shape == (0,)


def test_evaluate_scorer_pools_learners_and_catalogues_over_runs(tiny):
    splits = split_runs(tiny, SPLIT)
    two = [splits[0], dataclasses.replace(splits[0], course_id="C2")]
    one = evaluate_scorer(splits, peer_scorer("popularity"), k=2)
    both = evaluate_scorer(two, peer_scorer("popularity"), k=2)
    assert both["learners"] == 2 * one["learners"] == 4
    assert both["ndcg"] == pytest.approx(one["ndcg"])
    assert both["coverage"] == pytest.approx(one["coverage"])  # 6 of 10, as 3 of 5
    assert evaluate_scorer([], peer_scorer("popularity"), k=2) == {
        "recall": 0.0,
        "ndcg": 0.0,
        "coverage": 0.0,
        "learners": 0,
    }


def test_peer_scorers_on_the_tiny_run(tiny):
    (s,) = split_runs(tiny, SPLIT)
    # distinct learners before the split per item 1..5: 100, 300, 400 opened 1; 100 opened 2;
    # 300 opened 5
    assert peer_scorer("popularity")(s).tolist() == [[3, 1, 0, 0, 1]] * 2
    assert peer_scorer("recent_popularity")(s).tolist() == [s.recent.tolist()] * 2
    knn = peer_scorer("item_knn")(s)
    assert knn.shape == (2, 5)
    # learner 400 opened item 1 only: item 2 (shared with 1 by learner 100) and item 5 (by
    # 300) are similar to it, items 3 and 4 (never opened) are not; no self-similarity.
    assert knn[1].tolist() == pytest.approx([0.0, 1 / np.sqrt(3), 0.0, 0.0, 1 / np.sqrt(3)])
    with pytest.raises(ValueError, match="unknown peer 'nope'"):
        peer_scorer("nope")
