"""Reads of churn predictions: in-request from the loaded model, and batch scores."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.utils.translation import ngettext

from analytics.models import Course, Learner
from churn.factor_texts import factor_text, stored_factor_text
from churn.features import serving_frames
from churn.model.explain import Phrase
from churn.models import RiskHistory, RiskScore
from eduplatform.core import access
from eduplatform.core.caches import BoundedCache
from eduplatform.core.clock import today
from eduplatform.registry.serving import get_served

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveRisk:
    status: str  # "ok" | "no_model" | "not_enrolled"
    model_version: int | None = None
    as_of: dt.date | None = None
    probability: float | None = None
    band: str | None = None
    factors: tuple[str, ...] = ()  # in English: the API's `top_factors`
    # The same before translation, for pages (a text when scored before phrases existed).
    phrases: tuple[Phrase | str, ...] = ()


# Course runs whose scores one web process keeps (one entry per run).
RUN_PREDICTIONS_MAX_RUNS = 256

# learner id -> (probability, band, top factors): all live_risk reads. A factor is kept
# as its phrase so that each page translates it into its reader's language.
RunScores = dict[int, tuple[float, str, tuple[Phrase | str, ...]]]


class RunPredictions:
    """Per-process predictions of a whole course run by the served model.

    Explanations (integrated gradients) cost far less per learner in one
    vectorised pass over the run than one learner at a time, so the first
    request for a run scores all its learners with the loaded model and the
    next ones are lookups, until the model, the day or the TTL changes.

    Misses stay rare and short:
    * a run scored by one process is shared through the cache (Redis) under
      (model version, run, day), so the other web processes read it instead
      of scoring the run again;
    * when only the TTL ran out (same model, same day: the features may have
      gained back-dated events), the previous scores keep being served while
      one background thread of the process rescores the run.
    A new model version or a new day is never answered from older scores.
    """

    def __init__(self) -> None:
        self._runs = BoundedCache(
            "churn.run_predictions",
            maxsize=RUN_PREDICTIONS_MAX_RUNS,
            ttl=lambda: settings.SERVING_FEATURES_TTL,
        )
        self._lock = threading.Lock()
        self._refreshing: set[tuple[int, int, dt.date]] = set()

    def get(self, served: Any, course: Course, as_of: dt.date) -> RunScores:
        key = (course.id, served.version_id, as_of)
        ttl = settings.SERVING_FEATURES_TTL
        hit = self._runs.peek(key)
        if hit is not None and hit[0] < ttl:
            return hit[1]
        if hit is not None and ttl > 0:
            self._refresh_in_background(served, course, as_of, key)
            return hit[1]
        with self._lock:
            hit = self._runs.peek(key)
            if hit is not None and hit[0] < ttl:
                return hit[1]  # scored by another thread meanwhile
            shared = self._shared(key) if ttl > 0 and hit is None else None
            if shared is not None:
                # As old as the process that scored it says: one TTL in all.
                scored_at, scores = shared
                self._keep(key, scores, age=max(0.0, time.time() - scored_at))
                return scores
            scores = self._score(served, course, as_of, key)
            self._keep(key, scores)
            return scores

    def _score(
        self, served: Any, course: Course, as_of: dt.date, key: tuple[int, int, dt.date]
    ) -> RunScores:
        frame = serving_frames.get(course, as_of).reset_index(drop=True)
        predictions = served.model.predict(frame, top_k=3) if len(frame) else []
        scores = {
            int(p.learner_id): (
                float(p.probability),
                str(p.risk_band),
                tuple(getattr(f, "phrase", None) or f.text for f in p.top_factors),
            )
            for p in predictions
        }
        if settings.SERVING_FEATURES_TTL > 0:
            try:
                cache.set(_shared_key(key), (time.time(), scores), settings.SERVING_FEATURES_TTL)
            except Exception:
                logger.warning("churn serving: could not share the scores of a run")
        return scores

    def _shared(self, key: tuple[int, int, dt.date]) -> tuple[float, RunScores] | None:
        try:
            return cache.get(_shared_key(key))
        except Exception:
            return None

    def _keep(self, key: tuple[int, int, dt.date], scores: RunScores, age: float = 0.0) -> None:
        # Keep only the newest entry per run: old days and versions are dead weight.
        self._runs.discard_where(lambda k: k[0] == key[0] and k != key)
        self._runs.put(key, scores, age=age)

    def _refresh_in_background(
        self, served: Any, course: Course, as_of: dt.date, key: tuple[int, int, dt.date]
    ) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                scores = self._score(served, course, as_of, key)
                with self._lock:
                    if key in self._runs:  # not cleared or superseded meanwhile
                        self._keep(key, scores)
            except Exception:
                logger.exception("churn serving: background rescoring failed course=%s", key[0])
            finally:
                with self._lock:
                    self._refreshing.discard(key)
                connection.close()  # this thread's own database connection

        threading.Thread(target=refresh, name="churn-rescore", daemon=True).start()

    def clear(self) -> None:
        self._runs.clear()


def _shared_key(key: tuple[int, int, dt.date]) -> str:
    course_id, version_id, as_of = key
    return f"churn:run-scores:{version_id}:{course_id}:{as_of.isoformat()}"


run_predictions = RunPredictions()


def live_risk(*, learner: Learner, course: Course) -> LiveRisk:
    """The learner's risk now, from the served model over the run's current features."""
    served = get_served("churn")
    if served is None:
        return LiveRisk(status="no_model")
    as_of = today()
    prediction = run_predictions.get(served, course, as_of).get(learner.id)
    if prediction is None:
        return LiveRisk(status="not_enrolled", model_version=served.version, as_of=as_of)
    probability, band, factors = prediction
    return LiveRisk(
        status="ok",
        model_version=served.version,
        as_of=as_of,
        probability=probability,
        band=band,
        factors=tuple(f.english() if isinstance(f, Phrase) else f for f in factors),
        phrases=factors,
    )


def batch_risk(course: Course, learner_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Batch scores of some learners of a run (one query), for tables of many learners."""
    rows = RiskScore.objects.filter(course=course, learner_id__in=learner_ids).values(
        "learner_id", "band", "factors", "scored_at"
    )
    # The course page shows the factors in the reader's language; CSV keeps `text`.
    return {
        r["learner_id"]: {**r, "factor_texts": [stored_factor_text(f) for f in r["factors"]]}
        for r in rows
    }


