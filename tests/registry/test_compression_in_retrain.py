"""Retraining compresses both real kinds, serves the chosen variant and warm-starts from fp32."""

from pathlib import Path

import pytest
import torch
from django.core.management import call_command

from analytics.models import Course, Enrollment
from churn.features import serving_frames
from eduplatform.ml.artifacts import load_artifact
from eduplatform.ml.compress.layers import Int8Linear
from eduplatform.ml.compress.pipeline import VARIANTS
from eduplatform.registry import services, serving
from eduplatform.registry.models import ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)
CHURN_FAST = {"seeds": [0], "max_epochs": 3, "refit": False}
REC_FAST = {"epochs": 1, "max_learners_per_cutoff": 100}
SERVED = "structured+quantized"


@pytest.fixture
def platform(settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    serving.reset()
    serving_frames.clear()
    call_command("seed_demo", "--learners", "140", "--courses", "3", "--days", "200", "--seed", "5")
    yield
    serving.reset()
    serving_frames.clear()


def _retrain(kind: str, **parameters) -> ModelVersion:
    version = services.retrain_request(kind=kind, triggered_by="test", parameters=parameters)
    version.refresh_from_db()
    return version


def _has_int8(module: torch.nn.Module) -> bool:
    return any(isinstance(m, Int8Linear) for m in module.modules())


def test_churn_retrain_stores_report_and_serves_the_compressed_variant(platform):
    version = _retrain("churn", **CHURN_FAST, serve_variant=SERVED)
    assert version.status == ModelVersion.Status.ACTIVE, version.status_reason
    report = version.compression_report
    assert [r["name"] for r in report["variants"]] == list(VARIANTS)
    assert all(r["artifact_bytes"] > 0 and r["quality"] is not None for r in report["variants"])
    assert version.served_variant == SERVED == report["chosen"]
    assert "policy_choice" in report["extra"]  # the policy's own pick stays on record
    assert "compress" in version.metrics["stage_seconds"]

    # The served artifact holds the compressed network; the fp32 state sits beside it.
    artifact = load_artifact(version.artifact_path, version.artifact_sha256)
    assert artifact.config["compression"]["info"]["variant"] == SERVED
    checkpoint = load_artifact(version.checkpoint_path, version.checkpoint_sha256)
    assert "compression" not in checkpoint.config
    # The network in the served file is the compressed one (the rest of the file,
    # preprocessing and calibration, is the same in both states).
    served_network = sum(
        t.numel() * t.element_size()
        for k, t in artifact.tensors.items()
        if k.startswith("variant.")
    )
    fp32_network = sum(
        t.numel() * t.element_size()
        for k, t in checkpoint.tensors.items()
        if k.startswith("module.")
    )
    assert 0 < served_network < 0.5 * fp32_network
    assert version.artifact_bytes < Path(version.checkpoint_path).stat().st_size

    served = serving.get_served("churn")
    assert served is not None and _has_int8(served.model.module)
    # The gate's score is the served (compressed) model's, not the fp32 one's.
    row = next(r for r in report["variants"] if r["name"] == SERVED)
    assert version.metrics["auc"] == pytest.approx(row["quality"], abs=0.02)

    course_ids = list(Course.objects.values_list("id", flat=True))
    assert services.batch_scores_refresh(kind="churn", course_ids=course_ids) > 0

    # The next run starts from the fp32 checkpoint, not from the compressed network.
    second = _retrain("churn", **CHURN_FAST)
    assert second.status in (ModelVersion.Status.ACTIVE, ModelVersion.Status.CANDIDATE)
    assert second.metrics["warm_start"] is True and second.warm_started_from_id == version.id


def test_compression_can_be_switched_off_per_run(platform):
    version = _retrain("churn", **CHURN_FAST, compress=False)
    assert version.status == ModelVersion.Status.ACTIVE, version.status_reason
    assert version.served_variant == "fp32"
    assert version.compression_report == {}
    assert version.checkpoint_path == ""
    assert "compression" not in load_artifact(version.artifact_path, version.artifact_sha256).config


def test_unknown_variant_fails_the_run_with_a_reason(platform):
    version = _retrain("churn", **CHURN_FAST, serve_variant="zip")
    assert version.status == ModelVersion.Status.FAILED
    assert "serve_variant 'zip' was not built" in version.status_reason


def test_recommender_applies_the_recipe_and_warm_starts_from_the_checkpoint(platform):
    first = _retrain("recommender", **REC_FAST, serve_variant=SERVED)
    assert first.status == ModelVersion.Status.ACTIVE, first.status_reason
    assert first.served_variant == SERVED
    assert first.metrics["warm_start"] is None and first.warm_started_from_id is None
    sizes = first.compression_report["served_model"]
    assert sizes["network_bytes"] * 3 < sizes["fp32_network_bytes"]
    artifact = load_artifact(first.artifact_path, first.artifact_sha256)
    assert artifact.config["compression"]["info"]["variant"] == SERVED
    served = serving.get_served("recommender")
    enrollment = Enrollment.objects.filter(course_id__in=served.model.course_ids()).first()
    scores, _ = served.model.score_learners(enrollment.course_id, [enrollment.learner_id], 30)
    assert torch.isfinite(torch.as_tensor(scores)).all()

    second = _retrain("recommender", **REC_FAST)
    assert second.status in (ModelVersion.Status.ACTIVE, ModelVersion.Status.CANDIDATE)
    warm = second.metrics["warm_start"]
    assert warm is not None and warm["weights"] == "champion fp32"
    assert second.warm_started_from_id == first.id

    scratch = services.retrain_request(
        kind="recommender", triggered_by="test", warm_start=False, parameters=REC_FAST
    )
    scratch.refresh_from_db()
    assert scratch.metrics["warm_start"] is None and scratch.warm_started_from_id is None
