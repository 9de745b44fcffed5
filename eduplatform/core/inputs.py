"""The input boundary: every check a value from outside passes before it is used or stored.

One place for what the APIs, the xAPI endpoint and the pages refuse (answered with
400 or 404, never a 500 from the database or the standard library):

- integers from query strings are ASCII digits (`ascii_int`, `AsciiIntegerField`): Python's
  ``int()`` and DRF's ``IntegerField`` accept any Unicode decimal digit (Arabic-Indic,
  full-width) and surrounding blanks (" 5");
- text holds no NUL (PostgreSQL text cannot store it) and no lone surrogate (it has no
  UTF-8 encoding), and fits its column (`text_error`);
- numbers are finite and within bounds (`number_error`);
- timestamps carry an offset, lie between ``EVENT_EARLIEST_DATE`` and
  ``EVENT_MAX_FUTURE_SECONDS`` from now, so they also survive conversion to UTC
  (`parse_event_time`);
- pseudonyms in paths look like pseudonyms (`is_pseudonym`);
- request bodies are bounded in size (Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``, 413 from
  `api_exception_handler`) and JSON in nesting depth before it is parsed
  (`BoundedJSONParser`, which also refuses numbers that overflow to infinity).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from itertools import accumulate
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.response import Response
from rest_framework.utils.json import strict_constant

# Nine digits fit every id and count column (int4 tops out at 2,147,483,647).
MAX_DIGITS = 9
# Deepest JSON a request may nest (an xAPI statement with extensions needs about ten).
JSON_MAX_DEPTH = 64
# Pseudonyms are 24 hex characters (privacy.PSEUDONYM_LENGTH); the column holds 32.
_PSEUDONYM = re.compile(r"[A-Za-z0-9_-]{1,32}", re.ASCII)


def ascii_int(raw: Any) -> int | None:
    """The value of a string of 1 to 9 ASCII digits, else None."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if not isinstance(raw, str) or not (0 < len(raw) <= MAX_DIGITS):
        return None
    if not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)


class AsciiIntegerField(serializers.IntegerField):
    """An IntegerField that takes ASCII digits only (JSON numbers pass as they are)."""

    default_error_messages = {"invalid": _("Enter a whole number in ASCII digits (0-9).")}

    def to_internal_value(self, data: Any) -> int:
        value = ascii_int(data)
        if value is None:
            self.fail("invalid")
        return super().to_internal_value(value)


# --- text ---------------------------------------------------------------------------


def storable_text(value: str) -> bool:
    """True if PostgreSQL can store `value` as text: no NUL, no lone surrogate."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_error(value: str, max_length: int | None = None) -> str | None:
    """Why `value` may not be stored in a text column of `max_length` characters, or None."""
    if "\x00" in value:
        return "Must not contain NUL characters."
    if not storable_text(value):
        return "Must not contain unpaired surrogate characters."
    if max_length is not None and len(value) > max_length:
        return f"At most {max_length} characters."
    return None


def is_pseudonym(value: Any) -> bool:
    """True if `value` can name a learner in a path (ASCII letters, digits, - and _)."""
    return isinstance(value, str) and _PSEUDONYM.fullmatch(value) is not None


# --- numbers ------------------------------------------------------------------------


def number_error(value: Any, low: float, high: float) -> str | None:
    """Why `value` is not a finite JSON number between `low` and `high`, or None.

    Compares before converting: an integer of 400 digits is out of bounds here
    instead of an OverflowError in ``float()``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "Must be a finite number."
    if isinstance(value, float) and not math.isfinite(value):
        return "Must be a finite number."
    if not low <= value <= high:
        return f"Must be between {low:g} and {high:g}."
    return None


# --- timestamps ---------------------------------------------------------------------


def event_time_bounds(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """(earliest, latest) plausible time of an event, from the settings."""
    earliest = dt.datetime.combine(settings.EVENT_EARLIEST_DATE, dt.time.min, tzinfo=dt.UTC)
    return earliest, now + dt.timedelta(seconds=settings.EVENT_MAX_FUTURE_SECONDS)


def parse_event_time(value: Any, earliest: dt.datetime, latest: dt.datetime) -> dt.datetime | str:
    """The ISO 8601 timestamp `value` in UTC, or why it is refused.

    The bounds are checked on the aware value before it is converted, so a year-1 or
    year-9999 time with an offset is refused instead of overflowing in ``astimezone``.
    """
    if not isinstance(value, str):
        return "Must be an ISO 8601 timestamp string."
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        return "Not a valid ISO 8601 timestamp."
    return bounded_event_time(parsed, earliest, latest)


def bounded_event_time(
    parsed: dt.datetime, earliest: dt.datetime, latest: dt.datetime
) -> dt.datetime | str:
    """`parsed` in UTC if it has an offset and lies within [earliest, latest], else why not."""
    if parsed.utcoffset() is None:
        return "Timestamp must include a timezone offset."
    # Comparing aware datetimes subtracts their offsets as timedeltas: no overflow.
    if parsed > latest:
        return "Timestamp is in the future."
    if parsed < earliest:
        return f"Timestamp is before {earliest.date().isoformat()}."
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # not reachable within the bounds; kept as a last guard
        return "Timestamp is out of range."


# --- request bodies -----------------------------------------------------------------


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body larger than DATA_UPLOAD_MAX_MEMORY_SIZE."
    default_code = "request_too_large"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, answering a body over Django's size limit with a JSON 413.

    Django raises RequestDataTooBig when DRF reads ``request.body``; left alone it
    becomes Django's HTML 400 page.
    """
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES (this module) on import.
    from rest_framework.views import exception_handler

    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    return exception_handler(exc, context)


# Opening brackets -> 1, closing -> -1 (as a signed byte), everything else deleted.
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[{]}"')


def json_too_deep(body: bytes, max_depth: int = JSON_MAX_DEPTH) -> bool:
    """True if the JSON text `body` nests arrays and objects deeper than `max_depth`.

    Linear and without recursion (the parser itself recurses, and 100,000 ``[`` raise
    RecursionError): strings are cut out, the brackets left become +1 / -1 and the
    running sum is the depth. Strings are cut with C-speed bytes methods, not a regex
    (3 ms on a 60 kB body of 100 xAPI statements, now about 0.1 ms): escaped backslashes
    and escaped quotes go first (left to right, as JSON pairs them), then every byte but
    brackets and quotes, and what lies between a quote and the next is string content.
    Malformed JSON may be judged either way: the parser refuses it next.
    """
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    structure = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    brackets = b"".join(structure.split(b'"')[::2]).translate(_BRACKETS, _NOT_BRACKETS)
    return max(accumulate(memoryview(brackets).cast("b")), default=0) > max_depth


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]}... is out of range")
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing deep nesting before parsing and numbers that overflow."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: dict[str, Any] | None = None,
    ) -> Any:
        # DRF hands JSON parsers ``request.body``: Django has already refused a body over
        # DATA_UPLOAD_MAX_MEMORY_SIZE (RequestDataTooBig, 413 by `api_exception_handler`).
        body = stream.read()
        if json_too_deep(body):
            raise ParseError(f"JSON parse error - nested deeper than {JSON_MAX_DEPTH} levels")
        encoding = get_encoding(parser_context or {})
        try:
            text = body.decode(encoding)
            return json.loads(
                text,
                parse_constant=strict_constant if self.strict else None,
                parse_float=_finite_float,
            )
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise ParseError(f"JSON parse error - {exc}") from exc
