import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from eduplatform.ml.train import TrainConfig, evaluate_loss, fit, predict, time_ordered_split


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Small nets: on a busy 2-core machine one intra-op thread is much faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    w = torch.tensor([2.0, -1.0, 0.5, 0.0, 0.0])
    y = (x @ w + 0.3 * torch.randn(n, generator=g) > 0).float()
    return x, y


class Net(nn.Module):
    def __init__(self, out=1):
        super().__init__()
        self.lin = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, out))

    def forward(self, x):
        out = self.lin(x)
        return out.squeeze(1) if out.shape[1] == 1 else out


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_bce_learns_with_each_optimizer(optimizer):
    x, y = _data()
    torch.manual_seed(0)
    net = Net()
    lr = 0.05 if optimizer == "sgd" else 0.01
    cfg = TrainConfig(loss="bce", optimizer=optimizer, lr=lr, max_epochs=15, patience=0)
    result = fit(net, TensorDataset(x, y), None, cfg)
    assert result.history[-1].train_loss < result.history[0].train_loss
    acc = ((predict(net, (x,)) > 0).float() == y).float().mean()
    assert acc > 0.85


def test_cross_entropy_and_mse():
    x, y = _data()
    net = Net(out=2)
    fit(
        net,
        TensorDataset(x, y.long()),
        None,
        TrainConfig(loss="cross_entropy", max_epochs=10, lr=0.01),
    )
    assert (predict(net, (x,)).argmax(1) == y.long()).float().mean() > 0.85
    reg = Net()
    target = x[:, 0] * 2.0
    r = fit(reg, TensorDataset(x, target), None, TrainConfig(loss="mse", max_epochs=20, lr=0.01))
    assert r.history[-1].train_loss < 0.2 * r.history[0].train_loss


def test_same_seed_same_weights_and_different_seed_differs():
    x, y = _data()
    weights = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        net = Net()
        fit(net, TensorDataset(x, y), None, TrainConfig(max_epochs=3, seed=seed))
        weights.append(torch.cat([p.flatten() for p in net.parameters()]))
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_early_stopping_restores_best_epoch():
    x, y = _data(300)
    xv, yv = _data(200, seed=1)
    yv = 1 - yv  # validation labels flipped: every epoch of learning makes it worse
    torch.manual_seed(0)
    net = Net()
    cfg = TrainConfig(max_epochs=30, patience=2, lr=0.01)
    result = fit(net, TensorDataset(x, y), TensorDataset(xv, yv), cfg)
    assert result.stopped_early
    assert result.epochs_run == result.best_epoch + 2
    best = max(h.val_score for h in result.history)
    assert result.best_score == pytest.approx(best)
    # The model holds the best epoch's weights, not the last epoch's: its validation
    # loss now is the recorded best (#30: a mutant that never restored them passed).
    from eduplatform.ml.train import evaluate_loss

    assert result.best_epoch < result.epochs_run
    assert -evaluate_loss(net, TensorDataset(xv, yv), cfg) == pytest.approx(best, rel=1e-5)
    last = result.history[-1].val_score
    assert last is not None and last < best


def test_pos_weight_and_balanced_sampling_push_towards_positives():
    """Each option moves the mean prediction above the same training without it (#30: a
    check against the positive rate alone passed with the options switched off)."""
    x, y = _data()
    y = (x[:, 0] > 1.2).float()  # ~12% positives

    def mean_prediction(cfg: TrainConfig) -> float:
        torch.manual_seed(0)
        net = Net()
        fit(net, TensorDataset(x, y), None, cfg)
        return float(torch.sigmoid(predict(net, (x,))).mean())

    plain = mean_prediction(TrainConfig(max_epochs=20, lr=0.01))
    weighted = mean_prediction(TrainConfig(pos_weight=7.0, max_epochs=20, lr=0.01))
    balanced = mean_prediction(TrainConfig(balanced_sampling=True, max_epochs=20, lr=0.01))
    assert weighted > plain + 0.1
    assert balanced > plain + 0.1


def test_time_ordered_split_puts_latest_rows_in_validation():
    times = np.array([5, 1, 3, 3, 9, 7, 2, 8])
    train, val = time_ordered_split(times, 0.25)
    assert times[train].max() < times[val].min()
    assert sorted(times[val]) == [8, 9]


