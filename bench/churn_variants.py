"""Churn product variants on OULAD splits (#22; the tables in docs/churn-model.md).

Run: OMP_NUM_THREADS=1 python -m bench.churn_variants EXPERIMENT [--json FILE]

Splits (`SPLITS`): F1 2013B -> 2013J and F2 2013B + 2013J -> 2014B (the forward folds),
B1 2013J + 2014B -> 2013B (backward: the one split with many training runs whose test
modules were all seen, as on a later cohort; a check, never a reported result). Every model
is fitted as `evaluate_churn` fits it (`split_by_time`: the latest training presentation
validates). Mean AUC over 30/60/90/150.

Experiments:
- ``offset``: the run offset replaced at prediction time by the teacher's mean rate of the
  run (hedge 1.0), half that and half `RunPrior` (hedge 0.5), the run's true rate (oracle);
  tuned HGB and logreg beside; run-rate logit RMSE of `RunPrior` and of the teacher.
- ``selection``: `ChurnSettings.select_min_drop` None / 0 / 0.0005.
- ``settings``: network sizes and optimiser settings, test and inner-validation AUC.
- ``recipe``: the recipe's parts chosen earlier on research folds' test rows (run offset,
  distillation weight, run-level inputs), now with their inner-validation AUC beside.
- ``new-course``: lomo 2014B at 60/90/150 without / with the new run's day-30 rows
  (unenrolment or inactivity labels, known on day 58) / fine-tuned on them.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.common import SHARED_OULAD
from churn.model.estimators import ProductModel, SharedHGB, TunedLogReg
from churn.model.evaluate import split_by_time
from churn.model.features import ChurnFeatures, build_dataset
from churn.model.prior import own_run_logit
from churn.model.teacher import logit
from churn.model.training import ChurnSettings, train_churn_model
from eduplatform.ml.datasets.oulad import load_oulad
from eduplatform.ml.metrics import roc_auc
from eduplatform.ml.train import predict as predict_outputs

CUTOFFS = [30, 60, 90, 150]
SPLITS = {
    "F1": (["2013B"], "2013J"),
    "F2": (["2013B", "2013J"], "2014B"),
    "B1": (["2013J", "2014B"], "2013B"),
}


def _aucs(test: ChurnFeatures, p: np.ndarray, cutoffs: list[int]) -> dict[str, float]:
    cut = test.frame["cutoff"].to_numpy()
    out = {str(c): round(roc_auc(test.labels[cut == c], p[cut == c]), 4) for c in cutoffs}
    out["mean"] = round(float(np.mean(list(out.values()))), 4)
    return out


class Splits:
    def __init__(self) -> None:
        self.data = load_oulad(SHARED_OULAD)
        self.feats = build_dataset(self.data, CUTOFFS).labelled()
        runs = self.data.courses.drop_duplicates("course_id").set_index("course_id")
        self.pres = self.feats.frame["course_id"].map(runs["presentation"]).astype(str).to_numpy()
        self.module = self.feats.frame["module"].astype(str).to_numpy()

    def parts(
        self, train_rows: np.ndarray, test_rows: np.ndarray
    ) -> tuple[ChurnFeatures, ChurnFeatures, ChurnFeatures]:
        train = self.feats.subset(train_rows)
        is_val, _ = split_by_time(train, self.data.courses)
        return train.subset(~is_val), train.subset(is_val), self.feats.subset(test_rows)

    def split(self, name: str) -> tuple[ChurnFeatures, ChurnFeatures, ChurnFeatures]:
        before, test = SPLITS[name]
        return self.parts(np.isin(self.pres, before), self.pres == test)


def offset(s: Splits) -> dict[str, Any]:
    """Long because each variant needs the fitted product's inputs with its offset column
    replaced, and the run-rate errors are computed per cut-off beside the AUCs."""
    out: dict[str, Any] = {}
    for name in ("F2", "B1"):
        fit, val, test = s.split(name)
        teacher = SharedHGB().fit(fit, val)
        product = ProductModel(ChurnSettings(), teacher=teacher).fit(fit, val)
        assert product.predictor is not None
        frame = test.frame
        flat, seq = product.predictor.inputs(frame)
        prior_z = flat[:, -1].numpy().astype(float)
        keys = [frame["course_id"].astype(str).to_numpy(), frame["cutoff"].to_numpy()]
        p_teacher = teacher.predict_proba(frame)
        teacher_z = logit(pd.Series(p_teacher).groupby(keys).transform("mean").to_numpy())
        own = own_run_logit(test)

        def with_offset(
            z: np.ndarray,
            flat: torch.Tensor = flat,
            seq: torch.Tensor = seq,
            module: torch.nn.Module = product.predictor.module,
        ) -> np.ndarray:
            x = flat.clone()
            x[:, -1] = torch.from_numpy(z.astype(np.float32))
            return predict_outputs(module, (x, seq)).numpy().astype(float)

        variants = {
            "recipe": product.predict_proba(frame),
            "hedge_0.5": with_offset(0.5 * prior_z + 0.5 * teacher_z),
            "hedge_1.0": with_offset(teacher_z),
            "oracle_offset": with_offset(own),
            "hgb": p_teacher,
            "logreg": TunedLogReg().fit(fit, val).predict_proba(frame),
        }
        row: dict[str, Any] = {k: _aucs(test, v, CUTOFFS) for k, v in variants.items()}
        cut = frame["cutoff"].to_numpy()
        for label, z in (("prior", prior_z), ("teacher", teacher_z)):
            rmse = {}
            for c in CUTOFFS:
                m = cut == c
                runs = (
                    pd.DataFrame({"r": keys[0][m], "own": own[m], "z": z[m]}).groupby("r").first()
                )
                rmse[str(c)] = round(float(np.sqrt(((runs.z - runs.own) ** 2).mean())), 3)
            row[f"rmse_{label}"] = rmse
        out[name] = row
    return out


def _products(s: Splits, settings: dict[str, ChurnSettings]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SPLITS:
        fit, val, test = s.split(name)
        teacher = SharedHGB().fit(fit, val)
        row = {}
        for label, setting in settings.items():
            model = ProductModel(setting, teacher=teacher).fit(fit, val)
            assert model.predictor is not None
            row[label] = {
                "test": _aucs(test, model.predict_proba(test.frame), CUTOFFS),
                "inner": round(float(model.report.val_auc), 4),
                "inputs": len(model.predictor.preprocessor.output_columns),
            }
        out[name] = row
    return out


def selection(s: Splits) -> dict[str, Any]:
    base = ChurnSettings()
    return _products(
        s,
        {
            "all": base,
            "min_drop_0": replace(base, select_min_drop=0.0),
            "min_drop_0.0005": replace(base, select_min_drop=0.0005),
        },
    )


def settings(s: Splits) -> dict[str, Any]:
    base = ChurnSettings()
    return _products(
        s,
        {
            "recipe": base,
            "hidden128": replace(base, hidden=128),
            "layers3": replace(base, layers=3),
            "dropout0.1": replace(base, dropout=0.1),
            "lr3e-3": replace(base, lr=3e-3),
            "wd1e-3": replace(base, weight_decay=1e-3),
        },
    )


def recipe(s: Splits) -> dict[str, Any]:
    base = ChurnSettings()
    return _products(
        s,
        {
            "recipe": base,
            "no_run_prior": replace(base, run_prior=False),
            "lambda0": replace(base, distill_lambda=0.0),
            "lambda3": replace(base, distill_lambda=3.0),
            "run_level_inputs": replace(base, exclude=()),
        },
    )


def new_course(s: Splits) -> dict[str, Any]:
    probs: dict[str, list[np.ndarray]] = {"A": [], "B": [], "C": []}
    labels, cuts = [], []
    runs = s.data.courses.drop_duplicates("course_id")
    for m in sorted(set(s.module[s.pres == "2014B"])):
        later = s.feats.frame["cutoff"].to_numpy() > 30
        fit, val, test = s.parts(
            (s.pres < "2014B") & (s.module != m), (s.pres == "2014B") & (s.module == m) & later
        )
        run = runs.loc[
            (runs["presentation"] == "2014B") & (runs["module"].astype(str) == m), "course_id"
        ]
        early = build_dataset(
            s.data.subset_courses(list(run)),
            [30],
            label_mode="inactivity",
            inactivity_days=28,
            horizon_day=58,
        ).labelled()
        a, _ = train_churn_model(fit, val, ChurnSettings())
        b, _ = train_churn_model(ChurnFeatures.concat([fit, early]), val, ChurnSettings())
        c, _ = train_churn_model(early, val, ChurnSettings(), warm_start=a)
        for key, predictor in (("A", a), ("B", b), ("C", c)):
            probs[key].append(predictor.predict_proba(test.frame))
        labels.append(test.labels)
        cuts.append(test.frame["cutoff"].to_numpy())
    y, cut = np.concatenate(labels), np.concatenate(cuts)
    out: dict[str, Any] = {}
    for key, parts in probs.items():
        p = np.concatenate(parts)
        row = {str(c): round(roc_auc(y[cut == c], p[cut == c]), 4) for c in (60, 90, 150)}
        row["mean"] = round(float(np.mean(list(row.values()))), 4)
        out[key] = row
    return out


EXPERIMENTS = {
    "offset": offset,
    "selection": selection,
    "settings": settings,
    "recipe": recipe,
    "new-course": new_course,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = EXPERIMENTS[args.experiment](Splits())
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
