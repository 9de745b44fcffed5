import math

import numpy as np
import pandas as pd
import pytest

from recommender.model.interactions import interaction_weights, pair_table


def _clicks(rows):
    return pd.DataFrame(rows, columns=["course_id", "learner_id", "item_id", "day", "clicks"])


def test_weight_sums_log_clicks_decayed_by_age():
    frame = _clicks(
        [
            ("C", 1, 10, 0, 3),  # age 14 at day 14 -> half weight
            ("C", 1, 10, 13, 1),  # age 1
            ("C", 1, 11, 7, 7),  # age 7
        ]
    )
    out = interaction_weights(frame, now_day=14, half_life_days=14).set_index("item_id")
    expected_10 = math.log1p(3) * 0.5 + math.log1p(1) * 0.5 ** (1 / 14)
    assert out.loc[10, "weight"] == pytest.approx(expected_10)
    assert out.loc[11, "weight"] == pytest.approx(math.log1p(7) * 0.5 ** (7 / 14))
    assert out.loc[10, "clicks"] == 4
    assert (out.loc[10, "first_day"], out.loc[10, "last_day"], out.loc[10, "days"]) == (0, 13, 2)


def test_clicks_on_or_after_now_are_ignored():
    frame = _clicks([("C", 1, 10, 5, 2), ("C", 1, 10, 9, 50), ("C", 2, 10, 9, 1)])
    out = interaction_weights(frame, now_day=9)
    assert list(out["learner_id"]) == [1]
    assert out["clicks"].iloc[0] == 2


def test_recent_visit_outweighs_old_binge_with_short_half_life():
    frame = _clicks([("C", 1, 10, 0, 100), ("C", 1, 11, 29, 2)])
    out = interaction_weights(frame, now_day=30, half_life_days=3).set_index("item_id")
    assert out.loc[11, "weight"] > out.loc[10, "weight"]
    # a long half-life lets the clicks dominate instead
    out_long = interaction_weights(frame, now_day=30, half_life_days=1000).set_index("item_id")
    assert out_long.loc[10, "weight"] > out_long.loc[11, "weight"]


def test_pair_table_matches_frame_version_and_rescales():
    rng = np.random.default_rng(0)
    n = 200
    frame = _clicks(
        {
            "course_id": ["C"] * n,
            "learner_id": rng.integers(0, 5, n),
            "item_id": rng.integers(0, 7, n),
            "day": rng.integers(-5, 40, n),
            "clicks": rng.integers(1, 9, n),
        }
    ).drop_duplicates(["learner_id", "item_id", "day"])
    ref = interaction_weights(frame, now_day=30, half_life_days=10)
    pt = pair_table(
        frame["learner_id"].to_numpy(),
        frame["item_id"].to_numpy(),
        frame["day"].to_numpy(),
        frame["clicks"].to_numpy(),
        n_items=7,
        now_day=30,
        half_life_days=10,
    )
    assert np.array_equal(pt.learner, ref["learner_id"].to_numpy())
    assert np.array_equal(pt.item, ref["item_id"].to_numpy())
    assert np.allclose(pt.weight, ref["weight"].to_numpy())
    later = pt.rescaled(40, half_life_days=10)
    assert np.allclose(later.weight, pt.weight * 0.5)
