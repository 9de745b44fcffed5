"""Learner activity features (pandas) for the segments and data-quality pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from analytics.selectors.activity import learner_feature_rows

BASE_FEATURES = ("total_clicks", "active_days", "recency_days", "trend")
FEATURE_LABELS = {
    "total_clicks": _("total clicks"),
    "active_days": _("active days"),
    "recency_days": _("days since last activity"),
    "trend": _("trend (last 14 days vs the 14 before)"),
}
COUNT_FEATURES = ("total_clicks", "active_days")
MAX_TYPE_SHARES = 6


def feature_label(name: str) -> str:
    if name.startswith("share_"):
        return gettext("share of %(type)s") % {"type": name.removeprefix("share_")}
    return str(FEATURE_LABELS.get(name, name))


def learner_features(course_ids: Sequence[int], *, anchor: dt.date) -> pd.DataFrame:
    """One row per enrolment: activity features as of ``anchor`` from the rollup.

    total_clicks, active_days: 0 for a learner never active.
    recency_days: days from the last active day to ``anchor``; NaN (unknown) if never active.
    trend: (last 14 days - the 14 before) / their sum, in [-1, 1]; NaN if both are 0.
    share_<type>: share of the learner's clicks on the most clicked activity types
        (at most MAX_TYPE_SHARES; the rest is share_other); NaN if no clicks.
    withdrawn: the outcome shown per segment (not a feature).
    """
    enrolments, totals, by_type = learner_feature_rows(course_ids, anchor=anchor)
    frame = pd.DataFrame(enrolments, columns=["course_id", "learner_id", "withdrawn"])
    key = ["course_id", "learner_id"]
    agg = pd.DataFrame(
        totals,
        columns=[*key, "total_clicks", "active_days", "last_active", "recent", "prior"],
    )
    frame = frame.merge(agg, on=key, how="left")
    frame["total_clicks"] = frame["total_clicks"].fillna(0).astype(float)
    frame["active_days"] = frame["active_days"].fillna(0).astype(float)
    frame["recency_days"] = [
        (anchor - d).days if isinstance(d, dt.date) else np.nan for d in frame["last_active"]
    ]
    frame["recency_days"] = frame["recency_days"].astype(float)
    recent = frame["recent"].fillna(0).astype(float)
    prior = frame["prior"].fillna(0).astype(float)
    both = recent + prior
    frame["trend"] = np.where(both > 0, (recent - prior) / both.where(both > 0, 1), np.nan)

    types = pd.DataFrame(by_type, columns=[*key, "activity_type", "type_clicks"])
    share_cols: list[str] = []
    if len(types):
        ranked = types.groupby("activity_type")["type_clicks"].sum().sort_values(ascending=False)
        keep = list(ranked.index[:MAX_TYPE_SHARES])
        types["group"] = types["activity_type"].where(types["activity_type"].isin(keep), "other")
        wide = types.pivot_table(
            index=key, columns="group", values="type_clicks", aggfunc="sum", fill_value=0
        )
        order = keep + (["other"] if "other" in wide.columns else [])
        wide = wide[order]
        wide.columns = [f"share_{c}" for c in wide.columns]
        share_cols = list(wide.columns)
        frame = frame.merge(wide.reset_index(), on=key, how="left")
        clicks = frame["total_clicks"].where(frame["total_clicks"] > 0)
        for col in share_cols:
            frame[col] = frame[col].fillna(0).astype(float) / clicks
    columns = [*key, "withdrawn", *BASE_FEATURES, *share_cols]
    return frame[columns]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c in BASE_FEATURES or c.startswith("share_")]
