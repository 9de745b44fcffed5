"""The compression methods. Each returns a new module and leaves its input alone.

Pruning
    `magnitude_prune`: global magnitude pruning. One threshold over the absolute
    weights of every selected layer removes the `sparsity` share of them
    (optionally in `steps` rounds, fine-tuning after each with the caller's
    ``finetune(module) -> module``; masks hold the pruned weights at zero while it
    trains). The result is a dense module with exact zeros; its artifact stores
    those tensors as a bit mask + the non-zero values (see `serialize`), so it is
    smaller on disk, not faster.
    `structured_prune`: removes whole hidden units (rows of the producing Linear
    layers and the matching columns of the consuming ones) or embedding dimensions
    (columns of paired tables). The matrices really shrink: smaller and faster.
    Units are described by `UnitGroup`s; `mlp_groups` finds them in
    ``nn.Sequential`` stacks of Linear + elementwise layers.

Quantization
    `quantize_linear_layers(module, backend="auto")`: every nn.Linear -> `Int8Linear`.
    "auto" is `AUTO_LINEAR_BACKEND`, chosen by measurement (docs/compression.md;
    `benchmark_linear_backends` reruns it).
    `quantize_embeddings(module, bits=8)`: every nn.Embedding -> `Int8Embedding`.

Low-rank
    `low_rank`: truncated SVD of Linear weights (two Linear layers) and of
    embedding tables (a narrow table + a projection), rank by explained energy
    and / or a parameter budget (`choose_rank`), then the caller's fine-tuning.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune  # unannotated: calls carry no-untyped-call

from eduplatform.ml.compress.layers import (
    EMBEDDING_MODES,
    LINEAR_BACKENDS,
    CompactLinear,
    Int8Embedding,
    Int8Linear,
    LowRankEmbedding,
    LowRankLinear,
    get_submodule,
    set_submodule,
)

Finetune = Callable[[nn.Module], nn.Module]

# Measured on this project's models (docs/compression.md, "Quantization backend"):
# fp32 matmul over weights dequantized at load was the fastest at every shape
# we serve; fbgemm dynamic int8 was 1.3-5x slower, torch._int_mm 15-70x slower.
AUTO_LINEAR_BACKEND = "dequant"
AUTO_EMBEDDING_MODE = "dequant"
ELEMENTWISE = (
    nn.ReLU,
    nn.Dropout,
    nn.GELU,
    nn.Tanh,
    nn.Sigmoid,
    nn.SiLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.Identity,
)


def _layers(
    module: nn.Module, types: tuple[type[nn.Module], ...], exclude: Iterable[str] = ()
) -> list[tuple[str, nn.Module]]:
    skip = tuple(exclude)
    return [
        (path, m)
        for path, m in module.named_modules()
        if isinstance(m, types) and not any(path == e or path.startswith(e + ".") for e in skip)
    ]


def _finetuned(module: nn.Module, finetune: Finetune | None) -> nn.Module:
    if finetune is None:
        return module
    module.train()
    out = finetune(module)
    return (out if out is not None else module).eval()


# --------------------------------------------------------------------------- pruning


def magnitude_prune(
    module: nn.Module,
    sparsity: float,
    *,
    finetune: Finetune | None = None,
    steps: int = 1,
    layer_types: tuple[type[nn.Module], ...] = (nn.Linear, nn.Embedding),
    exclude: Iterable[str] = (),
) -> nn.Module:
    """Zero the `sparsity` share of the smallest weights, globally over the layers.

    With ``steps > 1`` the sparsity grows as ``sparsity * k / steps`` and the model
    is fine-tuned after every step (pruned weights held at zero by masks, which are
    folded into the weights at the end). Biases are never pruned.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError("sparsity must be in [0, 1)")
    model = copy.deepcopy(module).eval()
    paths = [p for p, _ in _layers(model, layer_types, exclude)]
    if not paths:
        return model
    for step in range(1, max(1, steps) + 1):
        target = sparsity * step / max(1, steps)
        layers = [get_submodule(model, p) for p in paths]
        for layer in layers:
            if torch_prune.is_pruned(layer):
                # torch.nn.utils.prune is unannotated in torch's own sources (torch 2.13)
                torch_prune.remove(layer, "weight")  # type: ignore[no-untyped-call]
        magnitudes = torch.cat([_weight(layer).detach().abs().flatten() for layer in layers])
        k = round(target * magnitudes.numel())
        if k == 0:
            continue
        threshold = torch.kthvalue(magnitudes, k).values
        for layer in layers:
            mask = _weight(layer).detach().abs() > threshold
            torch_prune.custom_from_mask(layer, "weight", mask)  # type: ignore[no-untyped-call]
        # ties at the threshold may remove a few more than k; that is fine
        model = _finetuned(model, finetune)
    for p in paths:
        layer = get_submodule(model, p)
        if torch_prune.is_pruned(layer):
            torch_prune.remove(layer, "weight")  # type: ignore[no-untyped-call]
    return model.eval()


