"""Reads of recommendations: in-request from the loaded model, and batch results."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.db import connection
from django.db.models import Sum

from analytics import activity_stamps
from analytics.models import ContentItem, Course, Learner, LearningEvent
from eduplatform.core.caches import BoundedCache
from eduplatform.core.clock import today
from eduplatform.core.db_router import read_connection
from eduplatform.registry.serving import get_served
from recommender.models import NextItems
from recommender.reasons import translate_reason

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveRecommendations:
    status: str  # "ok" | "no_model" | "unknown_course"
    model_version: int | None = None
    items: list[dict[str, Any]] = field(default_factory=list)


_HISTORY_COLUMNS = ["item_id", "day", "clicks"]
RECS_CACHE_SECONDS = 600


def _history_rows(*, learner: Learner, course: Course) -> list[tuple[int, int, int]]:
    """(item id, day of run, clicks) per item and UTC day of the learner's events in the run."""
    if connection.vendor == "postgresql":
        # One indexed read (learner, course, time); the day of run computed in SQL. On the
        # read replica inside a dashboard page's scope (eduplatform/core/db_router.py).
        with read_connection().cursor() as cursor:
            cursor.execute(
                "SELECT item_id, ((occurred_at AT TIME ZONE 'UTC')::date - %s::date), SUM(count) "
                f"FROM {LearningEvent._meta.db_table} "
                "WHERE learner_id = %s AND course_id = %s AND item_id IS NOT NULL "
                "GROUP BY 1, 2 ORDER BY 1, 2",
                [course.start_date, learner.pk, course.pk],
            )
            return [(int(i), int(d), int(c)) for i, d, c in cursor.fetchall()]
    rows = (
        LearningEvent.objects.filter(learner=learner, course=course, item__isnull=False)
        .values_list("item_id", "occurred_at__date")
        .annotate(clicks=Sum("count"))
        .order_by("item_id", "occurred_at__date")
    )
    return [(int(i), (d - course.start_date).days, int(c)) for i, d, c in rows]


def _history_frame(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({"item_id": [], "day": [], "clicks": []})
    array = np.asarray(rows, dtype=np.int64)
    return pd.DataFrame(
        {"item_id": array[:, 0], "day": array[:, 1], "clicks": array[:, 2]},
        columns=_HISTORY_COLUMNS,
    )


def learner_history(*, learner: Learner, course: Course) -> pd.DataFrame:
    """The learner's clicks per item and day in the run (one indexed query)."""
    return _history_frame(_history_rows(learner=learner, course=course))


def live_recommendations(
    *, learner: Learner, course: Course, k: int = 10, stamps: str | None = None
) -> LiveRecommendations:
    """Top-k items for the learner now, from the served model and the learner's events.

    The answer is a function of (model version, learner, run, day, k, the
    learner's history), so it is cached in the shared cache under exactly
    those. The history stands in the key as its activity stamps
    (analytics/activity_stamps.py: changed by every write of the learner's
    events in the run; `stamps` when the API read them with its throttles),
    so a repeat asks the database nothing; without the shared cache the
    history is read (one indexed query) and its digest is the key. A new
    event or a promotion changes the key; nothing is served for inputs it
    was not computed from.
    """
    served = get_served("recommender")
    if served is None:
        return LiveRecommendations(status="no_model")
    model = served.model
    if course.id not in set(model.course_ids()):
        return LiveRecommendations(status="unknown_course", model_version=served.version)
    now_day = min(course.day_of(today()), course.length_days)
    rows: list[tuple[int, int, int]] | None = None
    if stamps is None:  # not read together with the request's throttles
        stamps = activity_stamps.stamps_for(course_id=course.id, pseudonym=learner.pseudonym)
    if stamps is None:
        rows = _history_rows(learner=learner, course=course)
        stamps = "d" + hashlib.blake2b(repr(rows).encode(), digest_size=16).hexdigest()
    key = f"recs:{served.version_id}:{course.id}:{learner.id}:{now_day}:{k}:{stamps}"
    items = answers.get(key)
    if items is None:
        try:
            items = cache.get(key)
        except Exception:
            items = None
        if items is None:
            if rows is None:
                rows = _history_rows(learner=learner, course=course)
            items = _recommend(
                model, learner=learner, course=course, k=k, now_day=now_day, rows=rows
            )
            try:
                cache.set(key, items, RECS_CACHE_SECONDS)
            except Exception:
                logger.warning("recommendations: could not cache an answer")
        answers.put(key, items)
    return LiveRecommendations(status="ok", model_version=served.version, items=items)


# This process's latest answers (same TTL as the shared cache): a repeat costs no
# cache round trip. Keys say everything an answer was computed from, so a hit is
# never stale but for item titles (TTL).
answers = BoundedCache("recommender.answers", maxsize=4096, ttl=lambda: RECS_CACHE_SECONDS)


def _recommend(
    model: Any, *, learner: Learner, course: Course, k: int, now_day: int, rows: list
) -> list[dict[str, Any]]:
    recs = model.recommend(
        learner.id, course.id, k=k, now_day=now_day, history=_history_frame(rows)
    )
    ids = {r.item_id for r in recs} | {r.related_item for r in recs if r.related_item is not None}
    # One query for the items and the items their reasons name.
    titles = dict(ContentItem.objects.filter(id__in=ids).values_list("id", "title")) if ids else {}
    items = []
    for r in recs:
        reason = r.reason
        if r.related_item is not None and r.related_item in titles:
            # Reasons name items by id inside the model; show their titles.
            reason = reason.replace(
                str(r.related_item), titles[r.related_item] or str(r.related_item)
            )
        items.append(
            {
                "item_id": r.item_id,
                "title": titles.get(r.item_id, ""),
                "reason": reason,
                "score": r.score,
            }
        )
    return items


def batch_next_items(course: Course, learner_ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = NextItems.objects.filter(course=course, learner_id__in=learner_ids).values(
        "learner_id", "items", "scored_at"
    )
    return {r["learner_id"]: dict(r) for r in rows}


def batch_next_items_csv(value: dict[str, Any] | None) -> list[str]:
    if value is None:
        return [""]
    return ["; ".join(i["title"] or str(i["item_id"]) for i in value["items"])]


def learner_panel(learner: Learner, courses: list[Course]) -> list[dict[str, Any]]:
    """Per visible course run: the live top 5, reasons in the reader's language."""
    panel = []
    for course in courses:
        live = live_recommendations(learner=learner, course=course, k=5)
        # Copies: the cached answers are shared by every language and the API.
        items = [{**item, "reason": translate_reason(item["reason"])} for item in live.items]
        panel.append({"course": course, "live": live, "items": items})
    return panel
