"""Offline quality on OULAD against the peers, from the evaluation commands' --json output.

Run: python -m bench.run --only quality [--full]

Runs `evaluate_churn` (train 2013B + 2013J, test 2014B) and `evaluate_recommender`
(split day 100) on ../shared/datasets/oulad; each trains the product model and its
peers in the same run. Takes several minutes on 2 cores.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.common import SHARED_OULAD, Section, manage, table


def churn_section(result: dict, mode: str) -> Section:
    rows = [
        [
            s["cutoff"],
            s["model"],
            s["auc"],
            s["pr_auc"],
            s["f1"],
            s["brier"],
            s["n_learners"],
            s["positive_rate"],
        ]
        for s in sorted(result["scores"], key=lambda s: (s["cutoff"], s["model"]))
    ]
    body = (
        "`python manage.py evaluate_churn --train ../shared/datasets/oulad --split-presentation "
        "2014B --cutoffs 30,60,90,150`: train on 2013B + 2013J, test on 2014B; the product model "
        "and the scikit-learn peers on the product's own features (plus the course module, "
        "which the product reads through its base-rate table), in one run.\n\n"
        + table(
            ["cut-off", "model", "AUC", "PR-AUC", "F1", "Brier", "learners", "positive rate"], rows
        )
        + "\n\nTarget: beat both peers at every cut-off and the reference HistGradientBoosting "
        "(AUC 0.702 / 0.703 / 0.721 / 0.757) by 0.03. Not met: see docs/churn-model.md "
        "(against the targets, validation log) and the next section, which shows it out of "
        "reach of the 2013 training data.\n"
    )
    return Section(
        name="churn_quality", title="Churn quality (OULAD)", body=body, mode=mode, figures=result
    )


def recommender_section(result: dict, mode: str) -> Section:
    rows = [
        [name, m.get("recall", "n/a"), m.get("ndcg", "n/a"), m.get("coverage", "n/a")]
        for name, m in result["models"].items()
    ]
    body = (
        f"`python manage.py evaluate_recommender --data ../shared/datasets/oulad --split-day "
        f"{result['split_day']}`: {result['course_runs']} presentations, "
        f"{result['test_learners']:,} test learners, product and peers in one run.\n\n"
        + table(["model", "Recall@10", "NDCG@10", "coverage"], rows)
        + f"\n\nProduct NDCG@10 / best peer ({result['best_peer']}): "
        f"**{result['ndcg_ratio_to_best_peer']:.3f}x** (target 1.10x).\n"
    )
    return Section(
        name="recommender_quality",
        title="Recommender quality (OULAD)",
        body=body,
        mode=mode,
        figures=result,
    )


def run(full: bool) -> list[Section]:
    mode = "full" if full else "quick"
    with tempfile.TemporaryDirectory() as tmp:
        churn_json = Path(tmp) / "churn.json"
        manage(
            "evaluate_churn",
            "--train",
            str(SHARED_OULAD),
            "--split-presentation",
            "2014B",
            "--cutoffs",
            "30,60,90,150",
            "--json",
            str(churn_json),
        )
        rec_json = Path(tmp) / "rec.json"
        manage(
            "evaluate_recommender",
            "--data",
            str(SHARED_OULAD),
            "--split-day",
            "100",
            "--json",
            str(rec_json),
        )
        return [
            churn_section(json.loads(churn_json.read_text()), mode),
            recommender_section(json.loads(rec_json.read_text()), mode),
        ]