BAND_RANK = {"low": 0.0, "medium": 1.0, "high": 2.0}


def risk_order(course: Course) -> dict[int, tuple[float, float]]:
    """{learner_id: (band rank, probability)} of the run's batch scores, one query: the
    at-risk table's "risk" order (analytics.pages.panels.register_row_order)."""
    rows = RiskScore.objects.filter(course=course).values_list("learner_id", "band", "probability")
    return {lid: (BAND_RANK.get(band, -1.0), float(p)) for lid, band, p in rows}


def bands_on(course: Course, day: dt.date, learner_ids: Collection[int] | None) -> dict[int, str]:
    """{learner_id: band} of the run on `day`: each learner's latest batch score on or before
    it (RiskHistory), one query; learners not scored by then are absent. Registered with
    analytics.risk_bands: the intervention log's band at the action, the outcome card's."""
    rows = RiskHistory.objects.filter(course=course, as_of__lte=day)
    if learner_ids is not None:
        rows = rows.filter(learner_id__in=list(learner_ids))
    # A correlated subquery, not DISTINCT ON: SQLite (the zero-config default) has none.
    # (learner, course, as_of) is unique, so each learner matches one row.
    last_day = (
        RiskHistory.objects.filter(course=course, learner=OuterRef("learner"), as_of__lte=day)
        .order_by("-as_of")
        .values("as_of")[:1]
    )
    latest = rows.filter(as_of=Subquery(last_day))
    return dict(latest.values_list("learner_id", "band"))


def run_summary(keys: Mapping[int, tuple[float, float]]) -> str:
    """The run's base rate, once above the at-risk table (#27 item 2): the mean calibrated
    probability of its scored learners is the share the model expects to leave."""
    n = len(keys)
    expected = sum(p for _, p in keys.values())
    return ngettext(
        "The model expects about %(leavers)s of the %(n)s scored learner to leave "
        "from now on (%(share)s).",
        "The model expects about %(leavers)s of the %(n)s scored learners to leave "
        "from now on (%(share)s).",
        n,
    ) % {"leavers": round(expected), "n": n, "share": f"{expected / n:.0%}"}


def sees_probabilities(user: Any) -> bool:
    """Only platform admins see the order within a band (instructors and analysts get
    band, then pseudonym: #27 item 1)."""
    return access.role_of(user) == access.ADMIN


def batch_risk_csv(value: dict[str, Any] | None) -> list[str]:
    if value is None:
        return ["", ""]
    return [value["band"], "; ".join(f["text"] for f in value["factors"])]


def learner_panel(learner: Learner, courses: list[Course]) -> list[dict[str, Any]]:
    """Per visible course run: the live risk and the history of batch scores."""
    history: dict[int, list[RiskHistory]] = {}
    for point in RiskHistory.objects.filter(learner=learner, course__in=courses).order_by("as_of"):
        history.setdefault(point.course_id, []).append(point)
    panel = []
    for course in courses:
        live = live_risk(learner=learner, course=course)
        panel.append(
            {
                "course": course,
                "live": live,
                # In the reader's language (the API keeps live.factors in English).
                "factors": [factor_text(f) for f in live.phrases],
                "history": history.get(course.id, [])[-12:],
            }
        )
    return panel
