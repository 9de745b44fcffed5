"""Factor descriptions: the English stays word for word, and each is a phrase to translate."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from churn.model.explain import Phrase, describe, describe_phrase

# The English texts callers (API, CSV export, stored scores) have always had.
KNOWN = [
    (
        "days_since_last_activity",
        {"days_since_last_activity": 12.0},
        "no activity in the last 12 days",
    ),
    (
        "days_since_last_activity",
        {"days_since_last_activity": 9.0, "never_active": 1.0},
        "no activity at all so far",
    ),
    ("clicks_last_14d", {"clicks_last_14d": 1.0}, "1 click in the last 14 days"),
    ("clicks_last_14d", {"clicks_last_14d": 40.0}, "40 clicks in the last 14 days"),
    ("assessments_missed", {"assessments_missed": 2.0}, "2 assessments missed"),
    ("assessments_missed", {"assessments_missed": 0.0}, "no assessment missed"),
    ("mean_score", {"mean_score": 63.4}, "average assessment score 63/100"),
    (
        "course_base_rate",
        {"course_base_rate": 0.213},
        "in this course run about 21% of learners are expected to leave from now on",
    ),
    (
        "trend_clicks_14d",
        {"trend_clicks_14d": math.log(0.5)},
        "activity in the last 2 weeks down 50% on the earlier rate",
    ),
    ("share_forum", {"share_forum": 0.25}, "25% of activity on forum"),
    (
        "rank_clicks_last_14d",
        {"rank_clicks_last_14d": 0.9},
        "clicks last 14d: higher than 90% of the class",
    ),
    (
        "days_registered_before_start",
        {"days_registered_before_start": -3.0},
        "registered 3 days after the start",
    ),
    ("studied_credits", {"studied_credits": 60.0}, "study load (credits): 60"),
    ("region", {"region": "Wales"}, "region: Wales"),
    ("imd_band", {}, "deprivation band: unknown"),
    ("some_new_feature", {"some_new_feature": 0.123456}, "some new feature: 0.1"),
    # a count stored as a float reads as a count (was "3.0")
    ("tma_submitted", {"tma_submitted": 3.0}, "tutor-marked assignments submitted: 3"),
    # shares as percentages (were "0.9", seen on the demo course page)
    ("active_weeks_fraction", {"active_weeks_fraction": 0.9}, "share of weeks active: 90%"),
    ("elapsed_fraction", {"elapsed_fraction": 0.25}, "share of the course elapsed: 25%"),
]


@pytest.mark.parametrize(("feature", "values", "text"), KNOWN)
def test_english_text_is_unchanged(feature: str, values: dict, text: str) -> None:
    row = pd.Series(values, dtype=object)
    assert describe(feature, row) == text
    assert describe_phrase(feature, row).english() == text


def test_phrases_carry_message_ids_not_sentences() -> None:
    phrase = describe_phrase("clicks_last_14d", pd.Series({"clicks_last_14d": 3.0}))
    assert phrase.msgid == "%(count)d click in the last %(days)s days"
    assert phrase.plural == "%(count)d clicks in the last %(days)s days"
    assert phrase.n == 3 and phrase.params == {"count": 3, "days": "14"}
    # A feature's name is a phrase of its own, so it is translated too.
    score = describe_phrase("mean_score", pd.Series({"mean_score": 70.0}))
    assert score.params["name"] == Phrase("average assessment score", {})


def test_phrase_survives_json_as_batch_scores_store_it() -> None:
    phrase = describe_phrase("mean_score", pd.Series({"mean_score": 70.0}))
    stored = json.loads(json.dumps(phrase.to_json()))
    assert Phrase.from_json(stored) == phrase
    assert Phrase.from_json(stored).english() == "average assessment score 70/100"


def test_a_ranked_factor_is_compared_with_the_class() -> None:
    row = pd.Series({"clicks_last_14d": 12.0, "rank_clicks_last_14d": 0.15})
    assert describe("clicks_last_14d", row) == (
        "12 clicks in the last 14 days; lower than 85% of the class"
    )
    row = pd.Series({"days_since_last_activity": 20.0, "rank_days_since_last_activity": 0.9})
    assert describe("days_since_last_activity", row) == (
        "no activity in the last 20 days; higher than 90% of the class"
    )
    # without the rank (older frames, one-learner runs) the fact alone
    assert describe("clicks_last_14d", pd.Series({"clicks_last_14d": 1.0})) == (
        "1 click in the last 14 days"
    )


def test_no_factor_text_holds_a_model_scale_number(synth_data) -> None:
    """#27 item 2: every feature of real feature rows in words, never "-0.272"."""
    import re

    from churn.model.features import build_dataset

    frame = build_dataset(synth_data, [30, 60]).frame.iloc[::7]
    features = [c for c in frame.columns if not c.startswith("seq_")]
    bare = re.compile(r"\d\.\d{2,}")
    for _, row in frame.iterrows():
        for feature in features:
            text = describe(feature, row)
            assert not bare.search(text), (feature, text)
