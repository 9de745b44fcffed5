"""Writes of the model registry: start, train, register, gate, promote, roll back."""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import chord
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Max, Value
from django.db.models.functions import Now
from django.utils import timezone

from eduplatform.celery import task_by_name
from eduplatform.core.clock import today
from eduplatform.ml.artifacts import Artifact, ArtifactError, load_artifact, save_artifact
from eduplatform.registry import features, serving
from eduplatform.registry.kinds import TrainContext, TrainingRejected, get_kind
from eduplatform.registry.models import ModelVersion

logger = logging.getLogger(__name__)
Status = ModelVersion.Status


class TrainingInProgress(Exception):
    def __init__(self, version: ModelVersion) -> None:
        super().__init__(f"{version.kind} v{version.version} is already training")
        self.version = version


class PromotionError(Exception):
    pass


class RunReclaimed(Exception):
    """The run was reclaimed as failed (its heartbeat went stale) while this process trained it."""


def json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON: store them as null (numpy scalars as Python numbers)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _abandon_stale_runs(kind: str) -> None:
    """A run older than the hard time limit died with its worker and its message."""
    limit = dt.timedelta(seconds=settings.TRAINING_HARD_TIME_LIMIT + 120)
    ModelVersion.objects.filter(
        kind=kind, status=Status.TRAINING, created_at__lt=timezone.now() - limit
    ).update(status=Status.FAILED, status_reason="abandoned: no worker finished it in time")


WORKER_LOST = "worker lost"


def runs_reclaim_lost(*, kind: str | None = None) -> int:
    """Fail the training runs whose heartbeat is older than TRAINING_HEARTBEAT_TIMEOUT.

    Their worker died (SIGKILL, out of memory, machine gone) and holds the
    kind's training lock; failing them frees it at once, and a redelivered
    message of a reclaimed run finds it finished and does nothing. Runs still
    queued (no heartbeat yet) are left to _abandon_stale_runs. Returns how many.
    """
    # The database's clock stamps and judges every heartbeat: workers' clocks may differ.
    cutoff = ExpressionWrapper(
        Now() - Value(dt.timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)),
        output_field=DateTimeField(),
    )
    lost = ModelVersion.objects.filter(status=Status.TRAINING, heartbeat_at__lt=cutoff)
    if kind is not None:
        lost = lost.filter(kind=kind)
    reclaimed = lost.update(
        status=Status.FAILED,
        status_reason=(
            f"{WORKER_LOST}: no heartbeat for {settings.TRAINING_HEARTBEAT_TIMEOUT:g} s"
        ),
        finished_at=timezone.now(),
    )
    if reclaimed:
        logger.warning("registry: reclaimed %d training run(s) whose worker was lost", reclaimed)
    features.stale_features_sweep()
    return reclaimed


class Heartbeat:
    """Stamps a run's heartbeat every TRAINING_HEARTBEAT_SECONDS from a daemon thread.

    The thread has its own database connection (closed when it ends), so a
    training busy in one long step still beats. `lost` is set once the run is
    seen no longer training (reclaimed): the training stops at its next progress
    report and registers nothing.
    """

    def __init__(self, version_id: int) -> None:
        self.version_id = version_id
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{version_id}", daemon=True
        )

    def beat(self) -> None:
        stamped = ModelVersion.objects.filter(id=self.version_id, status=Status.TRAINING).update(
            heartbeat_at=Now()
        )
        if not stamped:
            # A row this connection cannot see (not committed yet) is no verdict.
            status = (
                ModelVersion.objects.filter(id=self.version_id)
                .values_list("status", flat=True)
                .first()
            )
            if status is not None and status != Status.TRAINING:
                self.lost.set()

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.TRAINING_HEARTBEAT_SECONDS):
                try:
                    self.beat()
                except DatabaseError:
                    logger.warning("registry: heartbeat of version id %s failed", self.version_id)
                if self.lost.is_set():
                    return
        finally:
            connections.close_all()  # this thread's connections only

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def model_version_start(
    *, kind: str, triggered_by: str, parameters: dict[str, Any] | None = None
) -> ModelVersion:
    """Open a training run (the per-kind lock); raise TrainingInProgress if one is open."""
    get_kind(kind)
    _abandon_stale_runs(kind)
    runs_reclaim_lost(kind=kind)
    for _ in range(3):
        try:
            with transaction.atomic():
                latest = ModelVersion.objects.filter(kind=kind).aggregate(v=Max("version"))["v"]
                return ModelVersion.objects.create(
                    kind=kind,
                    version=(latest or 0) + 1,
                    status=Status.TRAINING,
                    stage="queued",
                    triggered_by=triggered_by,
                    parameters=parameters or {},
                )
        except IntegrityError:
            running = ModelVersion.objects.filter(kind=kind, status=Status.TRAINING).first()
            if running is not None:
                raise TrainingInProgress(running) from None
            # Lost a race on the version number only: try the next one.
    raise IntegrityError(f"could not allocate a version number for {kind}")


