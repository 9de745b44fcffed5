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

# Ranked features ("rank_<name>") in words, spelled out (was "clicks last 14d").
RANK_NAMES: dict[str, Phrase] = {
    "total_clicks": _("clicks so far"),
    "clicks_last_14d": _("clicks in the last 14 days"),
    "clicks_last_28d": _("clicks in the last 28 days"),
    "clicks_last_7d": _("clicks in the last 7 days"),
    "active_days": _("active days so far"),
    "active_days_last_14d": _("active days in the last 14 days"),
    "assessments_submitted": _("assessments submitted"),
    "mean_score": _("average assessment score"),
    "weighted_score": _("weighted assessment score"),
    "longest_gap_days": _("longest break without activity"),
    "mean_days_early": _("submission timing"),
}

# How a ranked feature compares with the class: (below most, above most, among the
# lowest, among the highest). Counts are "fewer/more", a break "shorter/longer", timing
# "later/earlier"; anything else "lower/higher".
_COUNT = (
    _("fewer than %(percent)d%% of classmates"),
    _("more than %(percent)d%% of classmates"),
    _("among the lowest in the class"),
    _("among the highest in the class"),
)
_LEVEL = (
    _("lower than %(percent)d%% of classmates"),
    _("higher than %(percent)d%% of classmates"),
    _("among the lowest in the class"),
    _("among the highest in the class"),
)
COMPARISONS: dict[str, tuple[Phrase, Phrase, Phrase, Phrase]] = {
    "total_clicks": _COUNT,
    "clicks_last_7d": _COUNT,
    "clicks_last_14d": _COUNT,
    "clicks_last_28d": _COUNT,
    "active_days": _COUNT,
    "active_days_last_14d": _COUNT,
    "assessments_submitted": _COUNT,
    "longest_gap_days": (
        _("shorter than for %(percent)d%% of classmates"),
        _("longer than for %(percent)d%% of classmates"),
        _("among the shortest in the class"),
        _("among the longest in the class"),
    ),
    "mean_days_early": (
        _("later than %(percent)d%% of classmates"),
        _("earlier than %(percent)d%% of classmates"),
        _("among the latest in the class"),
        _("among the earliest in the class"),
    ),
}
# Within this many percentiles of the median a learner reads as "close to the class median"
MIDDLE = 0.1
# From this share on a learner reads as "among the lowest/highest" (ranks are averages
# over ties, so "the lowest" alone could be wrong; "100% of the class" read badly)
EXTREME = 0.95

# OULAD activity types ("clicks_type_<type>") in words; other types are data values.
TYPE_NAMES: dict[str, Phrase] = {
    "homepage": _("the course home page"),
    "forumng": _("the forum"),
    "subpage": _("course subpages"),
    "oucontent": _("course content pages"),
    "resource": _("resources"),
    "url": _("links"),
    "quiz": _("quizzes"),
    "ouwiki": _("the wiki"),
    "externalquiz": _("external quizzes"),
    "page": _("pages"),
    "oucollaborate": _("online sessions"),
    "ouelluminate": _("online classroom sessions"),
    "glossary": _("the glossary"),
    "questionnaire": _("questionnaires"),
    "dualpane": _("two-pane pages"),
    "folder": _("folders"),
    "dataplus": _("data activities"),
    "other": _("other activities"),
}

# Activity groups ("share_<group>").
GROUP_NAMES: dict[str, Phrase] = {
    "content": _("content"),
    "forum": _("forum"),
    "quiz": _("quiz"),
    "homepage": _("homepage"),
    "other": _("other"),
}

