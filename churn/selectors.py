"""Reads of churn predictions: in-request from the loaded model, and batch scores."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from analytics.models import Course, Learner
from churn.features import serving_frames
from churn.models import RiskHistory, RiskScore
from eduplatform.clock import today
from eduplatform.registry.serving import get_served


@dataclass(frozen=True)
class LiveRisk:
    status: str  # "ok" | "no_model" | "not_enrolled"
    model_version: int | None = None
    as_of: dt.date | None = None
    probability: float | None = None
    band: str | None = None
    factors: tuple[str, ...] = ()


class _RunPredictions:
    """Per-process predictions of a whole course run by the served model.

    Explanations (integrated gradients) cost far less per learner in one
    vectorised pass over the run than one learner at a time, so the first
    request for a run scores all its learners with the loaded model and the
    next ones are lookups, until the model, the day or the TTL changes.
    """

    def __init__(self) -> None:
        self._runs: dict[tuple[int, int, dt.date], tuple[float, dict[int, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, served: Any, course: Course, as_of: dt.date) -> dict[int, Any]:
        key = (course.id, served.version_id, as_of)
        hit = self._runs.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < settings.SERVING_FEATURES_TTL:
            return hit[1]
        with self._lock:
            frame = serving_frames.get(course, as_of).reset_index(drop=True)
            predictions = served.model.predict(frame, top_k=3) if len(frame) else []
            by_learner = {int(p.learner_id): p for p in predictions}
            # Keep only the newest entry per run: old days and versions are dead weight.
            self._runs = {k: v for k, v in self._runs.items() if k[0] != course.id}
            self._runs[key] = (now, by_learner)
            return by_learner

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
        # The one reset hook tests call for this app's in-process caches; the
        # course page's bundles (analytics) and this process's recommendation
        # answers (recommender) are dropped with them.
        from analytics.dashboards import course_cache
        from recommender.selectors import answers

        course_cache.clear()
        answers.clear()


run_predictions = _RunPredictions()


def live_risk(*, learner: Learner, course: Course) -> LiveRisk:
    """The learner's risk now, from the served model over the run's current features."""
    served = get_served("churn")
    if served is None:
        return LiveRisk(status="no_model")
    as_of = today()
    prediction = run_predictions.get(served, course, as_of).get(learner.id)
    if prediction is None:
        return LiveRisk(status="not_enrolled", model_version=served.version, as_of=as_of)
    return LiveRisk(
        status="ok",
        model_version=served.version,
        as_of=as_of,
        probability=prediction.probability,
        band=prediction.risk_band,
        factors=tuple(f.text for f in prediction.top_factors),
    )


def batch_risk(course: Course, learner_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Batch scores of some learners of a run (one query), for tables of many learners."""
    rows = RiskScore.objects.filter(course=course, learner_id__in=learner_ids).values(
        "learner_id", "band", "factors", "scored_at"
    )
    return {r["learner_id"]: dict(r) for r in rows}


def batch_risk_csv(value: dict[str, Any] | None) -> list[str]:
    if value is None:
        return ["", ""]
    return [value["band"], "; ".join(f["text"] for f in value["factors"])]


def learner_panel(learner: Learner, courses: list[Course]) -> list[dict[str, Any]]:
    """Per visible course run: the live risk and the history of batch scores."""
    history: dict[int, list[RiskHistory]] = {}
    for point in RiskHistory.objects.filter(learner=learner, course__in=courses).order_by("as_of"):
        history.setdefault(point.course_id, []).append(point)
    return [
        {
            "course": course,
            "live": live_risk(learner=learner, course=course),
            "history": history.get(course.id, [])[-12:],
        }
        for course in courses
    ]
