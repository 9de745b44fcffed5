import pytest

from recommender.model.synthetic import synthetic_learning_data
from recommender.model.train import TrainConfig

SPLIT = 42


def small_config(**overrides) -> TrainConfig:
    values = dict(
        seed=7,
        epochs=8,
        cutoff_offsets=(7, 14, 21),
        min_cutoff_day=7,
        batch_size=64,
        train_candidates=32,
        hidden=16,
        hidden2=8,
        emb_dim=8,
        lr=5e-3,
    )
    values.update(overrides)
    return TrainConfig(**values)


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