SCORE_FEATURES = (
    "mean_score",
    "weighted_score",
    "last_score",
    "min_score",
    "tma_mean_score",
    "latest_due_score",
)


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
    "12 clicks in the last 14 days; fewer than 85% of classmates"."""
    fact = _fact(feature, row)
    rank = _num(row, f"rank_{feature}")
    if math.isnan(rank) or feature.startswith("rank_"):
        return fact
    return _("%(fact)s; %(compare)s", fact=fact, compare=compare(feature, rank))


def compare(feature: str, rank: float) -> Phrase:
    """Where a learner with within-run percentile `rank` (the share of the class at or
    below them, pandas' average method) stands among the classmates, in whole percents:
    "fewer than 85% of classmates", "among the lowest in the class", "close to the class
    median"; for the days since the last activity "85% of classmates were active more
    recently"."""
    if feature == "days_since_last_activity":
        if rank >= EXTREME:
            return _("among the longest inactive in the class")
        if rank <= 1 - EXTREME:
            return _("among the most recently active in the class")
        if rank >= 0.5 + MIDDLE:
            return _(
                "%(percent)d%% of classmates were active more recently", percent=round(rank * 100)
            )
        if rank <= 0.5 - MIDDLE:
            return _(
                "active more recently than %(percent)d%% of classmates",
                percent=round((1 - rank) * 100),
            )
        return _("close to the class median")
    below, above, lowest, highest = COMPARISONS.get(feature, _LEVEL)
    if rank <= 1 - EXTREME:
        return lowest
    if rank >= EXTREME:
        return highest
    if rank <= 0.5 - MIDDLE:
        return below._replace(params={"percent": round((1 - rank) * 100)})
    if rank >= 0.5 + MIDDLE:
        return above._replace(params={"percent": round(rank * 100)})
    return _("close to the class median")


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
        submitted = _num(row, "assessments_submitted")
        if not math.isnan(submitted) and submitted >= v:
            return ngettext(
                "%(late)d of %(count)d assessment submitted late",
                "%(late)d of %(count)d assessments submitted late",
                submitted,
                late=round(v),
            )
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
        return ngettext(
            "last submission %(count)d day ago", "last submission %(count)d days ago", v
        )
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
            kind=TYPE_NAMES.get(kind, kind),
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
            return compare(ranked, v)
        return _(
            "%(what)s: %(compare)s",
            what=RANK_NAMES.get(ranked, ranked.replace("_", " ")),
            compare=compare(ranked, v),
        )
    if feature == "weekly_activity_recent":
        return _("pattern of weekly activity in the last 4 weeks")
    if feature == "weekly_activity_earlier":
        return _("pattern of weekly activity before the last 4 weeks")
    if feature == "days_registered_before_start" and not missing:
        if v < 0:
            return _("registered %(days)d days after the start", days=int(-v))
        return _("registered %(days)d days before the start", days=int(v))
    if not missing:
        special = _measure(feature, v)
        if special is not None:
            return special
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


# Counts with their unit, spelled out (were "name: 3"); the count is filled in per use
COUNTS: dict[str, Phrase] = {
    "course_length": ngettext("course length: %(count)d day", "course length: %(count)d days", 0),
    "studied_credits": ngettext("study load: %(count)d credit", "study load: %(count)d credits", 0),
    "clicks_before_start": ngettext(
        "%(count)d click before the course start", "%(count)d clicks before the course start", 0
    ),
    "assessments_due": ngettext(
        "%(count)d assessment due so far", "%(count)d assessments due so far", 0
    ),
    "tma_submitted": ngettext(
        "%(count)d tutor-marked assignment submitted",
        "%(count)d tutor-marked assignments submitted",
        0,
    ),
    "cma_submitted": ngettext(
        "%(count)d computer-marked assessment submitted",
        "%(count)d computer-marked assessments submitted",
        0,
    ),
    "banked_submissions": ngettext(
        "%(count)d result carried over from an earlier attempt",
        "%(count)d results carried over from an earlier attempt",
        0,
    ),
    "clicks_first_14d": ngettext(
        "%(count)d click in the first 2 weeks", "%(count)d clicks in the first 2 weeks", 0
    ),
    "run_size": ngettext("%(count)d learner in the class", "%(count)d learners in the class", 0),
    "mean_gap_days": ngettext(
        "typically %(count)d day between active days",
        "typically %(count)d days between active days",
        0,
    ),
    "days_since_last_due": ngettext(
        "last deadline %(count)d day ago", "last deadline %(count)d days ago", 0
    ),
}
# Shares (0..1) in a sentence of their own, in whole percents (were "share of ...: 90%")
SHARES: dict[str, Phrase] = {
    "active_day_fraction": _("active on %(percent)d%% of the days so far"),
    "active_weeks_fraction": _("active in %(percent)d%% of the weeks so far"),
    "elapsed_fraction": _("%(percent)d%% of the course elapsed"),
    "submitted_fraction": _("%(percent)d%% of the assessments due submitted"),
    "run_recent_withdrawal": _("%(percent)d%% of the class left in the last 30 days"),
    "missed_weight": _("missed assessments worth %(percent)d%% of the marks"),
}


def _measure(feature: str, v: float) -> Phrase | None:
    """A known value with its unit (days, credits, percents, ...), None for the rest."""
    if feature in COUNTS:
        n = round(v)
        return COUNTS[feature]._replace(params={"count": n}, n=n)
    if feature == "missed_weight" and v == 0:
        return _("no marks missed")
    if feature in SHARES:
        # missed_weight is in weight points (a course's assessments add up to 100)
        share = v if feature == "missed_weight" else v * 100
        return SHARES[feature]._replace(params={"percent": round(share)})
    if feature == "num_of_prev_attempts":
        if v == 0:
            return _("first attempt at this course")
        return ngettext(
            "%(count)d earlier attempt at this course",
            "%(count)d earlier attempts at this course",
            v,
        )
    if feature == "first_active_day":
        if v < 0:
            return ngettext(
                "first active %(count)d day before the start",
                "first active %(count)d days before the start",
                -v,
            )
        return _("first active on day %(day)d of the course", day=round(v))
    if feature == "cutoff_day":
        return _("day %(day)d of the course", day=round(v))
    if feature == "weekly_clicks_cv":
        # coefficient of variation of weekly clicks: a week-to-week spread as large as the
        # mean (1) is very irregular
        if v < 0.5:
            return _("steady weekly activity")
        if v < 1:
            return _("somewhat irregular weekly activity")
        return _("very irregular weekly activity")
    if feature == "mean_days_early":
        if v >= 0.5:
            return ngettext(
                "submits %(count)d day before the deadline on average",
                "submits %(count)d days before the deadline on average",
                v,
            )
        if v <= -0.5:
            return ngettext(
                "submits %(count)d day after the deadline on average",
                "submits %(count)d days after the deadline on average",
                -v,
            )
        return _("submits on the deadline day on average")
    if feature == "run_median_clicks":
        # stored as log(1 + clicks)
        return ngettext(
            "class median: %(count)d click so far",
            "class median: %(count)d clicks so far",
            math.expm1(v),
        )
    return None
