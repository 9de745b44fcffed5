"""The input boundary (`eduplatform.core.inputs`), value by value.

tests/fuzz/test_validation_properties.py throws random input at the same checks; these
name the boundary values, the messages and the precedence of the checks, and run in a
second (they are `make mutate`'s tests for this module).
"""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import override_settings
from rest_framework.exceptions import ParseError, ValidationError

from eduplatform.core.inputs import (
    JSON_MAX_DEPTH,
    AsciiIntegerField,
    BoundedJSONParser,
    api_exception_handler,
    ascii_int,
    bounded_event_time,
    event_time_bounds,
    is_pseudonym,
    json_too_deep,
    number_error,
    parse_event_time,
    storable_text,
    text_error,
)

UTC = dt.UTC
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)
LATEST = dt.datetime(2030, 1, 1, tzinfo=UTC)


# -- integers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("0", 0),
        ("7", 7),
        ("123456789", 123_456_789),  # nine digits: the most an int4 column is asked
        (42, 42),  # a JSON number passes as it is
        (0, 0),
    ],
)
def test_ascii_int_accepts(raw, value) -> None:
    assert ascii_int(raw) == value


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1234567890",
        " 5",
        "5 ",
        "-1",
        "+1",
        "1.0",
        "\u0663",
        "\uff15",
        "1_000",
        True,
        False,
        5.0,
        None,
    ],
)
def test_ascii_int_refuses(raw) -> None:
    assert ascii_int(raw) is None


def test_ascii_integer_field() -> None:
    field = AsciiIntegerField(max_value=10)
    assert field.run_validation("10") == 10
    assert field.run_validation(3) == 3
    with pytest.raises(ValidationError) as refused:
        field.run_validation("\u0661")
    assert refused.value.detail == ["Enter a whole number in ASCII digits (0-9)."]
    # The digits pass this field's own check, then IntegerField's bounds still apply.
    with pytest.raises(ValidationError) as too_big:
        field.run_validation("11")
    assert "less than or equal to 10" in str(too_big.value.detail[0])


# -- text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [("", True), ("plain", True), ("é 漢字 😀", True), ("a\x00b", False), ("é\x00", False)],
)
def test_storable_text(value, ok) -> None:
    assert storable_text(value) is ok


def test_lone_surrogates_are_not_storable() -> None:
    assert storable_text("a\ud800") is False
    assert storable_text("\udfff") is False


def test_text_error_messages_and_length_bound() -> None:
    assert text_error("abc", 3) is None
    assert text_error("abcd", 3) == "At most 3 characters."
    assert text_error("x" * 10_000) is None  # no bound given
    assert text_error("ab\x00") == "Must not contain NUL characters."
    assert text_error("ab\ud800") == "Must not contain unpaired surrogate characters."
    # NUL is named first, and either problem before the length.
    assert text_error("\x00\ud800", 1) == "Must not contain NUL characters."
    assert text_error("\ud800abc", 1) == "Must not contain unpaired surrogate characters."
    assert text_error("", 0) is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a", True),
        ("a" * 32, True),
        ("a" * 33, False),
        ("", False),
        ("Az09-_", True),
        ("a b", False),
        ("a/b", False),
        ("abc\n", False),
        ("é", False),
        ("a\x00", False),
        (12, False),
        (None, False),
    ],
)
def test_is_pseudonym(value, ok) -> None:
    assert is_pseudonym(value) is ok


# -- numbers ----------------------------------------------------------------------------


def test_number_error() -> None:
    assert number_error(0, -1, 1) is None
    assert number_error(-1, -1, 1) is None  # bounds included
    assert number_error(1, -1, 1) is None
    assert number_error(0.5, 0, 1) is None
    assert number_error(1.0000001, 0, 1) == "Must be between 0 and 1."
    assert number_error(-0.1, 0, 1) == "Must be between 0 and 1."
    assert number_error(2_000_000, 0, 1e6) == "Must be between 0 and 1e+06."
    # 400 digits: compared as an int, no OverflowError from float().
    assert number_error(10**400, 0, 1e6) == "Must be between 0 and 1e+06."
    for bad in (True, False, "1", None, [1], float("nan"), float("inf"), -float("inf")):
        assert number_error(bad, -1e9, 1e9) == "Must be a finite number.", bad


# -- timestamps -------------------------------------------------------------------------


@override_settings(EVENT_EARLIEST_DATE=dt.date(2001, 2, 3), EVENT_MAX_FUTURE_SECONDS=300)
def test_event_time_bounds_come_from_the_settings() -> None:
    now = dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    earliest, latest = event_time_bounds(now)
    assert earliest == dt.datetime(2001, 2, 3, tzinfo=UTC)
    assert earliest.tzinfo is UTC
    assert latest == now + dt.timedelta(minutes=5)