def test_time_ordered_split_default_fraction_ties_and_bounds():
    """The default is the latest fifth; a boundary time shared by several rows sends them
    all to validation; fractions outside (0, 1) are refused by name. Killed mutants
    (make mutate): default 1.2, `0 <=` / `<= 1` / `< 2` bounds, the message garbled."""
    train, val = time_ordered_split(np.arange(10))
    assert list(train) == list(range(8)) and list(val) == [8, 9]
    times = np.array([1, 2, 3, 4, 4, 4, 5, 6])
    train, val = time_ordered_split(times, 0.5)  # boundary at sorted index 4: time 4
    assert sorted(times[val]) == [4, 4, 4, 5, 6] and sorted(times[train]) == [1, 2, 3]
    for fraction in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"^val_fraction must be in \(0, 1\)$"):
            time_ordered_split(times, fraction)


def test_evaluate_loss_is_the_mean_over_every_row():
    """The validation loss early stopping compares: the mean over all rows, across its
    4096-row batches, and over a single row. Killed mutants (make mutate): the sums
    started at 1 / the count at 1, the last batch only, a batch's mean divided instead
    of weighted, `n -=` / `n =`, `total * n`, `max(n, 2)`."""
    x, y = _data(5000, seed=3)
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        whole = float(nn.BCEWithLogitsLoss()(net(x), y))
        single = float(nn.BCEWithLogitsLoss()(net(x[:1]), y[:1]))
    config = TrainConfig(loss="bce")
    assert evaluate_loss(net, TensorDataset(x, y), config) == pytest.approx(whole, rel=1e-6)
    assert evaluate_loss(net, TensorDataset(x[:1], y[:1]), config) == pytest.approx(
        single, rel=1e-6
    )


def test_train_loss_is_the_epoch_mean_and_epochs_count_from_one():
    """With a zero learning rate the weights never move, so each epoch's train loss is
    the loss over the whole training set. Killed mutants (make mutate): the epoch sums
    started at 1, the last batch only, divided batch means, `n -=` / `n =`, `total * n`,
    `max(n, 2)`, epochs numbered from 2 or run one too many or too few."""
    x, y = _data(300)
    torch.manual_seed(0)
    net = Net()
    config = TrainConfig(optimizer="sgd", lr=0.0, momentum=0.0, max_epochs=3, batch_size=64)
    result = fit(net, TensorDataset(x, y), None, config)
    whole = evaluate_loss(net, TensorDataset(x, y), config)
    assert [h.epoch for h in result.history] == [1, 2, 3] and result.epochs_run == 3
    assert [h.train_loss for h in result.history] == pytest.approx([whole] * 3, rel=1e-5)
    assert result.best_epoch == 0 and result.best_score is None  # no validation set


def test_val_score_picks_the_first_best_epoch_and_its_weights():
    """A given val_score (higher is better), not the validation loss, chooses the epoch;
    the earliest of equal scores wins and its weights are the ones kept. Killed mutants
    (make mutate): the score replaced by None or computed on other arguments,
    `- min_delta` (a later tie wins)."""
    x, y = _data(600, seed=4)
    train, val = TensorDataset(x[:400], y[:400]), TensorDataset(x[400:], y[400:])

    def accuracy(out: torch.Tensor, target: torch.Tensor) -> float:
        return float(((out > 0).float() == target).float().mean())

    torch.manual_seed(0)
    net = Net()
    config = TrainConfig(max_epochs=8, patience=0, lr=0.003, min_delta=1e-4)
    result = fit(net, train, val, config, val_score=accuracy)
    scores = [h.val_score for h in result.history]
    assert all(0.0 <= s <= 1.0 for s in scores) and len(scores) == 8
    assert [s != -h.val_loss for s, h in zip(scores, result.history, strict=True)] == [True] * 8
    assert result.best_epoch == scores.index(max(scores)) + 1
    assert result.best_score == max(scores)
    assert accuracy(predict(net, (x[400:],)), y[400:]) == max(scores)
    flat = fit(Net(), train, val, TrainConfig(max_epochs=3, patience=0), lambda o, t: 0.5)
    assert flat.best_epoch == 1  # no epoch beats the first by min_delta


def test_unknown_names_rejected():
    x, y = _data(20)
    with pytest.raises(ValueError):
        fit(Net(), TensorDataset(x, y), None, TrainConfig(optimizer="lbfgs"))
    with pytest.raises(ValueError):
        fit(Net(), TensorDataset(x, y), None, TrainConfig(loss="hinge"))
