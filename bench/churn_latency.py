"""Batch-1 model time of the churn network (p50/p95), a measurement script, not a test.

    python -m bench.churn_latency [--artifact FILE] [--runs 2000]

With --artifact the saved model is timed (no checksum check: a local file you
made); otherwise a network of the default architecture with random weights (the
time does not depend on the weights). Only the module's forward pass is timed
("model time"); preprocessing and explanations are not.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from churn.model.features import DEFAULT_WEEKS, SEQ_CHANNELS
from churn.model.net import build_module
from churn.model.training import ChurnSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifact")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-flat", type=int, default=180)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.artifact:
        from churn.model.predictor import ChurnPredictor
        from eduplatform.ml.artifacts import load_artifact

        art = load_artifact(args.artifact, None)
        predictor = ChurnPredictor.from_state(art.tensors, art.config)
        module, arch = predictor.module, predictor.arch
        n_weeks = predictor.n_weeks
    else:
        s = ChurnSettings()
        arch = {
            "n_flat": args.n_flat,
            "n_channels": len(SEQ_CHANNELS),
            "hidden": s.hidden,
            "layers": s.layers,
            "dropout": s.dropout,
            "seq_hidden": s.seq_hidden,
            "use_sequence": s.use_sequence,
            "n_members": len(s.seeds),
            "route_cutoffs": [30, 60, 90, 150] if s.per_cutoff else None,
            "route_column": 0,
            "offset": s.run_prior,
        }
        module = build_module(arch)
        n_weeks = DEFAULT_WEEKS
    module.eval()
    flat = torch.randn(1, arch["n_flat"])
    seq = torch.randn(1, n_weeks, arch["n_channels"])
    times = []
    with torch.inference_mode():
        for _ in range(50):
            module(flat, seq)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            module(flat, seq)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[int(0.95 * len(times))]
    print(
        f"arch {arch}\nbatch 1 model time: p50 {statistics.median(times):.3f} ms, "
        f"p95 {p95:.3f} ms over {args.runs} runs ({args.threads} thread(s))"
    )


if __name__ == "__main__":
    main()
