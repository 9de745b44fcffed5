import numpy as np
import pandas as pd
import pytest

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
