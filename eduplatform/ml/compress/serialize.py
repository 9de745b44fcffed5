"""Compressed modules as tensors + a JSON config (no pickled modules).

`variant_state(module)` describes every Linear / Embedding-like layer of the module
(plain, int8, low-rank; shapes after structured pruning) in the config and stores
its tensors; the parameters and buffers of other modules (e.g. a GRU) are stored
as they are ("rest"). `load_variant(tensors, config, build_base)` builds the
original architecture with `build_base()`, swaps in the described layers and
fills in the tensors. Only plain tensors are read (safetensors through
eduplatform.ml.artifacts); nothing is unpickled.

Storage of a tensor ("codec")
    "dense"    as is.
    "bitmask"  the non-zero pattern as packed bits (1 bit per element) plus the
               non-zero values, used when it is smaller than dense by 10 % or more
               (pruned weights: at 80 % sparsity an fp32 matrix takes 0.93 bytes
               per weight instead of 4, an int8 one 0.33 instead of 1). Densified
               when loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eduplatform.ml.artifacts import load_artifact, save_artifact
from eduplatform.ml.compress.layers import (
    CompactLinear,
    Int8Embedding,
    Int8Linear,
    LowRankEmbedding,
    LowRankLinear,
    set_submodule,
)

FORMAT = "eduplatform.compress/1"
SPARSE_GAIN = 0.9  # use the bit mask when it takes at most this share of the dense bytes
_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "int8": torch.int8,
    "uint8": torch.uint8,
}


# ----------------------------------------------------------------------------- codecs


def encode_tensor(tensor: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """{suffix: tensor} and the codec description for one tensor."""
    t = tensor.detach().contiguous().cpu()
    nnz = int(torch.count_nonzero(t))
    dense_bytes = t.numel() * t.element_size()
    sparse_bytes = math.ceil(t.numel() / 8) + nnz * t.element_size()
    if t.numel() >= 64 and sparse_bytes <= SPARSE_GAIN * dense_bytes:
        flat = t.reshape(-1)
        mask = flat != 0
        bits = np.packbits(mask.numpy())
        return (
            {".mask": torch.from_numpy(bits), ".values": flat[mask].clone()},
            {"codec": "bitmask", "shape": list(t.shape), "dtype": str(t.dtype).split(".")[-1]},
        )
    return {"": t}, {"codec": "dense"}


def decode_tensor(
    tensors: dict[str, torch.Tensor], key: str, codec: dict[str, Any]
) -> torch.Tensor:
    kind = codec.get("codec", "dense")
    if kind == "dense":
        return tensors[key]
    if kind == "bitmask":
        shape = tuple(int(d) for d in codec["shape"])
        numel = int(np.prod(shape)) if shape else 1
        dtype = _DTYPES[codec["dtype"]]
        bits = tensors[key + ".mask"].numpy()
        mask = torch.from_numpy(np.unpackbits(bits, count=numel).astype(bool))
        values = tensors[key + ".values"]
        if int(mask.sum()) != values.numel():
            raise ValueError(f"{key}: bit mask and values disagree")
        out = torch.zeros(numel, dtype=dtype)
        out[mask] = values.to(dtype)
        return out.reshape(shape)
    raise ValueError(f"{key}: unknown codec {kind!r}")


# ----------------------------------------------------------------------------- layers


def _layer_kind(m: nn.Module) -> str | None:
    # exact types: subclasses may carry state we do not know about
    kinds = {
        nn.Linear: "linear",
        CompactLinear: "compact_linear",
        nn.Embedding: "embedding",
        Int8Linear: "int8_linear",
        Int8Embedding: "int8_embedding",
        LowRankLinear: "lowrank_linear",
        LowRankEmbedding: "lowrank_embedding",
    }
    return kinds.get(type(m))


def _spec_and_tensors(m: nn.Module, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    # `kind` is `_layer_kind(m)`, an exact type match: the asserts only narrow for mypy
    spec: dict[str, Any]
    ts: dict[str, torch.Tensor]
    if kind in ("linear", "compact_linear"):
        assert isinstance(m, nn.Linear)
        spec = {"in": m.in_features, "out": m.out_features, "bias": m.bias is not None}
        ts = {"weight": m.weight}
        if m.bias is not None:
            ts["bias"] = m.bias
        return spec, ts
    if kind == "embedding":
        assert isinstance(m, nn.Embedding)
        spec = {"n": m.num_embeddings, "dim": m.embedding_dim, "padding_idx": m.padding_idx}
        return spec, {"weight": m.weight}
    if kind == "int8_linear":
        assert isinstance(m, Int8Linear)
        spec = {
            "in": m.in_features,
            "out": m.out_features,
            "bias": m.bias is not None,
            "backend": m.backend,
        }
        ts = {"qweight": m.qweight, "scale": m.scale}
        if m.bias is not None:
            ts["bias"] = m.bias
        return spec, ts
    if kind == "int8_embedding":
        assert isinstance(m, Int8Embedding)
        spec = {
            "n": m.num_embeddings,
            "dim": m.embedding_dim,
            "bits": m.bits,
            "mode": m.mode,
            "scale_dtype": str(m.scale.dtype).split(".")[-1],
        }
        return spec, {"qweight": m.qweight, "scale": m.scale}
    if kind == "lowrank_linear":
        assert isinstance(m, LowRankLinear)
        return {
            "in": m.in_features,
            "out": m.out_features,
            "rank": m.rank,
            "bias": m.second.bias is not None,
        }, {}
    if kind == "lowrank_embedding":
        assert isinstance(m, LowRankEmbedding)
        return {"n": m.num_embeddings, "dim": m.embedding_dim, "rank": m.rank}, {}
    raise ValueError(kind)


def _build_layer(spec: dict[str, Any]) -> nn.Module:
    kind = spec["type"]
    if kind == "linear":
        return nn.Linear(spec["in"], spec["out"], bias=spec["bias"])
    if kind == "compact_linear":
        return CompactLinear(spec["in"], spec["out"], bias=spec["bias"])
    if kind == "embedding":
        return nn.Embedding(spec["n"], spec["dim"], padding_idx=spec.get("padding_idx"))
    if kind == "int8_linear":
        return Int8Linear(spec["in"], spec["out"], spec["bias"], spec["backend"])
    if kind == "int8_embedding":
        return Int8Embedding(
            spec["n"], spec["dim"], spec["bits"], spec["mode"], _DTYPES[spec["scale_dtype"]]
        )
    if kind == "lowrank_linear":
        return LowRankLinear(spec["in"], spec["out"], spec["rank"], spec["bias"])
    if kind == "lowrank_embedding":
        return LowRankEmbedding(spec["n"], spec["dim"], spec["rank"])
    raise ValueError(f"unknown layer type {kind!r}")


def _fill_layer(layer: nn.Module, kind: str, values: dict[str, torch.Tensor]) -> None:
    if kind in ("linear", "compact_linear", "embedding"):
        with torch.no_grad():
            for name, value in values.items():
                target = getattr(layer, name)
                if tuple(target.shape) != tuple(value.shape):
                    raise ValueError(f"{name}: shape {tuple(value.shape)} != {tuple(target.shape)}")
                target.copy_(value)
    elif kind == "int8_linear":
        assert isinstance(layer, Int8Linear)
        layer.set_quantized(values["qweight"], values["scale"], values.get("bias"))
    elif kind == "int8_embedding":
        assert isinstance(layer, Int8Embedding)
        layer.set_quantized(values["qweight"], values["scale"])


def _key(path: str, name: str) -> str:
    return f"layer.{path}.{name}" if path else f"layer.{name}"


def variant_state(
    module: nn.Module, info: dict[str, Any] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, JSON config) of a (compressed) module; see `load_variant`."""
    tensors: dict[str, torch.Tensor] = {}
    layers = []
    covered: list[str] = []
    for path, m in module.named_modules():
        kind = _layer_kind(m)
        if kind is None:
            continue
        spec, ts = _spec_and_tensors(m, kind)
        codecs = {}
        for name, t in ts.items():
            parts, codec = encode_tensor(t)
            for suffix, part in parts.items():
                tensors[_key(path, name) + suffix] = part
            codecs[name] = codec
        layers.append({"path": path, "type": kind, **spec, "tensors": codecs})
        covered.append(path)
    rest = []
    for key, value in module.state_dict().items():
        owner = key.rpartition(".")[0]
        if any(owner == p or owner.startswith(p + ".") or p == "" for p in covered):
            continue
        tensors[f"rest.{key}"] = value.detach().clone()
        rest.append(key)
    config = {"format": FORMAT, "layers": layers, "rest": rest, "info": info or {}}
    return tensors, config


