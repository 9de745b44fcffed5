"""Markdown tables of `evaluate_recommender --json` output (single split or --folds).

python -m bench.recommender_tables docs/bench/recommender_folds.json [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import table

CANDIDATES = ("mlp_ranker",)
PRODUCT = "recommender"


def _chosen(m: dict) -> str:
    chosen = m.get("chosen") or {}
    return ", ".join(f"{k}={v}" for k, v in chosen.items() if k != "inner_curve")


def result_table(r: dict) -> str:
    models = {n: m for n, m in r["models"].items() if m.get("available")}
    peers = {n: m for n, m in models.items() if n != PRODUCT and n not in CANDIDATES}
    best = max(peers.values(), key=lambda m: m["ndcg"])["ndcg"] if peers else 1.0
    order = [PRODUCT, *CANDIDATES, *sorted(peers, key=lambda n: -peers[n]["ndcg"])]
    rows = [
        [
            f"**{n}**" if n in (PRODUCT, *CANDIDATES) else n,
            f"{models[n]['ndcg']:.4f}",
            f"{models[n]['recall']:.4f}",
            f"{models[n]['coverage']:.3f}",
            f"{models[n]['ndcg'] / best:.3f}",
            _chosen(models[n]),
            f"{models[n].get('seconds', 0):.1f}",
        ]
        for n in order
        if n in models
    ]
    head = (
        f"split day {r['split_day']}, {r['course_runs']} runs under test, "
        f"{r.get('history_runs', 0)} history runs, {r['test_learners']} test learners\n\n"
    )
    cols = ["model", "NDCG@10", "Recall@10", "coverage", "x best peer", "chosen (inner)", "s"]
    return head + table(cols, rows)


def main() -> None:
    for path in sys.argv[1:]:
        r = json.loads(Path(path).read_text())
        if "folds" in r:
            for name in r.get("fold_order", r["folds"]):
                print(f"### {name}\n\n{result_table(r['folds'][name])}\n")
            rows = [
                [n, f"{m['ndcg']:.4f}", f"{m['recall']:.4f}", f"{m['coverage']:.3f}"]
                for n, m in sorted(r["mean"].items(), key=lambda kv: -kv[1]["ndcg"])
            ]
            print(
                "### mean over folds\n\n"
                + table(["model", "NDCG@10", "Recall@10", "coverage"], rows)
            )
        else:
            print(result_table(r))


if __name__ == "__main__":
    main()
