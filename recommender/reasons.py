"""Recommendation reasons in the reader's language.

recommender/model/ (Django-free, and rewritten on its own schedule) words each
reason in English: a fixed sentence, or a fixed sentence around an item's title or
an activity type. Pages translate them here by recognising those sentences, so the
model package needs no change; a reason this table does not know is shown as it is
(English). The JSON API keeps the English reason (docs/i18n.md: data for tools).
"""

from __future__ import annotations

from django.utils.translation import gettext, gettext_lazy

# The model's fixed reasons (recommender/model/predictor.py), word for word.
FIXED = {
    "new this week for your course": gettext_lazy("new this week for your course"),
    "most used by your cohort this week": gettext_lazy("most used by your cohort this week"),
    "used by your cohort this week": gettext_lazy("used by your cohort this week"),
    "used by your cohort earlier in the course": gettext_lazy(
        "used by your cohort earlier in the course"
    ),
}

# Reasons around a value: "usually follows <item title>" (the selectors put the title in
# place of the model's item id) and "not opened yet by your cohort (<activity type>)".
FOLLOWS_PREFIX = "usually follows "
NOT_OPENED_PREFIX = "not opened yet by your cohort ("


def translate_reason(reason: str) -> str:
    """`reason` in the active language; unknown reasons unchanged."""
    fixed = FIXED.get(reason)
    if fixed is not None:
        return str(fixed)
    if reason.startswith(FOLLOWS_PREFIX) and len(reason) > len(FOLLOWS_PREFIX):
        # The item's title is a data value: kept as it is.
        return gettext("usually follows %(item)s") % {"item": reason[len(FOLLOWS_PREFIX) :]}
    if reason.startswith(NOT_OPENED_PREFIX) and reason.endswith(")"):
        kind = reason[len(NOT_OPENED_PREFIX) : -1]
        return gettext("not opened yet by your cohort (%(kind)s)") % {"kind": kind}
    return reason
