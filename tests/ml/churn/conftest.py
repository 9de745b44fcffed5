import pytest

from tests.ml.churn.synth import synthetic_learning_data


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """Two modules x three presentations, 100 learners per run (OULAD format, loaded)."""
    return synthetic_learning_data(tmp_path_factory.mktemp("synth"), n_learners=100)
