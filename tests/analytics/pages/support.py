"""Helpers of the dashboard page tests: clients, response bodies, chart data, page URLs."""

import csv
import datetime as dt
import io
import json
import re

from django.test import Client

from analytics.pages import panels
from tests.browser.world import World

DAY = dt.timedelta(days=1)
# The slots as analytics defines them, before a test's monkeypatching.
ORIGINAL_SLOTS = dict(panels.SLOTS)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def chart_json(html: str, script_id: str) -> dict:
    match = re.search(rf'<script id="{script_id}" type="application/json">(.*?)</script>', html)
    assert match, f"no #{script_id} data block"
    return json.loads(match.group(1))


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body(response))))


def page_urls(world: World) -> dict[str, str]:
    course = world.course_a
    return {
        "overview": "/",
        "course": f"/courses/{course.pk}/",
        "export": f"/courses/{course.pk}/export.csv",
        "segments": f"/courses/{course.pk}/segments/",
        "learner": f"/learners/{world.learners[course.code][0].pseudonym}/",
        "data_quality": "/data-quality/",
    }


def table_pseudonyms(html: str) -> list[str]:
    table = html.split('id="learner-table"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'href="/learners/([0-9a-f]+)/"', table)
