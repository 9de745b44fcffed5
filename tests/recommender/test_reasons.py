"""Recommendation reasons in the reader's language on pages, English in the API.

recommender/model/ words its reasons in English (and is rewritten on its own schedule);
recommender/reasons.py recognises them. A scan of the model package's source fails this
file when the model gains a reason the table does not know.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from recommender import selectors
from recommender.reasons import translate_reason

MODEL = Path(__file__).resolve().parents[2] / "recommender" / "model"


def model_reasons() -> list[str]:
    """Every reason the model package assigns, with "X" for an interpolated value."""
    found = []
    for path in sorted(MODEL.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target = node.targets[0]
            if not (isinstance(target, ast.Name) and target.id == "reason"):
                continue
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                found.append(node.value.value)
            elif isinstance(node.value, ast.JoinedStr):
                found.append(
                    "".join(
                        part.value if isinstance(part, ast.Constant) else "X"
                        for part in node.value.values
                    )
                )
    return found


def test_every_reason_of_the_model_is_translated() -> None:
    reasons = model_reasons()
    assert len(set(reasons)) >= 6
    for reason in reasons:
        with translation.override("zh-hans"):
            chinese = translate_reason(reason)
        with translation.override("en-gb"):
            assert translate_reason(reason) == reason  # English word for word
        assert chinese != reason, reason


@pytest.mark.parametrize(
    ("reason", "chinese"),
    [
        ("new this week for your course", "本周新上线的课程内容"),
        ("usually follows Week 2: Forum", "通常在“Week 2: Forum”之后学习"),
        ("not opened yet by your cohort (quiz)", "同班同学尚未打开（quiz）"),  # noqa: RUF001
        ("a reason of a newer model", "a reason of a newer model"),
    ],
)
def test_reason_in_chinese(reason: str, chinese: str) -> None:
    with translation.override("zh-hans"):
        assert translate_reason(reason) == chinese


def test_learner_page_reasons_in_chinese_cached_answer_untouched(monkeypatch) -> None:
    items = [{"item_id": 5, "title": "Intro", "reason": "used by your cohort this week"}]
    live = selectors.LiveRecommendations(status="ok", model_version=3, items=items)
    monkeypatch.setattr(selectors, "live_recommendations", lambda **kwargs: live)
    course = SimpleNamespace(title="Course", code="AAA_2026J")
    with translation.override("zh-hans"):
        panel = selectors.learner_panel(SimpleNamespace(), [course])
        html = render_to_string("recommender/_learner_recommendations.html", {"panel": panel})
    assert "<strong>Intro</strong> — 本周同班同学使用过" in html
    # The shared answer (cache, API) keeps the English reason.
    assert items[0]["reason"] == "used by your cohort this week"
