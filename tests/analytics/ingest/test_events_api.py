import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Sum
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analytics.models import DailyActivity, Enrollment, Learner, LearningEvent
from tests.analytics.ingest.conftest import ingest_client
from tests.factories import ContentItemFactory, CourseFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"


@pytest.fixture
def client_with_token() -> APIClient:
    return ingest_client("ingest")


@pytest.fixture
def course():
    course = CourseFactory(code="WEB_2026J")
    ContentItemFactory(course=course, external_id="video-1", activity_type="video")
    ContentItemFactory(course=course, external_id="quiz-1", activity_type="quiz")
    return course


def event(n: int, **overrides):
    body = {
        "client_event_id": f"evt-{n}",
        "learner_id": f"user-{n % 3}",
        "course": "WEB_2026J",
        "item": "video-1",
        "verb": "played",
        "occurred_at": "2026-10-05T10:00:00+02:00",
        "count": 2,
        "duration_seconds": 120,
    }
    body.update(overrides)
    return body


def test_valid_batch_is_stored_with_rollup(client_with_token, course):
    batch = [event(n) for n in range(6)] + [event(6, item="quiz-1", verb="answered", score=80)]
    response = client_with_token.post(URL, batch, format="json")
    assert response.status_code == 201
    assert response.json() == {"received": 7, "created": 7, "duplicates": 0}
    assert LearningEvent.objects.count() == 7
    assert Learner.objects.count() == 3
    assert Enrollment.objects.filter(course=course).count() == 3
    video = DailyActivity.objects.filter(activity_type="video")
    assert sum(r.clicks for r in video) == 12
    assert sum(r.events for r in video) == 6
    assert sum(r.active_seconds for r in video) == 720
    # 10:00+02:00 is 08:00 UTC on the same calendar day.
    assert {r.date for r in video} == {dt.date(2026, 10, 5)}


def test_repeated_client_ids_are_not_counted_twice(client_with_token, course):
    batch = [event(n) for n in range(4)]
    assert client_with_token.post(URL, batch, format="json").status_code == 201
    again = client_with_token.post(URL, [*batch, event(9)], format="json")
    assert again.status_code == 201
    assert again.json() == {"received": 5, "created": 1, "duplicates": 4}
    assert LearningEvent.objects.count() == 5
    assert sum(DailyActivity.objects.values_list("clicks", flat=True)) == 10


def test_invalid_item_rejects_whole_batch_with_field_errors(client_with_token, course):
    batch = [
        event(0),
        event(1, occurred_at="yesterday", count=0),
        event(2, item="no-such-item"),
        event(3, course="NOPE"),
    ]
    response = client_with_token.post(URL, batch, format="json")
    assert response.status_code == 400
    errors = {e["index"]: e["fields"] for e in response.json()["errors"]}
    assert set(errors) == {1}
    assert set(errors[1]) == {"occurred_at", "count"}
    assert LearningEvent.objects.count() == 0
    # Syntax is fine now; reference errors are reported per item too.
    batch[1] = event(1)
    response = client_with_token.post(URL, batch, format="json")
    assert response.status_code == 400
    errors = {e["index"]: e["fields"] for e in response.json()["errors"]}
    assert errors == {
        2: {"item": ["Unknown item in this course."]},
        3: {"course": ["Unknown course."]},
    }
    assert LearningEvent.objects.count() == 0
    assert Learner.objects.count() == 0
    assert DailyActivity.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"not": "a list"}, "Expected a JSON list of events."),
        ([], "The list of events is empty."),
    ],
)
def test_batch_shape_errors(client_with_token, course, payload, detail):
    response = client_with_token.post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_batch_limit(client_with_token, course, settings):
    settings.EVENTS_MAX_BATCH = 3
    response = client_with_token.post(URL, [event(n) for n in range(4)], format="json")
    assert response.status_code == 400
    assert "At most 3" in response.json()["detail"]


