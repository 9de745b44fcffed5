"""Compressed layers: int8 Linear / Embedding and low-rank Linear / Embedding.

Every layer keeps only plain tensors (buffers or parameters), so a compressed
module is saved as tensors + a JSON description (see `serialize`) and rebuilt
without unpickling anything.

Int8 (symmetric, one scale per output row / embedding row)
    ``q = round(w / s)`` clipped to [-127, 127] with ``s = max|w_row| / 127``;
    4-bit embeddings use [-7, 7] and pack two values per byte. The scale is
    rounded to its storage dtype *before* quantizing, so the stored
    (q, s) pair reproduces the in-memory layer bit for bit after a save / load.

Int8Linear backends (compute path; the stored tensors are the same)
    "dequant"     int8 + scales on disk, weight dequantized once when the layer
                  is built or loaded, fp32 matmul (the fastest here, see
                  docs/compression.md), in the orientation of `linear_forward`.
    "ao_dynamic"  fbgemm / x86 dynamic int8: activations quantized per call,
                  int8 GEMM (``torch.ops.quantized.linear_dynamic``).
    "int_mm"      per-row dynamic activation quantization + ``torch._int_mm``.

Int8Embedding modes
    "dequant"     fp32 table rebuilt when loaded (RAM as fp32, disk as int8).
    "gather"      int8 rows gathered per call and scaled (RAM as int8).
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

LINEAR_BACKENDS = ("dequant", "ao_dynamic", "int_mm")
# Narrow layers over many rows: ``(W x^T)^T`` instead of ``x W^T``. This torch build's
# CPU GEMM is slow for few output columns (50,000 x 6 -> 8: 2.2 ms as x W^T, 0.19 ms
# as (W x^T)^T; 50,000 x 32 -> 16: about even; docs/compression.md).
NARROW_OUT_FEATURES = 16
NARROW_MIN_ROWS = 4096
EMBEDDING_MODES = ("dequant", "gather")
_FP16_TINY = float(torch.finfo(torch.float16).tiny)


def linear_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``F.linear``, computed as ``(W x^T)^T`` for narrow layers over many rows.

    The result is a (non-contiguous) view with the usual shape; values agree with
    ``F.linear`` up to float summation order.
    """
    out_features, in_features = weight.shape
    rows = x.numel() // max(in_features, 1)
    if out_features > NARROW_OUT_FEATURES or rows < NARROW_MIN_ROWS:
        return F.linear(x, weight, bias)
    xt = x.reshape(rows, in_features).t()
    y = torch.mm(weight, xt) if bias is None else torch.addmm(bias.unsqueeze(1), weight, xt)
    return y.t().reshape(*x.shape[:-1], out_features)


class CompactLinear(nn.Linear):
    """nn.Linear made by structured pruning / low rank: same parameters, computed with
    `linear_forward` (fast when pruning has made the layer narrow)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear_forward(x, self.weight, self.bias)


def quantize_rows(
    weight: torch.Tensor, bits: int = 8, scale_dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row quantization: (int8 values, scales in `scale_dtype`)."""
    if bits not in (4, 8):
        raise ValueError("bits must be 4 or 8")
    qmax = 127 if bits == 8 else 7
    w = weight.detach().float()
    amax = w.abs().amax(dim=1) if w.shape[1] else torch.zeros(w.shape[0])
    scale = (amax / qmax).to(scale_dtype)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w / scale.float().unsqueeze(1)).clamp_(-qmax, qmax).to(torch.int8)
    return q, scale


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float().unsqueeze(1)


def embedding_scale_dtype(weight: torch.Tensor, bits: int = 8) -> torch.dtype:
    """float16 scales unless a row is so small that its scale would be subnormal."""
    qmax = 127 if bits == 8 else 7
    amax = weight.detach().abs().amax(dim=1)
    nonzero = amax[amax > 0]
    if len(nonzero) and float(nonzero.min()) / qmax < _FP16_TINY:
        return torch.float32
    if len(nonzero) and float(nonzero.max()) / qmax > 6e4:
        return torch.float32
    return torch.float16


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """(n, d) int8 in [-7, 7] -> (n, ceil(d / 2)) uint8, two values per byte."""
    n, d = q.shape
    u = (q.to(torch.int16) + 8).to(torch.uint8)
    if d % 2:
        u = torch.cat([u, torch.full((n, 1), 8, dtype=torch.uint8)], dim=1)
    return u[:, 0::2] | (u[:, 1::2] << 4)