# Who follows trainings run in this process (no broker: tasks run eagerly inside the
# request), e.g. `retrain`'s progress bar; a worker elsewhere reports through the row only.
_progress_listeners: list[Callable[[str, int], None]] = []


@contextmanager
def progress_listener(listener: Callable[[str, int], None]) -> Iterator[None]:
    """Call `listener(stage, percent)` on every progress report made in this process."""
    _progress_listeners.append(listener)
    try:
        yield
    finally:
        _progress_listeners.remove(listener)


def model_version_progress(*, version_id: int, stage: str, percent: int) -> bool:
    """Record progress (a heartbeat too); False if the run is no longer training."""
    for listener in list(_progress_listeners):
        listener(stage, percent)
    return bool(
        ModelVersion.objects.filter(id=version_id, status=Status.TRAINING).update(
            stage=stage[:32], percent=max(0, min(100, percent)), heartbeat_at=Now()
        )
    )


def artifact_path_for(version: ModelVersion) -> Path:
    return (
        Path(settings.ARTIFACT_DIR)
        / version.kind
        / f"{version.kind}-v{version.version}.safetensors"
    )


def _warm_start_state(champion: ModelVersion) -> Artifact | None:
    """The champion's fp32 training state: its checkpoint when it serves a compressed
    variant, else its artifact. None (train from scratch) when it cannot be read."""
    path, sha256 = champion.checkpoint_path, champion.checkpoint_sha256
    if not path:
        path, sha256 = champion.artifact_path, champion.artifact_sha256
    try:
        return load_artifact(Path(path), sha256)
    except ArtifactError:
        logger.warning("registry: cannot warm start from %s", champion)
        return None


def model_version_train(*, version_id: int) -> ModelVersion:
    """Run one training to completion; safe to run again for the same id.

    1. Claim: only a version still in TRAINING is worked on (a rerun after a
       worker crash finds it so; a finished or reclaimed one is returned untouched).
    2. Train through the kind's plugin, comparing with the active champion,
       with a heartbeat (`Heartbeat`); a run reclaimed meanwhile stops at its
       next progress report and writes nothing.
    3. Write the artifact (temp file, fsync, atomic rename) under a
       version-specific path, so no pointer ever names a partial file.
    4. Register the metrics and, if the gate passes, promote atomically.
    """
    version = ModelVersion.objects.get(id=version_id)
    if version.status != Status.TRAINING:
        return version
    if not ModelVersion.objects.filter(id=version_id, status=Status.TRAINING).update(
        started_at=Now(), heartbeat_at=Now()
    ):
        return ModelVersion.objects.get(id=version_id)  # reclaimed in between
    with Heartbeat(version_id) as heartbeat:
        try:
            return _train(version, heartbeat)
        except RunReclaimed:
            logger.warning("registry: %s was reclaimed while training; stopped", version)
            return ModelVersion.objects.get(id=version_id)
        finally:
            # Kept while the run still trains: a retry (database blip) gathers them again.
            features.training_features_discard(version_id=version_id)


