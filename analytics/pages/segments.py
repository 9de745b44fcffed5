"""The behaviour segments page: k-means over the learner features, cached, and its PCA chart."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.utils.translation import gettext as _

from analytics.models import Course
from analytics.pages.common import anchor_day
from analytics.pages.features import (
    COUNT_FEATURES,
    feature_columns,
    feature_label,
    learner_features,
)
from analytics.selectors.activity import last_activity_date
from eduplatform.core import access
from eduplatform.core.charts import chart_card, chart_specs, data_table

if TYPE_CHECKING:
    from eduplatform.ml.segments import Segmentation

MAX_SCATTER_POINTS = 2000
SEGMENT_CACHE_SECONDS = 600


def segments_page(user: Any, course: Course, today: dt.date, k: int | None) -> dict[str, Any]:
    last = last_activity_date([course.pk], until=today)
    anchor = anchor_day(last, today)
    frame = learner_features([course.pk], anchor=anchor)
    names = feature_columns(frame)
    context: dict[str, Any] = {
        "course": course,
        "anchor": anchor,
        "k": k,
        "k_choices": list(range(2, 7)),
        "learners": len(frame),
        "feature_labels": [feature_label(n) for n in names],
        "charts": [],
        "chart_data": {},
        "profiles": [],
        "segmentation": None,
    }
    if not len(frame) or last is None:
        return context
    result = _cached_segmentation(frame[names].to_numpy(dtype=float), names, k, frame)
    withdrawn_counts = [
        int(frame["withdrawn"].to_numpy()[result.labels == p.segment].sum())
        for p in result.profiles
    ]
    profiles = access.suppress_small_groups(
        user,
        (
            {
                "segment": p.segment,
                "name": _("Segment %(number)d") % {"number": p.segment + 1},
                "description": _describe(p.z_means, p.segment, result.k),
                "learners": p.size,
                "share": round(100 * p.share, 1),
                "withdrawn": w,
                "withdrawal_rate": None
                if p.outcome_rate is None
                else round(100 * p.outcome_rate, 1),
                "means": [_round_feature(n, p.means[n]) for n in names],
            }
            for p, w in zip(result.profiles, withdrawn_counts, strict=True)
        ),
        value_keys=("share", "withdrawn", "withdrawal_rate", "means", "description"),
    )
    chart = _scatter_chart(result, profiles)
    context.update(
        segmentation=result,
        note=_note(result.note),
        profiles=profiles,
        charts=[chart],
        chart_data=chart_specs([chart]),
        explained=[round(100 * r, 1) for r in result.explained_variance],
        silhouette=None if result.silhouette is None else round(result.silhouette, 2),
        k_scores={kk: round(v, 2) for kk, v in sorted(result.k_scores.items())},
    )
    return context


def _note(note: str) -> str:
    """eduplatform.ml.segments' reason for a degenerate result, in the request's language."""
    few = re.fullmatch(r"too few learners to segment \((\d+) < (\d+)\)", note)
    if few:
        return _("too few learners to segment (%(count)s < %(minimum)s)") % {
            "count": few[1],
            "minimum": few[2],
        }
    known = {
        "every learner has the same activity profile": _(
            "every learner has the same activity profile"
        ),
        "no k separated": _("no number of segments separated the learners"),
    }
    return known.get(note, note)


def _describe(z_means: dict[str, float], segment: int, k: int, threshold: float = 0.5) -> str:
    """eduplatform.ml.segments.describe in the request's language (the kit is Django-free).

    E.g. "Most active; high active days, low days since last activity".
    """
    if k <= 1:
        head = _("All learners")
    elif segment == 0:
        head = _("Most active")
    elif segment == k - 1:
        head = _("Least active")
    else:
        head = _("Segment %(number)d of %(k)d") % {"number": segment + 1, "k": k}
    notable = sorted(
        ((name, v) for name, v in z_means.items() if abs(v) >= threshold),
        key=lambda item: -abs(item[1]),
    )[:2]
    if not notable:
        return head if k <= 1 else _("%(head)s; close to average") % {"head": head}
    traits = _(", ").join(
        (_("high %(feature)s") if v > 0 else _("low %(feature)s")) % {"feature": feature_label(n)}
        for n, v in notable
    )
    return _("%(head)s; %(traits)s") % {"head": head, "traits": traits}


def _round_feature(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if name.startswith("share_"):
        return round(100 * value, 1)  # shown as a percentage
    return round(value, 2 if name == "trend" else 1)


def _cached_segmentation(
    matrix: np.ndarray, names: list[str], k: int | None, frame: pd.DataFrame
) -> Segmentation:
    """k-means is the slow part of the page; same features, same k: same result.

    The key hashes the feature matrix itself, so new activity (a different
    matrix) misses the cache instead of serving stale segments.
    """
    outcome = frame["withdrawn"].to_numpy(dtype=bool)
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(matrix).tobytes())
    digest.update(outcome.tobytes())
    digest.update(repr((names, k)).encode())
    key = f"analytics:segments:{digest.hexdigest()}"
    try:
        result = cache.get(key)
    except Exception:
        result = None  # the shared cache is down: segment here (the page still answers)
    if result is None:
        # Imported here: scikit-learn adds seconds to process start-up, and
        # only this page needs it.
        from eduplatform.ml.segments import segment_learners

        result = segment_learners(
            matrix,
            names,
            k=k,
            log_features=COUNT_FEATURES,
            order_by="total_clicks",
            outcome=outcome,
            labels_for_humans={n: feature_label(n) for n in names},
        )
        # The shared cache is down: nothing shared this time, the next request segments again.
        with contextlib.suppress(Exception):
            cache.set(key, result, SEGMENT_CACHE_SECONDS)
    return result


def _scatter_chart(result: Segmentation, profiles: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(result.labels)
    index = np.arange(n)
    if n > MAX_SCATTER_POINTS:
        # A fixed sample keeps the page light and the picture stable between loads.
        index = np.sort(np.random.default_rng(0).choice(n, MAX_SCATTER_POINTS, replace=False))
    datasets = []
    for p in profiles:
        if p["suppressed"]:
            continue  # analysts: a segment of 1-4 learners is not drawn either
        members = index[result.labels[index] == p["segment"]]
        datasets.append(
            {
                "label": _("%(segment)s (%(learners)s learners)")
                % {"segment": p["name"], "learners": p["learners"]},
                "colorIndex": p["segment"],
                "data": [
                    {
                        "x": round(float(result.projection[i, 0]), 3),
                        "y": round(float(result.projection[i, 1]), 3),
                    }
                    for i in members
                ],
            }
        )
    explained = result.explained_variance
    return chart_card(
        "segments-pca",
        _("Segments in two dimensions (PCA)"),
        _(
            "Each point is a learner, placed by the two principal components of the standardized "
            "activity features and coloured by segment; %(shown)d of %(total)d learners shown. "
            "The profile table below gives the same segments in numbers."
        )
        % {"shown": len(index), "total": n},
        kind="scatter",
        labels=[],
        datasets=datasets,
        table=data_table(
            _("Learners per segment"),
            (_("Segment"), _("Learners"), _("Description")),
            ([p["name"], p["learners"], p["description"]] for p in profiles),
        ),
        empty=n == 0,
        empty_text=_("No learners to segment yet."),
        xTitle=_("PC1 (%(share).0f%% of variance)") % {"share": 100 * explained[0]},
        yTitle=_("PC2 (%(share).0f%% of variance)") % {"share": 100 * explained[1]},
    )
