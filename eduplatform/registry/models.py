"""Model versions: the registry of trained artifacts and which one serves."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        TRAINING = "training"
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"
        FAILED = "failed"

    kind = models.CharField(max_length=32)  # registered by name: "churn", "recommender"
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING)
    status_reason = models.TextField(blank=True)
    # Training progress, polled by the admin and the models page.
    stage = models.CharField(max_length=32, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    compression_report = models.JSONField(default=dict, blank=True)
    served_variant = models.CharField(max_length=32, blank=True)
    artifact_path = models.CharField(max_length=500, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    artifact_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # The fp32 training state when the served artifact is a compressed variant:
    # the next retrain warm-starts from it (compressed weights cannot be grown back).
    checkpoint_path = models.CharField(max_length=500, blank=True)
    checkpoint_sha256 = models.CharField(max_length=64, blank=True)
    data_window_start = models.DateTimeField(null=True, blank=True)
    data_window_end = models.DateTimeField(null=True, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    # A kind whose training features fan out: {"as_of": day, "chunks": [[course ids]...]},
    # fixed when the run is requested so every chunk task and the training agree on it.
    feature_plan = models.JSONField(default=dict, blank=True)
    triggered_by = models.CharField(max_length=150, blank=True)
    warm_started_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set when learners were erased after training: retrain without them.
    retrain_due = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Stamped by the training process every TRAINING_HEARTBEAT_SECONDS while it works
    # on the run; a training run whose heartbeat is older than TRAINING_HEARTBEAT_TIMEOUT
    # lost its worker and is reclaimed as failed (services.runs_reclaim_lost).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="model_version_unique"),
            # The serving pointer: at most one active version per kind.
            models.UniqueConstraint(
                fields=["kind"], condition=Q(status="active"), name="one_active_per_kind"
            ),
            # The training lock: at most one run per kind, across all workers.
            models.UniqueConstraint(
                fields=["kind"], condition=Q(status="training"), name="one_training_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version} ({self.status})"

    @property
    def is_good(self) -> bool:
        """Has a verified artifact and once passed (or could pass) the gate."""
        return bool(self.artifact_sha256) and self.status in (
            self.Status.ACTIVE,
            self.Status.RETIRED,
            self.Status.CANDIDATE,
        )
