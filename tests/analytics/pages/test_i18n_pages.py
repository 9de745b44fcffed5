"""Every page in English and in Simplified Chinese (the language cookie or the header's switch).

The course page keeps rendered pieces (chart cards, row cells, table bodies) in its cached
bundle; they are kept per language, so one language never leaks into the other.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.conf import settings

from tests.analytics.pages.support import body, chart_json, client_for
from tests.browser.world import World

pytestmark = pytest.mark.django_db

HAN = re.compile(r"[\u4e00-\u9fff]")


def chinese_client(user):
    client = client_for(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


def pages(world: World) -> list[str]:
    learner = world.learners[world.course_a.code][0]
    return [
        "/",
        f"/courses/{world.course_a.pk}/?status=all",
        f"/courses/{world.course_a.pk}/segments/",
        f"/learners/{learner.pseudonym}/",
        "/data-quality/",
        "/models/",
    ]


def test_pages_render_in_chinese_and_english(world: World) -> None:
    english, chinese = client_for(world.admin), chinese_client(world.admin)
    for url in pages(world):
        zh = body(chinese.get(url))
        assert '<html lang="zh-hans">' in zh, url
        assert "切换语言" in zh and "总览" in zh, url
        en = body(english.get(url))
        assert '<html lang="en-gb">' in en, url
        assert "Switch language" in en and "Overview" in en, url
        # Chinese only in the language switch's own name.
        assert not HAN.search(en.replace("简体中文", "")), url


def test_course_page_cache_keeps_languages_apart(world: World) -> None:
    url = f"/courses/{world.course_a.pk}/?status=all"
    english, chinese = client_for(world.instructor_a), chinese_client(world.instructor_a)
    first = body(english.get(url))
    zh = body(chinese.get(url))
    again = body(english.get(url))
    assert "Least used content" in first and "Least used content" in again
    assert "Learners at risk" in again and "Engagement by week" in again
    assert "最少使用的内容" in zh and "有流失风险的学习者" in zh and "每周参与度" in zh
    assert "Engagement by week" not in zh and "Not withdrawn" not in zh
    assert "暂无模型" in zh  # the panel fallbacks
    assert not HAN.search(again.replace("简体中文", ""))
    # The charts' JSON (drawn by charts.js) is translated too; its keys are not.
    data = chart_json(zh, "course-data")
    assert data["course-weekly"]["datasets"][0]["label"] == "活跃学习者"
    assert data["course-weekly"]["options"]["yTitle"] == "活跃学习者"
    assert set(data) == set(chart_json(first, "course-data"))


def test_dates_follow_the_language(world: World) -> None:
    course = world.course_a
    zh = body(chinese_client(world.admin).get(f"/courses/{course.pk}/"))
    en = body(client_for(world.admin).get(f"/courses/{course.pk}/"))
    start = course.start_date
    assert f"{start.year}年{start.month}月{start.day}日" in zh
    assert f"Starts {start.day} {start:%b} {start.year}" in en


def test_the_header_switch_sets_the_language_and_returns(world: World) -> None:
    client = client_for(world.admin)
    page = body(client.get("/data-quality/"))
    form = re.search(r'<form class="lang-switch" method="post" action="([^"]+)">', page)
    assert form and form.group(1) == "/i18n/setlang/"
    assert 'name="csrfmiddlewaretoken"' in page.split('class="lang-switch"')[1]
    response = client.post(form.group(1), {"language": "zh-hans", "next": "/data-quality/"})
    assert response.status_code == 302 and response["Location"] == "/data-quality/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert "数据质量" in body(client.get("/data-quality/"))
    client.post("/i18n/setlang/", {"language": "en-gb", "next": "/"})
    assert "Data quality" in body(client.get("/data-quality/"))


def test_login_page_has_the_switch_and_translates(client) -> None:
    en = body(client.get("/accounts/login/"))
    assert "Switch language" in en and ">Log in</button>" in en
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    zh = body(client.get("/accounts/login/"))
    assert "切换语言" in zh and ">登录</button>" in zh and "用户名" in zh


def test_csv_export_stays_english(world: World) -> None:
    """The export is data for tools: its header and statuses do not change with the page."""
    response = chinese_client(world.admin).get(f"/courses/{world.course_a.pk}/export.csv")
    text = body(response)
    assert text.startswith("learner,status,registered_on,last_active,activity_14d")
    assert not HAN.search(text)


def test_models_page_gives_its_script_the_messages(world: World) -> None:
    """models.js reads its texts from #models-messages (data-msg-*): no inline script."""
    zh = body(chinese_client(world.admin).get("/models/"))
    en = body(client_for(world.admin).get("/models/"))
    assert 'data-msg-training="{kind} v{version}正在训练。"' in zh
    # Full-width colon and comma, as Chinese text writes them.
    assert 'data-msg-progress="{kind} v{version}\uff1a{stage}\uff0c{percent}%"' in zh
    assert 'data-msg-training="{kind} v{version} is training."' in en
    assert 'data-msg-progress="{kind} v{version}: {stage}, {percent}%"' in en
    assert "<script>" not in zh and "<script>" not in en


