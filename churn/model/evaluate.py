"""Offline evaluation of the churn model against tuned scikit-learn peers.

`evaluate_churn(train_data, test_data, cutoffs)`:

1. Build features at each cut-off for the train and the test data.
2. Split the train rows by time (`split_by_time`): the latest presentation (course
   runs sorted by their ``presentation`` label, e.g. 2013B < 2013J) is the inner
   validation; the earlier ones are the fitting set. (With a single presentation, the
   course runs are split instead, the last 25 % of run ids being validation.)
3. One loop over the models of `churn.model.estimators` (product, logreg, hgb): each
   ``fit(fitting set, inner validation)`` chooses its settings on the inner validation
   and refits on both; then ``predict_proba(test rows)``.
4. Every model is scored on the test rows of each cut-off: ROC-AUC, PR-AUC, F1 at its
   inner-validation threshold, Brier score, ECE, number of learners, positive rate.
   A cut-off whose test rows have one class only has no AUC: its ``note`` says so.

`churn.model.folds` runs the same loop over forward and leave-one-module-out folds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churn.model.estimators import (
    HGB,
    LOGREG,
    MODELS,
    PRODUCT,
    Estimator,
    EvalSettings,
    ProductModel,
    make_models,
)
from churn.model.features import ChurnFeatures, build_dataset
from churn.model.predictor import ChurnPredictor
from churn.model.teacher import hgb_frame, with_module
from churn.model.training import ChurnSettings
from eduplatform.ml.data import LearningData
from eduplatform.ml.metrics import binary_report, calibration_curve

__all__ = [
    "HGB",
    "LOGREG",
    "MODELS",
    "PRODUCT",
    "ChurnEvaluation",
    "ModelScore",
    "clean_json",
    "evaluate_churn",
    "fit_and_score",
    "hgb_frame",
    "score_rows",
    "split_by_time",
    "with_module",
]


@dataclass
class ModelScore:
    model: str
    cutoff: int
    auc: float
    pr_auc: float
    f1: float
    brier: float
    n_learners: int
    positive_rate: float
    threshold: float
    ece: float = float("nan")
    note: str = ""  # "no positives" / "no negatives": AUC undefined at this cut-off


def clean_json(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {str(k): clean_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean_json(x) for x in v]
    return v


@dataclass
class ChurnEvaluation:
    cutoffs: list[int]
    scores: list[ModelScore]
    seconds: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_val: int = 0
    val_presentations: list[str] = field(default_factory=list)
    product_info: dict[str, Any] = field(default_factory=dict)
    chosen: dict[str, Any] = field(default_factory=dict)

    def score(self, model: str, cutoff: int) -> ModelScore:
        for s in self.scores:
            if s.model == model and s.cutoff == cutoff:
                return s
        raise KeyError((model, cutoff))

    def models(self) -> list[str]:
        return list(dict.fromkeys(s.model for s in self.scores))

    def mean_auc(self, model: str) -> float:
        """Mean AUC over the cut-offs that have one (NaN if none has)."""
        aucs = [s.auc for s in self.scores if s.model == model and not math.isnan(s.auc)]
        return float(np.mean(aucs)) if aucs else float("nan")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = clean_json(asdict(self))
        return out

    def table(self) -> str:
        head = f"{'cutoff':>6}  {'model':<8} {'AUC':>6} {'PR-AUC':>6} {'F1':>6} {'Brier':>6} "
        head += f"{'ECE':>6} {'n':>6} {'pos%':>6}"
        lines = [head, "-" * len(head)]
        for c in self.cutoffs:
            for m in self.models():
                try:
                    s = self.score(m, c)
                except KeyError:
                    continue
                auc = f"{s.auc:6.3f}" if not s.note else s.note
                lines.append(
                    f"{c:>6}  {m:<8} {auc:>6} {s.pr_auc:6.3f} {s.f1:6.3f} {s.brier:6.3f} "
                    f"{s.ece:6.3f} {s.n_learners:>6} {100 * s.positive_rate:6.1f}"
                )
        means = "  ".join(f"{m} {self.mean_auc(m):.4f}" for m in self.models())
        lines.append(f"mean AUC over cut-offs: {means}")
        return "\n".join(lines)


def split_by_time(features: ChurnFeatures, courses: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Boolean mask of validation rows: the latest presentation of the train data."""
    pres = courses.drop_duplicates("course_id").set_index("course_id")["presentation"]
    course_ids = features.frame["course_id"]
    row_pres = course_ids.map(pres).astype(str).to_numpy()
    levels = sorted(set(row_pres))
    if len(levels) > 1:
        return row_pres == levels[-1], [levels[-1]]
    runs = sorted(set(course_ids.astype(str)))
    n_val = max(1, len(runs) // 4) if len(runs) > 1 else 0
    val_runs = set(runs[len(runs) - n_val :])
    return course_ids.astype(str).isin(val_runs).to_numpy(), sorted(val_runs)


def score_rows(
    model: str, cutoff: int, y: np.ndarray, probs: np.ndarray, threshold: float
) -> ModelScore:
    """The figures of one model at one cut-off (`note` says why an AUC is missing)."""
    r = binary_report(y, probs, threshold)
    n_pos = int(np.sum(y == 1))
    note = "no positives" if n_pos == 0 else "no negatives" if n_pos == len(y) else ""
    ece = calibration_curve(y, probs).expected_calibration_error if len(y) else float("nan")
    return ModelScore(
        model=model,
        cutoff=int(cutoff),
        auc=float("nan") if note else r.roc_auc,
        pr_auc=r.pr_auc,
        f1=r.f1,
        brier=r.brier,
        n_learners=r.n,
        positive_rate=r.positive_rate,
        threshold=float(threshold),
        ece=float(ece),
        note=note,
    )


def fit_and_score(
    models: Sequence[Estimator],
    fit_part: ChurnFeatures,
    val_part: ChurnFeatures,
    test: ChurnFeatures,
    cutoffs: list[int],
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[list[ModelScore], dict[str, float], dict[str, np.ndarray]]:
    """The one evaluation loop: fit each model on (fit_part, val_part), score it on `test`
    per cut-off. Returns (scores, seconds per model, test probabilities per model)."""
    scores: list[ModelScore] = []
    seconds: dict[str, float] = {}
    probs: dict[str, np.ndarray] = {}
    test_cut = test.frame["cutoff"].to_numpy()
    for model in models:
        t = time.perf_counter()
        model.fit(fit_part, val_part)
        p = model.predict_proba(test.frame) if len(test) else np.zeros(0)
        seconds[model.name] = time.perf_counter() - t
        probs[model.name] = p
        for c in cutoffs:
            rows = test_cut == c
            scores.append(score_rows(model.name, c, test.labels[rows], p[rows], model.threshold))
        say(f"{model.name} fitted and scored in {seconds[model.name]:.1f} s")
    return scores, seconds, probs


def evaluate_churn(
    train_data: LearningData,
    test_data: LearningData,
    cutoffs: list[int],
    settings: ChurnSettings | EvalSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[ChurnEvaluation, ChurnPredictor]:
    """Train the product model and the peers on `train_data`, score them on `test_data`."""
    say = log or (lambda _msg: None)
    cutoffs = sorted(int(c) for c in cutoffs)
    if isinstance(settings, ChurnSettings):
        settings = EvalSettings(product=settings)
    t0 = time.perf_counter()
    train = build_dataset(train_data, cutoffs).labelled()
    test = build_dataset(test_data, cutoffs).labelled()
    seconds = {"features": time.perf_counter() - t0}
    for name, part in (("train", train), ("test", test)):
        present = set(part.frame["cutoff"].astype(int))
        missing = [c for c in cutoffs if c not in present]
        if missing:
            # caught before any training: a day past the end of every run scores no one
            days = ", ".join(map(str, missing))
            raise ValueError(f"no {name} learner is enrolled on cut-off day {days}")
    say(f"features: {len(train)} train rows, {len(test)} test rows ({seconds['features']:.1f} s)")
    is_val, val_names = split_by_time(train, train_data.courses)
    fit_part, val_part = train.subset(~is_val), train.subset(is_val)
    if len(fit_part) == 0 or len(val_part) == 0:
        raise ValueError("need train rows both before and in the validation presentation")
    models = make_models(settings)
    scores, model_seconds, _ = fit_and_score(models, fit_part, val_part, test, cutoffs, say)
    seconds.update(model_seconds)
    product = next(m for m in models if isinstance(m, ProductModel))
    assert product.predictor is not None and product.report is not None
    seconds["product_cpu"] = product.report.cpu_seconds
    return (
        ChurnEvaluation(
            cutoffs=cutoffs,
            scores=scores,
            seconds=seconds,
            n_train=len(fit_part),
            n_val=len(val_part),
            val_presentations=val_names,
            product_info={
                **product.predictor.info,
                "val_auc_per_cutoff": {
                    str(k): v for k, v in product.report.val_auc_per_cutoff.items()
                },
                "thresholds": list(product.predictor.thresholds),
            },
            chosen={m.name: m.chosen for m in models},
        ),
        product.predictor,
    )
