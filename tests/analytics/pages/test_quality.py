"""The data-quality page and the learner features behind it."""

import numpy as np
import pandas as pd
import pytest

from analytics.models import LearningEvent
from analytics.pages.features import learner_features
from analytics.pages.quality import feature_quality
from tests.analytics.pages.support import (
    body,
    chart_json,
    client_for,
)
from tests.browser.world import World
from tests.factories import (
    EnrollmentFactory,
    LearnerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_data_quality_with_data(world: World) -> None:
    response = client_for(world.admin).get("/data-quality/")
    html = body(response)
    sources = {s["source"]: s for s in response.context["sources"]}
    by_source = {src: LearningEvent.objects.filter(source=src).count() for src in ("api", "xapi")}
    assert sources["api"]["events"] == by_source["api"] > 0
    assert sources["xapi"]["events"] == by_source["xapi"] > 0
    assert sources["oulad"]["events"] == 0
    assert sources["oulad"]["last_ingested"] is not None  # from the ImportRun
    assert sources["demo"]["last_ingested"] is None
    names = [q["feature"] for q in response.context["quality"]]
    assert names[:4] == ["total_clicks", "active_days", "recency_days", "trend"]
    data = chart_json(html, "quality-data")
    assert set(data) == {"quality-features", "quality-volume"}
    assert len(data["quality-volume"]["labels"]) == 30


def test_data_quality_empty_states() -> None:
    admin = UserFactory(username="root2", is_superuser=True)
    html = body(client_for(admin).get("/data-quality/"))
    assert "No learners yet, so no features to check." in html
    assert "No events in the last 30 days." in html
    assert html.count("no events yet") == 4


def test_feature_quality_iqr_rule() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 100.0, np.nan], "y": [np.nan] * 6})
    x, y = feature_quality(frame, ["x", "y"])
    # Q1 = 2, Q3 = 4, IQR = 2: fences -1 and 7; 100 is the one outlier.
    assert (x["missing"], x["outliers"], x["low"], x["high"]) == (1, 1, -1.0, 7.0)
    assert x["outlier_pct"] == 20.0 and x["median"] == 3.0
    assert (y["missing"], y["outliers"], y["median"]) == (6, 0, None)


def test_learner_features_mark_unknowns_missing(world: World) -> None:
    never = LearnerFactory()
    EnrollmentFactory(learner=never, course=world.course_a)
    frame = learner_features([world.course_a.pk], anchor=world.today)
    row = frame[frame["learner_id"] == never.pk].iloc[0]
    assert row["total_clicks"] == 0 and row["active_days"] == 0
    assert np.isnan(row["recency_days"]) and np.isnan(row["trend"])
    assert np.isnan(row["share_resource"])
    active = frame[frame["learner_id"] == world.learners[world.course_a.code][0].pk].iloc[0]
    shares = [c for c in frame.columns if c.startswith("share_")]
    assert active[shares].sum() == pytest.approx(1.0)
    assert active["recency_days"] == 0 and -1 <= active["trend"] <= 1


def test_held_xapi_statements_counted_by_iri_for_platform_readers_only() -> None:
    import datetime as dt
    import uuid

    from analytics.models import Statement
    from tests.factories import CourseFactory

    def held(iri: str, day: int) -> Statement:
        return Statement.objects.create(
            statement_id=uuid.uuid4(), data={}, verb_id="http://v", actor_key="k",
            stored=dt.datetime(2026, 11, day, tzinfo=dt.UTC),
            timestamp=dt.datetime(2026, 11, day, tzinfo=dt.UTC), place_iri=iri,
        )  # fmt: skip

    site, course_iri = (
        "https://moodle.example.edu",
        "https://moodle.example.edu/course/view.php?id=3",
    )
    held(site, 1), held(site, 3), held(course_iri, 2)
    placed = held(course_iri, 4)
    placed.course = CourseFactory()
    placed.save()
    admin = UserFactory(username="root3", is_superuser=True)
    response = client_for(admin).get("/data-quality/")
    rows = [(u["place_iri"], u["statements"], u["first_seen"].day, u["last_seen"].day)
            for u in response.context["unplaced"]]  # fmt: skip
    assert rows == [(site, 2, 1, 3), (course_iri, 1, 2, 2)]
    assert course_iri in body(response)
    nobody = UserFactory(username="plain")
    assert client_for(nobody).get("/data-quality/").context["unplaced"] is None