@dataclass(frozen=True)
class UnitGroup:
    """Units removed together. Members are ``(path, role)``:

    ``"out"``  output units of a Linear layer (weight rows and bias entries),
    ``"in"``   input features of a Linear layer (weight columns),
    ``"dim"``  dimensions of an Embedding table (weight columns).

    Every member must have the same number of units. A unit's importance is
    ``rss(out norms) * rss(in norms) * prod(dim norms)`` (rss = root of the sum of
    squares over the members of that role), each member's norms divided by their
    mean so that no layer dominates by scale alone.
    """

    name: str
    members: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "members": [list(m) for m in self.members]}


def mlp_groups(module: nn.Module) -> list[UnitGroup]:
    """Hidden-unit groups of every nn.Sequential: Linear -> elementwise layers -> Linear."""
    groups = []
    for path, seq in module.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.named_children())
        prev: str | None = None
        for name, child in children:
            full = f"{path}.{name}" if path else name
            if isinstance(child, nn.Linear):
                if prev is not None:
                    groups.append(UnitGroup(f"{prev}->{full}", ((prev, "out"), (full, "in"))))
                prev = full
            elif not isinstance(child, ELEMENTWISE):
                prev = None
    return groups


def _tensor(layer: nn.Module, name: str) -> torch.Tensor | None:
    """``layer.<name>`` as a tensor (nn.Module attribute access is typed loosely)."""
    value = getattr(layer, name)
    assert value is None or isinstance(value, torch.Tensor), f"{name} is not a tensor"
    return value


def _weight(layer: nn.Module) -> torch.Tensor:
    weight = _tensor(layer, "weight")
    assert weight is not None
    return weight


def _unit_norms(layer: nn.Module, role: str) -> torch.Tensor:
    if role == "out":
        w = _weight(layer).detach()
        sq = (w**2).sum(dim=1)
        bias = _tensor(layer, "bias")
        if bias is not None:
            sq = sq + bias.detach() ** 2
        return sq.sqrt()
    if role in ("in", "dim"):
        norms: torch.Tensor = _weight(layer).detach().norm(dim=0)
        return norms
    raise ValueError(f"unknown role {role!r}")


def _unit_count(layer: nn.Module, role: str) -> int:
    if role == "out":
        return _weight(layer).shape[0]
    return _weight(layer).shape[1]


def unit_importance(model: nn.Module, group: UnitGroup) -> torch.Tensor:
    by_role: dict[str, list[torch.Tensor]] = {"out": [], "in": [], "dim": []}
    for path, role in group.members:
        norms = _unit_norms(get_submodule(model, path), role).float()
        by_role[role].append(norms / norms.mean().clamp_min(1e-12))
    score = None
    for role in ("out", "in"):
        if by_role[role]:
            part = torch.stack(by_role[role]).pow(2).sum(0).sqrt()
            score = part if score is None else score * part
    for norms in by_role["dim"]:
        score = norms if score is None else score * norms
    if score is None:
        raise ValueError(f"group {group.name} has no members")
    return score


