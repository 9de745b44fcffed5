"""The churn kind end to end in-process: train, promote, batch-score, serve, API defences."""

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import Course, Enrollment
from churn.features import serving_frames
from churn.models import RiskHistory, RiskScore
from eduplatform.registry import services, serving
from eduplatform.registry.models import ModelVersion
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
FAST = {"seeds": [0], "max_epochs": 3, "refit": False}


@pytest.fixture
def platform(settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    serving.reset()
    serving_frames.clear()
    call_command("seed_demo", "--learners", "160", "--courses", "3", "--days", "200", "--seed", "3")
    yield
    serving.reset()
    serving_frames.clear()


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def risk_url(enrollment) -> str:
    return f"/api/v1/learners/{enrollment.learner.pseudonym}/risk?course={enrollment.course_id}"


def test_no_model_yet_is_a_normal_answer(platform):
    enrollment = Enrollment.objects.first()
    admin = token_client(UserFactory(username="root", is_superuser=True))
    response = admin.get(risk_url(enrollment))
    assert response.status_code == 200
    assert response.json()["status"] == "no_model"


def test_train_promote_score_and_serve(platform):
    version = services.retrain_request(kind="churn", triggered_by="test", parameters=FAST)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.ACTIVE, version.status_reason
    assert 0.0 <= version.metrics["auc"] <= 1.0
    assert set(version.metrics["stage_seconds"]) == {"features", "train", "compress", "evaluate"}
    curves = version.metrics["curves"]
    assert len(curves["roc"]["fpr"]) == len(curves["roc"]["tpr"]) > 2
    assert curves["calibration"] and all(0 <= b["predicted"] <= 1 for b in curves["calibration"])

    course_ids = list(Course.objects.values_list("id", flat=True))
    written = services.batch_scores_refresh(kind="churn", course_ids=course_ids)
    assert written == RiskScore.objects.count() > 0
    assert RiskHistory.objects.count() == written
    assert set(RiskScore.objects.values_list("band", flat=True)) <= {"low", "medium", "high"}
    assert all(len(f) <= 3 for f in RiskScore.objects.values_list("factors", flat=True))

    scored = RiskScore.objects.select_related("learner").first()
    enrollment = Enrollment.objects.get(learner=scored.learner, course=scored.course)
    admin = token_client(UserFactory(username="root", is_superuser=True))
    body = admin.get(risk_url(enrollment)).json()
    assert body["status"] == "ok" and body["model_version"] == 1
    assert 0 <= body["probability"] <= 1
    assert body["risk_band"] in {"low", "medium", "high"}
    assert all(isinstance(text, str) and text for text in body["top_factors"])

    # Non-admin tokens: bands and factors, never the raw probability.
    analyst = UserFactory(username="analyst")
    analyst.groups.add(Group.objects.get_or_create(name="analyst")[0])
    answer = token_client(analyst).get(risk_url(enrollment)).json()
    assert answer["risk_band"] == body["risk_band"]
    assert "probability" not in answer

    # An instructor of another run sees nothing of this one.
    other = Course.objects.exclude(id=enrollment.course_id).first()
    teacher = UserFactory(username="teacher")
    other.instructors.add(teacher)
    assert token_client(teacher).get(risk_url(enrollment)).status_code == 404


def test_bad_query_is_400_with_field_message(platform):
    enrollment = Enrollment.objects.first()
    admin = token_client(UserFactory(username="root", is_superuser=True))
    url = f"/api/v1/learners/{enrollment.learner.pseudonym}/risk"
    assert admin.get(url).json() == {"course": ["This field is required."]}
    assert admin.get(url + "?course=abc").status_code == 400


def test_live_risk_follows_promotions_and_matches_a_cold_computation(platform):
    from churn.selectors import run_predictions

    first = services.retrain_request(kind="churn", triggered_by="test", parameters=FAST)
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.ACTIVE, first.status_reason
    course_ids = list(Course.objects.values_list("id", flat=True))
    services.batch_scores_refresh(kind="churn", course_ids=course_ids)
    scored = RiskScore.objects.select_related("learner").first()
    enrollment = Enrollment.objects.get(learner=scored.learner, course=scored.course)
    admin = token_client(UserFactory(username="root", is_superuser=True))
    v1 = admin.get(risk_url(enrollment)).json()
    assert v1["status"] == "ok" and v1["model_version"] == 1
    # Served from the per-run cache now; the same answer as a cold process gives.
    assert admin.get(risk_url(enrollment)).json() == v1

    second = services.retrain_request(
        kind="churn", triggered_by="test", parameters={**FAST, "seeds": [1]}
    )
    second.refresh_from_db()
    if second.status != ModelVersion.Status.ACTIVE:  # missed the gate: promote by hand
        services.model_version_promote(kind="churn", version=second.version)
    v2 = admin.get(risk_url(enrollment)).json()
    assert v2["model_version"] == 2  # the promotion is served at once, no stale answer
    serving.reset()
    serving_frames.clear()
    run_predictions.clear()
    cache.clear()  # the scores other processes share
    assert admin.get(risk_url(enrollment)).json() == v2

    services.model_version_rollback(kind="churn")
    assert admin.get(risk_url(enrollment)).json() == v1


def test_run_scores_are_shared_and_refreshed_in_the_background(settings, monkeypatch):
    """Another process reads a scored run from the cache; after the TTL the old scores
    keep being served while the run is rescored once in the background."""
    import datetime as dt
    import threading
    from types import SimpleNamespace

    import pandas as pd

    from churn import selectors

    calls = []

    class Model:
        def predict(self, frame, top_k):
            calls.append(len(frame))
            factor = SimpleNamespace(text=f"call {len(calls)}")
            return [
                SimpleNamespace(
                    learner_id=i, probability=0.5, risk_band="medium", top_factors=[factor]
                )
                for i in frame["learner_id"]
            ]

    frame = pd.DataFrame({"learner_id": [1, 2, 3]})
    monkeypatch.setattr(selectors.serving_frames, "get", lambda course, as_of: frame)
    settings.SERVING_FEATURES_TTL = 600
    served = SimpleNamespace(version_id=99, model=Model())
    course = SimpleNamespace(id=12345)
    as_of = dt.date(2026, 1, 5)
    runs = selectors.RunPredictions()

    first = runs.get(served, course, as_of)
    assert first[2] == (0.5, "medium", ("call 1",)) and calls == [3]
    # A second process finds the run in the shared cache: no scoring.
    assert selectors.RunPredictions().get(served, course, as_of) == first and calls == [3]

    # The TTL runs out: the old scores answer at once, one rescoring runs behind.
    import time

    from eduplatform.core import caches

    real_clock = time.monotonic
    monkeypatch.setattr(caches.time, "monotonic", lambda: real_clock() + 601)
    assert runs.get(served, course, as_of) == first
    for thread in threading.enumerate():
        if thread.name == "churn-rescore":
            thread.join(timeout=30)
    assert calls == [3, 3]
    assert runs.get(served, course, as_of)[2] == (0.5, "medium", ("call 2",))
    # A new model version is never answered from the older scores.
    newer = SimpleNamespace(version_id=100, model=Model())
    assert runs.get(newer, course, as_of)[2][2] == ("call 3",)


def test_serving_frames_stay_within_their_bound(platform, settings, monkeypatch):
    """A web process reading many runs keeps at most `maxsize` frames, one day per run;
    a repeat reads nothing (#30: shown by a spy on the reader, which on PostgreSQL reads
    over its own connection, out of Django's query count; killed mutant: BoundedCache.get
    always missing)."""
    import datetime as dt

    from churn import features
    from churn.features import ServingFrames

    settings.SERVING_FEATURES_TTL = 3600
    frames = ServingFrames(name="test.serving_frames", maxsize=2)
    courses = list(Course.objects.order_by("id"))
    assert len(courses) == 3
    day = dt.timedelta(days=40)
    for course in courses:
        frames.get(course, course.start_date + day)
    assert len(frames) == 2
    real_read, reads = features.learning_data, []

    def spy(**kwargs):
        reads.append(kwargs["course_ids"])
        return real_read(**kwargs)

    monkeypatch.setattr(features, "learning_data", spy)
    frame = frames.get(courses[-1], courses[-1].start_date + day)
    again = frames.get(courses[-1], courses[-1].start_date + day)
    assert reads == []  # both answered from the frame read in the loop above
    assert again is frame
    # A later day of the same run replaces that run's older frame.
    frames.get(courses[-1], courses[-1].start_date + day + dt.timedelta(days=1))
    assert len(frames) == 2
