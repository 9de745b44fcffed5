"""Per-learner scoring cost of the served recommender: one learner vs a batch of 256 (#23 item 5).

    OMP_NUM_THREADS=1 python -m bench.recommender_batch [--data DIR] [--run FFF_2013J]
        [--items 2000,50000] [--json FILE]

The served path (`Recommender.score_learners`, what batch scoring calls; `recommend`, what
one request calls) on the largest OULAD run at day 100 (if the data folder is there) and
on synthetic catalogues, with the fp32 network and with the served recipe
(`structured+quantized`, the product's compression settings). Weights do not change the
cost, so the networks are untrained. The run-day part (item features, item block of the
first layer) is built once before timing, as when serving. CPU time of one thread, median
of repetitions. Target: 256 learners cost per learner <= 1/4 of one learner.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import SHARED_OULAD
from eduplatform.ml.compress.pipeline import CompressionSettings, build_variant
from recommender.model.compression import scoring_groups
from recommender.model.predictor import Recommender
from recommender.model.ranker_net import RankerScoringNet, Standardiser
from recommender.model.run_state import RunState
from recommender.model.timeline import Params, runs_from_data

SERVED = "structured+quantized"
TARGET = 0.25


def _cpu(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def oulad_recommender(data_dir: str, run_id: str, day: int) -> Recommender:
    from eduplatform.ml.datasets.oulad import load_oulad

    data = load_oulad(data_dir, course_ids=[run_id])
    run = runs_from_data(data, before_day=day)[0]
    p = Params()
    net = RankerScoringNet()
    scaler = Standardiser(torch.zeros(65), torch.ones(65))
    return Recommender(net, scaler, [RunState.build(run, day, p.half_lives)], p)


def measure(rec: Recommender, label: str, seed: int = 0) -> list[dict[str, Any]]:
    """fp32 and the served variant: one learner (score_learners, recommend) vs 256."""
    course = next(iter(rec.runs))
    learners = np.array(list(rec.derived(course).learner_index), dtype=np.int64)
    rng = np.random.default_rng(seed)
    one = rng.choice(learners, min(64, len(learners)), replace=False)
    batch = [int(u) for u in rng.choice(learners, 256, replace=len(learners) < 256)]
    fp32 = rec.net
    rows = []
    for name in ("fp32", SERVED):
        rec.use_network(
            build_variant(
                name, fp32, settings=CompressionSettings.recommender(), groups=scoring_groups(fp32)
            )
        )
        rec.recommend(int(one[0]), course)  # the run-day part, once, as when serving
        score_one = statistics.median(
            [_cpu(partial(rec.score_learners, course, [int(u)]), 3) for u in one]
        )
        recommend_one = statistics.median(
            [_cpu(partial(rec.recommend, int(u), course), 3) for u in one]
        )
        per_learner = _cpu(lambda: rec.score_learners(course, batch), 5) / len(batch)
        rows.append(
            {
                "catalogue": label,
                "items": int(rec.runs[course].n_items),
                "network": name,
                "score_one_ms": round(score_one * 1e3, 3),
                "recommend_one_ms": round(recommend_one * 1e3, 3),
                "per_learner_in_256_ms": round(per_learner * 1e3, 3),
                "ratio": round(per_learner / score_one, 3),
                "met": per_learner / score_one <= TARGET,
            }
        )
    rec.use_network(fp32)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SHARED_OULAD))
    ap.add_argument("--run", default="FFF_2013J")
    ap.add_argument("--day", type=int, default=100)
    ap.add_argument("--items", default="2000,50000", help="synthetic catalogue sizes ('' = none)")
    ap.add_argument("--json", help="write the rows here too")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    if Path(args.data, "courses.csv").exists():
        rows += measure(oulad_recommender(args.data, args.run, args.day), f"OULAD {args.run}")
    for n in [int(x) for x in args.items.split(",") if x.strip()]:
        from recommender.model.synthetic import build_synthetic

        rows += measure(build_synthetic(n, seed=0, n_learners=2000), f"synthetic {n:,}")
    out = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "target": TARGET,
        "rows": rows,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
