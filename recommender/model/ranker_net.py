"""The served form of the ranker's network: its first layer split into item, learner and
pair blocks, as plain `nn.Linear` modules, so compression (pruning, int8, low rank) can
swap each of them, and the item block is computed once per run and day.

Inputs are standardised outside the network (`Standardiser`): folding the scale into
the weights would give columns of very different magnitude, which per-row int8
quantisation handles badly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recommender.model.ranker import RankerNet

N_ITEM, N_LEARNER, N_PAIR = 49, 8, 8  # the ranker's 65 features: [item | learner | pair]


class RankerScoringNet(nn.Module):
    """relu(item_in(x_i) + learner_in(x_l) + pair_in(x_p)) -> relu(hidden) -> out."""

    def __init__(
        self,
        n_item_features: int = N_ITEM,
        n_learner_features: int = N_LEARNER,
        n_pair_features: int = N_PAIR,
        hidden: int = 64,
        hidden2: int = 32,
    ) -> None:
        super().__init__()
        self.item_in = nn.Linear(n_item_features, hidden)
        self.learner_in = nn.Linear(n_learner_features, hidden)
        self.pair_in = nn.Linear(n_pair_features, hidden)
        self.hidden = nn.Linear(hidden, hidden2)
        self.out = nn.Linear(hidden2, 1)

    def shape(self) -> dict[str, int]:
        """Constructor arguments of this (fp32) architecture."""
        return {
            "n_item_features": self.item_in.in_features,
            "n_learner_features": self.learner_in.in_features,
            "n_pair_features": self.pair_in.in_features,
            "hidden": self.item_in.out_features,
            "hidden2": self.hidden.out_features,
        }

    def item_hidden(self, item_x: torch.Tensor) -> torch.Tensor:
        """(I, H) item block of the first layer (with the bias): once per run and day."""
        out: torch.Tensor = self.item_in(item_x)
        return out

    def forward(
        self, item_h: torch.Tensor, learner_x: torch.Tensor, pair_x: torch.Tensor
    ) -> torch.Tensor:
        """(n, I) scores from the item block (I, H), learners (n, FL), pairs (n, I, FP)."""
        h = torch.relu(self.pair_in(pair_x) + self.learner_in(learner_x)[:, None, :] + item_h[None])
        out: torch.Tensor = self.out(torch.relu(self.hidden(h))).squeeze(-1)
        return out

    @classmethod
    def from_ranker(cls, net: RankerNet) -> tuple[RankerScoringNet, Standardiser]:
        """The trained `RankerNet` as this split network plus its input standardisation."""
        layers = [m for m in net.net if isinstance(m, nn.Linear)]
        if len(layers) != 3:
            raise ValueError("the served ranker has two hidden layers")
        first, hidden, out = layers
        fi = N_ITEM
        fl = N_LEARNER
        split = cls(fi, fl, first.in_features - fi - fl, first.out_features, hidden.out_features)
        with torch.no_grad():
            w = first.weight.detach()
            split.item_in.weight.copy_(w[:, :fi])
            split.item_in.bias.copy_(first.bias.detach())
            split.learner_in.weight.copy_(w[:, fi : fi + fl])
            split.learner_in.bias.zero_()
            split.pair_in.weight.copy_(w[:, fi + fl :])
            split.pair_in.bias.zero_()
            split.hidden.load_state_dict(hidden.state_dict())
            split.out.load_state_dict(out.state_dict())
        return split.eval(), Standardiser(net.mean.detach().clone(), net.std.detach().clone())

    def to_ranker(self, scaler: Standardiser) -> RankerNet:
        """Back to the training form (warm start of the next retrain)."""
        n = self.shape()
        width = n["n_item_features"] + n["n_learner_features"] + n["n_pair_features"]
        net = RankerNet(width, (n["hidden"], n["hidden2"]))
        with torch.no_grad():
            first, hidden, out = (m for m in net.net if isinstance(m, nn.Linear))
            first.weight.copy_(
                torch.cat([self.item_in.weight, self.learner_in.weight, self.pair_in.weight], 1)
            )
            first.bias.copy_(self.item_in.bias + self.learner_in.bias + self.pair_in.bias)
            hidden.load_state_dict(self.hidden.state_dict())
            out.load_state_dict(self.out.state_dict())
            net.mean.copy_(scaler.mean)
            net.std.copy_(scaler.std)
        return net


class Standardiser:
    """(x - mean) / std of the [item | learner | pair] feature blocks."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean.float(), std.float()

    def item(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[:N_ITEM]) / self.std[:N_ITEM]

    def learner(self, x: torch.Tensor) -> torch.Tensor:
        sl = slice(N_ITEM, N_ITEM + N_LEARNER)
        return (x - self.mean[sl]) / self.std[sl]

    def pair(self, x: torch.Tensor) -> torch.Tensor:
        sl = slice(N_ITEM + N_LEARNER, None)
        return (x - self.mean[sl]) / self.std[sl]

    def state(self) -> dict[str, Any]:
        return {"scale.mean": self.mean.clone(), "scale.std": self.std.clone()}
