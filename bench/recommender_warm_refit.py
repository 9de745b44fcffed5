"""Inner check of a cheaper refit: warm-started from the validation fit vs from scratch.

    OMP_NUM_THREADS=1 python -m bench.recommender_warm_refit [--data DIR] [--json F]

Everything is before the test split day 100 of `evaluate_recommender`: "today" is day 86,
the validation fit is at day 72 (as `recommender/services.py: train` validates 14 days
back), the refits are at day 86, and NDCG@10 is taken on the first visits in days 86-99.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import SHARED_OULAD
from eduplatform.ml.datasets.oulad import load_oulad
from recommender.model.evaluate import evaluate_scorer, split_runs, train_view
from recommender.model.predictor import Recommender
from recommender.model.timeline import Params

TODAY, VALIDATION = 86, 72


def run(folder: Path) -> dict:
    torch.set_num_threads(1)
    data = train_view(load_oulad(folder), 100)
    splits = split_runs(data, TODAY)
    p = Params()

    def scorer(rec: Recommender):
        def score(s):
            scores, _ = rec.score_learners(s.course_id, s.learner_ids, TODAY)
            return scores[:, np.searchsorted(rec.item_ids(s.course_id), s.item_ids)]

        return score

    t = time.process_time()
    val = Recommender.fit(train_view(data, VALIDATION), VALIDATION, p)
    out: dict = {"validation": {"cpu": round(time.process_time() - t, 1), **val.stats}}
    known = train_view(data, TODAY)
    variants = {
        "scratch": {"epochs": int(val.stats["epochs"])},
        "warm_1": {"epochs": 1, "warm_start": val},
        "warm_2": {"epochs": 2, "warm_start": val},
    }
    for name, kwargs in variants.items():
        t = time.process_time()
        rec = Recommender.fit(known, TODAY, p, **kwargs)
        cpu = round(time.process_time() - t, 1)
        m = evaluate_scorer(splits, scorer(rec), 10)
        out[name] = {"cpu": cpu, "ndcg": round(m["ndcg"], 4), "recall": round(m["recall"], 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SHARED_OULAD))
    ap.add_argument("--json")
    args = ap.parse_args()
    text = json.dumps(run(Path(args.data)), indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
