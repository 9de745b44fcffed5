"""On the real data (skipped without ../shared/datasets/oulad): the two smallest presentations."""

import pytest

from eduplatform.ml.datasets.oulad import load_oulad
from recommender.model.evaluate import evaluate, train_view
from tests.conftest import SHARED_OULAD

pytestmark = pytest.mark.oulad


@pytest.fixture(scope="module")
def two_runs():
    if not (SHARED_OULAD / "courses.csv").exists():
        pytest.skip("../shared/datasets/oulad is not present")
    return load_oulad(SHARED_OULAD, course_ids=["AAA_2013J", "GGG_2014B"])


def test_beats_recent_popularity_on_the_validation_split(two_runs):
    # the hyper-parameters were chosen on this kind of split: clicks before day 100 only
    result = evaluate(train_view(two_runs, 100), 80, peers=("recent_popularity",))
    models = result["models"]
    assert result["course_runs"] == 2 and result["test_learners"] > 500
    assert models["recommender"]["ndcg"] > 1.05 * models["recent_popularity"]["ndcg"]


def test_far_ahead_of_long_term_popularity_at_day_100(two_runs):
    result = evaluate(two_runs, 100, peers=("popularity", "item_knn"))
    models = result["models"]
    assert models["recommender"]["ndcg"] > 1.5 * models["popularity"]["ndcg"]
    assert models["recommender"]["ndcg"] > 1.5 * models["item_knn"]["ndcg"]
