"""The data-quality page: missing values and outliers per feature, event volume per source."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _

from analytics.models import Course, EventSource
from analytics.pages.common import DAY, anchor_day
from analytics.pages.features import feature_columns, feature_label, learner_features
from analytics.selectors.activity import (
    event_volume_by_source,
    last_activity_date,
    last_import_by_source,
)
from analytics.selectors.statements import unplaced_by_iri
from eduplatform.core import access
from eduplatform.core.charts import chart_card, chart_specs, data_table, pct

QUALITY_WINDOW_DAYS = 30


def feature_quality(frame: pd.DataFrame, names: Sequence[str]) -> list[dict[str, Any]]:
    """Missing values and IQR outliers per feature.

    Outlier: below Q1 - 1.5 IQR or above Q3 + 1.5 IQR of the non-missing
    values. A stop-gap until the ML preprocessing report (QualityReport of the
    fitted Preprocessor) is wired in; it uses the same rows.
    """
    out = []
    for name in names:
        values = frame[name].to_numpy(dtype=float)
        present = values[~np.isnan(values)]
        n = len(values)
        row: dict[str, Any] = {
            "feature": name,
            "label": feature_label(name),
            "rows": n,
            "learners": len(present),
            "missing": n - len(present),
            "missing_pct": pct(n - len(present), n),
            "outliers": 0,
            "outlier_pct": None,
            "low": None,
            "high": None,
            "min": None,
            "median": None,
            "max": None,
        }
        if len(present):
            q1, median, q3 = np.percentile(present, [25, 50, 75])
            spread = q3 - q1
            low, high = q1 - 1.5 * spread, q3 + 1.5 * spread
            outliers = int(((present < low) | (present > high)).sum())
            row.update(
                outliers=outliers,
                outlier_pct=pct(outliers, len(present)),
                low=round(float(low), 3),
                high=round(float(high), 3),
                min=round(float(present.min()), 3),
                median=round(float(median), 3),
                max=round(float(present.max()), 3),
            )
        out.append(row)
    return out


def data_quality_page(user: Any, courses: Sequence[Course], now: dt.datetime) -> dict[str, Any]:
    ids = [c.pk for c in courses]
    today = now.date()
    last = last_activity_date(ids, until=today)
    anchor = anchor_day(last, today)
    frame = learner_features(ids, anchor=anchor) if ids else pd.DataFrame()
    names = feature_columns(frame) if len(frame) else []
    quality = access.suppress_small_groups(
        user,
        feature_quality(frame, names),
        value_keys=(
            "missing",
            "missing_pct",
            "outliers",
            "outlier_pct",
            "low",
            "high",
            "min",
            "median",
            "max",
        ),
    )
    # Whole days: today and the 29 before, from midnight (UTC), so the first
    # day of the chart is not a partial one.
    first_day = today - (QUALITY_WINDOW_DAYS - 1) * DAY
    since = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.UTC)
    volume = event_volume_by_source(ids, since=since) if ids else []
    imports = last_import_by_source(ids) if ids else {}
    sources = _source_rows(volume, imports)
    charts = [_quality_chart(quality), _volume_chart(volume, first_day, today)]
    return {
        "anchor": anchor,
        "learners": len(frame),
        "quality": quality,
        "sources": sources,
        "charts": charts,
        "chart_data": chart_specs(charts),
        "window_days": QUALITY_WINDOW_DAYS,
        # Held xAPI statements belong to no run yet: platform-wide, for platform readers.
        "unplaced": (
            unplaced_by_iri() if access.role_of(user) in (access.ADMIN, access.ANALYST) else None
        ),
    }


def _source_rows(
    volume: list[dict[str, Any]], imports: Mapping[str, dt.datetime]
) -> list[dict[str, Any]]:
    rows = []
    for source, label in EventSource.choices:
        own = [r for r in volume if r["source"] == source]
        seen = [r["last_ingested"] for r in own if r["last_ingested"]]
        if source in imports:
            seen.append(imports[source])
        rows.append(
            {
                "source": source,
                "label": label,
                "events": sum(r["events"] for r in own),
                "days": len(own),
                "last_ingested": max(seen) if seen else None,
            }
        )
    return rows


def _quality_chart(quality: list[dict[str, Any]]) -> dict[str, Any]:
    return chart_card(
        "quality-features",
        _("Missing and outlier share per feature"),
        _(
            "Percentage of learners with a missing value, and of present values outside the "
            "1.5 IQR fences, per learner feature."
        ),
        kind="bar",
        labels=[q["label"] for q in quality],
        datasets=[
            {"label": _("Missing %"), "data": [q["missing_pct"] for q in quality]},
            {"label": _("Outliers %"), "data": [q["outlier_pct"] for q in quality]},
        ],
        table=data_table(
            _("Missing values and outliers per feature"),
            (_("Feature"), _("Missing %"), _("Outliers %")),
            ([q["label"], q["missing_pct"], q["outlier_pct"]] for q in quality),
        ),
        empty=not quality,
        empty_text=_("No learners yet."),
        indexAxis="y",
        xPercent=True,
    )


def _volume_chart(volume: list[dict[str, Any]], first: dt.date, last: dt.date) -> dict[str, Any]:
    days = [first + i * DAY for i in range((last - first).days + 1)]
    sources = sorted({r["source"] for r in volume})
    cells = {(r["source"], r["day"]): r["events"] for r in volume}
    labels = dict(EventSource.choices)
    datasets = [
        {"label": labels.get(s, s), "data": [cells.get((s, d), 0) for d in days]} for s in sources
    ]
    return chart_card(
        "quality-volume",
        _("Event volume per source per day"),
        _("Events per day and source over the last %(days)d days.") % {"days": QUALITY_WINDOW_DAYS},
        kind="line",
        labels=[d.isoformat() for d in days],
        datasets=datasets,
        table=data_table(
            _("Events per source per day, last %(days)d days") % {"days": QUALITY_WINDOW_DAYS},
            (_("Date"), *(labels.get(s, s) for s in sources)),
            ([d.isoformat(), *(cells.get((s, d), 0) for s in sources)] for d in days),
        ),
        empty=not volume,
        empty_text=_("No events in the last %(days)d days.") % {"days": QUALITY_WINDOW_DAYS},
        yTitle=_("Events"),
    )
