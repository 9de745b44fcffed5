"""Property tests: validation answers any input with events or a ValidationFailure."""

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.ingest.validation import ValidationFailure, validate_api_events
from analytics.ingest.xapi import parse_statements

# No subnormal floats: a library loaded in the same process (compiled with fast-math)
# flushes them to zero, and hypothesis refuses to generate them then.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_subnormal=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
FIELDS = [
    "client_event_id",
    "learner_id",
    "course",
    "item",
    "verb",
    "occurred_at",
    "count",
    "duration_seconds",
    "score",
]
event_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=9)

valid_event = st.builds(
    lambda n, learner, count, when, duration: {
        "client_event_id": f"e-{n}",
        "learner_id": learner,
        "course": "C1",
        "verb": "viewed",
        "occurred_at": when.isoformat(),
        "count": count,
        "duration_seconds": duration,
    },
    st.integers(min_value=0, max_value=10**9),
    st.text(min_size=1, max_size=30).filter(str.strip),
    st.integers(min_value=1, max_value=1000),
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2025, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    st.none() | st.floats(min_value=0, max_value=3600, allow_subnormal=False),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.lists(event_like, max_size=6)))
def test_events_validation_never_crashes(payload):
    try:
        events = validate_api_events(payload, max_batch=5000, account_homepage="https://x")
    except ValidationFailure as failure:
        body = failure.as_response()
        assert body["detail"]
        assert all(e["fields"] for e in body["errors"])
    else:
        assert isinstance(payload, list) and len(events) == len(payload)


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_event, min_size=1, max_size=20, unique_by=lambda e: e["client_event_id"]))
def test_valid_events_all_pass_and_keep_their_values(batch):
    events = validate_api_events(batch, max_batch=5000, account_homepage="https://x")
    assert [e.client_event_id for e in events] == [b["client_event_id"] for b in batch]
    assert all(e.occurred_at.tzinfo is not None for e in events)
    assert [e.count for e in events] == [b["count"] for b in batch]


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.lists(json_values, max_size=4)))
def test_xapi_parsing_never_crashes(payload):
    try:
        events = parse_statements(payload, max_batch=100, known_course_iris={"https://c/1"})
    except ValidationFailure as failure:
        assert failure.as_response()["detail"]
    else:
        assert len(events) == (len(payload) if isinstance(payload, list) else 1)