def test_parse_event_time_converts_to_utc() -> None:
    parsed = parse_event_time("2020-06-01T12:00:00+02:00", EARLIEST, LATEST)
    assert parsed == dt.datetime(2020, 6, 1, 10, 0, tzinfo=UTC)
    assert isinstance(parsed, dt.datetime) and parsed.tzinfo is UTC
    assert parse_event_time("2020-06-01T12:00:00Z", EARLIEST, LATEST) == dt.datetime(
        2020, 6, 1, 12, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (20200601, "Must be an ISO 8601 timestamp string."),
        (None, "Must be an ISO 8601 timestamp string."),
        ("yesterday", "Not a valid ISO 8601 timestamp."),
        ("2020-13-01T00:00:00Z", "Not a valid ISO 8601 timestamp."),  # parse_datetime raises
        ("2020-06-01T12:00:00", "Timestamp must include a timezone offset."),
        ("2031-01-01T00:00:00Z", "Timestamp is in the future."),
        ("1999-12-31T23:59:59Z", "Timestamp is before 2000-01-01."),
        ("0001-01-01T00:00:00+01:00", "Timestamp is before 2000-01-01."),
        ("9999-12-31T23:59:59-01:00", "Timestamp is in the future."),
    ],
)
def test_parse_event_time_refuses(value, problem) -> None:
    assert parse_event_time(value, EARLIEST, LATEST) == problem


def test_bounded_event_time_includes_both_bounds() -> None:
    assert bounded_event_time(EARLIEST, EARLIEST, LATEST) == EARLIEST
    assert bounded_event_time(LATEST, EARLIEST, LATEST) == LATEST
    one = dt.timedelta(microseconds=1)
    assert bounded_event_time(LATEST + one, EARLIEST, LATEST) == "Timestamp is in the future."
    assert bounded_event_time(EARLIEST - one, EARLIEST, LATEST) == (
        "Timestamp is before 2000-01-01."
    )
    # The same instant in another offset is compared as an instant.
    plus_two = dt.timezone(dt.timedelta(hours=2))
    at_latest = LATEST.astimezone(plus_two)
    assert bounded_event_time(at_latest, EARLIEST, LATEST) == LATEST


# -- request bodies ---------------------------------------------------------------------


def test_a_body_over_the_size_limit_is_a_json_413() -> None:
    response = api_exception_handler(RequestDataTooBig("big"), {})
    assert response is not None
    assert response.status_code == 413
    assert response.data == {"detail": "Request body larger than DATA_UPLOAD_MAX_MEMORY_SIZE."}


def test_other_exceptions_keep_drf_handling() -> None:
    response = api_exception_handler(ValidationError({"count": ["bad"]}), {})
    assert response is not None and response.status_code == 400
    assert response.data == {"count": ["bad"]}
    assert api_exception_handler(KeyError("x"), {}) is None  # a 500, as DRF leaves it


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_json_too_deep_bound() -> None:
    assert json_too_deep(nested(JSON_MAX_DEPTH)) is False
    assert json_too_deep(nested(JSON_MAX_DEPTH + 1)) is True
    assert json_too_deep(nested(3), max_depth=3) is False
    assert json_too_deep(nested(4), max_depth=3) is True
    assert json_too_deep(b'{"a": {"b": {"c": 1}}}', max_depth=2) is True
    assert json_too_deep(b'{"a": {"b": 1}, "c": {"d": 2}}', max_depth=2) is False


def test_json_too_deep_counts_depth_not_brackets() -> None:
    # Many brackets side by side are shallow.
    assert json_too_deep(b"[" + b",".join([b"[]"] * 200) + b"]", max_depth=3) is False
    # Brackets inside strings, escaped quotes included, are text.
    text = json.dumps(["[[[[{{{{", 'a "quoted" [[[ string', "\\"]).encode()
    assert json_too_deep(text, max_depth=1) is False
    assert json_too_deep(json.dumps([["[" * 10]]).encode(), max_depth=1) is True
    # Brackets only inside a string: past the quick count, nothing left to nest.
    assert json_too_deep(json.dumps("[" * 100).encode()) is False
    assert json_too_deep(b'"[{"', max_depth=0) is False


def test_json_too_deep_escapes() -> None:
    # An escaped backslash ends before the closing quote; an escaped quote does not close.
    for strings in (["\\", "[[[[", "\\"], ['\\"', "[[[["], ['\\\\"[', "{{{{"]):
        text = json.dumps([strings]).encode()
        assert json_too_deep(text, max_depth=2) is False, text
        assert json_too_deep(json.dumps([[strings]]).encode(), max_depth=2) is True, text


def parse(body: bytes, **context) -> object:
    return BoundedJSONParser().parse(io.BytesIO(body), "application/json", context)


def test_parser_reads_json() -> None:
    assert parse(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert parse('["\u00e9"]'.encode("latin-1"), encoding="latin-1") == ["é"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (nested(JSON_MAX_DEPTH + 1), f"nested deeper than {JSON_MAX_DEPTH} levels"),
        (b"[1e999]", "out of range"),
        (b"[-1e999]", "out of range"),
        (b"[NaN]", "JSON parse error"),
        (b"[Infinity]", "JSON parse error"),
        (b"[\xff]", "JSON parse error"),
        (b"[1,", "JSON parse error"),
    ],
)
def test_parser_refuses(body, message) -> None:
    with pytest.raises(ParseError, match=message):
        parse(body)


def test_an_overflowing_number_is_quoted_to_20_characters() -> None:
    with pytest.raises(ParseError) as refused:
        parse(b"[" + b"9" * 30 + b"e999]")
    assert str(refused.value.detail) == (
        "JSON parse error - number " + "9" * 20 + "... is out of range"
    )


def test_parser_accepts_the_deepest_allowed_body() -> None:
    value = parse(nested(JSON_MAX_DEPTH))
    for _ in range(JSON_MAX_DEPTH - 1):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == []
