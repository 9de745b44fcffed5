"""Behaviour segmentation maths (plain pytest, no Django)."""

from __future__ import annotations

import numpy as np
import pytest

from eduplatform.ml.segments import (
    MIN_LEARNERS,
    describe,
    segment_learners,
    standardize,
)

NAMES = ("total_clicks", "active_days", "recency_days", "trend")


def three_groups(seed: int = 0, per_group: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Heavy users, steady users, lapsed users: well separated in every feature."""
    rng = np.random.default_rng(seed)
    centres = np.array(
        [
            [900.0, 80.0, 2.0, 0.5],
            [300.0, 40.0, 20.0, 0.0],
            [60.0, 12.0, 45.0, -0.5],
        ]
    )
    spread = np.array([20.0, 1.5, 1.0, 0.03])
    rows = [c + rng.normal(0, 1, (per_group, 4)) * spread for c in centres]
    truth = np.repeat(np.arange(3), per_group)
    return np.vstack(rows), truth


def test_standardize_imputes_medians_logs_counts_and_zscores() -> None:
    x = np.array([[1.0, np.nan, 5.0], [3.0, 2.0, 5.0], [7.0, 4.0, 5.0]])
    z = standardize(x, ("a", "b", "c"), log_features=("a",))
    assert not np.isnan(z).any()
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    # Constant column: carries no distance, stays exactly 0.
    assert np.all(z[:, 2] == 0)
    # The missing b became the median (3), i.e. the middle value: z = 0.
    assert z[0, 1] == pytest.approx(0.0)
    # log1p applied to a: the order is kept but 7 is pulled towards 3.
    logged = np.log1p([1.0, 3.0, 7.0])
    expected = (logged - logged.mean()) / logged.std()
    np.testing.assert_allclose(z[:, 0], expected)


def test_standardize_all_missing_column_becomes_zero() -> None:
    x = np.array([[np.nan, 1.0], [np.nan, 2.0]])
    z = standardize(x, ("a", "b"))
    assert np.all(z[:, 0] == 0)


def test_standardize_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match="features must be"):
        standardize(np.zeros((3, 2)), ("a", "b", "c"))


def test_recovers_three_separated_groups_and_orders_by_activity() -> None:
    x, truth = three_groups()
    result = segment_learners(x, NAMES, log_features=("total_clicks", "active_days"))
    assert result.k == 3
    # Segments are renumbered by descending total clicks: heavy = 0, lapsed = 2,
    # so with this data they coincide with the generating groups exactly.
    assert np.array_equal(result.labels, truth)
    assert [p.size for p in result.profiles] == [40, 40, 40]
    assert result.profiles[0].means["total_clicks"] > result.profiles[1].means["total_clicks"]
    assert result.profiles[2].means["recency_days"] == pytest.approx(45, abs=1)
    assert result.silhouette is not None and result.silhouette > 0.8
    assert set(result.k_scores) == {2, 3, 4, 5, 6}
    assert max(result.k_scores, key=result.k_scores.get) == 3
    assert result.projection.shape == (120, 2)
    assert sum(result.explained_variance) > 0.8
    assert result.profiles[0].description.startswith("Most active")
    assert result.profiles[2].description.startswith("Least active")


def test_deterministic_for_same_input() -> None:
    x, _ = three_groups(seed=3)
    first = segment_learners(x, NAMES, k=4)
    second = segment_learners(x, NAMES, k=4)
    assert np.array_equal(first.labels, second.labels)
    np.testing.assert_allclose(first.projection, second.projection)


def test_explicit_k_is_used() -> None:
    x, _ = three_groups()
    result = segment_learners(x, NAMES, k=2)
    assert result.k == 2
    assert set(np.unique(result.labels)) == {0, 1}
    assert result.k_scores.keys() == {2}


def test_outcome_rate_per_segment() -> None:
    x, truth = three_groups()
    withdrawn = truth == 2  # every lapsed learner withdrew, nobody else
    result = segment_learners(x, NAMES, outcome=withdrawn)
    rates = [p.outcome_rate for p in result.profiles]
    assert rates == [0.0, 0.0, 1.0]


def test_outcome_length_must_match() -> None:
    x, _ = three_groups()
    with pytest.raises(ValueError, match="outcome"):
        segment_learners(x, NAMES, outcome=np.zeros(3))


def test_missing_values_do_not_break_clustering_and_profiles_ignore_them() -> None:
    x, _ = three_groups()
    x[:5, 2] = np.nan  # never active: recency unknown
    result = segment_learners(x, NAMES, k=3)
    assert not np.isnan(result.projection).any()
    heavy = result.profiles[0]
    # The mean in original units is over learners with a value.
    assert heavy.means["recency_days"] == pytest.approx(np.nanmean(x[:40, 2]))


def test_too_few_learners_gives_one_segment_with_a_note() -> None:
    x = np.array([[1.0, 2.0, 3.0, 0.0]] * (MIN_LEARNERS - 1))
    result = segment_learners(x, NAMES)
    assert result.k == 1
    assert result.silhouette is None
    assert "too few" in result.note
    assert result.profiles[0].size == MIN_LEARNERS - 1
    assert result.profiles[0].description == "All learners"


def test_identical_learners_give_one_segment() -> None:
    x = np.tile([5.0, 1.0, 2.0, 0.0], (20, 1))
    result = segment_learners(x, NAMES)
    assert result.k == 1
    assert "same activity" in result.note
    assert np.all(result.projection == 0)


def test_no_learners() -> None:
    result = segment_learners(np.zeros((0, 4)), NAMES)
    assert result.k == 1
    assert result.profiles == ()
    assert result.labels.shape == (0,)


def test_describe_names_the_two_most_distinctive_features() -> None:
    text = describe(
        {"total_clicks": -1.5, "recency_days": 2.0, "trend": 0.1},
        segment=2,
        k=3,
        labels_for_humans={"recency_days": "days since last activity"},
    )
    assert text == "Least active; high days since last activity, low total_clicks"
    assert describe({"a": 0.1}, segment=1, k=3) == "Segment 2 of 3; close to average"
