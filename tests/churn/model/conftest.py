import pytest

from tests.churn.model.synth import synthetic_learning_data


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """Two modules x three presentations, 100 learners per run (OULAD format, loaded)."""
    return synthetic_learning_data(tmp_path_factory.mktemp("synth"), n_learners=100)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Small nets: on a busy 2-core machine one intra-op thread is much faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
