import pytest
import torch

from eduplatform.registry import kinds, serving
from eduplatform.registry.kinds import ModelKind, TrainContext, TrainOutcome


def _train(context: TrainContext) -> TrainOutcome:
    """A stand-in model whose validation score is given by the run's parameters."""
    context.progress("features", 10)
    score = float(context.parameters.get("score", 0.7))
    champion = context.champion["score"] if context.champion is not None else None
    context.progress("train", 60)
    return TrainOutcome(
        tensors={"w": torch.tensor([score])},
        config={"score": score},
        metrics={"auc": score},
        score=score,
        champion_score=champion,
        compression_report={"variants": [{"name": "fp32", "bytes": 4}]},
        warm_started=context.warm_start is not None,
    )


def _load(artifact):
    return {"score": float(artifact.tensors["w"][0]), "config": artifact.config}


@pytest.fixture
def dummy_kind(settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    kind = ModelKind(
        name="dummy", primary_metric="auc", gate_tolerance=lambda: 0.01, train=_train, load=_load
    )
    previous = dict(kinds._KINDS)
    kinds.register_kind(kind)
    serving.reset()
    yield kind
    kinds._KINDS.clear()
    kinds._KINDS.update(previous)
    serving.reset()
