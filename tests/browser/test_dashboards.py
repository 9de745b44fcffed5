"""The dashboards in a real browser: Debian's chromium driven by Playwright against live_server.

Covers: log in; every page loads without script or CSP errors and every chart
canvas has drawn pixels; the at-risk table filters, sorts and exports CSV;
the sort buttons are reachable and usable by keyboard. Screenshots of each
page go to test-output/screenshots/ (the README's course page, with trained
models, comes from test_course_with_models.py).

Never `playwright install`: the browser is Debian's /usr/bin/chromium.
Missing chromium skips locally and fails with CI=true.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from analytics.models import Course, Enrollment
from tests.conftest import service_missing
from tests.factories import UserFactory

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
DOCS_SCREENSHOT = ROOT / "docs" / "screenshots" / "course.png"
PASSWORD = "correct-horse-battery"
# A drawn chart covers thousands of pixels; a blank canvas has none.
MIN_DRAWN_PIXELS = 500

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        service_missing(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread, so Django
    # would refuse the (plain synchronous) ORM calls these tests and their
    # database fixtures make between browser steps. Set for this module only,
    # never at import: a process-wide value leaks into every later test and
    # subprocess (check --deploy rejects it).
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as p:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def platform() -> dict[str, object]:
    """Realistic synthetic data (two runs, 150 learners) and one user per role."""
    call_command("seed_demo", learners=150, courses=2, days=90, stdout=io.StringIO())
    course_a, course_b = Course.objects.order_by("code")[:2]
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    instructor = UserFactory(username="teacher_a")
    course_a.instructors.add(instructor)
    return {"course_a": course_a, "course_b": course_b, "admin": admin, "instructor": instructor}


class Session:
    """A logged-in page that records console errors and uncaught exceptions."""

    def __init__(self, browser, base_url: str, username: str) -> None:
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.base_url = base_url
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(f"{base_url}/accounts/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(f"{base_url}/")

    def open(self, path: str) -> None:
        self.page.goto(self.base_url + path)
        self.page.wait_for_selector("html[data-charts-ready]")

    def drawn_pixels(self) -> dict[str, int]:
        """Non-transparent pixels per chart canvas on the current page."""
        return self.page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('canvas')].map(c => {
                   const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let drawn = 0;
                   for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) drawn++; }
                   return [c.id, drawn];
               }))"""
        )

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def login(browser, live_server):
    sessions: list[Session] = []

    def make(username: str) -> Session:
        session = Session(browser, live_server.url, username)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


def test_login_rejects_a_wrong_password(browser, live_server, platform) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/courses/{platform['course_a'].pk}/")
    assert "/accounts/login/" in page.url  # login required
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").is_visible()
    context.close()


def test_every_page_draws_its_charts(login, platform) -> None:
    session = login("admin")
    course = platform["course_a"]
    learner = (
        Enrollment.objects.filter(course=course, learner__submissions__isnull=False)
        .values_list("learner__pseudonym", flat=True)
        .first()
    )
    pages = {
        "overview": ("/", {"overview-daily", "overview-types", "overview-retention"}),
        "course": (
            f"/courses/{course.pk}/",
            {"course-weekly", "course-types", "course-content", "course-scores"},
        ),
        "learner": (f"/learners/{learner}/", {f"heatmap-{course.pk}"}),
        "segments": (f"/courses/{course.pk}/segments/", {"segments-pca"}),
        "data-quality": ("/data-quality/", {"quality-features", "quality-volume"}),
    }
    for name, (path, charts) in pages.items():
        session.open(path)
        assert session.page.locator("main h1").is_visible(), name
        drawn = session.drawn_pixels()
        assert set(drawn) == charts, name
        blank = {chart: n for chart, n in drawn.items() if n < MIN_DRAWN_PIXELS}
        assert not blank, f"{name}: blank canvases {blank}"
        # Every chart has a text alternative: a role=img label and a data table.
        for chart in charts:
            canvas = session.page.locator(f"canvas#{chart}")
            assert canvas.get_attribute("role") == "img"
            assert canvas.get_attribute("aria-label")
        assert session.page.locator("details.chart-data table caption").count() == len(charts)
        session.screenshot(name)
    assert session.errors == []  # no script errors, no CSP violations, no 404s


def table_column(session: Session, selector: str) -> list[str]:
    return session.page.locator(f"#learner-table tbody {selector}").all_inner_texts()


def test_at_risk_table_filters_sorts_and_exports(login, platform, tmp_path) -> None:
    session = login("teacher_a")
    course, other = platform["course_a"], platform["course_b"]
    session.open(f"/courses/{course.pk}/")
    page = session.page

    # Filter: a pseudonym prefix leaves that learner only.
    target = Enrollment.objects.filter(course=course).values_list("learner__pseudonym", flat=True)[
        3
    ]
    page.get_by_label("Pseudonym contains").fill(target[:12])
    page.get_by_label("Pseudonym contains").press("Enter")
    page.wait_for_url("**q=*")
    assert table_column(session, "th[scope=row] a.mono") == [target]

    # Reset, show all statuses, sort by last active: ascending, then descending.
    page.get_by_role("link", name="Reset").click()
    page.get_by_label("Status").select_option("all")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**status=all*")
    header = page.locator("#learner-table th", has=page.locator("button[data-sort=last_active]"))
    header.locator("button").click()
    page.wait_for_url("**sort=last_active*")
    assert header.get_attribute("aria-sort") == "ascending"
    ascending = session.page.locator("#learner-table tbody time").evaluate_all(
        "els => els.map(e => e.getAttribute('datetime'))"
    )
    assert ascending == sorted(ascending) and len(ascending) > 1
    header.locator("button").click()
    page.wait_for_url("**sort=-last_active*")
    assert header.get_attribute("aria-sort") == "descending"
    descending = session.page.locator("#learner-table tbody time").evaluate_all(
        "els => els.map(e => e.getAttribute('datetime'))"
    )
    assert descending == sorted(descending, reverse=True)

    # Server-side pagination keeps filter and sort.
    page.get_by_role("link", name="Next").click()
    page.wait_for_url("**page=2*")
    assert "sort=-last_active" in page.url and "status=all" in page.url

    # Export: the download holds exactly this course's learners, in this order.
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename == f"{course.code}-learners.csv"
    path = tmp_path / "export.csv"
    download.save_as(path)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:5] == ["learner", "status", "registered_on", "last_active", "activity_14d"]
    exported = [r[0] for r in rows[1:]]
    own = set(Enrollment.objects.filter(course=course).values_list("learner__pseudonym", flat=True))
    foreign = (
        set(Enrollment.objects.filter(course=other).values_list("learner__pseudonym", flat=True))
        - own
    )
    assert set(exported) == own
    assert not set(exported) & foreign
    last_active = [r[3] for r in rows[1:] if r[3]]
    assert last_active == sorted(last_active, reverse=True)
    assert session.errors == []


def test_sort_buttons_are_reachable_by_keyboard(login, platform) -> None:
    session = login("teacher_a")
    course = platform["course_a"]
    session.open(f"/courses/{course.pk}/")
    page = session.page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to main content"

    # Tab on until a sort button has focus; it must come after the filters
    # and be reachable in a bounded number of steps (no keyboard trap).
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('sort-button')"):
            break
    else:
        pytest.fail("no sort button reachable with Tab")
    focused = page.evaluate("document.activeElement.dataset.sort")
    assert focused == "pseudonym"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible

    page.keyboard.press("Enter")
    page.wait_for_url("**sort=pseudonym*")
    names = table_column(session, "th[scope=row] a.mono")
    assert names == sorted(names)
    assert session.errors == []
