import pytest

from recommender.model.synthetic import synthetic_learning_data
from recommender.model.timeline import Params

SPLIT = 42


def small_config(**overrides) -> Params:
    values = dict(seed=7, epochs=8)
    values.update(overrides)
    return Params(**values)


@pytest.fixture(scope="session")
def synthetic_data():
    """Two synthetic course runs (50 items, 160 learners each) with a planted timeline pattern."""
    return synthetic_learning_data(
        n_items=50, n_learners=160, n_days=63, seed=1, course_ids=("SYN_A", "SYN_B")
    )


@pytest.fixture(scope="session")
def trained(synthetic_data):
    """A recommender trained on the clicks before day SPLIT."""
    from recommender.model.evaluate import train_view
    from recommender.model.predictor import Recommender

    return Recommender.fit(train_view(synthetic_data, SPLIT), SPLIT, small_config())
