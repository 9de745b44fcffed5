"""Timing of compressed variants: interleaved latency samples and the machine they ran on.

Split from `pipeline.py` (which builds, selects and reports the variants) so each file keeps
one job; `pipeline` and the package re-export `measure_latency`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

Inputs = tuple[Any, ...]  # positional inputs of a module (tensors, cached parts, ...)
Forward = Callable[[nn.Module, Inputs], Any]


def _default_forward(module: nn.Module, inputs: Inputs) -> Any:
    return module(*inputs)


def measure_latency(
    modules: dict[str, nn.Module],
    inputs: dict[str, Inputs],
    *,
    forward: Forward | None = None,
    repeats: int = 100,
    min_repeats: int = 5,
    warmup: int = 2,
    max_seconds: float | None = None,
    threads: int | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of every module, calls interleaved round-robin.

    ``inputs[name]`` are the inputs of ``modules[name]``. The number of rounds is
    `repeats`, cut so that the whole measurement takes about `max_seconds` (never
    fewer than `min_repeats` rounds).
    """
    fwd = forward or _default_forward
    names = list(modules)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    samples: dict[str, list[float]] = {n: [] for n in names}
    try:
        with torch.inference_mode():
            per_round = 0.0
            for n in names:
                for _ in range(max(1, warmup)):
                    t0 = time.perf_counter()
                    fwd(modules[n], inputs[n])
                    elapsed = time.perf_counter() - t0
                per_round += elapsed
            rounds = repeats
            if max_seconds is not None and per_round > 0:
                rounds = min(repeats, max(min_repeats, int(max_seconds / per_round)))
            for r in range(rounds):
                shift = r % len(names)
                for n in names[shift:] + names[:shift]:
                    t0 = time.perf_counter()
                    fwd(modules[n], inputs[n])
                    samples[n].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(previous)
    return samples


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1e3, q)) if samples else math.nan


def cpu_model(default: str = "") -> str:
    """The CPU's model name from /proc/cpuinfo (`default` where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


def environment(threads: int) -> dict[str, Any]:
    cpu = cpu_model(platform.processor() or "")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# -------------------------------------------------------------------------- selection
