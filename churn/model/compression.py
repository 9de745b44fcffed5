"""Compression of the churn model (`ChurnPredictor.module`, a `ChurnEnsemble`).

    result = compress_churn(predictor, train, val)          # CompressionResult
    tensors, config = churn_serving_state(predictor, result.module)
    predictor = load_churn_predictor(tensors, config)        # fp32 or compressed

* quality: ROC-AUC of the module's logits on `val` (pooled over cut-offs, as the
  registry's gate computes it);
* fine-tuning: each ensemble member is trained for `finetune_epochs` more epochs
  on `train` (BCE with the model's positive weight, Adam), no early stopping, so
  `val` stays out of the fine-tuning;
* hidden-unit groups: found in every member's MLP (`mlp_groups`); the GRU branch,
  when the model has one, is kept in fp32;
* the calibration (Platt) and risk bands of the predictor are kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from churn.model.features import ChurnFeatures
from churn.model.net import build_module
from churn.model.predictor import ChurnPredictor
from eduplatform.ml.compress.pipeline import (
    CompressionResult,
    CompressionSettings,
    SelectionPolicy,
    compress_model,
)
from eduplatform.ml.compress.serialize import load_variant, variant_state
from eduplatform.ml.data import LearningData
from eduplatform.ml.metrics import roc_auc
from eduplatform.ml.train import TrainConfig, fit
from eduplatform.ml.train import predict as predict_outputs

VARIANT_PREFIX = "variant."


def churn_base_builder(predictor: ChurnPredictor) -> Callable[[], nn.Module]:
    arch = dict(predictor.arch)
    return lambda: build_module(arch)


def churn_callbacks(
    predictor: ChurnPredictor,
    train: ChurnFeatures,
    val: ChurnFeatures,
    *,
    finetune_epochs: int = 2,
    lr: float = 5e-4,
    batch_size: int = 512,
    seed: int = 0,
) -> tuple[Callable[[nn.Module], float], Callable[[nn.Module], nn.Module]]:
    """(evaluate, finetune) for `compress_model`."""
    train, val = train.labelled(), val.labelled()
    x_tr, q_tr = predictor.inputs(train.frame)
    y_tr = torch.tensor(train.labels, dtype=torch.float32)
    x_va, q_va = predictor.inputs(val.frame)
    y_va = np.asarray(val.labels, dtype=float)
    settings = predictor.info.get("settings", {})
    pos = float(np.sum(train.labels == 1))
    neg = float(np.sum(train.labels == 0))
    setting = settings.get("pos_weight", "sqrt")
    pos_weight: float | None = None
    if setting is not None and pos > 0:
        if setting == "balanced":
            pos_weight = neg / pos
        elif setting == "sqrt":
            pos_weight = math.sqrt(neg / pos)
        else:
            pos_weight = float(setting)

    def evaluate(module: nn.Module) -> float:
        return float(roc_auc(y_va, predict_outputs(module, (x_va, q_va)).numpy()))

    def finetune(module: nn.Module) -> nn.Module:
        if finetune_epochs <= 0:
            return module
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, int(settings.get("num_threads", 1))))
        try:
            # a ChurnEnsemble (or a compressed copy of one): fine-tune each member
            members = (
                list(cast(nn.ModuleList, module.nets)) if hasattr(module, "nets") else [module]
            )
            for k, net in enumerate(members):
                config = TrainConfig(
                    loss="bce",
                    optimizer="adam",
                    lr=lr,
                    weight_decay=float(settings.get("weight_decay", 1e-4)),
                    batch_size=batch_size,
                    max_epochs=finetune_epochs,
                    patience=0,
                    seed=seed + k,
                    pos_weight=pos_weight,
                )
                fit(net, TensorDataset(x_tr, q_tr, y_tr), None, config)
        finally:
            torch.set_num_threads(threads)
        return module.eval()

    return evaluate, finetune


def churn_example_inputs(
    predictor: ChurnPredictor, features: ChurnFeatures, batch: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat, seq) model inputs of `batch` rows of `features` (drawn with replacement
    when there are fewer rows)."""
    rng = np.random.default_rng(seed)
    n = len(features)
    rows = rng.choice(n, size=batch, replace=n < batch)
    flat, seq = predictor.inputs(features.frame.iloc[np.sort(rows)].reset_index(drop=True))
    return flat.contiguous(), seq.contiguous()


