"""Reads of the intervention log (#27 item 5): a learner's records, a run's, and the outcomes
of at-risk learners with and without a recorded action."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from django.db.models import OuterRef, Q, Subquery

from analytics.models import Course, DailyActivity, Enrollment, Intervention, Learner

# The outcome is read this many days after the action (or, without one, after today minus it).
OUTCOME_DAYS = 14


def learner_interventions(learner: Learner, course_ids: Sequence[int]) -> list[Intervention]:
    """The learner's records in these runs (the caller passes the runs the viewer may act on)."""
    return list(
        Intervention.objects.filter(learner_id=learner.pk, course_id__in=course_ids)
        .select_related("created_by", "course")
        .order_by("-date", "-id")
    )


def course_action_summary(
    course: Course, learner_ids: Collection[int]
) -> dict[int, tuple[int, str]]:
    """{learner_id: (records, latest kind)} for these learners of the run, in one query."""
    summary: dict[int, tuple[int, str]] = {}
    rows = (
        Intervention.objects.filter(course=course, learner_id__in=learner_ids)
        .order_by("learner_id", "-date", "-id")
        .values_list("learner_id", "kind")
    )
    for learner_id, kind in rows:
        count, latest = summary.get(learner_id, (0, kind))
        summary[learner_id] = (count + 1, latest)
    return summary


@dataclass
class OutcomeGroup:
    """At-risk learners of one side of the comparison, by what happened in the 14 days after."""

    learners: int = 0
    withdrew: int = 0
    active: int = 0
    neither: int = 0


@dataclass
class OutcomeComparison:
    with_action: OutcomeGroup = field(default_factory=OutcomeGroup)
    without_action: OutcomeGroup = field(default_factory=OutcomeGroup)
    # learners flagged at risk (either side, counted or not)
    flagged: int = 0
    # actions taken less than OUTCOME_DAYS ago: no outcome to read yet
    too_recent: int = 0
    # withdrawn before the day the outcome is counted from: nothing left to compare
    already_withdrawn: int = 0


def intervention_outcomes(
    course: Course, today: dt.date, *, flagged_band: str, bands_at_start: Mapping[int, str]
) -> OutcomeComparison:
    """Withdrew / active / neither within OUTCOME_DAYS of each flagged learner's first action,
    or, for learners without one, of `today - OUTCOME_DAYS`; two queries.

    Flagged is the band at the start of that window: for a learner with an action the band
    stored on their first record (`Intervention.risk_band`, their band on its day), for the
    others `bands_at_start` (the caller reads each learner's band on `today -
    OUTCOME_DAYS`). Today's band would mix in the outcome: a learner who stopped after the
    action is high now. "Active" is any activity in the window; "withdrew" an
    unregistration in it. Not a randomized comparison: instructors choose whom to contact.
    """
    result = OutcomeComparison()
    first_actions = Intervention.objects.filter(
        course=course, learner_id=OuterRef("learner_id")
    ).order_by("date", "id")
    flagged_at_start = [lid for lid, band in bands_at_start.items() if band == flagged_band]
    enrolments = list(
        Enrollment.objects.filter(course=course)
        .annotate(
            first_action=Subquery(first_actions.values("date")[:1]),
            first_band=Subquery(first_actions.values("risk_band")[:1]),
        )
        .filter(
            Q(first_action__isnull=False, first_band=flagged_band)
            | Q(first_action__isnull=True, learner_id__in=flagged_at_start)
        )
        .values_list("learner_id", "unregistered_on", "first_action")
    )
    result.flagged = len(enrolments)
    if not enrolments:
        return result
    window = dt.timedelta(days=OUTCOME_DAYS)
    starts: dict[int, tuple[dt.date, bool]] = {}
    for learner_id, unregistered_on, acted_on in enrolments:
        start = acted_on or today - window
        if acted_on is not None and acted_on + window > today:
            result.too_recent += 1
        elif unregistered_on is not None and unregistered_on < start:
            result.already_withdrawn += 1
        else:
            starts[learner_id] = (start, acted_on is not None)
    if not starts:
        return result
    first = min(s for s, _ in starts.values())
    last = max(s for s, _ in starts.values()) + window
    active_days: dict[int, list[dt.date]] = {}
    for learner_id, day in (
        DailyActivity.objects.filter(
            course=course, learner_id__in=list(starts), date__gt=first, date__lte=last
        )
        .values_list("learner_id", "date")
        .distinct()
    ):
        active_days.setdefault(learner_id, []).append(day)
    unregistered = {lid: u for lid, u, _ in enrolments}
    for learner_id, (start, acted) in starts.items():
        group = result.with_action if acted else result.without_action
        group.learners += 1
        gone = unregistered[learner_id]
        if gone is not None and gone <= start + window:
            group.withdrew += 1
        elif any(start < d <= start + window for d in active_days.get(learner_id, ())):
            group.active += 1
        else:
            group.neither += 1
    return result
