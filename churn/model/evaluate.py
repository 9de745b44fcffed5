"""Offline evaluation of the churn model against scikit-learn peers.

`evaluate_churn(train_data, test_data, cutoffs)`:

1. Build features at each cut-off for the train and the test data.
2. Split the train rows by time: the latest presentation (course runs sorted by
   their ``presentation`` label, e.g. 2013B < 2013J) is the validation set; the
   earlier ones are the fitting set. (With a single presentation, the course
   runs are split instead, the last 25 % of run ids being validation.)
3. Product model: `train_churn_model(fit, val)`: one pooled ensemble plus the
   run's base rate (`RunPrior`: from the run's recent withdrawals and its module's
   history) as an offset (early stopping, calibration and risk bands on
   validation, then refit on all train rows, the base rates re-learnt on them).
   Its F1 threshold is the "high" band threshold chosen on validation.
4. Peers, trained per cut-off on the product's flat features (all of
   ``flat_columns``, the run-level ones that the product's network leaves out
   included, plus the course module as a categorical; not the weekly sequence):
   LogisticRegression on the preprocessed features and
   HistGradientBoostingClassifier on the raw ones (categoricals natively). Each
   peer is fitted on the fitting set to choose its F1 threshold on validation,
   then refitted on all train rows.
5. Every model is scored on the test rows of each cut-off: ROC-AUC, PR-AUC, F1
   at its threshold, Brier score, number of learners, positive rate.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from churn.model.features import CATEGORICAL, ChurnFeatures, build_dataset
from churn.model.predictor import ChurnPredictor
from churn.model.training import ChurnSettings, train_churn_model
from eduplatform.ml.data import LearningData
from eduplatform.ml.metrics import best_f1_threshold, binary_report
from eduplatform.ml.preprocess import Preprocessor

PRODUCT = "product"
LOGREG = "logreg"
HGB = "hgb"
MODELS = (PRODUCT, LOGREG, HGB)


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


@dataclass
class ChurnEvaluation:
    cutoffs: list[int]
    scores: list[ModelScore]
    seconds: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_val: int = 0
    val_presentations: list[str] = field(default_factory=list)
    product_info: dict = field(default_factory=dict)

    def score(self, model: str, cutoff: int) -> ModelScore:
        for s in self.scores:
            if s.model == model and s.cutoff == cutoff:
                return s
        raise KeyError((model, cutoff))

    def to_dict(self) -> dict:
        def clean(v):
            if isinstance(v, float) and math.isnan(v):
                return None
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return clean(asdict(self))

    def table(self) -> str:
        head = f"{'cutoff':>6}  {'model':<8} {'AUC':>6} {'PR-AUC':>6} {'F1':>6} {'Brier':>6} "
        head += f"{'n':>6} {'pos%':>6}"
        lines = [head, "-" * len(head)]
        for c in self.cutoffs:
            for m in MODELS:
                try:
                    s = self.score(m, c)
                except KeyError:
                    continue
                lines.append(
                    f"{c:>6}  {m:<8} {s.auc:6.3f} {s.pr_auc:6.3f} {s.f1:6.3f} {s.brier:6.3f} "
                    f"{s.n_learners:>6} {100 * s.positive_rate:6.1f}"
                )
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


def _hgb_frame(frame: pd.DataFrame, features: ChurnFeatures, levels: dict) -> pd.DataFrame:
    out = frame[features.flat_columns].copy()
    for col, kind in features.kinds.items():
        if kind == CATEGORICAL:
            values = out[col].astype(object).where(out[col].notna(), "missing").astype(str)
            out[col] = pd.Categorical(values, categories=levels[col])
    return out


def peer_fitter(model_name: str, features: ChurnFeatures, seed: int = 0):
    """fit_on(frame, y) -> (frame -> probabilities) for a peer on the flat features."""
    kinds = features.kinds

    def make():
        if model_name == LOGREG:
            return LogisticRegression(C=1.0, max_iter=2000)
        return HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)

    def fit_on(frame: pd.DataFrame, y: np.ndarray):
        if model_name == LOGREG:
            pre = Preprocessor.fit(frame, kinds)
            model = make().fit(pre.transform_array(frame), y)
            return lambda f: model.predict_proba(pre.transform_array(f))[:, 1]
        levels = {
            c: sorted(
                set(frame[c].astype(object).where(frame[c].notna(), "missing").astype(str))
                | {"missing"}
            )
            for c, k in kinds.items()
            if k == CATEGORICAL
        }
        model = make().fit(_hgb_frame(frame, features, levels), y)
        return lambda f: model.predict_proba(_hgb_frame(f, features, levels))[:, 1]

    return fit_on


def evaluate_churn(
    train_data: LearningData,
    test_data: LearningData,
    cutoffs: list[int],
    settings: ChurnSettings | None = None,
    train_cutoffs: list[int] | None = None,
    seed: int = 0,
    log=None,
) -> tuple[ChurnEvaluation, ChurnPredictor]:
    """Train the product model and the peers on `train_data`, score them on `test_data`."""
    say = log or (lambda _msg: None)
    cutoffs = sorted(int(c) for c in cutoffs)
    train_cutoffs = sorted(int(c) for c in (train_cutoffs or cutoffs))
    t0 = time.perf_counter()
    train = build_dataset(train_data, sorted(set(train_cutoffs) | set(cutoffs))).labelled()
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
    in_product = train.frame["cutoff"].isin(train_cutoffs).to_numpy()
    fit_part = train.subset(~is_val & in_product)
    val_part = train.subset(is_val & in_product)
    if len(fit_part) == 0 or len(val_part) == 0:
        raise ValueError("need train rows both before and in the validation presentation")

    t1 = time.perf_counter()
    predictor, report = train_churn_model(fit_part, val_part, settings)
    seconds[PRODUCT] = time.perf_counter() - t1
    seconds["product_cpu"] = report.cpu_seconds
    say(f"product model trained in {seconds[PRODUCT]:.1f} s (val AUC {report.val_auc:.3f})")
    product_probs = predictor.predict_proba(test.frame)
    test_cut = test.frame["cutoff"].to_numpy()
    scores: list[ModelScore] = []

    def add(model: str, c: int, probs: np.ndarray, threshold: float):
        r = binary_report(test.labels[test_cut == c], probs, threshold)
        scores.append(
            ModelScore(
                model=model,
                cutoff=c,
                auc=r.roc_auc,
                pr_auc=r.pr_auc,
                f1=r.f1,
                brier=r.brier,
                n_learners=r.n,
                positive_rate=r.positive_rate,
                threshold=float(threshold),
            )
        )

    for c in cutoffs:
        add(PRODUCT, c, product_probs[test_cut == c], predictor.thresholds[1])
    # one OpenMP thread for the peers: on a shared 2-core machine more threads mostly spin
    with threadpool_limits(limits=1):
        _score_peers(train, test, cutoffs, is_val, seed, seconds, add, say)
    return (
        ChurnEvaluation(
            cutoffs=cutoffs,
            scores=scores,
            seconds=seconds,
            n_train=len(fit_part),
            n_val=len(val_part),
            val_presentations=val_names,
            product_info={
                **predictor.info,
                "val_auc_per_cutoff": {str(k): v for k, v in report.val_auc_per_cutoff.items()},
                "thresholds": list(predictor.thresholds),
            },
        ),
        predictor,
    )


def with_module(features: ChurnFeatures) -> ChurnFeatures:
    """The flat features plus the course module as a categorical (the product reads the
    module through its base-rate table, so the peers get it too)."""
    if "module" not in features.frame or "module" in features.kinds:
        return features
    return ChurnFeatures(
        frame=features.frame,
        labels=features.labels,
        flat_columns=[*features.flat_columns, "module"],
        seq_columns=features.seq_columns,
        kinds={**features.kinds, "module": CATEGORICAL},
        n_weeks=features.n_weeks,
        channels=features.channels,
    )


def _score_peers(train, test, cutoffs, is_val, seed, seconds, add, say) -> None:
    train_cut = train.frame["cutoff"].to_numpy()
    test_cut = test.frame["cutoff"].to_numpy()
    for name in (LOGREG, HGB):
        t2 = time.perf_counter()
        fit_on = peer_fitter(name, with_module(train), seed)
        for c in cutoffs:
            at = train_cut == c
            fit_rows, val_rows = at & ~is_val, at & is_val
            threshold = 0.5
            if fit_rows.any() and val_rows.any() and len(np.unique(train.labels[fit_rows])) == 2:
                f = fit_on(train.frame[fit_rows], train.labels[fit_rows])
                threshold = best_f1_threshold(train.labels[val_rows], f(train.frame[val_rows]))
            f_all = fit_on(train.frame[at], train.labels[at])
            test_rows = test.frame[test_cut == c]
            probs = f_all(test_rows) if len(test_rows) else np.zeros(0)
            add(name, c, probs, threshold)
        seconds[name] = time.perf_counter() - t2
        say(f"{name} trained and scored in {seconds[name]:.1f} s")
