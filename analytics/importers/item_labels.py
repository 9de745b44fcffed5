"""Readable titles for OULAD content items, which have none (#27 item 3).

OULAD's vle.csv gives a site id, an activity type code and, for about a sixth of the
items, the week it is planned for. A title names the kind in words and the week:
"Quiz, week 5". Several items of one kind in one week (or without a week) are numbered
in site-id order within their course run: "Course page, week 3, no. 2". Titles are data
(stored, editable in the admin), in English like the rest of the imported data.
"""

from __future__ import annotations

import pandas as pd

# OULAD activity type codes in words; an unknown code is shown as it is
TYPE_WORDS = {
    "dataplus": "Data activity",
    "dualpane": "Two-pane page",
    "externalquiz": "External quiz",
    "folder": "Folder",
    "forumng": "Forum",
    "glossary": "Glossary",
    "homepage": "Course home page",
    "htmlactivity": "Interactive page",
    "oucollaborate": "Online room",
    "oucontent": "Course page",
    "ouelluminate": "Live session",
    "ouwiki": "Wiki",
    "page": "Page",
    "questionnaire": "Questionnaire",
    "quiz": "Quiz",
    "repeatactivity": "Repeated activity",
    "resource": "Resource",
    "sharedsubpage": "Shared subpage",
    "subpage": "Subpage",
    "url": "Web link",
}


def item_titles(vle: pd.DataFrame) -> pd.Series:
    """One title per row of `vle` (columns ``key`` (the run), ``id_site``, ``activity_type``,
    ``week_from``), index kept."""
    kind = vle["activity_type"].astype(str)
    words = kind.map(TYPE_WORDS).fillna(kind)
    week = pd.to_numeric(vle["week_from"], errors="coerce")
    base = words.where(week.isna(), words + ", week " + week.astype("Int64").astype(str))
    group = [vle["key"].astype(str), base]
    order = pd.to_numeric(vle["id_site"], errors="coerce")
    number = order.groupby(group).rank(method="first").astype(int)
    size = order.groupby(group).transform("size")
    return base.where(size == 1, base + ", no. " + number.astype(str))
