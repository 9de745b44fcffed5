"""The models page (/models/): roles, empty states, curves, compression report, query counts."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from eduplatform.core.access import ANALYST_GROUP
from eduplatform.registry import views
from eduplatform.registry.models import ModelVersion
from eduplatform.registry.selectors import versions_for_page
from tests.factories import CourseFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = ModelVersion.Status

CURVES = {
    "roc": {"fpr": [0.0, 0.1, 0.3, 1.0], "tpr": [0.0, 0.6, 0.85, 1.0]},
    "pr": {"recall": [1.0, 0.8, 0.5, 0.0], "precision": [0.3, 0.55, 0.8, 1.0]},
    "calibration": [
        {"predicted": 0.1, "observed": 0.12, "count": 40},
        {"predicted": 0.5, "observed": 0.45, "count": 20},
        {"predicted": 0.9, "observed": 0.85, "count": 10},
    ],
}
COMPRESSION = {
    "variants": [
        {"name": "fp32", "bytes": 40960, "params": 10000, "latency_ms_p50": 1.2, "auc": 0.81},
        {"name": "int8", "bytes": 10240, "params": 10000, "latency_ms_p50": 0.9, "auc": 0.805},
        {"name": "pruned", "bytes": 6000, "quality": {"auc": 0.79}, "latency_ms_p50": 0.8},
    ],
    "chosen": "int8",
}


@pytest.fixture
def users() -> dict[str, object]:
    admin = UserFactory(username="admin_user", is_superuser=True, is_staff=True)
    analyst = UserFactory(username="analyst_user")
    analyst.groups.add(Group.objects.get_or_create(name=ANALYST_GROUP)[0])
    instructor = UserFactory(username="teacher")
    CourseFactory().instructors.add(instructor)
    nobody = UserFactory(username="nobody")
    return {"admin": admin, "analyst": analyst, "instructor": instructor, "nobody": nobody}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def version(kind: str, number: int, status: str, **fields) -> ModelVersion:
    now = timezone.now()
    defaults = {
        "created_at": now,
        "finished_at": now if status != Status.TRAINING else None,
        "artifact_sha256": "ab" * 32 if status != Status.FAILED else "",
        "triggered_by": "admin_user",
    }
    row = ModelVersion.objects.create(kind=kind, version=number, status=status, **fields)
    ModelVersion.objects.filter(pk=row.pk).update(
        **{k: v for k, v in defaults.items() if k not in fields}
    )
    row.refresh_from_db()
    return row


def churn_history(n_retired: int = 1) -> None:
    for i in range(1, n_retired + 1):
        version(
            "churn",
            i,
            Status.RETIRED,
            metrics={"auc": 0.7 + i / 1000, "score": 0.7 + i / 1000, "champion_score": None},
        )
    top = n_retired + 1
    version(
        "churn",
        top,
        Status.ACTIVE,
        metrics={
            "auc": 0.81,
            "score": 0.81,
            "champion_score": 0.78,
            "stage_seconds": {"train": 3.2},
            "report": {"n": 70, "positive_rate": 0.3, "roc_auc": 0.81, "pr_auc": 0.66},
            "curves": CURVES,
        },
        compression_report=COMPRESSION,
        served_variant="int8",
        artifact_bytes=10240,
        promoted_at=timezone.now() - dt.timedelta(hours=1),
    )
    version("churn", top + 1, Status.CANDIDATE, metrics={"auc": 0.8, "score": 0.8})
    version("churn", top + 2, Status.FAILED, status_reason="not enough labelled learners")


def recommender_history() -> None:
    version(
        "recommender",
        1,
        Status.ACTIVE,
        metrics={"ndcg@10": 0.31, "recall@10": 0.4, "coverage": 0.7, "score": 0.31},
        served_variant="fp32",
        artifact_bytes=2048,
    )
    version("recommender", 2, Status.TRAINING, stage="train", percent=40)


def chart_ids(html: str) -> set[str]:
    match = re.search(r'<script id="models-data" type="application/json">(.*?)</script>', html)
    assert match, "no #models-data block"
    return set(json.loads(match.group(1)))


def test_login_required() -> None:
    response = Client().get("/models/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_empty_registry_says_no_model_yet(users) -> None:
    response = client_for(users["admin"]).get("/models/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("data-no-model") == 2  # churn and recommender
    assert "No model yet." in html
    assert chart_ids(html) == set()
    assert 'data-action="retrain"' in html


def test_versions_of_both_kinds_with_curves_and_compression(users) -> None:
    churn_history()
    recommender_history()
    response = client_for(users["admin"]).get("/models/")
    assert response.status_code == 200
    html = response.content.decode()
    assert chart_ids(html) == {
        "churn-history",
        "churn-roc",
        "churn-pr",
        "churn-calibration",
        "churn-compression",
        "recommender-history",
    }
    # Active versions, statuses with reasons, the served variant and size.
    assert 'data-active-version="2"' in html and 'data-active-version="1"' in html
    assert "not enough labelled learners" in html
    assert "10.0\xa0KB" in html
    assert "validation PR AUC" in html  # metric keys in words (registry/labels.py)
    # Every compression column and variant; the nested quality becomes a column. Known
    # keys are in words, unknown ones ("latency_ms_p50") with spaces for underscores.
    for text in ("fp32", "int8", "pruned", "latency ms p50", "quality: AUC", "parameters"):
        assert text in html
    assert '<tr class="is-served">' in html
    # A training recommender version is followed by the page's script.
    assert 'data-training-version="2"' in html
    assert "recommender v2: train, 40%" in html
    # The candidate is offered for promotion, the failed and active ones are not.
    select = re.search(r'id="promote-churn"[^>]*>(.*?)</select>', html, re.S).group(1)
    assert re.findall(r'value="(\d+)"', select) == ["3", "1"]  # newest first


def test_curves_and_compression_chart_specs() -> None:
    churn_history()
    context = views.models_page(versions_for_page(["churn"]), admin=False)
    charts = {c["id"]: c for s in context["sections"] for c in s["all_charts"]}
    roc = charts["churn-roc"]
    assert roc["spec"]["type"] == "scatter"
    assert roc["spec"]["datasets"][0]["data"][1] == {"x": 0.1, "y": 0.6}
    assert roc["table"]["rows"][1] == [0.1, 0.6]
    assert charts["churn-calibration"]["table"]["rows"][0] == [0.1, 0.12, 40]
    # Size against quality: bytes (KiB) x auc; "pruned" has no plain auc.
    compression = charts["churn-compression"]
    assert [d["label"] for d in compression["spec"]["datasets"]] == ["fp32", "int8 (served)"]
    assert compression["spec"]["datasets"][1]["data"] == [{"x": 10.0, "y": 0.805}]
    history = charts["churn-history"]
    assert history["spec"]["labels"] == ["v1", "v2", "v3"]
    assert history["spec"]["datasets"][0]["data"] == [0.701, 0.81, 0.8]


@pytest.mark.parametrize(
    "report",
    [
        {},
        {"variants": []},
        {"variants": "garbage"},
        {"variants": [{"name": "only-name"}]},
        {"variants": [{"artifact_bytes": 100, "quality": 0.5}], "served": "x"},
    ],
)
def test_compression_report_shapes_never_crash(users, report) -> None:
    version("churn", 1, Status.ACTIVE, metrics={"score": 0.7}, compression_report=report)
    response = client_for(users["analyst"]).get("/models/")
    assert response.status_code == 200
    html = response.content.decode()
    if not report.get("variants") or not isinstance(report["variants"], list):
        assert "No compression report." in html
    else:
        assert "data-compression-table" in html


def test_query_count_is_bounded_and_flat(users, django_assert_max_num_queries) -> None:
    client = client_for(users["analyst"])
    client.get("/models/")  # warm up anything cached per process

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/models/").status_code == 200
        return len(ctx.captured_queries)

    churn_history(n_retired=1)
    recommender_history()
    few = count()
    ModelVersion.objects.filter(kind="churn").delete()
    churn_history(n_retired=30)
    many = count()
    assert many == few
    with django_assert_max_num_queries(4):  # session, user, role, versions
        client.get("/models/")


def test_old_active_version_is_shown_beyond_the_recent_window() -> None:
    version("churn", 1, Status.ACTIVE, metrics={"score": 0.7})
    for i in range(2, 6):
        version("churn", i, Status.RETIRED, metrics={"score": 0.7})
    (group,) = versions_for_page(["churn"], limit=2)
    assert [v.version for v in group.versions] == [5, 4, 1]
    assert group.active.version == 1


def test_rollback_offers_the_previously_promoted_version(users) -> None:
    version("churn", 1, Status.RETIRED, promoted_at=timezone.now() - dt.timedelta(days=2))
    version("churn", 2, Status.RETIRED)  # never served: not a rollback target
    version("churn", 3, Status.ACTIVE, promoted_at=timezone.now())
    html = client_for(users["admin"]).get("/models/").content.decode()
    assert ">Roll back to v1</button>" in html
    version("recommender", 1, Status.ACTIVE, promoted_at=timezone.now())
    html = client_for(users["admin"]).get("/models/").content.decode()
    recommender = html.split('id="model-recommender"')[1]
    assert re.search(r'data-action="rollback"[^>]* disabled', recommender)


def test_analyst_sees_the_page_without_buttons(users) -> None:
    churn_history()
    response = client_for(users["analyst"]).get("/models/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-action=" not in html
    assert "models-csrf" not in html
    assert "promote-churn" not in html
    assert 'href="/models/" aria-current="page">Models</a>' in html


def test_instructor_gets_a_short_403_page(users) -> None:
    response = client_for(users["instructor"]).get("/models/")
    assert response.status_code == 403
    assert "not available for your role" in response.content.decode()


def test_user_without_role_is_refused(users) -> None:
    assert client_for(users["nobody"]).get("/models/").status_code == 403


def test_nav_links_to_models_for_admins_and_analysts_only(users) -> None:
    for name, expected in (("admin", True), ("analyst", True), ("instructor", False)):
        html = client_for(users[name]).get("/").content.decode()
        assert ('href="/models/"' in html) is expected, name


def test_top_features_of_the_shown_version_in_ranking_order(users) -> None:
    ranking = [
        {"feature": "run_recent_withdrawal", "auc_drop": 0.049},
        {"feature": "missed_weight", "auc_drop": 0.006},
        {"feature": "bogus"},  # malformed: skipped, never a crash
        *({"feature": f"clicks_type_{i}", "auc_drop": 0.001 / (i + 1)} for i in range(12)),
        {"feature": "share_content", "auc_drop": -0.0002},
    ]
    version("churn", 1, Status.ACTIVE, metrics={"score": 0.74, "feature_ranking": ranking})
    html = client_for(users["analyst"]).get("/models/").content.decode()
    shown = re.findall(r'data-feature="([^"]+)"', html)
    assert shown[:2] == ["run_recent_withdrawal", "missed_weight"]
    assert len(shown) == views.TOP_FEATURES and "bogus" not in shown
    assert 'value="100.0"' in html  # the largest drop fills its bar


def test_no_ranking_no_top_features_table(users) -> None:
    version("churn", 1, Status.ACTIVE, metrics={"score": 0.74, "feature_ranking": "junk"})
    html = client_for(users["admin"]).get("/models/").content.decode()
    assert "data-top-features" not in html
