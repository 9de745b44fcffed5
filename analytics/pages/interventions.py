"""The intervention log on the pages (#27 item 5): the learner page's form and records, the
course page's outcome comparison card and the CSV export's action columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.models import Course, Intervention, Learner
from analytics.risk_bands import band_history
from analytics.selectors.interventions import (
    OUTCOME_DAYS,
    OutcomeComparison,
    course_action_summary,
    intervention_outcomes,
    learner_interventions,
)
from analytics.services import NOTE_MAX_LENGTH
from eduplatform.core import access

CSV_COLUMNS = ("actions", "latest_action")


class InterventionForm(forms.Form):
    course = forms.TypedChoiceField(label=gettext_lazy("Course run"), coerce=int)
    kind = forms.ChoiceField(label=gettext_lazy("Action"), choices=Intervention.Kind.choices)
    date = forms.DateField(
        label=gettext_lazy("Date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, courses: Sequence[Course], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["course"].choices = [(c.pk, c.code) for c in courses]  # type: ignore[attr-defined]


def learner_actions(user: Any, learner: Learner, courses: Sequence[Course], today: dt.date):
    """The learner page's part: a form and the records, for the runs the viewer may act on
    (admins and the runs' instructors; the page's runs are already the instructor's own)."""
    if access.role_of(user) not in (access.ADMIN, access.INSTRUCTOR) or not courses:
        return None
    form = InterventionForm(courses=courses, initial={"date": today})
    records = learner_interventions(learner, [c.pk for c in courses])
    return {"form": form, "records": records}


def outcome_card(
    user: Any, course: Course, today: dt.date, scores: Mapping[int, Any] | None
) -> dict[str, Any] | None:
    """At-risk learners with and without a recorded action, by what happened in the next
    OUTCOME_DAYS days; None when no app scores learners.

    `scores`: the run's current risk keys (`panels.order_keys("risk")`), which the page
    reads once for its table and this card; None (no risk order, or its read failed)
    leaves the card out; empty means the run was never scored, so nobody was flagged and
    the card reads nothing more. Flagged means at risk at the start of each
    learner's window (`intervention_outcomes`): the band stored with the first action, or
    the band on `today - OUTCOME_DAYS` (one query) for learners without one."""
    history = band_history()
    if history is None or scores is None:
        return None
    outcome = OutcomeComparison()
    if scores:
        start = today - dt.timedelta(days=OUTCOME_DAYS)
        outcome = intervention_outcomes(
            course,
            today,
            flagged_band=history.flagged,
            bands_at_start=history.bands_on(course, start, None),
        )
    rows = access.suppress_small_groups(
        user,
        [
            {"label": _("With a recorded action"), **vars(outcome.with_action)},
            {"label": _("Without an action"), **vars(outcome.without_action)},
        ],
        size_key="learners",
        value_keys=("withdrew", "active", "neither"),
    )
    return {
        "rows": rows,
        "flagged": outcome.flagged,
        "too_recent": outcome.too_recent,
        "already_withdrawn": outcome.already_withdrawn,
        "days": OUTCOME_DAYS,
    }


def action_csv_cells(course: Course, learner_ids: Sequence[int]) -> dict[int, list[Any]]:
    """{learner_id: [records, latest kind]} for a slice of the export (one query)."""
    summary = course_action_summary(course, learner_ids)
    return {lid: [count, kind] for lid, (count, kind) in summary.items()}