def _train(version: ModelVersion, heartbeat: Heartbeat) -> ModelVersion:
    """model_version_train's steps 2 to 4, on a claimed run."""
    version_id = version.id
    kind = get_kind(version.kind)
    champion_row = ModelVersion.objects.filter(kind=version.kind, status=Status.ACTIVE).first()
    champion = serving.load_version(champion_row) if champion_row else None
    warm = None
    if champion_row is not None and version.parameters.get("warm_start", True):
        warm = _warm_start_state(champion_row)

    def progress(stage: str, percent: int) -> None:
        if heartbeat.lost.is_set() or not model_version_progress(
            version_id=version_id, stage=stage, percent=percent
        ):
            raise RunReclaimed(f"{version} is no longer training")

    gathered = None
    if kind.features is not None:
        progress("features", 2)
        if not version.feature_plan:  # sent without a plan (an older message): make it now
            features.training_features_plan(version_id=version_id, as_of=today())
            version.refresh_from_db()
        gathered = features.training_features_gather(version=version)
    context = TrainContext(
        version_id=version_id,
        parameters=version.parameters,
        progress=progress,
        champion=champion,
        warm_start=warm,
        champion_metrics=champion_row.metrics if champion_row else None,
        features=gathered,
    )
    try:
        outcome = kind.train(context)
    except TrainingRejected as exc:
        return model_version_fail(version_id=version_id, reason=str(exc))
    if gathered is not None:
        outcome.metrics["features_sha256"] = gathered.digest
    progress("register", 95)
    path = artifact_path_for(version)
    sha256 = save_artifact(path, outcome.tensors, outcome.config)
    checkpoint: tuple[Path, str] | None = None
    if outcome.checkpoint is not None:
        checkpoint_path = path.with_name(path.stem + ".train.safetensors")
        checkpoint = (checkpoint_path, save_artifact(checkpoint_path, *outcome.checkpoint))
    return _register_and_gate(
        version_id=version_id,
        path=path,
        sha256=sha256,
        checkpoint=checkpoint,
        outcome_metrics={
            **outcome.metrics,
            "score": outcome.score,
            "champion_score": outcome.champion_score,
        },
        outcome=outcome,
        tolerance=kind.gate_tolerance(),
        champion_id=champion_row.id if champion_row else None,
    )


@transaction.atomic
def _register_and_gate(
    *,
    version_id: int,
    path: Path,
    sha256: str,
    checkpoint: tuple[Path, str] | None,
    outcome_metrics: dict[str, Any],
    outcome: Any,
    tolerance: float,
    champion_id: int | None,
) -> ModelVersion:
    version = ModelVersion.objects.select_for_update().get(id=version_id)
    if version.status == Status.FAILED:
        # Reclaimed while this process wrote its files: nothing may name them.
        for written in (path, checkpoint[0] if checkpoint else None):
            if written is not None:
                written.unlink(missing_ok=True)
        return version
    if version.status != Status.TRAINING:
        return version  # a concurrent rerun finished first
    version.artifact_path = str(path)
    version.artifact_sha256 = sha256
    version.artifact_bytes = path.stat().st_size
    if checkpoint is not None:
        version.checkpoint_path, version.checkpoint_sha256 = str(checkpoint[0]), checkpoint[1]
    version.metrics = json_safe(outcome_metrics)
    version.compression_report = json_safe(outcome.compression_report)
    version.served_variant = outcome.served_variant
    version.data_window_start, version.data_window_end = outcome.data_window
    version.warm_started_from_id = champion_id if outcome.warm_started else None
    version.finished_at = timezone.now()
    version.stage, version.percent = "done", 100
    champion_score = outcome.champion_score
    if champion_score is not None and outcome.score < champion_score - tolerance:
        version.status = Status.CANDIDATE
        version.status_reason = (
            f"gate: {outcome.score:.4f} is worse than the active model's "
            f"{champion_score:.4f} by more than {tolerance:g}"
        )
        version.save()
        return version
    version.status = Status.CANDIDATE
    version.status_reason = ""
    version.save()
    return _activate(version)


def _activate(version: ModelVersion) -> ModelVersion:
    """The one atomic switch: retire the active row, activate this one."""
    now = timezone.now()
    ModelVersion.objects.filter(kind=version.kind, status=Status.ACTIVE).exclude(
        id=version.id
    ).update(status=Status.RETIRED)
    ModelVersion.objects.filter(id=version.id).update(
        status=Status.ACTIVE, promoted_at=now, status_reason=""
    )
    version.status, version.promoted_at = Status.ACTIVE, now
    transaction.on_commit(lambda: serving.announce(version.kind, version.id))
    return version


def model_version_fail(*, version_id: int, reason: str) -> ModelVersion:
    ModelVersion.objects.filter(id=version_id, status=Status.TRAINING).update(
        status=Status.FAILED, status_reason=reason[:2000], finished_at=timezone.now()
    )
    features.training_features_discard(version_id=version_id)
    return ModelVersion.objects.get(id=version_id)