def churn_serving_state(
    predictor: ChurnPredictor, module: nn.Module, variant: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The predictor's artifact with `module` (compressed) in place of its network."""
    tensors, config = predictor.to_state()
    tensors = {k: v for k, v in tensors.items() if not k.startswith("module.")}
    vt, vc = variant_state(module, {"variant": variant} if variant else None)
    tensors.update({VARIANT_PREFIX + k: v for k, v in vt.items()})
    return tensors, {**config, "compression": vc}


def load_churn_predictor(
    tensors: dict[str, torch.Tensor], config: dict[str, Any]
) -> ChurnPredictor:
    """`ChurnPredictor.from_state` that also reads states with a compressed network."""
    if "compression" not in config:
        return ChurnPredictor.from_state(tensors, config)

    def build() -> nn.Module:
        return build_module(config["arch"])

    placeholder = {f"module.{k}": v for k, v in build().state_dict().items()}
    plain = {k: v for k, v in tensors.items() if not k.startswith(VARIANT_PREFIX)}
    predictor = ChurnPredictor.from_state({**plain, **placeholder}, config)
    variant = {
        k[len(VARIANT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(VARIANT_PREFIX)
    }
    predictor.module = load_variant(variant, config["compression"], build)
    return predictor


def compress_churn(
    predictor: ChurnPredictor,
    train: ChurnFeatures,
    val: ChurnFeatures,
    *,
    policy: SelectionPolicy | None = None,
    settings: CompressionSettings | None = None,
    finetune_epochs: int = 2,
    finetune_lr: float = 5e-4,
    log: Callable[[str], None] | None = None,
) -> CompressionResult:
    """Every variant of the predictor's network, measured; the one to serve chosen."""
    evaluate, finetune = churn_callbacks(
        predictor, train, val, finetune_epochs=finetune_epochs, lr=finetune_lr
    )
    examples = val if len(val) else train
    result = compress_model(
        predictor.module,
        build_base=churn_base_builder(predictor),
        example_inputs_b1=churn_example_inputs(predictor, examples, 1),
        example_inputs_b256=churn_example_inputs(predictor, examples, 256),
        evaluate=evaluate,
        finetune=finetune,
        policy=policy or SelectionPolicy.churn(),
        settings=settings or CompressionSettings.churn(),
        serving_state=lambda m: churn_serving_state(predictor, m),
        log=log,
    )
    result.extra.update({"kind": "churn", "n_train": len(train), "n_val": len(val)})
    return result


def compression_report(
    data: LearningData,
    label: str,
    *,
    settings: CompressionSettings,
    policy: SelectionPolicy,
    cutoffs: list[int],
    seeds: int | None = None,
    max_epochs: int | None = None,
    finetune_epochs: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[CompressionResult, str]:
    """Train on the earlier runs of `data`, validate on the latest, compress, report.

    Raises ValueError when either side lacks labelled rows of both classes.
    """
    import time

    from churn.model.evaluate import split_by_time
    from churn.model.features import build_dataset
    from churn.model.training import ChurnSettings, train_churn_model

    features = build_dataset(data, cutoffs).labelled()
    is_val, val_names = split_by_time(features, data.courses)
    fit_rows, val = features.subset(~is_val), features.subset(is_val)
    if len(fit_rows) == 0 or len(val) == 0 or len(set(val.labels)) < 2:
        raise ValueError("need labelled rows of both classes before and in the last run")
    cs = ChurnSettings(refit=False)
    if seeds:
        cs.seeds = tuple(range(max(1, seeds)))
    if max_epochs:
        cs.max_epochs = max(1, max_epochs)
    log(f"churn: {label}; {len(fit_rows)} train rows, {len(val)} validation rows {val_names}")
    t0 = time.perf_counter()
    predictor, report = train_churn_model(fit_rows, val, cs)
    log(f"trained in {time.perf_counter() - t0:.1f}s, validation AUC {report.val_auc:.4f}")
    result = compress_churn(
        predictor,
        fit_rows,
        val,
        policy=policy,
        settings=settings,
        finetune_epochs=2 if finetune_epochs is None else finetune_epochs,
        log=log,
    )
    result.extra.update({"data": label, "validation": val_names})
    return result, f"churn model, {label}"
