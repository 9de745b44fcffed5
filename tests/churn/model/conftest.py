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


def pytest_collection_modifyitems(items):
    """`make mutate` runs with -x: the evaluation's hand-made-row tests go before the tiny
    end-to-end ones, and those needing the trained fixture last, so a mutant the fast tests
    catch costs no training (order only; every test still runs)."""

    def cost(item) -> int:
        if item.path.name != "test_evaluate_trained.py":
            return 0
        if item.name == "test_product_settings_alone_train_the_product_with_them":
            return 3  # the peers' default grids: the slowest
        return 2 if item.name == "test_evaluate_churn_end_to_end" else 1

    items.sort(key=cost)
