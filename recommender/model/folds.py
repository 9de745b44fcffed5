"""Forward folds of the offline evaluation (`evaluate_recommender --folds forward`).

* split days 60, 100 and 150 in every run of the data (with the history, if any);
* a later-presentation fold when there is history or the data has several
  presentations: the latest presentation of the data cut at day 100, trained on every
  earlier presentation in full (the history plus the data's earlier presentations) and
  the run's days before the split. With history and a single presentation in the
  data, the split-100 fold already is that fold and is not repeated.

Each fold is one `evaluate.evaluate` call; `mean` averages each model over the folds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eduplatform.ml.data import LearningData
from recommender.model.evaluate import combine, evaluate

FORWARD_SPLITS = (60, 100, 150)
LATER_SPLIT = 100


@dataclass
class Fold:
    name: str
    data: LearningData
    split_day: int
    history: LearningData | None


def select_presentations(data: LearningData, keep: set[str]) -> LearningData:
    """The runs of `data` whose presentation is in `keep`."""
    runs = set(data.courses.loc[data.courses["presentation"].isin(keep), "course_id"])

    def cut(frame: Any) -> Any:
        return frame[frame["course_id"].isin(runs)].reset_index(drop=True)

    assessments = cut(data.assessments)
    subs = data.submissions[data.submissions["assessment_id"].isin(assessments["assessment_id"])]
    return LearningData(
        courses=cut(data.courses),
        enrolments=cut(data.enrolments),
        activity=cut(data.activity),
        item_activity=cut(data.item_activity),
        items=cut(data.items),
        assessments=assessments,
        submissions=subs.reset_index(drop=True),
    )


def forward_folds(data: LearningData, history: LearningData | None = None) -> list[Fold]:
    folds = [Fold(f"split_{day}", data, day, history) for day in FORWARD_SPLITS]
    presentations = sorted(str(p) for p in data.courses["presentation"].dropna().unique())
    if len(presentations) > 1:
        latest = presentations[-1]
        earlier = select_presentations(data, set(presentations[:-1]))
        hist = earlier if history is None else combine([history, earlier])
        folds.append(
            Fold(
                f"later_{latest}_split_{LATER_SPLIT}",
                select_presentations(data, {latest}),
                LATER_SPLIT,
                hist,
            )
        )
    return folds


def evaluate_folds(
    folds: list[Fold],
    k: int = 10,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Every fold's result under `folds` and each model's mean under `mean`."""
    out: dict[str, Any] = {"k": k, "folds": {}}
    for fold in folds:
        if log:
            log(f"fold {fold.name}")
        res = evaluate(
            fold.data, fold.split_day, k=k, seed=seed, log=log, history=fold.history, **kwargs
        )
        out["folds"][fold.name] = res
    names: list[str] = []
    for res in out["folds"].values():
        names += [n for n in res["models"] if n not in names]
    mean: dict[str, Any] = {}
    for name in names:
        rows = [
            r["models"][name]
            for r in out["folds"].values()
            if r["models"].get(name, {}).get("available") and r["test_learners"]
        ]
        if rows:
            mean[name] = {
                m: float(np.mean([r[m] for r in rows])) for m in ("ndcg", "recall", "coverage")
            }
            mean[name]["folds"] = len(rows)
    out["mean"] = mean
    out["fold_order"] = list(out["folds"])
    return out


def format_folds(result: dict[str, Any]) -> str:
    """Per-fold NDCG@k table (models as rows, folds as columns) plus the mean."""
    k = result["k"]
    folds = list(result["folds"])
    names = list(result["mean"])
    head = f"{'NDCG@' + str(k):<20}" + "".join(f"{f[:24]:>26}" for f in folds) + f"{'mean':>9}"
    lines = [head]
    for name in names:
        cells = []
        for f in folds:
            m = result["folds"][f]["models"].get(name, {})
            cells.append(f"{m['ndcg']:>26.4f}" if m.get("available") else f"{'-':>26}")
        lines.append(f"{name:<20}" + "".join(cells) + f"{result['mean'][name]['ndcg']:>9.4f}")
    for f in folds:
        r = result["folds"][f]
        ratios = ", ".join(
            f"{key.replace('_ndcg_ratio', '')} {r[key]:.3f}x"
            for key in r
            if key.endswith("_ndcg_ratio") or key == "ndcg_ratio_to_best_peer"
        ).replace("ndcg_ratio_to_best_peer", "recommender")
        lines.append(f"{f}: best peer {r.get('best_peer')}; {ratios}")
    return "\n".join(lines)