def unpack_int4(packed: torch.Tensor, d: int) -> torch.Tensor:
    low = (packed & 0x0F).to(torch.int16) - 8
    high = (packed >> 4).to(torch.int16) - 8
    out = torch.stack([low, high], dim=2).reshape(packed.shape[0], -1)[:, :d]
    return out.to(torch.int8)


class Int8Linear(nn.Module):
    """A Linear layer with int8 weights (per output row scales) and an fp32 bias."""

    # registered buffers (declared for the type checker)
    qweight: torch.Tensor
    scale: torch.Tensor
    bias: torch.Tensor | None

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, backend: str = "dequant"
    ) -> None:
        super().__init__()
        if backend not in LINEAR_BACKENDS:
            raise ValueError(f"unknown int8 Linear backend {backend!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.backend = backend
        self.register_buffer("qweight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("scale", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        self._prepared: object = None
        self.prepare()

    @classmethod
    def from_float(cls, linear: nn.Linear, backend: str = "dequant") -> Int8Linear:
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, backend)
        q, s = quantize_rows(linear.weight)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        layer.set_quantized(q, s, bias)
        return layer

    def set_quantized(
        self, qweight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None
    ) -> None:
        self.qweight = qweight.to(torch.int8).contiguous()
        self.scale = scale.float().contiguous()
        if self.bias is not None:
            if bias is None:
                raise ValueError("this layer has a bias")
            self.bias = bias.float().contiguous()
        self.prepare()

    def dequantized_weight(self) -> torch.Tensor:
        return dequantize_rows(self.qweight, self.scale)

    def prepare(self) -> None:
        """Precompute what the backend needs from (qweight, scale): deterministic."""
        if self.backend == "dequant":
            self._prepared = self.dequantized_weight()
        elif self.backend == "ao_dynamic":
            with warnings.catch_warnings():  # quantized tensor creation is deprecated in 2.13
                warnings.simplefilter("ignore", UserWarning)
                qt = torch._make_per_channel_quantized_tensor(
                    self.qweight,
                    self.scale.double(),
                    torch.zeros(self.out_features, dtype=torch.long),
                    0,
                )
            self._prepared = torch.ops.quantized.linear_prepack(qt, self.bias)
        else:
            self._prepared = self.qweight.t().contiguous()

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self.prepare()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backend == "dequant":
            return linear_forward(x, cast(torch.Tensor, self._prepared), self.bias)
        if self.backend == "ao_dynamic":
            out: torch.Tensor = torch.ops.quantized.linear_dynamic(
                x.contiguous(), self._prepared, True
            )
            return out
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        sx = (x2.abs().amax(dim=1, keepdim=True) / 127.0).clamp_min(1e-12)
        xq = torch.round(x2 / sx).clamp_(-127, 127).to(torch.int8)
        y = torch._int_mm(xq, cast(torch.Tensor, self._prepared)).float() * sx * self.scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, backend={self.backend}"
        )


