"""Full-OULAD retrain of the recommender without the database (#23 item 5 target <= 120 s).

    OMP_NUM_THREADS=1 python -m bench.recommender_retrain [--data DIR] [--json FILE] [--section]

`--section` also saves the figures as a docs/benchmarks.md section
(docs/bench/recommender_serving.json) and re-renders docs/benchmarks.md.

The stages of `recommender/services.py: train` on the shared OULAD copy seen after every
run ended (as of = each run's last click day + 1, all runs known in full):

1. validate: fit on the clicks before (min as-of - 14), NDCG@10 on the first visits after;
2. compress: every variant of that validation network, the policy's choice
   (`CompressionSettings.recommender()`, timing budget COMPRESSION_TIMING_SECONDS = 4 s, the default);
3. train: the refit on all clicks, every run known in full, with the epoch count the
   validation fit chose (from scratch: no champion to warm-start from);
4. apply: the chosen recipe built on the refit's network; artifact bytes (fp32 and served,
   and the served file's run state and network parts).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.common import RESULTS, SHARED_OULAD, machine, render_markdown, table
from eduplatform.ml.compress import (
    FP32,
    CompressionSettings,
    SelectionPolicy,
    artifact_size,
    build_variant,
)
from eduplatform.ml.compress.serialize import variant_state
from eduplatform.ml.datasets.oulad import load_oulad
from recommender.model.compression import (
    compress_recommender,
    distill_finetune,
    ndcg_evaluator,
    recommender_serving_state,
    scoring_groups,
)
from recommender.model.evaluate import evaluate_scorer, product_scorer, split_runs
from recommender.model.predictor import Recommender
from recommender.model.timeline import Params

VALIDATION_DAYS = 14


def _timed(stages: dict, name: str, fn, *args, **kwargs):
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    stages[name] = {
        "wall": round(time.perf_counter() - t, 1),
        "cpu": round(time.process_time() - c, 1),
    }
    return out


def retrain(data_dir: Path) -> dict:
    torch.set_num_threads(1)
    stages: dict = {}
    data = _timed(stages, "load", load_oulad, data_dir)
    last = data.item_activity.groupby("course_id")["day"].max()
    days = {cid: int(d) + 1 for cid, d in last.items()}
    split_day = max(VALIDATION_DAYS, min(days.values()) - VALIDATION_DAYS)
    config = Params()
    started = time.perf_counter()
    splits = split_runs(data, split_day)
    scorer, val_model = _timed(stages, "validate", product_scorer, data, split_day, config)
    validation = evaluate_scorer(splits, scorer, 10)
    settings = CompressionSettings.recommender()
    settings.bench_seconds = 4.0
    result = _timed(
        stages,
        "compress",
        compress_recommender,
        val_model,
        evaluate=ndcg_evaluator(val_model, splits, split_day),
        finetune=distill_finetune(val_model, epochs=2, max_learners=256),
        policy=SelectionPolicy.recommender(tolerance=0.02),
        settings=settings,
        with_serving_bytes=False,
    )
    model = _timed(
        stages,
        "train",
        Recommender.fit,
        data,
        days,
        config,
        finished=list(days),
        epochs=int(val_model.stats["epochs"]),
    )
    tensors, state_config = model.to_state()
    fp32_bytes = artifact_size(tensors, state_config)
    served_bytes = fp32_bytes
    network_bytes = artifact_size(*variant_state(model.net))
    if result.chosen != FP32:

        def apply() -> tuple[int, int]:
            module = build_variant(
                result.chosen,
                model.net,
                settings=result.settings,
                groups=scoring_groups(model.net),
                finetune=distill_finetune(model, epochs=2, max_learners=256),
            )
            state = recommender_serving_state(model, module, result.chosen)
            return artifact_size(*state), artifact_size(*variant_state(module))

        served_bytes, network_bytes = _timed(stages, "apply", apply)
    out = {
        "retrain_wall_seconds": round(time.perf_counter() - started, 1),
        "stages": stages,
        "split_day": split_day,
        "validation_ndcg": round(validation["ndcg"], 4),
        "served_variant": result.chosen,
        "fp32_artifact_bytes": fp32_bytes,
        "served_artifact_bytes": served_bytes,
        "served_network_bytes": network_bytes,
        "run_state_bytes": served_bytes - network_bytes,
        "epochs": val_model.stats.get("chosen"),
        "runs": len(days),
    }
    return out


def section(out: dict, before: dict | None = None) -> dict:
    """The docs/benchmarks.md section of one run, beside the section's previous run if any."""
    mb = 1e6
    stages = out["stages"]
    old = (before or {}).get("stages", {})
    rows = [
        [
            name,
            old.get(name, {}).get("wall", ""),
            stages[name]["wall"],
            old.get(name, {}).get("cpu", ""),
            stages[name]["cpu"],
        ]
        for name in stages
    ]
    total_cpu = round(sum(stages[n]["cpu"] for n in stages if n != "load"), 1)
    old_cpu = round(sum(old[n]["cpu"] for n in old if n != "load"), 1) if old else None
    body = "\n".join(
        [
            "`OMP_NUM_THREADS=1 python -m bench.recommender_retrain --section`: the stages of "
            "`recommender/services.py: train` on full OULAD (15 runs, every run ended), "
            "without the database.",
            "",
            table(["stage", "wall s before", "wall s", "CPU s before", "CPU s"], rows),
            "",
            table(
                ["serving file", "MB"],
                [
                    ["fp32 (network + run state)", round(out["fp32_artifact_bytes"] / mb, 2)],
                    [
                        f"served ({out['served_variant']})",
                        round(out["served_artifact_bytes"] / mb, 2),
                    ],
                    ["of which run state", round(out["run_state_bytes"] / mb, 2)],
                    ["of which network", round(out["served_network_bytes"] / mb, 3)],
                ],
            ),
            "",
            f"Retrain (validate + compress + refit + apply): {out['retrain_wall_seconds']} s wall, "
            f"{total_cpu} s CPU (target <= 120 s); inner epochs "
            f"{(out.get('epochs') or {}).get('inner_curve')}, chosen "
            f"{(out.get('epochs') or {}).get('epochs')}. "
            + (
                f"The previous run of this bench ({before.get('commit', 'earlier')}): "
                f"{before.get('retrain_wall_seconds')} s wall, {old_cpu} s CPU. "
                if before
                else ""
            )
            + "Before the switch to the ranker (ScoringNet product, 2026-12-07, same bench): "
            "31.1 s and a served file of 62.8 MB.",
        ]
    )
    return {
        "name": "recommender_serving",
        "title": "Recommender retrain and serving file (full OULAD)",
        "machine": machine(),
        "mode": "full",
        "body": body,
        "result": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SHARED_OULAD))
    ap.add_argument("--json")
    ap.add_argument("--section", action="store_true", help="save a docs/benchmarks.md section")
    args = ap.parse_args()
    out = retrain(Path(args.data))
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.section:
        path = RESULTS / "recommender_serving.json"
        before = None
        if path.exists():
            previous = json.loads(path.read_text())
            before = {**previous["result"], "commit": previous["machine"].get("commit")}
        path.write_text(json.dumps(section(out, before), indent=2, default=str) + "\n")
        (RESULTS.parent / "benchmarks.md").write_text(render_markdown())


if __name__ == "__main__":
    main()
