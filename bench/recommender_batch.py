"""Per-learner scoring cost of `mlp_ranker`: one learner vs a batch of 256 (#23 item 5).

    OMP_NUM_THREADS=1 python -m bench.recommender_batch [--data DIR] [--run FFF_2013J]

The largest OULAD run at day 100; the network has the product's shape (weights do not
change the cost); the run-day part (snapshot, item features, item block of layer 1) is
built once, as when serving. CPU time of one thread, median of repetitions.
Target: 256 learners cost per learner <= 1/4 of one learner.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from bench.common import SHARED_OULAD
from eduplatform.ml.datasets.oulad import load_oulad
from recommender.model.ranker import MLPRanker, RankerNet
from recommender.model.timeline import Snapshot, runs_from_data


def _cpu(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SHARED_OULAD))
    ap.add_argument("--run", default="FFF_2013J")
    ap.add_argument("--day", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_oulad(args.data, course_ids=[args.run])
    run = runs_from_data(data, before_day=args.day)[0]
    ranker = MLPRanker()
    ranker.net = RankerNet(65, ranker.p.hidden).eval()
    snap = Snapshot(run, args.day)
    t = time.process_time()
    ranker.item_part(snap)
    run_day = time.process_time() - t
    rng = np.random.default_rng(0)
    one = rng.choice(run.n_learners, 64, replace=False)
    batch = rng.choice(run.n_learners, 256, replace=False)
    single = statistics.median(
        [_cpu(lambda u=u: ranker.scores(snap, np.array([u])), 3) for u in one]
    )
    many = _cpu(lambda: ranker.scores(snap, batch), 7) / len(batch)
    print(
        json.dumps(
            {
                "run": args.run,
                "items": run.n_items,
                "learners": run.n_learners,
                "run_day_ms": round(run_day * 1e3, 2),
                "one_learner_ms": round(single * 1e3, 3),
                "per_learner_in_256_ms": round(many * 1e3, 3),
                "ratio": round(many / single, 3),
                "target": 0.25,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
