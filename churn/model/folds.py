"""Forward and leave-one-module-out folds over one OULAD-format dataset.

`evaluate_folds(data, cutoffs)` builds the features of every course run once (features
are per run, so a subset of runs equals a separate build) and runs the evaluation loop
(`evaluate.fit_and_score`: product, logreg, hgb) on:

* **forward P**, for every presentation P but the first: train on every presentation
  before P, test on P (inner validation = `split_by_time` of the training rows: the
  latest training presentation, or with one presentation the last 25 % of its runs);
* **lomo L**, L the latest presentation: for each module of L, its run of L predicted by
  models trained on every earlier presentation without that module (so without that
  module's history); the test predictions of all modules are pooled and scored per
  cut-off (F1 at the mean of the module models' thresholds).

A cut-off whose test rows have one class is reported with a ``note`` (no AUC).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from churn.model.estimators import Estimator, EvalSettings, make_models
from churn.model.evaluate import ModelScore, clean_json, fit_and_score, score_rows, split_by_time
from churn.model.features import ChurnFeatures, build_dataset
from churn.model.training import ChurnSettings
from eduplatform.ml.data import LearningData

ModelFactory = Callable[[EvalSettings], Sequence[Estimator]]


@dataclass
class FoldResult:
    name: str  # "forward 2013J", "lomo 2014B"
    kind: str  # "forward" | "lomo"
    test_presentation: str
    train_presentations: list[str]
    inner_validation: list[str]
    n_train: int
    n_val: int
    n_test: int
    scores: list[ModelScore]
    mean_auc: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    chosen: dict[str, Any] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)


@dataclass
class FoldEvaluation:
    cutoffs: list[int]
    folds: list[FoldResult]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = clean_json(asdict(self))
        return out

    def table(self) -> str:
        lines = []
        for fold in self.folds:
            models = list(fold.mean_auc)
            lines.append(
                f"{fold.name}: train {', '.join(fold.train_presentations)} "
                f"(inner validation {', '.join(fold.inner_validation)}), "
                f"{fold.n_test} test rows"
            )
            head = f"{'cutoff':>6}  " + "  ".join(f"{m + ' AUC/Brier/ECE':>26}" for m in models)
            lines += [head, "-" * len(head)]
            for c in self.cutoffs:
                cells = []
                for m in models:
                    s = next(x for x in fold.scores if x.model == m and x.cutoff == c)
                    auc = s.note if s.note else f"{s.auc:.4f}"
                    cells.append(f"{auc:>12} {s.brier:6.4f} {s.ece:6.4f}")
                lines.append(f"{c:>6}  " + "  ".join(f"{cell:>26}" for cell in cells))
            means = "  ".join(f"{fold.mean_auc[m]:>26.4f}" for m in models)
            lines += [f"{'mean':>6}  {means}", ""]
        return "\n".join(lines)


def _mean_auc(scores: list[ModelScore]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in dict.fromkeys(s.model for s in scores):
        aucs = [s.auc for s in scores if s.model == m and not math.isnan(s.auc)]
        out[m] = float(np.mean(aucs)) if aucs else float("nan")
    return out


def presentations_of(data: LearningData) -> list[str]:
    return sorted(set(data.courses["presentation"].astype(str)))


def evaluate_folds(
    data: LearningData,
    cutoffs: list[int],
    settings: ChurnSettings | EvalSettings | None = None,
    log: Callable[[str], None] | None = None,
    models: ModelFactory = make_models,
    lomo: bool = True,
) -> FoldEvaluation:
    """Every forward fold `data` allows, then the leave-one-module-out fold of its latest
    presentation. Raises ValueError when `data` has fewer than two presentations."""
    say = log or (lambda _msg: None)
    cutoffs = sorted(int(c) for c in cutoffs)
    if isinstance(settings, ChurnSettings) or settings is None:
        settings = EvalSettings(product=settings or ChurnSettings())
    order = presentations_of(data)
    if len(order) < 2:
        raise ValueError(
            f"forward folds need at least two presentations, the data has {', '.join(order)}"
        )
    t0 = time.perf_counter()
    feats = build_dataset(data, cutoffs).labelled()
    seconds = {"features": time.perf_counter() - t0}
    pres_of = data.courses.drop_duplicates("course_id").set_index("course_id")["presentation"]
    pres = feats.frame["course_id"].map(pres_of).astype(str).to_numpy()
    module = feats.frame["module"].astype(str).to_numpy()
    say(f"features: {len(feats)} rows of {len(order)} presentations ({seconds['features']:.1f} s)")
    folds: list[FoldResult] = []
    for p in order[1:]:
        fold = _fold(
            f"forward {p}",
            "forward",
            p,
            feats,
            pres < p,
            pres == p,
            data,
            cutoffs,
            settings,
            models,
            say,
        )
        folds.append(fold)
    if lomo:
        folds.append(_lomo(order[-1], feats, pres, module, data, cutoffs, settings, models, say))
    seconds["total"] = time.perf_counter() - t0
    return FoldEvaluation(cutoffs=cutoffs, folds=folds, seconds=seconds)


def _split(
    feats: ChurnFeatures, data: LearningData
) -> tuple[ChurnFeatures, ChurnFeatures, list[str]]:
    is_val, names = split_by_time(feats, data.courses)
    return feats.subset(~is_val), feats.subset(is_val), names


def _fold(
    name: str,
    kind: str,
    test_pres: str,
    feats: ChurnFeatures,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    data: LearningData,
    cutoffs: list[int],
    settings: EvalSettings,
    models: ModelFactory,
    say: Callable[[str], None],
) -> FoldResult:
    train, test = feats.subset(train_rows), feats.subset(test_rows)
    fit_part, val_part, val_names = _split(train, data)
    say(f"{name}: {len(fit_part)} fit + {len(val_part)} inner-validation rows, {len(test)} test")
    chosen = list(models(settings))
    scores, seconds, _ = fit_and_score(chosen, fit_part, val_part, test, cutoffs, say)
    return FoldResult(
        name=name,
        kind=kind,
        test_presentation=test_pres,
        train_presentations=sorted(set(train.frame["course_id"].map(_pres(data)))),
        inner_validation=val_names,
        n_train=len(fit_part),
        n_val=len(val_part),
        n_test=len(test),
        scores=scores,
        mean_auc=_mean_auc(scores),
        seconds=seconds,
        chosen={m.name: m.chosen for m in chosen},
    )


def _pres(data: LearningData) -> dict[str, str]:
    courses = data.courses.drop_duplicates("course_id")
    return dict(
        zip(courses["course_id"].astype(str), courses["presentation"].astype(str), strict=True)
    )


def _lomo(
    latest: str,
    feats: ChurnFeatures,
    pres: np.ndarray,
    module: np.ndarray,
    data: LearningData,
    cutoffs: list[int],
    settings: EvalSettings,
    models: ModelFactory,
    say: Callable[[str], None],
) -> FoldResult:
    """Long because it pools the per-module fits: for each module, fit and predict its run,
    then score the pooled predictions per cut-off."""
    earlier = pres < latest
    probs: dict[str, list[np.ndarray]] = {}
    thresholds: dict[str, list[float]] = {}
    labels, cuts, modules = [], [], []
    seconds: dict[str, float] = {}
    chosen: dict[str, Any] = {}
    n_train = n_val = 0
    val_names: set[str] = set()
    for m in sorted(set(module[pres == latest])):
        train = feats.subset(earlier & (module != m))
        test = feats.subset((pres == latest) & (module == m))
        if len(train) == 0 or len(np.unique(train.labels)) < 2:
            say(f"lomo {latest}: {m} skipped (no training rows of two classes without it)")
            continue
        fit_part, val_part, names = _split(train, data)
        if len(fit_part) == 0 or len(val_part) == 0:
            say(f"lomo {latest}: {m} skipped (no inner validation without it)")
            continue
        say(f"lomo {latest} {m}: {len(fit_part)} fit + {len(val_part)} inner val, {len(test)} test")
        fitted = list(models(settings))
        _, secs, p = fit_and_score(fitted, fit_part, val_part, test, cutoffs, say)
        for name, values in p.items():
            probs.setdefault(name, []).append(values)
            seconds[name] = seconds.get(name, 0.0) + secs[name]
        for est in fitted:
            thresholds.setdefault(est.name, []).append(est.threshold)
        chosen[m] = {est.name: est.chosen for est in fitted}
        labels.append(test.labels)
        cuts.append(test.frame["cutoff"].to_numpy())
        modules.append(m)
        n_train, n_val = n_train + len(fit_part), n_val + len(val_part)
        val_names |= set(names)
    if not modules:
        raise ValueError(
            f"leave-one-module-out in {latest}: no module has training data without it"
        )
    y, cut = np.concatenate(labels), np.concatenate(cuts)
    scores = []
    for name, parts in probs.items():
        p_all = np.concatenate(parts)
        for c in cutoffs:
            rows = cut == c
            scores.append(
                score_rows(name, c, y[rows], p_all[rows], float(np.mean(thresholds[name])))
            )
    return FoldResult(
        name=f"lomo {latest}",
        kind="lomo",
        test_presentation=latest,
        train_presentations=sorted(set(pres[pres < latest])),
        inner_validation=sorted(val_names),
        n_train=n_train,
        n_val=n_val,
        n_test=len(y),
        scores=scores,
        mean_auc=_mean_auc(scores),
        seconds=seconds,
        chosen=chosen,
        modules=modules,
    )