class Int8Embedding(nn.Module):
    """An embedding table stored as int8 (or packed 4-bit) rows with one scale per row."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        bits: int = 8,
        mode: str = "dequant",
        scale_dtype: torch.dtype = torch.float16,
    ) -> None:
        super().__init__()
        if bits not in (4, 8):
            raise ValueError("bits must be 4 or 8")
        if mode not in EMBEDDING_MODES:
            raise ValueError(f"unknown int8 embedding mode {mode!r}")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.bits = bits
        self.mode = mode
        width = embedding_dim if bits == 8 else (embedding_dim + 1) // 2
        dtype = torch.int8 if bits == 8 else torch.uint8
        self.register_buffer("qweight", torch.zeros(num_embeddings, width, dtype=dtype))
        self.register_buffer("scale", torch.ones(num_embeddings, dtype=scale_dtype))
        self._table: torch.Tensor | None = None
        self.prepare()

    @classmethod
    def from_float(
        cls, embedding: nn.Embedding, bits: int = 8, mode: str = "dequant"
    ) -> Int8Embedding:
        weight = embedding.weight.detach()
        sdtype = embedding_scale_dtype(weight, bits)
        layer = cls(weight.shape[0], weight.shape[1], bits, mode, sdtype)
        q, s = quantize_rows(weight, bits, sdtype)
        layer.set_quantized(pack_int4(q) if bits == 4 else q, s)
        return layer

    def set_quantized(self, qweight: torch.Tensor, scale: torch.Tensor) -> None:
        self.qweight = qweight.contiguous()
        self.scale = scale.contiguous()
        self.prepare()

    def int_values(self) -> torch.Tensor:
        if self.bits == 8:
            return self.qweight
        return unpack_int4(self.qweight, self.embedding_dim)

    def dequantized_weight(self) -> torch.Tensor:
        return dequantize_rows(self.int_values(), self.scale)

    def prepare(self) -> None:
        if self.mode == "dequant":
            self._table = self.dequantized_weight()
        else:
            self._table = None
            self._values = self.int_values()
            self._scale_col = self.scale.float().unsqueeze(1)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self.prepare()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if self._table is not None:
            return F.embedding(idx, self._table)
        return F.embedding(idx, self._values).float().mul_(F.embedding(idx, self._scale_col))

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized table (for code that reads ``.weight``, e.g. similarity)."""
        return self._table if self._table is not None else self.dequantized_weight()

    def extra_repr(self) -> str:
        return (
            f"{self.num_embeddings}, {self.embedding_dim}, bits={self.bits}, mode={self.mode}, "
            f"scale_dtype={self.scale.dtype}"
        )


class LowRankLinear(nn.Module):
    """``W x + b`` as ``second(first(x))`` with ``W ~ U_r V_r`` (rank r)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.rank = rank
        self.first = CompactLinear(in_features, rank, bias=False)
        self.second = CompactLinear(rank, out_features, bias=bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, rank: int) -> LowRankLinear:
        w = linear.weight.detach().float()
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        root = s[:rank].sqrt()
        layer = cls(linear.in_features, linear.out_features, rank, linear.bias is not None)
        with torch.no_grad():
            layer.first.weight.copy_(root.unsqueeze(1) * vh[:rank])
            layer.second.weight.copy_(u[:, :rank] * root)
            if linear.bias is not None:
                layer.second.bias.copy_(linear.bias.detach())
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.second(self.first(x))
        return y


class LowRankEmbedding(nn.Module):
    """``E[idx]`` as ``proj(table[idx])`` with ``E ~ A_r B_r``: A (n, r), B (r, d)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, rank: int):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.rank = rank
        self.table = nn.Embedding(num_embeddings, rank)
        self.proj = CompactLinear(rank, embedding_dim, bias=False)

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding, rank: int) -> LowRankEmbedding:
        e = embedding.weight.detach().float()
        u, s, vh = torch.linalg.svd(e, full_matrices=False)
        layer = cls(e.shape[0], e.shape[1], rank)
        with torch.no_grad():
            layer.table.weight.copy_(u[:, :rank] * s[:rank])
            layer.proj.weight.copy_(vh[:rank].T)
        return layer

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        rows: torch.Tensor = self.proj(self.table(idx))
        return rows

    @property
    def weight(self) -> torch.Tensor:
        table: torch.Tensor = self.proj(self.table.weight)
        return table


def get_submodule(root: nn.Module, path: str) -> nn.Module:
    return root if path == "" else root.get_submodule(path)


def set_submodule(root: nn.Module, path: str, module: nn.Module) -> nn.Module:
    """Replace the submodule at `path` (dotted); returns the (possibly new) root."""
    if path == "":
        return module
    parent_path, _, name = path.rpartition(".")
    parent = get_submodule(root, parent_path)
    setattr(parent, name, module)
    return root
