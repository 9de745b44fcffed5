"""`churn.features.split_in_time` on hand-made rows: which runs validate, what each side holds.

No database: the function takes the labelled rows and the runs in start order. The
end-to-end guard over seeded runs is tests/churn/test_training_sets.py.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from churn.features import split_in_time
from churn.model.features import ChurnFeatures

AS_OF = dt.date(2026, 6, 1)


def runs(n: int) -> list[SimpleNamespace]:
    """`n` runs in start order (ids not in start order, so the order used is the list's)."""
    start = dt.date(2025, 1, 1)
    return [
        SimpleNamespace(id=100 - i, code=f"R{i}", start_date=start + dt.timedelta(days=30 * i))
        for i in range(n)
    ]


def rows(course_ids: list[int]) -> ChurnFeatures:
    frame = pd.DataFrame(
        {
            "course_id": course_ids,
            "learner_id": range(len(course_ids)),
            "cutoff": 14,
            "clicks": np.arange(len(course_ids), dtype=float),
        }
    )
    return ChurnFeatures(
        frame=frame,
        labels=np.arange(len(course_ids), dtype=float) % 2,
        flat_columns=["clicks"],
        seq_columns=[],
        kinds={},
        n_weeks=0,
    )


@pytest.mark.parametrize(("n_runs", "n_val"), [(2, 1), (4, 1), (7, 1), (8, 2), (12, 3), (13, 3)])
def test_the_latest_starting_quarter_validates(n_runs: int, n_val: int) -> None:
    courses = runs(n_runs)
    features = rows([c.id for c in courses for _ in range(3)])
    sets = split_in_time(features, courses, AS_OF)
    assert sets is not None
    assert sets.val_courses == [c.code for c in courses[-n_val:]]
    assert set(sets.val.frame["course_id"]) == {c.id for c in courses[-n_val:]}
    assert set(sets.train.frame["course_id"]) == {c.id for c in courses[:-n_val]}
    assert len(sets.train) == 3 * (n_runs - n_val) and len(sets.val) == 3 * n_val
    assert sets.window == (courses[0].start_date, AS_OF)


def test_labels_stay_with_their_rows() -> None:
    courses = runs(4)
    features = rows([courses[i % 4].id for i in range(20)])
    sets = split_in_time(features, courses, AS_OF)
    assert sets is not None
    for part in (sets.train, sets.val):
        # learner_id is the row's position in `features`: its label is position % 2
        assert part.labels.tolist() == (part.frame["learner_id"] % 2).astype(float).tolist()
        assert part.flat_columns == ["clicks"]


def test_no_split_when_a_side_would_be_empty() -> None:
    courses = runs(4)
    assert split_in_time(rows([courses[-1].id] * 5), courses, AS_OF) is None
    assert split_in_time(rows([courses[0].id, courses[1].id]), courses, AS_OF) is None
