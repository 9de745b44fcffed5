"""Reads of recommendations: in-request from the loaded model, and batch results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from django.db.models import Sum

from analytics.models import ContentItem, Course, Learner, LearningEvent
from eduplatform.clock import today
from eduplatform.registry.serving import get_served
from recommender.models import NextItems


@dataclass(frozen=True)
class LiveRecommendations:
    status: str  # "ok" | "no_model" | "unknown_course"
    model_version: int | None = None
    items: list[dict[str, Any]] = field(default_factory=list)


def learner_history(*, learner: Learner, course: Course) -> pd.DataFrame:
    """The learner's clicks per item and day in the run (one indexed query)."""
    rows = (
        LearningEvent.objects.filter(learner=learner, course=course, item__isnull=False)
        .values_list("item_id", "occurred_at__date")
        .annotate(clicks=Sum("count"))
    )
    frame = pd.DataFrame(list(rows), columns=["item_id", "date", "clicks"])
    if frame.empty:
        return pd.DataFrame({"item_id": [], "day": [], "clicks": []})
    frame["day"] = (pd.to_datetime(frame["date"]) - pd.Timestamp(course.start_date)).dt.days
    return frame[["item_id", "day", "clicks"]]


def live_recommendations(*, learner: Learner, course: Course, k: int = 10) -> LiveRecommendations:
    served = get_served("recommender")
    if served is None:
        return LiveRecommendations(status="no_model")
    model = served.model
    if course.id not in set(model.course_ids()):
        return LiveRecommendations(status="unknown_course", model_version=served.version)
    now_day = min(course.day_of(today()), course.length_days)
    recs = model.recommend(
        learner.id,
        course.id,
        k=k,
        now_day=now_day,
        history=learner_history(learner=learner, course=course),
    )
    titles = dict(
        ContentItem.objects.filter(id__in=[r.item_id for r in recs]).values_list("id", "title")
    )
    related = dict(
        ContentItem.objects.filter(
            id__in=[r.related_item for r in recs if r.related_item is not None]
        ).values_list("id", "title")
    )
    items = []
    for r in recs:
        reason = r.reason
        if r.related_item is not None and r.related_item in related:
            # Reasons name items by id inside the model; show their titles.
            reason = reason.replace(
                str(r.related_item), related[r.related_item] or str(r.related_item)
            )
        items.append(
            {
                "item_id": r.item_id,
                "title": titles.get(r.item_id, ""),
                "reason": reason,
                "score": r.score,
            }
        )
    return LiveRecommendations(status="ok", model_version=served.version, items=items)


def batch_next_items(course: Course, learner_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = NextItems.objects.filter(course=course, learner_id__in=learner_ids).values(
        "learner_id", "items", "scored_at"
    )
    return {r["learner_id"]: r for r in rows}


def batch_next_items_csv(value: dict[str, Any] | None) -> list[str]:
    if value is None:
        return [""]
    return ["; ".join(i["title"] or str(i["item_id"]) for i in value["items"])]


def learner_panel(learner: Learner, courses: list[Course]) -> list[dict[str, Any]]:
    return [
        {"course": course, "live": live_recommendations(learner=learner, course=course, k=5)}
        for course in courses
    ]
