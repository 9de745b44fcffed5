"""LearningData.by_course: every run's subset, with each frame split once."""

from __future__ import annotations

import pandas as pd

from eduplatform.ml.data import LearningData
from eduplatform.ml.datasets.oulad import load_oulad
from tests.churn.model.synth import synthetic_learning_data


def test_by_course_equals_subset_courses_for_every_run(tmp_path) -> None:
    data = synthetic_learning_data(tmp_path, n_learners=40)
    split = data.by_course()
    assert sorted(split) == sorted(data.courses["course_id"])
    for course, part in split.items():
        expected = data.subset_courses([course])
        for name in LearningData.frame_names():
            got, want = getattr(part, name), getattr(expected, name)
            assert len(want) > 0 or name == "item_activity", (course, name)
            pd.testing.assert_frame_equal(got, want, check_dtype=True, obj=f"{course}.{name}")


def test_by_course_of_the_shipped_oulad_slice(oulad_slice) -> None:
    data = load_oulad(oulad_slice)
    split = data.by_course()
    assert sum(len(p.activity) for p in split.values()) == len(data.activity)
    assert sum(len(p.submissions) for p in split.values()) == len(data.submissions)
