"""Top factors in the reader's language on pages; English in the API and stored text.

churn.model describes a factor as a phrase (churn/model/explain.py); churn/factor_texts.py
translates it with the catalogue. These tests fail if a page shows the English text, if a
phrase the model can produce has no catalogue entry, or if English readers see other words
than the model's English.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from django.template.loader import render_to_string
from django.utils import timezone, translation

from churn import selectors
from churn.factor_texts import factor_text, stored_factor_text, translate
from churn.model.explain import GROUP_NAMES, HUMAN_NAMES, Phrase, describe_phrase
from churn.model.features import RANKED
from churn.models import RiskScore
from tests.eduplatform.test_i18n import read_po
from tests.factories import CourseFactory, LearnerFactory

PO = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"

# Every family of feature names the model explains, at values that reach each sentence.
FEATURES = [
    *HUMAN_NAMES,
    *(f"rank_{name}" for name in [*RANKED, "unknown_ranked"]),
    *(f"share_{group}" for group in [*GROUP_NAMES, "unknown_group"]),
    "days_since_last_activity",
    "clicks_last_7d",
    "clicks_last_14d",
    "active_days_last_28d",
    "active_days",
    "assessments_missed",
    "assessments_submitted",
    "assessments_late",
    "active_streak_weeks",
    "clicks_type_forumng",
    "a_feature_of_a_newer_model",
]
VALUES = [float("nan"), 0.0, 1.0, 2.0, -3.0, 0.5, 1.5, 12.0, 0.03]


# Within-run percentiles reaching every comparison with the classmates (#27 item 2)
RANKS = [0.003, 0.2, 0.5, 0.8, 0.999]


def all_phrases() -> list[Phrase]:
    phrases = []
    for feature, value, never in itertools.product(FEATURES, VALUES, (0.0, 1.0)):
        row = pd.Series({feature: value, "never_active": never} | {"region": "Wales"})
        try:
            phrases.append(describe_phrase(feature, row))
        except ValueError:
            continue  # a count of NaN: the features never hold one
    for feature, rank in itertools.product(RANKED, RANKS):
        row = pd.Series({feature: 3.0, f"rank_{feature}": rank, "assessments_submitted": 4.0})
        phrases.append(describe_phrase(feature, row))
    phrases.append(
        describe_phrase(
            "assessments_late", pd.Series({"assessments_late": 1.0, "assessments_submitted": 3.0})
        )
    )
    return phrases


def message_ids(phrase: Phrase) -> set[str]:
    ids = {phrase.msgid} | ({phrase.plural} if phrase.plural else set())
    for value in phrase.params.values():
        if isinstance(value, Phrase):
            ids |= message_ids(value)
    return ids


def test_every_phrase_the_model_can_say_is_in_the_catalogue() -> None:
    translated = {e.msgid for e in read_po(PO) if e.msgid and all(e.msgstr.values())}
    translated |= {e.msgid_plural for e in read_po(PO) if e.msgid_plural}
    needed = set().union(*(message_ids(p) for p in all_phrases()))
    assert len(needed) > 90
    assert needed - translated == set()


def test_english_readers_get_the_models_english_word_for_word() -> None:
    with translation.override("en-gb"):
        for phrase in all_phrases():
            assert translate(phrase) == phrase.english()


@pytest.mark.parametrize(
    ("feature", "value", "chinese"),
    [
        ("days_since_last_activity", 12.0, "最近12天没有活动"),
        ("clicks_last_14d", 40.0, "最近14天点击40次"),
        ("mean_score", 63.4, "测评平均分 63/100"),
        ("share_forum", 0.25, "25%的活动在论坛上"),
    ],
)
def test_factor_in_chinese(feature: str, value: float, chinese: str) -> None:
    phrase = describe_phrase(feature, pd.Series({feature: value}))
    with translation.override("zh-hans"):
        assert translate(phrase) == chinese
        assert factor_text(phrase) == chinese
        assert factor_text("scored before phrases existed") == "scored before phrases existed"


@pytest.mark.django_db
def test_learner_page_factors_in_chinese_api_in_english(monkeypatch) -> None:
    course, learner = CourseFactory(), LearnerFactory()
    phrase = describe_phrase("assessments_missed", pd.Series({"assessments_missed": 2.0}))
    monkeypatch.setattr(selectors, "get_served", lambda kind: SimpleNamespace(version=4))
    scores = {learner.id: (0.6, "high", (phrase, "scored before phrases existed"))}
    monkeypatch.setattr(selectors.run_predictions, "get", lambda served, c, as_of: scores)
    with translation.override("zh-hans"):
        risk = selectors.live_risk(learner=learner, course=course)
        # The API's top_factors: English whatever the request's language.
        assert risk.factors == ("2 assessments missed", "scored before phrases existed")
        panel = selectors.learner_panel(learner, [course])
        html = render_to_string("churn/_learner_risk.html", {"panel": panel})
    assert "<li>缺交2次测评</li>" in html and "assessments missed" not in html
    assert "<li>scored before phrases existed</li>" in html


@pytest.mark.django_db
def test_course_page_risk_column_in_chinese_csv_in_english() -> None:
    course, learner = CourseFactory(), LearnerFactory()
    phrase = describe_phrase("days_since_last_activity", pd.Series({"days_since_last_activity": 9}))
    RiskScore.objects.create(
        course=course,
        learner=learner,
        model_version=1,
        as_of=dt.date(2026, 11, 1),
        scored_at=timezone.now(),
        probability=0.7,
        band="high",
        factors=[
            {"feature": "days_since_last_activity", "text": phrase.english(), "contribution": 0.4,
             "phrase": phrase.to_json()},
            {"feature": "total_clicks", "text": "3 clicks so far", "contribution": 0.1},
        ],
    )  # fmt: skip
    with translation.override("zh-hans"):
        panel = selectors.batch_risk(course, [learner.id])[learner.id]
        html = render_to_string("churn/_course_risk_columns.html", {"panel": panel})
    # A row stored before phrases keeps its English text.
    assert "最近9天没有活动; 3 clicks so far" in html
    assert selectors.batch_risk_csv(panel) == [
        "high",
        "no activity in the last 9 days; 3 clicks so far",
    ]
    assert stored_factor_text({"text": "x", "phrase": {"garbage": 1}}) == "x"