def _shrink(layer: nn.Module, role: str, keep: torch.Tensor) -> nn.Module:
    with torch.no_grad():
        if isinstance(layer, nn.Linear):
            w = layer.weight.detach()
            has_bias = layer.bias is not None
            if role == "out":
                new = CompactLinear(layer.in_features, len(keep), bias=has_bias)
                new.weight.copy_(w[keep])
                if has_bias:
                    new.bias.copy_(layer.bias.detach()[keep])
            elif role == "in":
                new = CompactLinear(len(keep), layer.out_features, bias=has_bias)
                new.weight.copy_(w[:, keep])
                if has_bias:
                    new.bias.copy_(layer.bias.detach())
            else:
                raise ValueError(f"role {role!r} does not apply to a Linear layer")
            return new
        if isinstance(layer, nn.Embedding):
            if role != "dim":
                raise ValueError(f"role {role!r} does not apply to an Embedding")
            new_e = nn.Embedding(layer.num_embeddings, len(keep), padding_idx=layer.padding_idx)
            new_e.weight.copy_(layer.weight.detach()[:, keep])
            return new_e
    raise TypeError(f"cannot prune units of {type(layer).__name__}")


def structured_prune(
    module: nn.Module,
    groups: list[UnitGroup],
    keep: float | dict[str, float] = 0.5,
    *,
    finetune: Finetune | None = None,
    steps: int = 1,
    min_units: int = 1,
) -> nn.Module:
    """Remove the least important units of each group (keep a `keep` share of them).

    `keep` may be one share for all groups or a share per group name. With
    ``steps > 1`` the kept share shrinks linearly and the model is fine-tuned
    after every step.
    """
    model = copy.deepcopy(module).eval()
    if not groups:
        return model
    sizes = {}
    for g in groups:
        counts = {_unit_count(get_submodule(model, p), r) for p, r in g.members}
        if len(counts) != 1:
            raise ValueError(f"group {g.name}: members disagree on the number of units {counts}")
        sizes[g.name] = counts.pop()
    for step in range(1, max(1, steps) + 1):
        for g in groups:
            share = keep.get(g.name, 1.0) if isinstance(keep, dict) else keep
            share = 1.0 - (1.0 - share) * step / max(1, steps)
            target = max(min_units, math.ceil(sizes[g.name] * share))
            current = _unit_count(get_submodule(model, g.members[0][0]), g.members[0][1])
            if target >= current:
                continue
            score = unit_importance(model, g)
            kept = torch.sort(torch.topk(score, target).indices).values
            for path, role in g.members:
                model = set_submodule(model, path, _shrink(get_submodule(model, path), role, kept))
        model = _finetuned(model, finetune)
    return model.eval()


# ---------------------------------------------------------------------- quantization


def resolve_linear_backend(backend: str) -> str:
    resolved = AUTO_LINEAR_BACKEND if backend == "auto" else backend
    if resolved not in LINEAR_BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (auto, {', '.join(LINEAR_BACKENDS)})")
    return resolved


def quantize_linear_layers(
    module: nn.Module, backend: str = "auto", *, exclude: Iterable[str] = ()
) -> nn.Module:
    """Every nn.Linear -> Int8Linear (int8 weights, per-row scales); the one choice point.

    ``backend="auto"`` uses `AUTO_LINEAR_BACKEND`, the fastest in our measurement
    (docs/compression.md); "dequant", "ao_dynamic" and "int_mm" can be forced.
    """
    chosen = resolve_linear_backend(backend)
    model = copy.deepcopy(module).eval()
    for path, layer in _layers(model, (nn.Linear,), exclude):
        assert isinstance(layer, nn.Linear)
        model = set_submodule(model, path, Int8Linear.from_float(layer, chosen))
    return model


def quantize_embeddings(
    module: nn.Module, bits: int = 8, mode: str = "auto", *, exclude: Iterable[str] = ()
) -> nn.Module:
    """Every nn.Embedding -> Int8Embedding (row-wise int8 or 4-bit)."""
    chosen = AUTO_EMBEDDING_MODE if mode == "auto" else mode
    if chosen not in EMBEDDING_MODES:
        raise ValueError(f"unknown embedding mode {mode!r}")
    model = copy.deepcopy(module).eval()
    for path, layer in _layers(model, (nn.Embedding,), exclude):
        assert isinstance(layer, nn.Embedding)
        model = set_submodule(model, path, Int8Embedding.from_float(layer, bits, chosen))
    return model


