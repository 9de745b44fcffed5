"""The churn networks: MLP (optionally with a GRU branch), seed ensemble, per-cut-off router.

Plain ``nn.Linear`` + ReLU + Dropout stacks, so compression (pruning, int8 quantization,
low rank) applies to what is served. `build_module` rebuilds a module from its
architecture dict (artifacts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

STATE_VERSION = 1
RECENT_WEEKS = 4


class ChurnDropout(nn.Dropout):
    """`nn.Dropout` with the same mask drawn 2x faster on CPU.

    PyTorch's CPU `bernoulli_` goes through a bernoulli distribution object per
    element (275 us for 512 x 64 here); `torch.rand` in float64 takes the same
    doubles from the same generator in half the time (134 us), so comparing
    them with the keep probability gives the identical mask, and the identical
    arithmetic (mask / keep, times the input) the identical outputs and
    gradients: a trained network is the same bit for bit
    (tests/churn/model/test_model.py::test_fast_dropout_is_torch_dropout_bit_for_bit)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * torch.zeros((), dtype=x.dtype, device=x.device)
        keep = 1 - self.p
        noise = (torch.rand(x.shape, dtype=torch.float64, device=x.device) < keep).to(x.dtype)
        noise.div_(keep)
        return x * noise


class ChurnNet(nn.Module):
    def __init__(
        self,
        n_flat: int,
        n_channels: int,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.2,
        seq_hidden: int = 16,
        use_sequence: bool = True,
        offset: bool = False,
    ):
        super().__init__()
        self.use_sequence = use_sequence
        # with `offset`, the last flat column is a logit added to the output as is
        # (the course module's base rate, `RunPrior`), the MLP reads the others
        self.n_mlp_flat = n_flat - 1 if offset else n_flat
        self.gru = nn.GRU(n_channels, seq_hidden, batch_first=True) if use_sequence else None
        width = self.n_mlp_flat + (seq_hidden if use_sequence else 0)
        mods: list[nn.Module] = []
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU(), ChurnDropout(dropout)]
            width = hidden
        mods.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*mods)

    @property
    def reads_sequence(self) -> bool:
        return self.gru is not None

    def forward(self, flat: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        x = flat[:, : self.n_mlp_flat]
        if self.gru is not None:
            _, h = self.gru(seq)
            x = torch.cat([x, h[-1]], dim=1)
        out: torch.Tensor = self.mlp(x).squeeze(1)
        if self.n_mlp_flat < flat.shape[1]:
            out = out + flat[:, self.n_mlp_flat]
        return out


class ChurnEnsemble(nn.Module):
    """Mean logit of several `ChurnNet`s (the seeds)."""

    def __init__(self, nets: Sequence[nn.Module]):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, flat: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(flat, seq) for net in self.nets]).mean(dim=0)


class ChurnRouter(nn.Module):
    """One expert (a `ChurnEnsemble`) per training cut-off; each row goes to the expert
    of the nearest cut-off. The raw cut-off day is read back from its standardized
    input column, so the interface stays ``forward(flat, seq) -> logits``."""

    def __init__(
        self,
        experts: Sequence[nn.Module],
        cutoffs: Sequence[float],
        column: int,
        mean: float,
        std: float,
    ):
        super().__init__()
        self.experts = nn.ModuleList(experts)
        self.column = int(column)
        self.register_buffer("cutoffs", torch.tensor([float(c) for c in cutoffs]))
        self.register_buffer("scale", torch.tensor([float(mean), float(std)]))
        self.cutoffs: torch.Tensor
        self.scale: torch.Tensor

    def route(self, flat: torch.Tensor) -> torch.Tensor:
        raw = flat[:, self.column] * self.scale[1] + self.scale[0]
        return torch.argmin((raw[:, None] - self.cutoffs[None, :]).abs(), dim=1)

    def forward(self, flat: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        index = self.route(flat)
        if len(self.experts) == 1:
            only: torch.Tensor = self.experts[0](flat, seq)
            return only
        if len(index) and bool((index == index[0]).all()):  # one cut-off (e.g. batch 1)
            one: torch.Tensor = self.experts[int(index[0])](flat, seq)
            return one
        outs = torch.stack([expert(flat, seq) for expert in self.experts], dim=1)
        return outs.gather(1, index[:, None]).squeeze(1)


def build_module(arch: dict[str, Any]) -> nn.Module:
    """The module of an architecture: an ensemble, or a router over per-cut-off ensembles."""
    if arch.get("route_cutoffs"):
        member = {**arch, "route_cutoffs": None}
        experts = [build_module(member) for _ in arch["route_cutoffs"]]
        return ChurnRouter(
            experts, arch["route_cutoffs"], arch["route_column"], 0.0, 1.0
        )  # the scale buffer is restored by load_state_dict
    return ensemble_of(arch)


def ensemble_of(arch: dict[str, Any]) -> ChurnEnsemble:
    nets = [
        ChurnNet(
            arch["n_flat"],
            arch["n_channels"],
            hidden=arch["hidden"],
            layers=arch["layers"],
            dropout=arch["dropout"],
            seq_hidden=arch["seq_hidden"],
            use_sequence=arch["use_sequence"],
            offset=bool(arch.get("offset", False)),
        )
        for _ in range(arch["n_members"])
    ]
    return ChurnEnsemble(nets)
