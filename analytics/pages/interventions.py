"""The intervention log on the pages (#27 item 5): the learner page's form and records, the
course page's outcome comparison card and the CSV export's action columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.models import Course, Intervention, Learner
from analytics.pages import panels
from analytics.selectors.interventions import (
    OUTCOME_DAYS,
    course_action_summary,
    intervention_outcomes,
    learner_interventions,
)
from analytics.services import NOTE_MAX_LENGTH
from eduplatform.core import access

# The risk order's band rank of "high" (churn registers the order; analytics never imports it).
HIGH_RISK_RANK = 2.0
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


def outcome_card(user: Any, course: Course, today: dt.date) -> dict[str, Any] | None:
    """At-risk learners with and without a recorded action, by what happened in the next
    OUTCOME_DAYS days; None when no app ranks learners by risk."""
    order = panels.row_orders().get("risk")
    if order is None:
        return None
    try:
        keys = order.keys(course)
    except Exception:  # a failing risk model leaves the card out, as a failing panel does
        panels.logger.exception("risk keys failed for the outcome card")
        return None
    flagged = [lid for lid, (rank, _fine) in keys.items() if rank >= HIGH_RISK_RANK]
    outcome = intervention_outcomes(course, flagged, today)
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
        "flagged": len(flagged),
        "too_recent": outcome.too_recent,
        "already_withdrawn": outcome.already_withdrawn,
        "days": OUTCOME_DAYS,
    }


def action_csv_cells(course: Course, learner_ids: Sequence[int]) -> dict[int, list[Any]]:
    """{learner_id: [records, latest kind]} for a slice of the export (one query)."""
    summary = course_action_summary(course, learner_ids)
    return {lid: [count, kind] for lid, (count, kind) in summary.items()}
