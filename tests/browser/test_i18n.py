"""The course page in Simplified Chinese through the header's language switch, and in English.

Same setup as test_dashboards (Debian's chromium through Playwright against live_server;
missing chromium skips locally and fails with CI=true). The labels of the page (headings,
column headers, buttons, legends, form labels, captions, navigation) are read from the DOM,
hidden ones included, and must hold no English word once the page is in Chinese: only the
data values named in `allowed_data` (course code and title, the product name, "CSV") may.
"""

from __future__ import annotations

import re

import pytest

from tests.browser import test_dashboards as dashboards

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The dashboards' fixtures: one chromium per module, logged-in sessions, seeded platform.
browser = dashboards.browser
login = dashboards.login
platform = dashboards.platform

LABELS = "h1, h2, h3, h4, th[scope=col], button, legend, label, nav a, caption, summary"
ENGLISH_WORD = re.compile(r"[A-Za-z]{3,}")
HAN = re.compile(r"[\u4e00-\u9fff]")


def label_texts(page) -> list[str]:
    return page.evaluate(
        """sel => [...document.querySelectorAll(sel)]
               .map(e => e.textContent.replace(/\\s+/g, ' ').trim())
               .filter(Boolean)""",
        LABELS,
    )


def allowed_data(course) -> list[str]:
    """Data values, not labels: they stay as stored whatever the language."""
    return [course.code, course.title, "eduplatform", "CSV"]


def english_left(texts: list[str], allowed: list[str]) -> dict[str, list[str]]:
    left = {}
    for text in texts:
        stripped = text
        for value in sorted(allowed, key=len, reverse=True):
            stripped = stripped.replace(value, " ")
        words = ENGLISH_WORD.findall(stripped)
        if words:
            left[text] = words
    return left


def test_course_page_switches_to_simplified_chinese(login, platform) -> None:
    session = login("admin")
    course = platform["course_a"]
    session.open(f"/courses/{course.pk}/")
    page = session.page
    assert page.locator("html").get_attribute("lang") == "en-gb"

    page.get_by_label("Language").select_option("zh-hans")
    page.get_by_role("button", name="Switch language").click()
    page.wait_for_function("document.documentElement.lang === 'zh-hans'")
    page.wait_for_selector("html[data-charts-ready]")
    assert page.url.endswith(f"/courses/{course.pk}/")  # back on the same page

    texts = label_texts(page)
    assert "有流失风险的学习者" in texts and "最少使用的内容" in texts
    assert page.get_by_role("button", name="应用筛选").is_visible()
    assert page.get_by_role("link", name="总览").first.is_visible()
    left = english_left(texts, allowed_data(course))
    assert not left, f"English left in the labels: {left}"
    # The charts still draw from the translated JSON, under the same CSP.
    drawn = session.drawn_pixels()
    assert drawn and all(n >= dashboards.MIN_DRAWN_PIXELS for n in drawn.values()), drawn
    session.screenshot("course-zh-hans")

    # The choice sticks (language cookie) across pages until switched back.
    session.open("/")
    assert page.locator("main h1").inner_text() == "总览"
    page.get_by_label("语言").select_option("en-gb")
    page.get_by_role("button", name="切换语言").click()
    page.wait_for_function("document.documentElement.lang === 'en-gb'")
    assert page.locator("main h1").inner_text() == "Overview"
    assert session.errors == []


def test_course_page_stays_english_by_default(login, platform) -> None:
    session = login("teacher_a")
    course = platform["course_a"]
    session.open(f"/courses/{course.pk}/")
    page = session.page
    assert page.locator("html").get_attribute("lang") == "en-gb"
    texts = label_texts(page)
    for label in ("Learners at risk", "Least used content", "Engagement by week", "Log out"):
        assert label in texts, label
    assert page.get_by_role("button", name="Apply filters").is_visible()
    han = [t for t in texts if HAN.search(t)]
    assert not han, f"Chinese in the English page: {han}"
    assert session.errors == []
