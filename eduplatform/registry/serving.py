"""Per-process serving cache: load the active version once, notice promotions cheaply.

Each web process keeps the loaded model of each kind. A promotion writes the new
active version id to the shared cache (Redis); a request compares that one
value with what it holds (one GET, at most once per SERVING_RECHECK_SECONDS per
process: a promotion reaches every process within that time, and a busy API
does not pay a Redis round trip per request) and reloads only on change. A
promotion made in this process is seen at once. Without the
cache (Redis down) the database is asked at most every FALLBACK_SECONDS, and
the loaded model keeps serving meanwhile. A corrupt or tampered artifact
(sha256 mismatch) is logged and the previous good model keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache

from eduplatform.ml.artifacts import ArtifactError, load_artifact
from eduplatform.registry.kinds import get_kind

logger = logging.getLogger(__name__)

FALLBACK_SECONDS = 5.0
RETRY_BAD_ARTIFACT_SECONDS = 60.0


def _key(kind: str) -> str:
    return f"registry:active:{kind}"


@dataclass(frozen=True)
class Served:
    kind: str
    version_id: int
    version: int
    model: Any


class _State:
    def __init__(self) -> None:
        self.loaded: dict[str, Served] = {}
        self.checked_at: dict[str, float] = {}
        self.bad: dict[int, float] = {}
        # Until when the loaded model counts as current without asking the cache.
        self.fresh_until: dict[str, float] = {}
        self.lock = threading.Lock()


_state = _State()


def announce(kind: str, version_id: int) -> None:
    """Tell every process that `version_id` is now active (called after commit)."""
    _state.fresh_until.pop(kind, None)
    try:
        cache.set(_key(kind), version_id, timeout=None)
    except Exception:
        logger.warning("registry: could not announce %s promotion to the cache", kind)


def _announced(kind: str) -> int | None:
    try:
        value = cache.get(_key(kind))
    except Exception:
        return None
    return int(value) if value is not None else None


def load_version(row: Any) -> Any:
    """Load a registry row's artifact (checksum first) into its served object."""
    artifact = load_artifact(Path(row.artifact_path), row.artifact_sha256)
    return get_kind(row.kind).load(artifact)


def get_served(kind: str) -> Served | None:
    """The model to serve for `kind` now, or None when no version was ever promoted."""
    from eduplatform.registry.models import ModelVersion

    current = _state.loaded.get(kind)
    now = time.monotonic()
    if current is not None and now < _state.fresh_until.get(kind, 0.0):
        return current
    announced = _announced(kind)
    if current is not None and announced == current.version_id:
        _state.fresh_until[kind] = now + settings.SERVING_RECHECK_SECONDS
        return current
    if announced is None and now - _state.checked_at.get(kind, -1e9) < FALLBACK_SECONDS:
        return current
    with _state.lock:
        current = _state.loaded.get(kind)
        try:
            row = ModelVersion.objects.filter(kind=kind, status=ModelVersion.Status.ACTIVE).first()
        except Exception:
            logger.exception("registry: cannot read the active %s version", kind)
            return current
        _state.checked_at[kind] = now
        if row is None:
            return current
        if current is not None and current.version_id == row.id:
            if announced is None:
                announce(kind, row.id)
            _state.fresh_until[kind] = now + settings.SERVING_RECHECK_SECONDS
            return current
        if now - _state.bad.get(row.id, -1e9) < RETRY_BAD_ARTIFACT_SECONDS:
            return current
        try:
            model = load_version(row)
        except ArtifactError as exc:
            _state.bad[row.id] = now
            logger.error("registry: refusing %s v%s: %s", kind, row.version, exc)
            return current
        served = Served(kind=kind, version_id=row.id, version=row.version, model=model)
        _state.loaded[kind] = served
        _state.fresh_until[kind] = now + settings.SERVING_RECHECK_SECONDS
        logger.info("registry: serving %s v%s", kind, row.version)
        return served


def reset() -> None:
    """Forget every loaded model (tests; a process that must reload from scratch)."""
    with _state.lock:
        _state.loaded.clear()
        _state.checked_at.clear()
        _state.bad.clear()
        _state.fresh_until.clear()
