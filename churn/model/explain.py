"""Plain-words descriptions of churn features for instructors.

`describe(feature, row)` turns a feature name and the learner's raw feature row
(``ChurnFeatures.frame`` layout) into a short sentence such as
"no activity in the last 12 days" or "2 assessments missed".
"""

from __future__ import annotations

import math

import pandas as pd

HUMAN_NAMES: dict[str, str] = {
    "cutoff_day": "point in the course",
    "course_length": "course length",
    "elapsed_fraction": "share of the course elapsed",
    "days_registered_before_start": "registration date",
    "num_of_prev_attempts": "previous attempts",
    "studied_credits": "study load (credits)",
    "total_clicks": "total activity",
    "clicks_before_start": "activity before the course start",
    "never_active": "never active",
    "first_active_day": "first activity",
    "active_day_fraction": "share of days active",
    "longest_gap_days": "longest break",
    "mean_gap_days": "typical gap between active days",
    "weekly_clicks_cv": "irregular weekly activity",
    "active_weeks_fraction": "share of weeks active",
    "trend_clicks_14d": "recent activity trend",
    "trend_active_days_14d": "recent active-days trend",
    "assessments_due": "assessments due so far",
    "submitted_fraction": "share of assessments submitted",
    "missed_weight": "weight of missed assessments",
    "mean_score": "average assessment score",
    "weighted_score": "weighted assessment score",
    "last_score": "latest assessment score",
    "min_score": "lowest assessment score",
    "mean_days_early": "submission timing",
    "days_since_last_submission": "last submission",
    "days_since_last_due": "last deadline",
    "run_median_clicks": "activity level of the class",
    "run_size": "class size",
    "course_base_rate": "expected churn rate of this course run",
    "run_recent_withdrawal": "share of the class who left in the last 30 days",
    "tma_submitted": "tutor-marked assignments submitted",
    "cma_submitted": "computer-marked assessments submitted",
    "tma_mean_score": "average tutor-marked assignment score",
    "banked_submissions": "results carried over from an earlier attempt",
    "submitted_latest_due": "latest assessment",
    "latest_due_score": "score in the latest assessment",
    "clicks_first_14d": "activity in the first 2 weeks",
    "active_streak_weeks": "weeks active in a row",
    "gender": "gender",
    "region": "region",
    "highest_education": "prior education",
    "imd_band": "deprivation band",
    "age_band": "age band",
    "disability": "declared disability",
    "weekly_activity_recent": "weekly activity in the last 4 weeks",
    "weekly_activity_earlier": "weekly activity pattern before that",
}


def _num(row: pd.Series, name: str) -> float:
    try:
        value = float(row.get(name, float("nan")))
    except (TypeError, ValueError):
        return float("nan")
    return value


def _plural(n: float, word: str) -> str:
    n_int = round(n)
    return f"{n_int} {word}{'' if n_int == 1 else 's'}"


def describe(feature: str, row: pd.Series) -> str:
    v = _num(row, feature)
    missing = math.isnan(v)
    if feature == "days_since_last_activity":
        if _num(row, "never_active") == 1:
            return "no activity at all so far"
        if v <= 1:
            return "active in the last day"
        return f"no activity in the last {int(v)} days"
    if feature == "never_active":
        return "no activity at all so far" if v == 1 else "has been active"
    if feature.startswith("clicks_last_"):
        days = feature.removeprefix("clicks_last_").removesuffix("d")
        return f"{_plural(v, 'click')} in the last {days} days"
    if feature.startswith("active_days_last_"):
        days = feature.removeprefix("active_days_last_").removesuffix("d")
        return f"active on {_plural(v, 'day')} of the last {days}"
    if feature == "active_days":
        return f"active on {_plural(v, 'day')} so far"
    if feature == "total_clicks":
        return f"{_plural(v, 'click')} so far"
    if feature == "assessments_missed":
        return "no assessment missed" if v == 0 else f"{_plural(v, 'assessment')} missed"
    if feature == "course_base_rate" and not missing:
        return (
            f"in this course run about {v * 100:.0f}% of learners are expected to leave from now on"
        )
    if feature == "submitted_latest_due" and not missing:
        return "latest assessment submitted" if v >= 1 else "latest assessment not submitted"
    if feature == "active_streak_weeks":
        if v == 0:
            return "not active in the last week"
        return f"active {_plural(v, 'week')} in a row"
    if feature == "assessments_submitted":
        return f"{_plural(v, 'assessment')} submitted"
    if feature == "assessments_late":
        return "no late submission" if v == 0 else f"{_plural(v, 'assessment')} submitted late"
    if feature in ("mean_score", "weighted_score", "last_score", "min_score") and not missing:
        return f"{HUMAN_NAMES[feature]} {v:.0f}/100"
    if feature in ("mean_score", "weighted_score", "last_score", "min_score"):
        return "no assessment score yet"
    if feature == "days_since_last_submission":
        return "nothing submitted yet" if missing else f"last submission {int(v)} days ago"
    if feature == "longest_gap_days":
        return f"longest break without activity: {_plural(v, 'day')}"
    if feature == "trend_clicks_14d" and not missing:
        change = math.expm1(v) * 100
        if abs(change) < 10:
            return "activity in the last 2 weeks about as before"
        word = "up" if change > 0 else "down"
        return f"activity in the last 2 weeks {word} {abs(change):.0f}% on the earlier rate"
    if feature.startswith("clicks_type_"):
        kind = feature.removeprefix("clicks_type_")
        return f"{_plural(v, 'click')} on {kind} so far"
    if feature.startswith("share_") and not missing:
        return f"{v * 100:.0f}% of activity on {feature.removeprefix('share_')}"
    if feature.startswith("rank_") and not missing:
        what = feature.removeprefix("rank_").replace("_", " ")
        if what == "days since last activity":
            return f"longer since last activity than {v * 100:.0f}% of the class"
        return f"{what}: higher than {v * 100:.0f}% of the class"
    if feature == "weekly_activity_recent":
        return "pattern of weekly activity in the last 4 weeks"
    if feature == "weekly_activity_earlier":
        return "pattern of weekly activity before the last 4 weeks"
    if feature == "days_registered_before_start" and not missing:
        if v < 0:
            return f"registered {int(-v)} days after the start"
        return f"registered {int(v)} days before the start"
    name = HUMAN_NAMES.get(feature, feature.replace("_", " "))
    raw = row.get(feature) if hasattr(row, "get") else None
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return f"{name}: unknown"
    if isinstance(raw, float):
        return f"{name}: {raw:.3g}"
    return f"{name}: {raw}"