def load_variant(
    tensors: dict[str, torch.Tensor],
    config: dict[str, Any],
    build_base: Callable[[], nn.Module],
) -> nn.Module:
    """Rebuild a module saved by `variant_state` (in eval mode)."""
    if config.get("format") != FORMAT:
        raise ValueError(f"not a compressed module state (format {config.get('format')!r})")
    module = build_base()
    covered = []
    for spec in config["layers"]:  # parents come before their children
        path, kind = spec["path"], spec["type"]
        layer = _build_layer(spec)
        values = {
            name: decode_tensor(tensors, _key(path, name), codec)
            for name, codec in spec.get("tensors", {}).items()
        }
        _fill_layer(layer, kind, values)
        module = set_submodule(module, path, layer)
        covered.append(path)
    own = module.state_dict(keep_vars=True)
    missing = []
    with torch.no_grad():
        for key in config.get("rest", []):
            if key not in own:
                raise ValueError(f"variant state has {key!r}, the base module does not")
            own[key].copy_(tensors[f"rest.{key}"])
        for key in own:
            owner = key.rpartition(".")[0]
            in_layer = any(owner == p or owner.startswith(p + ".") or p == "" for p in covered)
            if not in_layer and key not in config.get("rest", []):
                missing.append(key)
    if missing:
        raise ValueError(f"variant state misses {', '.join(missing[:5])}")
    return module.eval()


def save_variant(path: Path, module: nn.Module, info: dict[str, Any] | None = None) -> str:
    """Write the module's variant state as an artifact; returns its sha256."""
    tensors, config = variant_state(module, info)
    return save_artifact(Path(path), tensors, config)


def read_variant(
    path: Path, expected_sha256: str | None, build_base: Callable[[], nn.Module]
) -> nn.Module:
    artifact = load_artifact(Path(path), expected_sha256)
    return load_variant(artifact.tensors, artifact.config, build_base)


def parameter_counts(module: nn.Module) -> tuple[int, int]:
    """(weights and biases, non-zero ones) of the module; quantization scales not counted."""
    total = nonzero = 0
    covered = []
    for path, m in module.named_modules():
        kind = _layer_kind(m)
        if kind is None:
            continue
        covered.append(path)
        if kind == "int8_embedding":
            values = [m.int_values()]
        else:
            _, ts = _spec_and_tensors(m, kind)
            values = [t for name, t in ts.items() if name != "scale"]
        for t in values:
            total += t.numel()
            nonzero += int(torch.count_nonzero(t))
    for key, t in module.state_dict().items():
        owner = key.rpartition(".")[0]
        if any(owner == p or owner.startswith(p + ".") or p == "" for p in covered):
            continue
        if t.is_floating_point():
            total += t.numel()
            nonzero += int(torch.count_nonzero(t))
    return total, nonzero
