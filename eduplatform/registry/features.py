"""Training features fanned out over chunks of course runs, gathered by the training.

A kind with a `FeatureFanout` (churn, recommender) builds its training features per
course run: nothing crosses runs. A retrain request fixes the plan (as_of and the
chunks of runs) on the version row and sends a Celery chord: one
`registry.train_features_chunk(version_id, index)` per chunk on the training queue,
then `registry.retrain_model(version_id)`. Any worker on any machine builds a chunk
and writes it under ARTIFACT_DIR (which every worker already shares: trainings
write artifacts there, web processes read them), not into the Redis result
backend, since a chunk holds up to millions of feature rows.

Without a broker the chord runs eagerly in this process: the same chunk builds,
the same files, the same gathering, so the features are identical. A chunk missing
at gathering (its task lost with its worker) is built then, in the training
process, with the same code.

Layout: ARTIFACT_DIR/features/<kind>-v<version>-<row id>/chunk-0003/{<frame>.parquet, meta.json}.
Each chunk appears by one directory rename (a rerun of the same chunk finds it and
does nothing); the directory goes when the run is no longer training.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings

from eduplatform.registry.kinds import FeatureChunk, FeatureFanout, TrainingFeatures, get_kind
from eduplatform.registry.models import ModelVersion

logger = logging.getLogger(__name__)

# The task that builds one chunk (eduplatform/registry/tasks.py), sent by name.
FEATURE_TASK = "registry.train_features_chunk"
# Course runs per chunk: small enough that two workers share a 15-run catalogue,
# large enough that a 1,000-run catalogue is 250 tasks, not 1,000. A run's
# parameters may override it ("feature_chunk_runs").
FEATURE_CHUNK_RUNS = 4


class FeaturePlanError(Exception):
    pass


def features_root() -> Path:
    return Path(settings.ARTIFACT_DIR) / "features"


def features_dir(version: ModelVersion) -> Path:
    # The row id too: a withdrawn run's version number is given to the next request.
    return features_root() / f"{version.kind}-v{version.version}-{version.id}"


def _fanout(version: ModelVersion) -> FeatureFanout:
    fanout = get_kind(version.kind).features
    if fanout is None:
        raise FeaturePlanError(f"{version.kind} has no feature fan-out")
    return fanout


def training_features_plan(*, version_id: int, as_of: dt.date) -> list[list[int]]:
    """Fix the run's plan: the kind's runs as of `as_of`, in consecutive chunks. Returns them."""
    version = ModelVersion.objects.get(id=version_id)
    size = int(version.parameters.get("feature_chunk_runs", FEATURE_CHUNK_RUNS))
    if size < 1:
        raise FeaturePlanError("feature_chunk_runs must be at least 1")
    runs = _fanout(version).runs(as_of)
    chunks = [runs[i : i + size] for i in range(0, len(runs), size)]
    ModelVersion.objects.filter(id=version_id).update(
        feature_plan={"as_of": as_of.isoformat(), "chunks": chunks}
    )
    return chunks


def _chunk_dir(root: Path, index: int) -> Path:
    return root / f"chunk-{index:04d}"


def _write_chunk(target: Path, chunk: FeatureChunk) -> None:
    """Write beside the target, then one rename: a reader sees all of it or nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for name, frame in chunk.frames.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "meta.json").write_text(
            json.dumps({"frames": list(chunk.frames), "meta": chunk.meta})
        )
        for path in tmp.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():
                raise
            # A duplicate delivery of this chunk finished first: same content, keep it.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_chunk(path: Path) -> FeatureChunk:
    import pandas as pd

    stored = json.loads((path / "meta.json").read_text())
    frames = {name: pd.read_parquet(path / f"{name}.parquet") for name in stored["frames"]}
    return FeatureChunk(frames=frames, meta=stored["meta"])


def _plan(version: ModelVersion) -> tuple[dt.date, list[list[int]]]:
    plan = version.feature_plan or {}
    if "chunks" not in plan:
        raise FeaturePlanError(f"{version} has no feature plan")
    return dt.date.fromisoformat(plan["as_of"]), [list(c) for c in plan["chunks"]]


def training_features_build(*, version_id: int, index: int) -> bool:
    """Build and store chunk `index` of a training run's plan; True if this call wrote it.

    Idempotent: a run no longer training, or a chunk already stored, is left alone.
    """
    version = ModelVersion.objects.filter(id=version_id).first()
    if version is None or version.status != ModelVersion.Status.TRAINING:
        return False  # withdrawn, finished or reclaimed: nobody will read it
    as_of, chunks = _plan(version)
    target = _chunk_dir(features_dir(version), index)
    if target.is_dir():
        return False
    chunk = _fanout(version).build(chunks[index], as_of)
    _write_chunk(target, chunk)
    return True


def _digest(chunks: list[FeatureChunk]) -> str:
    """sha256 over every frame's columns, dtypes and row hashes, in plan order."""
    import pandas as pd

    digest = hashlib.sha256()
    for chunk in chunks:
        for name, frame in chunk.frames.items():
            digest.update(name.encode())
            digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        digest.update(json.dumps(chunk.meta, sort_keys=True).encode())
    return digest.hexdigest()


def training_features_gather(*, version: ModelVersion) -> TrainingFeatures:
    """Every chunk of the run's plan, in plan order; a chunk not stored yet is built here."""
    as_of, chunks = _plan(version)
    root = features_dir(version)
    gathered = []
    built_here = 0
    for index in range(len(chunks)):
        path = _chunk_dir(root, index)
        if not path.is_dir():
            built_here += 1
            _write_chunk(path, _fanout(version).build(chunks[index], as_of))
        gathered.append(_read_chunk(path))
    if built_here:
        logger.info(
            "registry: %s built %d of %d feature chunks itself", version, built_here, len(chunks)
        )
    return TrainingFeatures(
        as_of=as_of,
        course_ids=[c for chunk in chunks for c in chunk],
        chunks=gathered,
        digest=_digest(gathered),
    )


def training_features_discard(*, version_id: int) -> bool:
    """Remove a run's stored chunks once it no longer trains; True if there were some."""
    version = ModelVersion.objects.filter(id=version_id).first()
    if version is None or version.status == ModelVersion.Status.TRAINING:
        return False
    root = features_dir(version)
    if not root.exists():
        return False
    shutil.rmtree(root, ignore_errors=True)
    return True


def stale_features_sweep() -> int:
    """Remove the stored chunks of runs no longer training (a chunk task that finished
    after its training, a run failed elsewhere); the every-minute reclaim task calls it."""
    root = features_root()
    if not root.is_dir():
        return 0
    training = {
        features_dir(v).name
        for v in ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING).only(
            "kind", "version"
        )
    }
    removed = 0
    for path in root.iterdir():
        # A minute's grace: a run requested after the query above is not in it yet.
        young = time.time() - path.stat().st_mtime < 60
        if path.is_dir() and path.name not in training and not young:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