def quantize(
    module: nn.Module, backend: str = "auto", embedding_bits: int = 8, embedding_mode: str = "auto"
) -> nn.Module:
    """Linear layers to int8 (`quantize_linear_layers`), embedding tables row-wise."""
    return quantize_embeddings(
        quantize_linear_layers(module, backend), embedding_bits, embedding_mode
    )


def benchmark_linear_backends(
    shapes: Iterable[tuple[int, int, int]], repeats: int = 50, seed: int = 0
) -> list[dict[str, Any]]:
    """Side-by-side p50 time (ms) of fp32 nn.Linear and each Int8Linear backend.

    `shapes` are (rows, in_features, out_features); calls are interleaved, one thread
    count (the caller's). Returns one dict per shape with the times and the max
    relative output error of each backend.
    """
    gen = torch.Generator().manual_seed(seed)
    out = []
    for rows, fin, fout in shapes:
        torch.manual_seed(seed)
        base = nn.Linear(fin, fout).eval()
        x = torch.randn(rows, fin, generator=gen)
        layers: dict[str, nn.Module] = {"fp32": base}
        for b in LINEAR_BACKENDS:
            layers[b] = Int8Linear.from_float(base, b)
        times: dict[str, list[float]] = {k: [] for k in layers}
        with torch.inference_mode():
            ref = base(x)
            for m in layers.values():
                m(x)
            for r in range(repeats):
                names = list(layers)
                names = names[r % len(names) :] + names[: r % len(names)]
                for name in names:
                    t0 = time.perf_counter()
                    layers[name](x)
                    times[name].append(time.perf_counter() - t0)
            errors = {
                k: float((m(x) - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
                for k, m in layers.items()
            }
        out.append(
            {
                "shape": [rows, fin, fout],
                "p50_ms": {k: float(torch.tensor(v).median()) * 1e3 for k, v in times.items()},
                "max_rel_error": errors,
            }
        )
    return out


# -------------------------------------------------------------------------- low rank


def choose_rank(
    singular_values: torch.Tensor,
    shape: tuple[int, int],
    *,
    energy: float | None = None,
    budget: float | None = None,
) -> int:
    """The rank to keep: the smallest one explaining `energy` of sum(s^2), capped so
    that the two factors hold at most `budget` x the parameters of the (m x n) matrix.
    """
    if energy is None and budget is None:
        raise ValueError("give energy and / or budget")
    s = singular_values.detach().double()
    full = len(s)
    rank = full
    if energy is not None:
        if not 0.0 < energy <= 1.0:
            raise ValueError("energy must be in (0, 1]")
        total = float((s**2).sum())
        if total <= 0:
            rank = 1
        else:
            cum = torch.cumsum(s**2, 0) / total
            rank = int(torch.searchsorted(cum, torch.tensor(energy - 1e-12, dtype=cum.dtype))) + 1
    if budget is not None:
        m, n = shape
        rank = min(rank, int(budget * m * n / (m + n)))
    return max(1, min(rank, full))


def low_rank(
    module: nn.Module,
    *,
    energy: float | None = 0.9,
    budget: float | None = None,
    finetune: Finetune | None = None,
    layer_types: tuple[type[nn.Module], ...] = (nn.Linear, nn.Embedding),
    exclude: Iterable[str] = (),
    min_saving: float = 0.2,
) -> nn.Module:
    """Factor Linear weights / embedding tables by truncated SVD where it saves at least
    `min_saving` of their parameters, then fine-tune. Returns the new module.
    """
    model = copy.deepcopy(module).eval()
    changed = False
    for path, layer in _layers(model, layer_types, exclude):
        if isinstance(layer, nn.Linear):
            m, n = layer.out_features, layer.in_features
        else:
            assert isinstance(layer, nn.Embedding), f"{path}: not a Linear or Embedding"
            m, n = layer.weight.shape
        s = torch.linalg.svdvals(layer.weight.detach().float())
        r = choose_rank(s, (m, n), energy=energy, budget=budget)
        if r * (m + n) > (1.0 - min_saving) * m * n:
            continue
        if isinstance(layer, nn.Linear):
            new: nn.Module = LowRankLinear.from_linear(layer, r)
        else:
            new = LowRankEmbedding.from_embedding(layer, r)
        model = set_submodule(model, path, new)
        changed = True
    return _finetuned(model, finetune) if changed else model
