"""Shared churn-feature plumbing: activity groups and channels, and the per-call
prepared arrays (enrolment row numbers, days, clicks) every feature family reads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eduplatform.ml.data import LearningData

# OULAD activity types, grouped for the weekly sequence. Unknown types (from the
# platform, or new ones) fall into "other".
ACTIVITY_GROUPS: dict[str, str] = {
    "oucontent": "content",
    "resource": "content",
    "url": "content",
    "page": "content",
    "subpage": "content",
    "dualpane": "content",
    "folder": "content",
    "glossary": "content",
    "htmlactivity": "content",
    "sharedsubpage": "content",
    "dataplus": "content",
    "forumng": "forum",
    "ouwiki": "forum",
    "oucollaborate": "forum",
    "ouelluminate": "forum",
    "quiz": "quiz",
    "externalquiz": "quiz",
    "questionnaire": "quiz",
    "repeatactivity": "quiz",
    "homepage": "homepage",
}
KNOWN_TYPES: list[str] = [
    "homepage",
    "forumng",
    "subpage",
    "oucontent",
    "resource",
    "url",
    "quiz",
    "ouwiki",
    "externalquiz",
    "page",
    "oucollaborate",
    "ouelluminate",
    "glossary",
    "questionnaire",
    "dualpane",
    "folder",
    "dataplus",
]
GROUPS: list[str] = ["content", "forum", "quiz", "homepage", "other"]
SEQ_CHANNELS: list[str] = [*GROUPS, "active_days", "submitted", "due", "observed"]
DEMOGRAPHIC_CATEGORICALS = [
    "gender",
    "region",
    "highest_education",
    "imd_band",
    "age_band",
    "disability",
]
# How far before the course start activity is looked at (OULAD has clicks from day -25).
PRE_START_DAYS = 28
DEFAULT_WEEKS = 24
KEY_COLUMNS = ["course_id", "learner_id", "cutoff", "module"]

# Feature kinds, used by the preprocessor (see eduplatform.ml.preprocess):
# "count" -> missing is 0, log1p, clipped high; "rate" -> train median + missing
# indicator; "categorical" -> one-hot with a "missing" level.
COUNT, RATE, CATEGORICAL = "count", "rate", "categorical"


class Prepared:
    """Rows of all frames mapped once to enrolment row numbers (reused per cut-off)."""

    def __init__(self, data: LearningData):
        enrol = data.enrolments.drop_duplicates(["course_id", "learner_id"]).reset_index(drop=True)
        self.enrol = enrol
        self.n = len(enrol)
        courses = data.courses.drop_duplicates("course_id").set_index("course_id")
        length = pd.to_numeric(courses["length_days"], errors="coerce")
        self.course_length = (
            enrol["course_id"].map(length).astype(float).to_numpy()
        )  # NaN when unknown
        module = courses["module"] if "module" in courses.columns else pd.Series(dtype=object)
        self.module = enrol["course_id"].map(module).astype(object).to_numpy()
        self.course_codes, self.course_index = np.unique(
            enrol["course_id"].astype(str).to_numpy(), return_inverse=True
        )
        # (course, learner) -> enrolment row through one integer key (see _rows).
        self._courses = pd.Index(self.course_codes)
        self._learners = pd.Index(pd.unique(enrol["learner_id"]))
        self._key = pd.Index(self._codes(enrol["course_id"], enrol["learner_id"]))

        act = data.activity
        erow = self._rows(act["course_id"], act["learner_id"])
        ok = erow >= 0
        self.a_row = erow[ok]
        self.a_day = pd.to_numeric(act["day"]).to_numpy(np.int64)[ok]
        self.a_clicks = pd.to_numeric(act["clicks"]).to_numpy(np.float64)[ok]
        # Activity types mapped once per distinct value (a missing type is "other";
        # unknown types get the extra index len(KNOWN_TYPES)).
        type_index = {t: i for i, t in enumerate(KNOWN_TYPES)}
        codes, names = pd.factorize(act["activity_type"])
        of_name = np.array(
            [type_index.get(str(n), len(KNOWN_TYPES)) for n in names]
            + [type_index.get("other", len(KNOWN_TYPES))],  # code -1: missing
            dtype=np.int64,
        )
        self.a_type = of_name[codes][ok]
        group_of_type = np.array(
            [GROUPS.index(ACTIVITY_GROUPS.get(t, "other")) for t in KNOWN_TYPES]
            + [GROUPS.index("other")]
        )
        self.a_group = group_of_type[self.a_type]
        # daily totals (one row per enrolment row x day), sorted by row then day
        daily = (
            pd.DataFrame({"row": self.a_row, "day": self.a_day, "clicks": self.a_clicks})
            .groupby(["row", "day"], sort=True, as_index=False)["clicks"]
            .sum()
        )
        self.d_row = daily["row"].to_numpy(np.int64)
        self.d_day = daily["day"].to_numpy(np.int64)

        ass = data.assessments.copy()
        ass["due_day"] = pd.to_numeric(ass["due_day"], errors="coerce")
        ass["weight"] = pd.to_numeric(ass["weight"], errors="coerce").fillna(0.0)
        ass["course_id"] = ass["course_id"].astype(str)
        if "kind" not in ass.columns:
            ass["kind"] = None
        self.assessments = ass
        sub = data.submissions.merge(
            ass[["assessment_id", "course_id", "due_day", "weight", "kind"]],
            on="assessment_id",
            how="inner",
        )
        srow = self._rows(sub["course_id"], sub["learner_id"])
        ok = srow >= 0
        self.s_row = srow[ok]
        self.s_sub = pd.to_numeric(sub["submitted_day"], errors="coerce").to_numpy(float)[ok]
        self.s_due = sub["due_day"].to_numpy(float)[ok]
        self.s_weight = sub["weight"].to_numpy(float)[ok]
        self.s_score = pd.to_numeric(sub["score"], errors="coerce").to_numpy(float)[ok]
        self.s_ass = sub["assessment_id"].to_numpy()[ok]
        kind = sub["kind"].astype(object).where(sub["kind"].notna(), "")
        self.s_tma = kind.astype(str).str.upper().eq("TMA").to_numpy()[ok]
        banked = sub["is_banked"] if "is_banked" in sub.columns else pd.Series(0, index=sub.index)
        self.s_banked = pd.to_numeric(banked, errors="coerce").fillna(0).to_numpy(float)[ok]

    def _codes(self, course_ids: pd.Series, learner_ids: pd.Series) -> np.ndarray:
        """(course, learner) pairs as one int64 each; -1 where either is unknown.

        Course ids compare as strings (frames may hold them as ints or strings),
        cast once per distinct value rather than once per row.
        """
        codes, uniques = pd.factorize(course_ids)
        course_of_unique = np.append(self._courses.get_indexer(pd.Index(uniques).astype(str)), -1)
        course = course_of_unique[codes]  # code -1 (missing id) reads the appended -1
        learner = self._learners.get_indexer(learner_ids)
        key = course.astype(np.int64) * len(self._learners) + learner
        return np.where((course >= 0) & (learner >= 0), key, -1)

    def _rows(self, course_ids: pd.Series, learner_ids: pd.Series) -> np.ndarray:
        return np.asarray(self._key.get_indexer(self._codes(course_ids, learner_ids)), np.int64)


def bincount(rows: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    return np.bincount(rows, weights=weights, minlength=n).astype(float)