@transaction.atomic
def model_version_promote(*, kind: str, version: int) -> ModelVersion:
    """Serve a given version now (a candidate that missed the gate, or an older one)."""
    row = ModelVersion.objects.select_for_update().filter(kind=kind, version=version).first()
    if row is None:
        raise PromotionError(f"{kind} has no version {version}")
    if row.status == Status.ACTIVE:
        return row
    if row.status not in (Status.CANDIDATE, Status.RETIRED) or not row.artifact_sha256:
        raise PromotionError(f"{kind} v{version} is {row.status} and cannot be served")
    return _activate(row)


@transaction.atomic
def model_version_rollback(*, kind: str, to_version: int | None = None) -> ModelVersion:
    """Back to `to_version`, or to the version that served before the active one."""
    active = ModelVersion.objects.filter(kind=kind, status=Status.ACTIVE).first()
    if to_version is None:
        earlier = ModelVersion.objects.filter(
            kind=kind, status=Status.RETIRED, promoted_at__isnull=False
        ).exclude(artifact_sha256="")
        if active is not None:
            earlier = earlier.filter(version__lt=active.version)
        target = earlier.order_by("-promoted_at").first()
        if target is None:
            raise PromotionError(f"{kind} has no earlier good version to roll back to")
        to_version = target.version
    return model_version_promote(kind=kind, version=to_version)


def models_mark_retrain_due() -> int:
    """After an erasure: active models must be retrained without the erased learners."""
    return ModelVersion.objects.filter(status=Status.ACTIVE).update(retrain_due=True)


# The tasks that train a version and fail it (eduplatform/registry/tasks.py), sent by name.
RETRAIN_TASK = "registry.retrain_model"
FAIL_TASK = "registry.fail_training"


class BrokerUnavailable(Exception):
    pass


def retrain_request(
    *,
    kind: str,
    triggered_by: str,
    warm_start: bool = True,
    parameters: dict[str, Any] | None = None,
) -> ModelVersion:
    """Open a run and enqueue it; the run is withdrawn if the broker cannot take it.

    A kind whose features fan out gets a chord: one task per chunk of course
    runs (any worker), then the training, which gathers them
    (eduplatform/registry/features.py). The version row and its plan are
    committed before the enqueue (model_version_start runs its own transaction),
    so a worker never receives an id it cannot see.
    """
    version = model_version_start(
        kind=kind,
        triggered_by=triggered_by,
        parameters={**(parameters or {}), "warm_start": warm_start},
    )
    train = task_by_name(RETRAIN_TASK).si(version.id)
    try:
        chunks = []
        if get_kind(kind).features is not None:
            chunks = features.training_features_plan(version_id=version.id, as_of=today())
        if chunks:
            build = task_by_name(features.FEATURE_TASK)
            header = [build.si(version.id, i) for i in range(len(chunks))]
            chord(header)(train.set(link_error=_fail_signature(version.id)), retry=False)
        else:
            train.apply_async(retry=False)
    except Exception as exc:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            raise
        # Never sent, so nothing ran it: withdraw the row (no FAILED version left behind;
        # its number is used again by the next request).
        ModelVersion.objects.filter(id=version.id, status=Status.TRAINING).delete()
        raise BrokerUnavailable("the task broker is unavailable; try again later") from exc
    version.refresh_from_db()
    return version


def _fail_signature(version_id: int) -> Any:
    # A chunk that failed for good (after its retries) leaves the chord without its
    # training: fail the run at once instead of leaving it queued until it is abandoned.
    return task_by_name(FAIL_TASK).si(version_id, "a feature chunk failed")


def retrain_request_scheduled(*, kind: str) -> ModelVersion | None:
    """Nightly retrain, at most one per kind and day whatever the number of beats."""
    today = timezone.now().date()
    if ModelVersion.objects.filter(
        kind=kind, triggered_by="schedule", created_at__date=today
    ).exists():
        return None
    try:
        return retrain_request(kind=kind, triggered_by="schedule")
    except TrainingInProgress:
        return None


def batch_scores_refresh(*, kind: str, course_ids: list[int]) -> int:
    """Recompute the dashboards' batch scores of some course runs with the served model."""
    served = serving.get_served(kind)
    plugin = get_kind(kind)
    if served is None or plugin.score_batch is None:
        return 0
    return plugin.score_batch(served.model, course_ids, served.version)
