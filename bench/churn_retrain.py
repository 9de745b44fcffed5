"""Full-OULAD churn retrain time: features to the fitted product (issue #22: <= 120 s).

Run: OMP_NUM_THREADS=1 python -m bench.churn_retrain [--json FILE]

Loads every OULAD presentation, builds the features at 30/60/90/150, splits them as
`evaluate_churn` does (`split_by_time`: 2014B validates, 2013B + 2013J fit) and trains the
product (`train_churn_model`, default settings: teacher, 4 seeds, Platt, refit). Loading
the CSV files is reported but not counted ("features to fitted product").

With ``--compress`` it then trains as the registry's retrain does (``refit=False``, so
2014B stays unseen) and builds every compression variant (`compress_churn`, one
fine-tuning epoch as in `churn.services.train`): size ratio and AUC loss on 2014B.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.common import SHARED_OULAD
from churn.model.compression import compress_churn
from churn.model.evaluate import split_by_time
from churn.model.features import build_dataset
from churn.model.training import ChurnSettings, train_churn_model
from eduplatform.ml.datasets.oulad import load_oulad

CUTOFFS = [30, 60, 90, 150]


def measure(compress: bool = False) -> dict[str, object]:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = load_oulad(SHARED_OULAD)
    t1 = time.perf_counter()
    c1 = time.process_time()
    feats = build_dataset(data, CUTOFFS).labelled()
    is_val, names = split_by_time(feats, data.courses)
    t2 = time.perf_counter()
    predictor, report = train_churn_model(
        feats.subset(~is_val), feats.subset(is_val), ChurnSettings()
    )
    t3 = time.perf_counter()
    cpu = time.process_time() - c1
    out: dict[str, object] = {}
    if compress:
        fit, val = feats.subset(~is_val), feats.subset(is_val)
        served, _ = train_churn_model(fit, val, ChurnSettings(refit=False))
        result = compress_churn(served, fit, val, finetune_epochs=1)
        out["compression"] = {
            "chosen": result.chosen,
            "reason": result.reason,
            "variants": [
                {
                    "name": r.name,
                    "size_ratio": r.size_ratio,
                    "artifact_bytes": r.artifact_bytes,
                    "auc": r.quality,
                    "quality_loss": r.quality_loss,
                    "eligible": r.eligible,
                }
                for r in result.rows
            ],
        }
    return {
        **out,
        "load_seconds": t1 - t0,
        "features_seconds": t2 - t1,
        "train_seconds": t3 - t2,
        "teacher_seconds": predictor.info["teacher_seconds"],
        "retrain_seconds": t3 - t1,
        "retrain_cpu_seconds": cpu,
        "rows": len(feats),
        "inner_validation": names,
        "best_epochs": report.best_epochs,
        "inner_val_auc": report.val_auc,
        "teacher": predictor.info["teacher"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--compress", action="store_true")
    args = parser.parse_args()
    result = measure(args.compress)
    print(json.dumps(result, indent=2, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