class _Labels(HTMLParser):
    """Text of the labels of a page: headings, column headers, buttons, form labels, legends,
    captions, summaries and navigation links (hidden ones included)."""

    TAGS = {"h1", "h2", "h3", "h4", "button", "label", "legend", "caption", "summary"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.nav = 0
        self.texts: list[str] = []
        self.current: list[list[str]] = []

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "nav":
            self.nav += 1
        label = (
            tag in self.TAGS
            or (tag == "th" and attrs.get("scope") == "col")
            or (tag == "a" and self.nav > 0)
        )
        if tag in {"br", "input", "img", "meta", "link", "canvas"}:
            return
        self.stack.append((tag, label))
        if label:
            self.current.append([])

    def handle_endtag(self, tag) -> None:
        if tag == "nav":
            self.nav -= 1
        while self.stack:
            open_tag, label = self.stack.pop()
            if label:
                text = " ".join("".join(self.current.pop()).split())
                if text:
                    self.texts.append(text)
                if self.current:
                    self.current[-1].append(" " + text + " ")
            if open_tag == tag:
                break

    def handle_data(self, data) -> None:
        if self.current:
            self.current[-1].append(data)


def english_labels(html: str, allowed: list[str]) -> dict[str, list[str]]:
    parser = _Labels()
    parser.feed(html)
    left = {}
    for text in parser.texts:
        stripped = text
        for value in sorted(allowed, key=len, reverse=True):
            stripped = stripped.replace(value, " ")
        words = re.findall(r"[A-Za-z]{3,}", stripped)
        if words:
            left[text] = words
    return left


def test_no_english_left_in_the_chinese_labels(world: World) -> None:
    """Every dashboard page in zh-hans: no English word in its labels but data values."""
    client = chinese_client(world.admin)
    # Names of products, formats and standards stay as they are: CSV, PCA, IQR, xAPI, OULAD.
    allowed = ["eduplatform", "CSV", "PCA", "IQR", "xAPI", "API", "OULAD"]
    for course in (world.course_a, world.course_b):
        allowed += [course.code, course.title]
    allowed += [lrn.pseudonym for lrn in world.all_learners()]
    allowed += [lrn.name for lrn in world.all_learners()]
    allowed += ["resource", "quiz", "forumng", "other"]  # activity types (share of ...)
    allowed += [value.lower() for value in allowed]  # "Data table: {{ title|lower }}"
    for url in pages(world)[:-1]:  # the models page names kinds and metrics by their ids
        left = english_labels(body(client.get(url)), allowed)
        assert not left, f"{url}: {left}"


def test_admin_actions_in_chinese(world: World) -> None:
    zh = body(chinese_client(world.admin).get("/admin/analytics/learner/"))
    assert "删除所选学习者" in zh and "导出所选学习者的数据" in zh
    en = body(client_for(world.admin).get("/admin/analytics/learner/"))
    assert "Erase the selected learners (all their data)" in en