def test_duplicate_ids_within_batch_rejected(client_with_token, course):
    response = client_with_token.post(URL, [event(1), event(1)], format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["index"] == 1


def test_naive_and_future_timestamps_rejected(client_with_token, course):
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    response = client_with_token.post(
        URL,
        [event(1, occurred_at="2026-10-05T10:00:00"), event(2, occurred_at=future)],
        format="json",
    )
    assert response.status_code == 400
    messages = {e["index"]: e["fields"]["occurred_at"][0] for e in response.json()["errors"]}
    assert messages == {
        0: "Timestamp must include a timezone offset.",
        1: "Timestamp is in the future.",
    }


def test_requires_token_and_permission(course):
    anonymous = APIClient()
    assert anonymous.post(URL, [event(1)], format="json").status_code == 401
    user = UserFactory(username="viewer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.post(URL, [event(1)], format="json").status_code == 403
    assert LearningEvent.objects.count() == 0


def test_learners_are_pseudonymous(client_with_token, course):
    client_with_token.post(URL, [event(1, learner_id="alice@example.org")], format="json")
    learner = Learner.objects.get()
    assert "alice" not in learner.pseudonym
    assert len(learner.pseudonym) == 24


def test_rollup_groups_by_utc_day_and_counts_only_new_events(client_with_token, course):
    """Several events of one learner and day fold into one rollup row; the UTC day counts;
    a retry that mixes stored and new ids adds only the new ones; the enrolment keeps
    the first day seen."""
    batch = [
        event(0, learner_id="u", occurred_at="2026-10-05T09:00:00+00:00", count=1),
        event(1, learner_id="u", occurred_at="2026-10-05T10:00:00+00:00", count=2),
        # 23:30 at -02:00 is 01:30 UTC on the 6th.
        event(2, learner_id="u", occurred_at="2026-10-05T23:30:00-02:00", count=4),
        event(3, learner_id="u", item="quiz-1", occurred_at="2026-10-05T11:00:00+00:00"),
        event(4, learner_id="u", item=None, verb="logged-in", duration_seconds=None),
    ]
    assert client_with_token.post(URL, batch, format="json").status_code == 201
    rows = {
        (r.date, r.activity_type): (r.events, r.clicks, r.active_seconds)
        for r in DailyActivity.objects.all()
    }
    assert rows == {
        (dt.date(2026, 10, 5), "video"): (2, 3, 240.0),
        (dt.date(2026, 10, 6), "video"): (1, 4, 120.0),
        (dt.date(2026, 10, 5), "quiz"): (1, 2, 120.0),
        (dt.date(2026, 10, 5), "logged-in"): (1, 2, 0.0),
    }
    retry = [*batch[:2], event(5, learner_id="u", occurred_at="2026-10-05T12:00:00+00:00")]
    response = client_with_token.post(URL, retry, format="json")
    assert response.json() == {"received": 3, "created": 1, "duplicates": 2}
    video = DailyActivity.objects.get(date=dt.date(2026, 10, 5), activity_type="video")
    assert (video.events, video.clicks) == (3, 5)
    assert LearningEvent.objects.count() == 6
    enrolment = Enrollment.objects.get()
    assert enrolment.registered_on == dt.date(2026, 10, 5)
    stored = LearningEvent.objects.get(client_event_id="evt-2")
    assert stored.occurred_at == dt.datetime(2026, 10, 6, 1, 30, tzinfo=dt.UTC)
    assert stored.duration_seconds == 120
    assert LearningEvent.objects.get(client_event_id="evt-4").item is None


def test_thousand_event_batch_resolves_many_learners_and_items(client_with_token, course):
    from tests.factories import ContentItemFactory

    for n in range(20):
        ContentItemFactory(course=course, external_id=f"page-{n}", activity_type="page")
    batch = [
        event(n, learner_id=f"learner-{n % 250}", item=f"page-{n % 20}", count=1 + n % 3)
        for n in range(1000)
    ]
    response = client_with_token.post(URL, batch, format="json")
    assert response.status_code == 201
    assert response.json() == {"received": 1000, "created": 1000, "duplicates": 0}
    assert Learner.objects.count() == 250
    assert Enrollment.objects.count() == 250
    assert DailyActivity.objects.aggregate(c=Sum("clicks"))["c"] == sum(
        1 + n % 3 for n in range(1000)
    )
    assert DailyActivity.objects.aggregate(e=Sum("events"))["e"] == 1000
    again = client_with_token.post(
        URL, [*batch[:10], event(1000, learner_id="learner-0", item="page-0")], format="json"
    )
    assert again.json() == {"received": 11, "created": 1, "duplicates": 10}
    assert Learner.objects.count() == 250


def test_timestamps_only_django_parses_are_accepted(client_with_token, course):
    """Inputs the fast path leaves to the full validator still validate the same way."""
    batch = [
        event(1, occurred_at="2026-10-05 10:00:00+0200"),
        event(2, count=True),
        event(3, learner_id="  padded  "),
    ]
    response = client_with_token.post(URL, batch, format="json")
    assert response.status_code == 400
    assert {e["index"] for e in response.json()["errors"]} == {1}
    batch[1] = event(2)
    assert client_with_token.post(URL, batch, format="json").status_code == 201
    assert LearningEvent.objects.get(client_event_id="evt-1").occurred_at == dt.datetime(
        2026, 10, 5, 8, 0, tzinfo=dt.UTC
    )


def test_permission_through_a_group_or_superuser_but_not_when_inactive(course):
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="ingesters")
    group.permissions.add(Permission.objects.get(codename="add_learningevent"))
    member = UserFactory(username="member")
    member.groups.add(group)
    admin = UserFactory(username="root", is_superuser=True)
    inactive = UserFactory(username="gone", is_active=False, is_superuser=True)
    statuses = {}
    for n, user in enumerate((member, admin, inactive)):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        statuses[user.username] = client.post(URL, [event(n)], format="json").status_code
    # DRF's token authentication itself refuses inactive users.
    assert statuses == {"member": 201, "root": 201, "gone": 401}
