"""Demo-only writes (`make demo`): a few recorded actions, so the course page's outcome card
has something to compare (#27).

The demo is seeded and scored in one go, so it has no history of bands and no actions.
`demo_actions_record` scores the runs once as of `DEMO_ACTION_DAYS_AGO` days ago, records
an action on every other learner flagged high then (through `intervention_record`, which
stores that band), and scores them again as of today: the card then compares learners who
were high three weeks ago, with and without an action, by what happened since.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.test.utils import override_settings

from analytics.models import Course, Enrollment, Intervention
from analytics.risk_bands import band_history
from analytics.services import intervention_record
from eduplatform.core.clock import today

DEMO_ACTION_DAYS_AGO = 21
DEMO_ACTIONS_PER_RUN = 6
DEMO_NOTE = "Demo record: made up by demo_setup."


def demo_actions_record(*, user: Any) -> int:
    """Record up to DEMO_ACTIONS_PER_RUN actions per run by `user`; the number recorded.

    Needs a served churn model (none: nothing scored, nothing recorded); runs that have
    records already are left alone. Deterministic: learners in pseudonym order, kinds in
    turn."""
    # Imported on use: the registry's services load the ML artifact code.
    from eduplatform.registry.services import batch_scores_refresh

    history = band_history()
    if history is None:
        return 0
    now = today()
    past = now - dt.timedelta(days=DEMO_ACTION_DAYS_AGO)
    courses = list(Course.objects.filter(start_date__lt=past).order_by("code"))
    ids = [c.pk for c in courses]
    # The platform's "today" moved back for one scoring pass: RiskHistory gets a point
    # on `past` (AS_OF_DATE is the setting eduplatform.core.clock reads).
    with override_settings(AS_OF_DATE=past.isoformat()):
        if not batch_scores_refresh(kind="churn", course_ids=ids):
            return 0
    kinds = list(Intervention.Kind.values)
    recorded = 0
    for course in courses:
        if Intervention.objects.filter(course=course).exists():
            continue  # run again: the demo's records (or real ones) are there already
        bands = history.bands_on(course, past, None)
        flagged = [lid for lid, band in bands.items() if band == history.flagged]
        candidates = (
            Enrollment.objects.filter(course=course, learner_id__in=flagged)
            .exclude(unregistered_on__lte=past)
            .select_related("learner")
            .order_by("learner__pseudonym")
        )
        # every other one: the card needs flagged learners without an action too
        for n, enrollment in enumerate(list(candidates)[::2][:DEMO_ACTIONS_PER_RUN]):
            intervention_record(
                user=user,
                course=course,
                learner=enrollment.learner,
                kind=kinds[n % len(kinds)],
                date=past + dt.timedelta(days=n % 3),
                note=DEMO_NOTE,
            )
            recorded += 1
    batch_scores_refresh(kind="churn", course_ids=ids)
    return recorded
