"""Plain-words descriptions of churn features for instructors.

`describe(feature, row)` turns a feature name and the learner's raw feature row
(``ChurnFeatures.frame`` layout) into a short sentence such as
"no activity in the last 12 days" or "2 assessments missed".

churn.model is Django-free, so it cannot translate. `describe_phrase` returns the
sentence before translation (a `Phrase`: the English message id(s) and the
parameters); `describe` is its English text. The Django side (`churn/factor_texts.py`)
looks the message ids up in the catalogue and fills in the parameters in the
request's language. The ids are written with the markers `_` and `ngettext` below:
they are xgettext's default Python keywords, so the documented `makemessages`
command collects them with no extra option.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Union

import pandas as pd

# A parameter of a phrase: a number, a data value (kept as is) or a nested phrase.
Param = Union[int, float, str, "Phrase"]


class Phrase(NamedTuple):
    """A description before translation.

    `msgid` % `params` is the English text, or `plural` % `params` when `plural`
    is set and `n` is not 1 (English plural rule); translating looks up the
    same `msgid` (and `plural`, with `n`) in the catalogue.
    """

    msgid: str
    params: dict[str, Param]
    plural: str | None = None
    n: int = 0  # the count choosing the plural form (not `count`: a tuple method)

    def english(self) -> str:
        text = self.msgid if self.plural is None or self.n == 1 else self.plural
        return text % {
            k: v.english() if isinstance(v, Phrase) else v for k, v in self.params.items()
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form (batch scores store it beside the English text)."""
        return {
            "msgid": self.msgid,
            "plural": self.plural,
            "n": self.n,
            "params": {
                k: v.to_json() if isinstance(v, Phrase) else v for k, v in self.params.items()
            },
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Phrase:
        params = {
            k: cls.from_json(v) if isinstance(v, dict) else v
            for k, v in (value.get("params") or {}).items()
        }
        return cls(str(value["msgid"]), params, value.get("plural"), int(value.get("n") or 0))


def _(msgid: str, **params: Param) -> Phrase:
    """Marks `msgid` for the catalogue; the phrase is translated on the Django side."""
    return Phrase(msgid, params)


def ngettext(singular: str, plural: str, count: float, **params: Param) -> Phrase:
    """Marks a message with a plural form; `count` (rounded) is also the `count` parameter."""
    n = round(count)
    return Phrase(singular, {"count": n, **params}, plural, n)


HUMAN_NAMES: dict[str, Phrase] = {
    "cutoff_day": _("point in the course"),
    "course_length": _("course length"),
    "elapsed_fraction": _("share of the course elapsed"),
    "days_registered_before_start": _("registration date"),
    "num_of_prev_attempts": _("previous attempts"),
    "studied_credits": _("study load (credits)"),
    "total_clicks": _("total activity"),
    "clicks_before_start": _("activity before the course start"),
    "never_active": _("never active"),
    "first_active_day": _("first activity"),
    "active_day_fraction": _("share of days active"),
    "longest_gap_days": _("longest break"),
    "mean_gap_days": _("typical gap between active days"),
    "weekly_clicks_cv": _("irregular weekly activity"),
    "active_weeks_fraction": _("share of weeks active"),
    "trend_clicks_14d": _("recent activity trend"),
    "trend_active_days_14d": _("recent active-days trend"),
    "assessments_due": _("assessments due so far"),
    "submitted_fraction": _("share of assessments submitted"),
    "missed_weight": _("weight of missed assessments"),
    "mean_score": _("average assessment score"),
    "weighted_score": _("weighted assessment score"),
    "last_score": _("latest assessment score"),
    "min_score": _("lowest assessment score"),
    "mean_days_early": _("submission timing"),
    "days_since_last_submission": _("last submission"),
    "days_since_last_due": _("last deadline"),
    "run_median_clicks": _("activity level of the class"),
    "run_size": _("class size"),
    "course_base_rate": _("expected churn rate of this course run"),
    "run_recent_withdrawal": _("share of the class who left in the last 30 days"),
    "tma_submitted": _("tutor-marked assignments submitted"),
    "cma_submitted": _("computer-marked assessments submitted"),
    "tma_mean_score": _("average tutor-marked assignment score"),
    "banked_submissions": _("results carried over from an earlier attempt"),
    "submitted_latest_due": _("latest assessment"),
    "latest_due_score": _("score in the latest assessment"),
    "clicks_first_14d": _("activity in the first 2 weeks"),
    "active_streak_weeks": _("weeks active in a row"),
    "gender": _("gender"),
    "region": _("region"),
    "highest_education": _("prior education"),
    "imd_band": _("deprivation band"),
    "age_band": _("age band"),
    "disability": _("declared disability"),
    "weekly_activity_recent": _("weekly activity in the last 4 weeks"),
    "weekly_activity_earlier": _("weekly activity pattern before that"),
}


# Features that are shares of something (0..1): shown as percentages
FRACTIONS = frozenset(
    {
        "active_day_fraction",
        "active_weeks_fraction",
        "elapsed_fraction",
        "share_active_weeks",
        "submitted_fraction",
        "run_recent_withdrawal",
    }
)

# Ranked features ("rank_<name>") in words: the English is the name with spaces.
RANK_NAMES: dict[str, Phrase] = {
    "total_clicks": _("total clicks"),
    "clicks_last_14d": _("clicks last 14d"),
    "clicks_last_28d": _("clicks last 28d"),
    "clicks_last_7d": _("clicks last 7d"),
    "active_days": _("active days"),
    "active_days_last_14d": _("active days last 14d"),
    "assessments_submitted": _("assessments submitted"),
    "mean_score": _("mean score"),
    "weighted_score": _("weighted score"),
    "longest_gap_days": _("longest gap days"),
    "mean_days_early": _("mean days early"),
}

# Activity groups ("share_<group>"); activity types ("clicks_type_<type>") are data values.
GROUP_NAMES: dict[str, Phrase] = {
    "content": _("content"),
    "forum": _("forum"),
    "quiz": _("quiz"),
    "homepage": _("homepage"),
    "other": _("other"),
}

SCORE_FEATURES = ("mean_score", "weighted_score", "last_score", "min_score")


def _num(row: pd.Series, name: str) -> float:
    try:
        value = float(row.get(name, float("nan")))
    except (TypeError, ValueError):
        return float("nan")
    return value


def describe(feature: str, row: pd.Series) -> str:
    """The description in English (what `Factor.text` and the API carry)."""
    return describe_phrase(feature, row).english()


def describe_phrase(feature: str, row: pd.Series) -> Phrase:
    """The description before translation, compared with the classmates (same run, same
    day) where the row has the feature's within-run percentile (#27 item 2):
    "12 clicks in the last 14 days; lower than 85% of the class"."""
    fact = _fact(feature, row)
    rank = _num(row, f"rank_{feature}")
    if math.isnan(rank) or feature.startswith("rank_"):
        return fact
    # rank: the share of the class at or below this learner (pandas' average method)
    if rank < 0.5:
        compare = _("lower than %(percent).0f%% of the class", percent=(1 - rank) * 100)
    else:
        compare = _("higher than %(percent).0f%% of the class", percent=rank * 100)
    return _("%(fact)s; %(compare)s", fact=fact, compare=compare)


def _fact(feature: str, row: pd.Series) -> Phrase:
    """The description of the value alone. Long because it is one table of cases, one per
    feature family, each a sentence of its own (split, the order of the tests would hide)."""
    v = _num(row, feature)
    missing = math.isnan(v)
    if feature == "days_since_last_activity":
        if _num(row, "never_active") == 1:
            return _("no activity at all so far")
        if v <= 1:
            return _("active in the last day")
        return _("no activity in the last %(days)d days", days=int(v))
    if feature == "never_active":
        return _("no activity at all so far") if v == 1 else _("has been active")
    if feature.startswith("clicks_last_"):
        days = feature.removeprefix("clicks_last_").removesuffix("d")
        return ngettext(
            "%(count)d click in the last %(days)s days",
            "%(count)d clicks in the last %(days)s days",
            v,
            days=days,
        )
    if feature.startswith("active_days_last_"):
        days = feature.removeprefix("active_days_last_").removesuffix("d")
        return ngettext(
            "active on %(count)d day of the last %(days)s",
            "active on %(count)d days of the last %(days)s",
            v,
            days=days,
        )
    if feature == "active_days":
        return ngettext("active on %(count)d day so far", "active on %(count)d days so far", v)
    if feature == "total_clicks":
        return ngettext("%(count)d click so far", "%(count)d clicks so far", v)
    if feature == "assessments_missed":
        if v == 0:
            return _("no assessment missed")
        return ngettext("%(count)d assessment missed", "%(count)d assessments missed", v)
    if feature == "course_base_rate" and not missing:
        return _(
            "in this course run about %(percent).0f%% of learners are expected to leave "
            "from now on",
            percent=v * 100,
        )
    if feature == "submitted_latest_due" and not missing:
        if v >= 1:
            return _("latest assessment submitted")
        return _("latest assessment not submitted")
    if feature == "active_streak_weeks":
        if v == 0:
            return _("not active in the last week")
        return ngettext("active %(count)d week in a row", "active %(count)d weeks in a row", v)
    if feature == "assessments_submitted":
        return ngettext("%(count)d assessment submitted", "%(count)d assessments submitted", v)
    if feature == "assessments_late":
        if v == 0:
            return _("no late submission")
        return ngettext(
            "%(count)d assessment submitted late", "%(count)d assessments submitted late", v
        )
    if feature in SCORE_FEATURES and not missing:
        return _("%(name)s %(score).0f/100", name=HUMAN_NAMES[feature], score=v)
    if feature in SCORE_FEATURES:
        return _("no assessment score yet")
    if feature == "days_since_last_submission":
        if missing:
            return _("nothing submitted yet")
        return _("last submission %(days)d days ago", days=int(v))
    if feature == "longest_gap_days":
        return ngettext(
            "longest break without activity: %(count)d day",
            "longest break without activity: %(count)d days",
            v,
        )
    if feature == "trend_active_days_14d" and not missing:
        # the share of active days in the last 14 minus the share before (activity.py)
        points = v * 100
        if abs(points) < 5:
            return _("active on about as many days in the last 2 weeks as before")
        if points > 0:
            return _(
                "active on %(points).0f%% more of the days in the last 2 weeks than before",
                points=points,
            )
        return _(
            "active on %(points).0f%% fewer of the days in the last 2 weeks than before",
            points=-points,
        )
    if feature == "trend_clicks_14d" and not missing:
        change = math.expm1(v) * 100
        if abs(change) < 10:
            return _("activity in the last 2 weeks about as before")
        if change > 0:
            return _(
                "activity in the last 2 weeks up %(percent).0f%% on the earlier rate",
                percent=abs(change),
            )
        return _(
            "activity in the last 2 weeks down %(percent).0f%% on the earlier rate",
            percent=abs(change),
        )
    if feature.startswith("clicks_type_"):
        kind = feature.removeprefix("clicks_type_")
        return ngettext(
            "%(count)d click on %(kind)s so far",
            "%(count)d clicks on %(kind)s so far",
            v,
            kind=kind,
        )
    if feature.startswith("share_") and not missing:
        group = feature.removeprefix("share_")
        return _(
            "%(percent).0f%% of activity on %(group)s",
            percent=v * 100,
            group=GROUP_NAMES.get(group, group),
        )
    if feature.startswith("rank_") and not missing:
        ranked = feature.removeprefix("rank_")
        if ranked == "days_since_last_activity":
            return _(
                "longer since last activity than %(percent).0f%% of the class", percent=v * 100
            )
        return _(
            "%(what)s: higher than %(percent).0f%% of the class",
            what=RANK_NAMES.get(ranked, ranked.replace("_", " ")),
            percent=v * 100,
        )
    if feature == "weekly_activity_recent":
        return _("pattern of weekly activity in the last 4 weeks")
    if feature == "weekly_activity_earlier":
        return _("pattern of weekly activity before the last 4 weeks")
    if feature == "days_registered_before_start" and not missing:
        if v < 0:
            return _("registered %(days)d days after the start", days=int(-v))
        return _("registered %(days)d days before the start", days=int(v))
    name = HUMAN_NAMES.get(feature, feature.replace("_", " "))
    raw = row.get(feature) if hasattr(row, "get") else None
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return _("%(name)s: unknown", name=name)
    if isinstance(raw, float):
        # no model-scale numbers (-0.272): shares as percentages, the rest rounded
        if feature in FRACTIONS:
            return _("%(name)s: %(percent).0f%%", name=name, percent=float(raw) * 100)
        value = float(raw)
        # counts come as floats too: "3 tutor-marked assignments", never "3.0"
        if abs(value) >= 10 or value.is_integer():
            return _("%(name)s: %(value).0f", name=name, value=value)
        return _("%(name)s: %(value).1f", name=name, value=value)
    # Categorical values (region, age band, ...) are data: shown as they are.
    return _("%(name)s: %(value)s", name=name, value=str(raw))
