"""Reads of churn predictions: in-request from the loaded model, and batch scores."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from analytics.models import Course, Learner
from churn.features import learner_row
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


def live_risk(*, learner: Learner, course: Course) -> LiveRisk:
    """Score one learner now with the served model (features from the cached course frame)."""
    served = get_served("churn")
    if served is None:
        return LiveRisk(status="no_model")
    as_of = today()
    row = learner_row(course, learner.id, as_of)
    if row is None:
        return LiveRisk(status="not_enrolled", model_version=served.version, as_of=as_of)
    prediction = served.model.predict(row, top_k=3)[0]
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
    return {r["learner_id"]: r for r in rows}


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
