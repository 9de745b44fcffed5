"""Serving latency of `Recommender.recommend` on a synthetic course run.

    python -m bench.recommender_latency --items 2000 [--learners 2000] [--requests 300]

Prints p50 / p95 of `recommend(k=10)` for random known learners (the run's item
part cached, as in a serving process after the first request of the day), of
the first request of a day (item features recomputed), of a cold-start
learner, of `similar_items`, and the artifact size. Single torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from eduplatform.ml.artifacts import artifact_bytes
from recommender.model.synthetic import build_synthetic


def _percentiles(samples: list[tuple[float, float]]) -> dict:
    """Wall-clock and CPU (this thread) milliseconds: on a shared box the CPU figure is the
    latency an idle core would give, the wall figure what this run saw."""
    wall = np.array([w for w, _ in samples]) * 1000.0
    cpu = np.array([c for _, c in samples]) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(wall, 50)), 3),
        "p95_ms": round(float(np.percentile(wall, 95)), 3),
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 3),
        "cpu_p95_ms": round(float(np.percentile(cpu, 95)), 3),
    }


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - w, time.thread_time() - c


def run(n_items: int, n_learners: int, requests: int, seed: int = 0) -> dict:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rec = build_synthetic(n_items, seed=seed, n_learners=n_learners)
    build_s = time.perf_counter() - t0
    load = os.getloadavg()[0]
    course = "SYN_BENCH"
    run_ = rec.runs[course]
    now = run_.as_of
    rng = np.random.default_rng(seed)
    learners = rng.choice(run_.learner_ids, size=requests)
    rec.recommend(int(learners[0]), course, k=10, now_day=now)  # warm the day's item part
    warm = [_timed(lambda u=u: rec.recommend(int(u), course, k=10, now_day=now)) for u in learners]
    first_of_day = []
    for d in range(min(requests, 30)):
        rec._cache.clear()
        first_of_day.append(
            _timed(lambda d=d: rec.recommend(int(learners[d]), course, k=10, now_day=now))
        )
    cold = [
        _timed(lambda: rec.recommend(None, course, k=10, now_day=now))
        for _ in range(min(requests, 100))
    ]
    items = rng.choice(run_.item_ids, size=min(requests, 100))
    similar = [_timed(lambda i=i: rec.similar_items(int(i), k=10, course=course)) for i in items]
    tensors, config = rec.to_state()
    n_pairs = len(run_.p_item)
    return {
        "items": n_items,
        "load_average_1min": round(load, 2),
        "learners": n_learners,
        "learner_item_pairs": n_pairs,
        "build_seconds": round(build_s, 2),
        "recommend": _percentiles(warm),
        "recommend_first_of_day": _percentiles(first_of_day),
        "recommend_cold_start": _percentiles(cold),
        "similar_items": _percentiles(similar),
        "artifact_mb": round(len(artifact_bytes(tensors, config)) / 1e6, 1),
        "net_parameters": sum(p.numel() for p in rec.net.parameters()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.items, args.learners, args.requests, args.seed), indent=2))


if __name__ == "__main__":
    main()
