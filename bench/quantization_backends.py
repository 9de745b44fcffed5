"""The quantization backend measurement behind `AUTO_LINEAR_BACKEND` / `AUTO_EMBEDDING_MODE`.

    python -m bench.quantization_backends [--threads 1] [--repeats 30] [--json FILE]

Times fp32 nn.Linear against each Int8Linear backend, and fp32 nn.Embedding
against Int8Embedding's two modes, at the shapes the two models serve, side by
side (calls interleaved), and prints a markdown table (p50 ms, ratio to fp32).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from eduplatform.ml.compress.layers import EMBEDDING_MODES, Int8Embedding, linear_forward
from eduplatform.ml.compress.methods import benchmark_linear_backends

# (rows, in, out): churn MLP at batch 1 / 256 (180 flat inputs, 64 hidden), the
# recommender's pair_in and hidden layers over 1 x 50,000 and 256 x 460 items.
LINEAR_SHAPES = [
    (1, 180, 64),
    (256, 180, 64),
    (256, 64, 64),
    (50_000, 6, 32),
    (50_000, 32, 16),
    (117_760, 6, 32),
    (117_760, 32, 16),
]
# narrow layers left by structured pruning: F.linear vs `linear_forward`'s orientation
NARROW_SHAPES = [(50_000, 6, 8), (50_000, 8, 4), (50_000, 6, 16), (50_000, 32, 16), (256, 180, 16)]
EMBEDDING_SHAPES = [(2_000, 16), (50_000, 16), (50_000, 4)]  # (rows looked up, dim)


def benchmark_embedding_modes(shapes=EMBEDDING_SHAPES, repeats: int = 30, seed: int = 0):
    out = []
    for n, d in shapes:
        torch.manual_seed(seed)
        base = nn.Embedding(n + 1, d)
        layers: dict[str, nn.Module] = {"fp32": base}
        for mode in EMBEDDING_MODES:
            layers[mode] = Int8Embedding.from_float(base, 8, mode)
        idx = torch.randperm(n)
        times: dict[str, list[float]] = {k: [] for k in layers}
        with torch.inference_mode():
            for m in layers.values():
                m(idx)
            for r in range(repeats):
                names = list(layers)
                names = names[r % len(names) :] + names[: r % len(names)]
                for name in names:
                    t0 = time.perf_counter()
                    layers[name](idx)
                    times[name].append(time.perf_counter() - t0)
        out.append(
            {
                "shape": [n, d],
                "p50_ms": {k: float(torch.tensor(v).median()) * 1e3 for k, v in times.items()},
            }
        )
    return out


def benchmark_orientation(shapes=NARROW_SHAPES, repeats: int = 30, seed: int = 0):
    out = []
    for rows, fin, fout in shapes:
        torch.manual_seed(seed)
        x = torch.rand(1, rows, fin)
        w, b = torch.randn(fout, fin), torch.randn(fout)
        calls: dict[str, Callable[..., torch.Tensor]] = {
            "F.linear": F.linear,
            "linear_forward": linear_forward,
        }
        times: dict[str, list[float]] = {k: [] for k in calls}
        with torch.inference_mode():
            for r in range(repeats + 2):
                for name, call in calls.items():
                    t0 = time.perf_counter()
                    call(x, w, b)
                    if r >= 2:
                        times[name].append(time.perf_counter() - t0)
        out.append(
            {
                "shape": [rows, fin, fout],
                "p50_ms": {k: float(torch.tensor(v).median()) * 1e3 for k, v in times.items()},
            }
        )
    return out


def markdown(linear: list[dict], embedding: list[dict], narrow: list[dict]) -> str:
    lines = [
        "| Linear (rows, in, out) | fp32 ms | dequant | ao_dynamic | int_mm | max rel. error "
        "(dequant / ao / int_mm) |",
        "|---|---|---|---|---|---|",
    ]
    for r in linear:
        t = r["p50_ms"]
        e = r["max_rel_error"]
        lines.append(
            f"| {tuple(r['shape'])} | {t['fp32']:.3f} | "
            + " | ".join(
                f"{t[b]:.3f} ({t[b] / t['fp32']:.2f}x)" for b in ("dequant", "ao_dynamic", "int_mm")
            )
            + f" | {e['dequant']:.4f} / {e['ao_dynamic']:.4f} / {e['int_mm']:.4f} |"
        )
    lines += [
        "",
        "| Embedding lookup (rows, dim) | fp32 ms | int8 dequant | int8 gather |",
        "|---|---|---|---|",
    ]
    for r in embedding:
        t = r["p50_ms"]
        lines.append(
            f"| {tuple(r['shape'])} | {t['fp32']:.3f} | "
            + " | ".join(f"{t[m]:.3f} ({t[m] / t['fp32']:.2f}x)" for m in EMBEDDING_MODES)
            + " |"
        )
    lines += [
        "",
        "| narrow Linear (rows, in, out) | F.linear ms | linear_forward ms |",
        "|---|---|---|",
    ]
    for r in narrow:
        t = r["p50_ms"]
        lines.append(
            f"| {tuple(r['shape'])} | {t['F.linear']:.3f} | {t['linear_forward']:.3f} "
            f"({t['linear_forward'] / t['F.linear']:.2f}x) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    linear = benchmark_linear_backends(LINEAR_SHAPES, repeats=args.repeats)
    embedding = benchmark_embedding_modes(repeats=args.repeats)
    narrow = benchmark_orientation(repeats=args.repeats)
    print(markdown(linear, embedding, narrow))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"linear": linear, "embedding": embedding, "narrow": narrow}, handle, indent=2
            )


if __name__ == "__main__":
    main()
