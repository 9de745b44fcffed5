"""The canonical learner-behaviour frames both models read.

The same `LearningData` is produced from an OULAD-format folder (`oulad.load_oulad`,
used by offline evaluation and benchmarks) and from the database rollups (the
apps' `features.py`, one SQL read per frame), so features are computed by one
code path whatever the source.

Days are integers relative to the course run's start (day 0 = start; negative =
before it), as in OULAD. Keys (`course_id`, `learner_id`, `item_id`,
`assessment_id`) are opaque hashables: strings like "AAA_2013J" from OULAD,
integer primary keys from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

COURSE_COLUMNS = ["course_id", "module", "presentation", "length_days"]
ENROLMENT_COLUMNS = [
    "course_id",
    "learner_id",
    "registered_day",  # float: NaN when unknown
    "unregistered_day",  # float: NaN = did not withdraw
    "final_result",  # "Pass" | "Distinction" | "Fail" | "Withdrawn" | "" (in progress)
    "gender",
    "region",
    "highest_education",
    "imd_band",
    "age_band",
    "disability",
    "num_of_prev_attempts",
    "studied_credits",
]
# One row per learner x course x day x activity type: the daily rollup.
ACTIVITY_COLUMNS = ["course_id", "learner_id", "day", "activity_type", "clicks"]
# One row per learner x item x day (OULAD studentVle granularity, summed).
ITEM_ACTIVITY_COLUMNS = ["course_id", "learner_id", "item_id", "day", "clicks"]
ITEM_COLUMNS = ["course_id", "item_id", "activity_type", "week_from", "week_to"]
ASSESSMENT_COLUMNS = ["course_id", "assessment_id", "kind", "due_day", "weight"]
SUBMISSION_COLUMNS = ["assessment_id", "learner_id", "submitted_day", "score", "is_banked"]


@dataclass
class LearningData:
    courses: pd.DataFrame
    enrolments: pd.DataFrame
    activity: pd.DataFrame
    item_activity: pd.DataFrame
    items: pd.DataFrame
    assessments: pd.DataFrame
    submissions: pd.DataFrame

    @staticmethod
    def frame_names() -> list[str]:
        """The names of the seven frames, in field order."""
        return [f.name for f in fields(LearningData)]

    def validate(self) -> None:
        """Raise ValueError naming the first frame that lacks a canonical column."""
        for name, columns in (
            ("courses", COURSE_COLUMNS),
            ("enrolments", ENROLMENT_COLUMNS),
            ("activity", ACTIVITY_COLUMNS),
            ("item_activity", ITEM_ACTIVITY_COLUMNS),
            ("items", ITEM_COLUMNS),
            ("assessments", ASSESSMENT_COLUMNS),
            ("submissions", SUBMISSION_COLUMNS),
        ):
            frame = getattr(self, name)
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ValueError(f"{name} frame lacks columns {missing}")

    def by_course(self) -> dict[Any, LearningData]:
        """Every course run's `subset_courses([run])`, each frame split once.

        1. Group each course-keyed frame by its `course_id` (one pass per frame).
        2. Submissions carry no course: map their assessment to its run first.
        3. Assemble one LearningData per run of `courses`; missing parts are empty.
        Filtering all frames once per run costs runs x rows; this costs rows.
        """
        course_of_assessment = dict(
            zip(self.assessments["assessment_id"], self.assessments["course_id"], strict=True)
        )
        submission_course = self.submissions["assessment_id"].map(course_of_assessment)
        parts: dict[str, dict[Any, pd.DataFrame]] = {}
        for name in ("courses", "enrolments", "activity", "item_activity", "items", "assessments"):
            frame = getattr(self, name)
            parts[name] = _split(frame, frame["course_id"])
        parts["submissions"] = _split(self.submissions, submission_course)
        return {
            course: LearningData(
                **{
                    name: split.get(course, getattr(self, name).iloc[:0]).reset_index(drop=True)
                    for name, split in parts.items()
                }
            )
            for course in self.courses["course_id"]
        }

    def subset_courses(self, course_ids: list[str]) -> LearningData:
        """The same data restricted to some course runs."""
        keep = set(course_ids)
        assessments = self.assessments[self.assessments["course_id"].isin(keep)]
        return LearningData(
            courses=self.courses[self.courses["course_id"].isin(keep)].reset_index(drop=True),
            enrolments=self.enrolments[self.enrolments["course_id"].isin(keep)].reset_index(
                drop=True
            ),
            activity=self.activity[self.activity["course_id"].isin(keep)].reset_index(drop=True),
            item_activity=self.item_activity[
                self.item_activity["course_id"].isin(keep)
            ].reset_index(drop=True),
            items=self.items[self.items["course_id"].isin(keep)].reset_index(drop=True),
            assessments=assessments.reset_index(drop=True),
            submissions=self.submissions[
                self.submissions["assessment_id"].isin(set(assessments["assessment_id"]))
            ].reset_index(drop=True),
        )


def _split(frame: pd.DataFrame, keys: pd.Series) -> dict[Any, pd.DataFrame]:
    """`frame`'s rows per key, in their original order (rows with a missing key dropped)."""
    if frame.empty:
        return {}
    return {key: part for key, part in frame.groupby(keys.to_numpy(), sort=False)}
