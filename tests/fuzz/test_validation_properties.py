"""Property tests: validation answers any input with events or a ValidationFailure."""

import datetime as dt
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.ingest.statement_rules import statement_errors
from analytics.ingest.validation import ValidationFailure, validate_api_events
from analytics.ingest.xapi import statement_events, statement_facts

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
    # Storable text: no NUL, no lone surrogate (the boundary refuses both).
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=30,
    ).filter(str.strip),
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
def test_xapi_rules_never_crash(payload):
    for statement in payload if isinstance(payload, list) else [payload]:
        errors = statement_errors(statement)
        assert isinstance(errors, dict)
        if not errors:  # valid: the LRS columns and events can be read from it
            facts = statement_facts(statement)
            now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            statement_events({"id": "x", **statement}, course_iri="https://c/1", occurred_at=now)
            assert facts.verb_id


# --- the input boundary (eduplatform/core/inputs.py) ------------------------------------

EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
# Any code point, lone surrogates and NUL included (hypothesis draws them often).
any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
extreme_floats = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False)
extreme_numbers = st.one_of(
    extreme_floats,
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.sampled_from([1e308, -1e308, 10**400, -(10**400), True, None, "1"]),
)
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
extreme_times = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59), timezones=offsets
)


def storable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


@settings(max_examples=300, deadline=None)
@given(any_text, st.integers(min_value=0, max_value=50))
def test_text_error_accepts_exactly_storable_text_that_fits(value, max_length):
    from eduplatform.core.inputs import storable_text, text_error

    ok = storable(value) and len(value) <= max_length
    assert (text_error(value, max_length) is None) == ok
    assert storable_text(value) == storable(value)


@settings(max_examples=300, deadline=None)
@given(extreme_numbers)
def test_number_error_accepts_only_finite_numbers_within_bounds(value):
    from eduplatform.core.inputs import number_error

    problem = number_error(value, -1e6, 1e6)
    if problem is None:
        assert math.isfinite(float(value)) and -1e6 <= float(value) <= 1e6
        assert not isinstance(value, bool)


@settings(max_examples=300, deadline=None)
@given(st.one_of(extreme_times, st.datetimes(min_value=dt.datetime(1, 1, 1))), st.booleans())
def test_event_time_is_bounded_and_converts_without_overflow(when, as_text):
    from eduplatform.core.inputs import bounded_event_time, parse_event_time

    result = (
        parse_event_time(when.isoformat(), EARLIEST, LATEST)
        if as_text
        else bounded_event_time(when, EARLIEST, LATEST)
    )
    if isinstance(result, str):
        assert when.tzinfo is None or not EARLIEST <= when <= LATEST
    else:
        assert result.tzinfo is dt.UTC and EARLIEST <= result <= LATEST
        assert result == when


@settings(max_examples=200, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=120))
def test_json_depth_check_matches_the_parsed_depth(value, extra):
    import json

    from eduplatform.core.inputs import json_too_deep

    def depth(v):
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        return 0

    nested = value
    for _ in range(extra):
        nested = [nested]
    body = json.dumps(nested, allow_nan=True).encode()
    assert json_too_deep(body, 64) == (depth(nested) > 64)


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_pseudonym_check_never_lets_nul_or_non_ascii_through(value):
    from eduplatform.core.inputs import is_pseudonym

    if is_pseudonym(value):
        assert value.isascii() and value.isprintable() and 0 < len(value) <= 32


hostile_event = st.fixed_dictionaries(
    {
        "client_event_id": any_text,
        "learner_id": any_text,
        "course": any_text,
        "verb": any_text,
        "occurred_at": extreme_times.map(dt.datetime.isoformat),
    },
    optional={
        "item": any_text,
        "count": extreme_numbers,
        "duration_seconds": extreme_numbers,
        "score": extreme_numbers,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_event, min_size=1, max_size=5))
def test_accepted_events_are_storable(batch):
    try:
        events = validate_api_events(batch, max_batch=5000, account_homepage="https://x")
    except ValidationFailure as failure:
        assert all(e["fields"] for e in failure.as_response()["errors"])
        return
    earliest = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
    for event in events:
        for text in (event.client_event_id, event.learner_identifier, event.verb):
            assert storable(text)
        assert event.item_external_id is None or storable(event.item_external_id)
        assert earliest <= event.occurred_at <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        for number in (event.duration_seconds, event.score):
            assert number is None or math.isfinite(number)


hostile_statement = st.fixed_dictionaries(
    {
        "actor": st.fixed_dictionaries({"mbox": any_text.map(lambda t: f"mailto:{t}@x.org")}),
        "verb": st.fixed_dictionaries({"id": any_text.map(lambda t: f"http://v/{t}")}),
        "object": st.fixed_dictionaries(
            {"id": st.just("https://c/1")},
            optional={
                "definition": st.fixed_dictionaries(
                    {"name": st.dictionaries(st.just("en-US"), any_text, max_size=1)},
                    optional={"type": any_text},
                )
            },
        ),
    },
    optional={
        "timestamp": extreme_times.map(dt.datetime.isoformat),
        "result": st.fixed_dictionaries(
            {},
            optional={
                "duration": st.sampled_from(["PT1H", "P" + "9" * 400 + "D", "P1D", "PT0.5S"]),
                "score": st.fixed_dictionaries(
                    {}, optional={"raw": extreme_numbers, "min": extreme_numbers}
                ),
            },
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_statement, min_size=1, max_size=4))
def test_accepted_statements_are_storable(statements):
    events = []
    for statement in statements:
        if statement_errors(statement):
            continue
        occurred = statement.get("timestamp", "2026-01-01T00:00:00+00:00")
        at = dt.datetime.fromisoformat(occurred)
        events += statement_events(
            {"id": "x", **statement}, course_iri="https://c/1", occurred_at=at
        )
    for event in events:
        for text in (event.learner_identifier, event.learner_email, event.verb):
            assert storable(text)
        assert storable(event.new_item_title) and storable(event.new_item_type or "")
        assert event.occurred_at >= dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
        for number in (event.duration_seconds, event.score):
            assert number is None or math.isfinite(number)
