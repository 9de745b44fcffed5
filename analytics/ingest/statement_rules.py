"""Every MUST of the xAPI 1.0.3 statement requirements (Data, section 2), checked once, here.

Hand-written rather than ralph-malph's pydantic models (docs/xapi.md says why: on
2026-12-07 they accepted an Agent object without objectType and timestamps without
a timezone, refused a Group as context instructor, and took 470 us per statement,
which alone would hold two workers under the 5,000 statements/s target).

`statement_errors(statement)` answers field path -> messages ({} when the statement is
valid). The platform adds its input boundary (eduplatform/core/inputs.py): text that
PostgreSQL cannot store (NUL, lone surrogates) is refused anywhere in the document,
activity and verb IRIs fit the item column (500 characters), and timestamps lie within
the plausible event range.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics.ingest.statement_terms import (
    ACTIVITY_KEYS,
    AGENT_KEYS,
    ATTACHMENT_KEYS,
    COMPONENT_LISTS,
    CONTEXT_ACTIVITY_KEYS,
    CONTEXT_KEYS,
    DEFINITION_KEYS,
    DURATION,
    GROUP_KEYS,
    IFIS,
    INTERACTION_TYPES,
    RESULT_KEYS,
    SCORE_KEYS,
    STATEMENT_KEYS,
    SUBSTATEMENT_KEYS,
    duration_seconds,
)
from analytics.ingest.validation import MAX_SCORE
from eduplatform.core.inputs import (
    bounded_event_time,
    event_time_bounds,
    number_error,
    storable_text,
    text_error,
)

Errors = dict[str, list[str]]

# Activity ids are ContentItem.external_id (500 characters); verb and context IRIs get the same.
MAX_IRI = 500
MAX_NAME = 200
MAX_DURATION_SECONDS = 366 * 86400.0
VOIDED = "http://adlnet.gov/expapi/verbs/voided"

_IRI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>\"{}|\\^`]+$")
_MBOX = re.compile(r"^mailto:[^@\s]+@[^@\s]+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"
)
# RFC 3339 reserves -00:00 for "offset unknown", which xAPI forbids.
_UNKNOWN_OFFSET = re.compile(r"-00(?::?00)?$")
_VERSION = re.compile(r"^1\.0(?:\.\d+)?$")
# RFC 5646 (BCP 47) language tags: langtag, private use, the irregular grandfathered ones.
_LANGTAG = re.compile(
    r"^(?:(?:[a-zA-Z]{2,3}(?:-[a-zA-Z]{3}){0,3}|[a-zA-Z]{4,8})"
    r"(?:-[a-zA-Z]{4})?(?:-(?:[a-zA-Z]{2}|\d{3}))?"
    r"(?:-(?:[a-zA-Z0-9]{5,8}|\d[a-zA-Z0-9]{3}))*"
    r"(?:-[0-9a-wyzA-WYZ](?:-[a-zA-Z0-9]{2,8})+)*"
    r"(?:-x(?:-[a-zA-Z0-9]{1,8})+)?|x(?:-[a-zA-Z0-9]{1,8})+"
    r"|en-GB-oed|i-(?:ami|bnn|default|enochian|hak|klingon|lux|mingo|navajo|pwn|tao|tay|tsu)"
    r"|sgn-(?:BE-FR|BE-NL|CH-DE))$"
)


def statement_errors(statement: Any, *, now: dt.datetime | None = None) -> Errors:
    """Field path -> messages for every rule `statement` breaks ({} if it is valid)."""
    errors: Errors = {}
    if not isinstance(statement, dict):
        return {"non_field_errors": ["A statement must be a JSON object."]}
    _document(statement, "", errors)
    _keys(statement, STATEMENT_KEYS, "", errors)
    if "id" in statement:
        _uuid(statement["id"], "id", errors)
    for name in ("actor", "verb", "object"):
        if name not in statement:
            _add(errors, name, "This property is required.")
    if "actor" in statement:
        _actor(statement["actor"], "actor", errors)
    if "verb" in statement:
        _verb(statement["verb"], "verb", errors)
    if "object" in statement:
        _object(statement["object"], "object", errors, in_substatement=False)
    _common(statement, "", errors, now)
    if "stored" in statement:
        _timestamp(statement["stored"], "stored", errors, None)
    if "authority" in statement:
        _authority(statement["authority"], errors)
    if "version" in statement and not (
        isinstance(statement["version"], str) and _VERSION.match(statement["version"])
    ):
        _add(errors, "version", "Must be a 1.0.x version.")
    verb, obj = statement.get("verb"), statement.get("object")
    voiding = isinstance(verb, dict) and verb.get("id") == VOIDED
    if voiding and not (isinstance(obj, dict) and obj.get("objectType") == "StatementRef"):
        _add(errors, "object", "A voiding statement's object must be a StatementRef.")
    return errors


def _add(errors: Errors, path: str, message: str) -> None:
    errors.setdefault(path or "non_field_errors", []).append(message)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _clean(value: Any, in_extensions: bool = False) -> bool:
    """True if `value` holds no null outside extensions and only storable text: the fast
    path of `_document`, which builds field paths only for a document that needs them."""
    if isinstance(value, str):
        return "\x00" not in value and (value.isascii() or storable_text(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not _clean(key) or (item is None and not in_extensions):
                return False
            if item is not None and not _clean(item, in_extensions or key == "extensions"):
                return False
    elif isinstance(value, list):
        for item in value:
            if (item is None and not in_extensions) or not _clean(item, in_extensions):
                return False
    return True


def _document(value: Any, path: str, errors: Errors) -> None:
    """No null values outside extensions (spec: 2.2), and only text PostgreSQL can store."""
    if not path and _clean(value):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            child = _join(path, str(key))
            if (problem := text_error(key)) is not None:
                _add(errors, child, problem)
            if item is None:
                _add(errors, child, "Must not be null.")
            elif key == "extensions" or (
                key in ("name", "description", "display") and isinstance(item, dict)
            ):
                # Extensions may hold nulls; a language map's errors name the map.
                _storable_only(item, child, errors)
            else:
                _document(item, child, errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if item is None:
                _add(errors, f"{path}[{index}]", "Must not be null.")
            else:
                _document(item, f"{path}[{index}]", errors)
    elif isinstance(value, str) and (problem := text_error(value)) is not None:
        _add(errors, path, problem)


def _storable_only(value: Any, path: str, errors: Errors) -> None:
    """Only storable text below `path` (nulls are allowed or checked elsewhere)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if (problem := text_error(str(key))) is not None:
                _add(errors, path, problem)
            _storable_only(item, path, errors)
    elif isinstance(value, list):
        for item in value:
            _storable_only(item, path, errors)
    elif isinstance(value, str) and (problem := text_error(value)) is not None:
        _add(errors, path, problem)


def _keys(value: dict[str, Any], allowed: set[str], path: str, errors: Errors) -> None:
    for key in value:
        if key not in allowed:
            _add(errors, _join(path, key), "Unknown property.")


def _object_at(value: Any, path: str, errors: Errors) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    _add(errors, path, "Must be an object.")
    return None


def iri_ok(value: Any, max_length: int | None = None) -> bool:
    if not isinstance(value, str) or not _IRI.match(value):
        return False
    return max_length is None or len(value) <= max_length


def _iri(value: Any, path: str, errors: Errors, max_length: int | None = None) -> None:
    if not iri_ok(value):
        _add(errors, path, "Must be an absolute IRI.")
    elif max_length is not None and len(value) > max_length:
        _add(errors, path, f"At most {max_length} characters.")


def _uuid(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, str) or not _UUID.match(value):
        _add(errors, path, "Must be a UUID.")


def _string(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, str):
        _add(errors, path, "Must be a string.")


def _bool(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, bool):
        _add(errors, path, "Must be true or false.")


def language_tag_ok(value: Any) -> bool:
    return isinstance(value, str) and _LANGTAG.match(value) is not None


def _language_map(value: Any, path: str, errors: Errors) -> None:
    if (mapping := _object_at(value, path, errors)) is None:
        return
    for tag, text in mapping.items():
        if not language_tag_ok(tag):
            _add(errors, _join(path, tag), "Keys must be RFC 5646 language tags.")
        _string(text, _join(path, tag), errors)


def _extensions(value: Any, path: str, errors: Errors) -> None:
    if (mapping := _object_at(value, path, errors)) is None:
        return
    for key in mapping:
        if not iri_ok(key):
            _add(errors, _join(path, key), "Extension keys must be IRIs.")


def _timestamp(
    value: Any, path: str, errors: Errors, bounds: tuple[dt.datetime, dt.datetime] | None
) -> None:
    if not isinstance(value, str) or not _TIMESTAMP.match(value) or _UNKNOWN_OFFSET.search(value):
        _add(errors, path, "Must be an ISO 8601 timestamp with a timezone.")
        return
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        _add(errors, path, "Not a valid ISO 8601 timestamp.")
    elif bounds is not None and isinstance(problem := bounded_event_time(parsed, *bounds), str):
        _add(errors, path, problem)


# --- actors ---------------------------------------------------------------------------


def _ifis(agent: dict[str, Any], path: str, errors: Errors) -> int:
    """Check each inverse functional identifier present; return how many there are."""
    present = [name for name in IFIS if name in agent]
    for name in present:
        value, where = agent[name], _join(path, name)
        if name == "mbox" and not (isinstance(value, str) and _MBOX.match(value)):
            _add(errors, where, "Must be a mailto: IRI of an email address.")
        elif name == "mbox_sha1sum" and not (isinstance(value, str) and _SHA1.match(value)):
            _add(errors, where, "Must be a SHA-1 hex digest.")
        elif name == "openid":
            _iri(value, where, errors)
        elif name == "account" and (account := _object_at(value, where, errors)) is not None:
            _keys(account, {"homePage", "name"}, where, errors)
            _iri(account.get("homePage"), _join(where, "homePage"), errors)
            if not isinstance(account.get("name"), str) or not account.get("name"):
                _add(errors, _join(where, "name"), "Required string.")
    return len(present)


def _agent(value: Any, path: str, errors: Errors) -> None:
    if (agent := _object_at(value, path, errors)) is None:
        return
    _keys(agent, AGENT_KEYS, path, errors)
    if agent.get("objectType", "Agent") != "Agent":
        _add(errors, _join(path, "objectType"), "Must be Agent.")
    if "name" in agent:
        _string(agent["name"], _join(path, "name"), errors)
    if _ifis(agent, path, errors) != 1:
        _add(errors, path, "An Agent needs exactly one of mbox, mbox_sha1sum, openid, account.")


def _group(group: dict[str, Any], path: str, errors: Errors) -> None:
    _keys(group, GROUP_KEYS, path, errors)
    if "name" in group:
        _string(group["name"], _join(path, "name"), errors)
    identifiers = _ifis(group, path, errors)
    if identifiers > 1:
        _add(errors, path, "A Group has at most one identifier.")
    members = group.get("member")
    if identifiers == 0 and not (isinstance(members, list) and members):
        _add(errors, _join(path, "member"), "An anonymous Group needs a list of members.")
    if members is not None and not isinstance(members, list):
        _add(errors, _join(path, "member"), "Must be a list of Agents.")
    for index, member in enumerate(members if isinstance(members, list) else []):
        _agent(member, f"{path}.member[{index}]", errors)


def _actor(value: Any, path: str, errors: Errors) -> None:
    """An Agent, or a Group (objectType required)."""
    if (actor := _object_at(value, path, errors)) is None:
        return
    if actor.get("objectType") == "Group":
        _group(actor, path, errors)
    else:
        _agent(actor, path, errors)


def _authority(value: Any, errors: Errors) -> None:
    """An Agent, or an OAuth pair: an anonymous Group of exactly two Agents."""
    _actor(value, "authority", errors)
    if isinstance(value, dict) and value.get("objectType") == "Group":
        members = value.get("member")
        if any(name in value for name in IFIS) or not (
            isinstance(members, list) and len(members) == 2
        ):
            _add(errors, "authority", "A Group authority is an anonymous pair of Agents.")


# --- verb and object ------------------------------------------------------------------


def _verb(value: Any, path: str, errors: Errors) -> None:
    if (verb := _object_at(value, path, errors)) is None:
        return
    _keys(verb, {"id", "display"}, path, errors)
    _iri(verb.get("id"), _join(path, "id"), errors, MAX_IRI)
    if "display" in verb:
        _language_map(verb["display"], _join(path, "display"), errors)


def _object(value: Any, path: str, errors: Errors, *, in_substatement: bool) -> None:
    if (obj := _object_at(value, path, errors)) is None:
        return
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        _activity(obj, path, errors)
    elif kind == "Agent":
        _agent(obj, path, errors)
    elif kind == "Group":
        _group(obj, path, errors)
    elif kind == "StatementRef":
        _keys(obj, {"objectType", "id"}, path, errors)
        _uuid(obj.get("id"), _join(path, "id"), errors)
    elif kind == "SubStatement" and not in_substatement:
        _substatement(obj, path, errors)
    elif kind == "SubStatement":
        _add(errors, _join(path, "objectType"), "A SubStatement must not contain a SubStatement.")
    else:
        _add(errors, _join(path, "objectType"), "Unknown objectType.")


def _activity(activity: dict[str, Any], path: str, errors: Errors) -> None:
    _keys(activity, ACTIVITY_KEYS, path, errors)
    _iri(activity.get("id"), _join(path, "id"), errors, MAX_IRI)
    if "definition" not in activity:
        return
    where = _join(path, "definition")
    if (definition := _object_at(activity["definition"], where, errors)) is None:
        return
    _keys(definition, DEFINITION_KEYS, where, errors)
    for name in ("name", "description"):
        if name in definition:
            _language_map(definition[name], _join(where, name), errors)
    for name in ("type", "moreInfo"):
        if name in definition:
            _iri(definition[name], _join(where, name), errors, MAX_IRI)
    if "extensions" in definition:
        _extensions(definition["extensions"], _join(where, "extensions"), errors)
    kind = definition.get("interactionType")
    if "interactionType" in definition and not (
        isinstance(kind, str) and kind in INTERACTION_TYPES
    ):
        _add(errors, _join(where, "interactionType"), "Unknown interaction type.")
    for name in ("correctResponsesPattern", *COMPONENT_LISTS):
        if name in definition and "interactionType" not in definition:
            _add(errors, _join(where, name), "Only allowed with an interactionType.")
    pattern = definition.get("correctResponsesPattern")
    if pattern is not None and not (
        isinstance(pattern, list) and all(isinstance(p, str) for p in pattern)
    ):
        _add(errors, _join(where, "correctResponsesPattern"), "Must be a list of strings.")
    for name in COMPONENT_LISTS:
        if name in definition:
            _components(definition[name], _join(where, name), errors)


def _components(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, list):
        _add(errors, path, "Must be a list of interaction components.")
        return
    seen: set[str] = set()
    for index, component in enumerate(value):
        where = f"{path}[{index}]"
        if (item := _object_at(component, where, errors)) is None:
            continue
        _keys(item, {"id", "description"}, where, errors)
        if not isinstance(item.get("id"), str) or not item["id"]:
            _add(errors, _join(where, "id"), "Required string.")
        elif item["id"] in seen:
            _add(errors, _join(where, "id"), "Ids must be distinct within the list.")
        else:
            seen.add(item["id"])
        if "description" in item:
            _language_map(item["description"], _join(where, "description"), errors)


def _substatement(sub: dict[str, Any], path: str, errors: Errors) -> None:
    _keys(sub, SUBSTATEMENT_KEYS, path, errors)
    for name in ("actor", "verb", "object"):
        if name not in sub:
            _add(errors, _join(path, name), "This property is required.")
    if "actor" in sub:
        _actor(sub["actor"], _join(path, "actor"), errors)
    if "verb" in sub:
        _verb(sub["verb"], _join(path, "verb"), errors)
    if "object" in sub:
        _object(sub["object"], _join(path, "object"), errors, in_substatement=True)
    _common(sub, path, errors, None)


# --- result, context, timestamp, attachments (statement and SubStatement) -------------


def _common(value: dict[str, Any], path: str, errors: Errors, now: dt.datetime | None) -> None:
    if "result" in value:
        _result(value["result"], _join(path, "result"), errors)
    if "context" in value:
        _context(value["context"], value.get("object"), _join(path, "context"), errors)
    if "timestamp" in value:
        # Statements may be dated in the future (an LRS must accept them; their events are
        # dated when stored), not before the platform's earliest plausible date.
        earliest, _ = event_time_bounds(now or timezone.now())
        bounds = (earliest, dt.datetime.max.replace(tzinfo=dt.UTC) - dt.timedelta(days=2))
        _timestamp(value["timestamp"], _join(path, "timestamp"), errors, bounds)
    if "attachments" in value:
        _attachments(value["attachments"], _join(path, "attachments"), errors)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _result(value: Any, path: str, errors: Errors) -> None:
    if (result := _object_at(value, path, errors)) is None:
        return
    _keys(result, RESULT_KEYS, path, errors)
    for name in ("success", "completion"):
        if name in result:
            _bool(result[name], _join(path, name), errors)
    if "response" in result:
        _string(result["response"], _join(path, "response"), errors)
    duration = result.get("duration")
    if "duration" in result and not (
        isinstance(duration, str)
        and DURATION.match(duration)
        and duration not in ("P", "PT")
        and not duration.endswith("T")
    ):
        _add(errors, _join(path, "duration"), "Must be an ISO 8601 duration.")
    elif isinstance(duration, str) and not math.isfinite(duration_seconds(duration)):
        # Platform bound: a number of 400 digits is no duration (events keep at most 366 days).
        _add(errors, _join(path, "duration"), "Out of range.")
    if "extensions" in result:
        _extensions(result["extensions"], _join(path, "extensions"), errors)
    if "score" in result:
        _score(result["score"], _join(path, "score"), errors)


def _score(value: Any, path: str, errors: Errors) -> None:
    if (score := _object_at(value, path, errors)) is None:
        return
    _keys(score, SCORE_KEYS, path, errors)
    for name in SCORE_KEYS & score.keys():
        if not _number(score[name]):
            _add(errors, _join(path, name), "Must be a number.")
            return
        # Platform bound: the event's score column holds finite, plausible numbers.
        if (problem := number_error(score[name], -MAX_SCORE, MAX_SCORE)) is not None:
            _add(errors, _join(path, name), problem)
            return
    scaled, raw, low, high = (score.get(k) for k in ("scaled", "raw", "min", "max"))
    if scaled is not None and not -1 <= scaled <= 1:
        _add(errors, _join(path, "scaled"), "Must be between -1 and 1.")
    if low is not None and high is not None and not low < high:
        _add(errors, _join(path, "max"), "Must be greater than min.")
    if raw is not None and low is not None and raw < low:
        _add(errors, _join(path, "raw"), "Must not be below min.")
    if raw is not None and high is not None and raw > high:
        _add(errors, _join(path, "raw"), "Must not be above max.")


def _context(value: Any, obj: Any, path: str, errors: Errors) -> None:
    if (context := _object_at(value, path, errors)) is None:
        return
    _keys(context, CONTEXT_KEYS, path, errors)
    if "registration" in context:
        _uuid(context["registration"], _join(path, "registration"), errors)
    if "instructor" in context:
        _actor(context["instructor"], _join(path, "instructor"), errors)
    if "team" in context:
        team = context["team"]
        if not (isinstance(team, dict) and team.get("objectType") == "Group"):
            _add(errors, _join(path, "team"), "Must be a Group.")
        else:
            _group(team, _join(path, "team"), errors)
    activity_object = isinstance(obj, dict) and obj.get("objectType", "Activity") == "Activity"
    for name in ("revision", "platform"):
        if name in context:
            _string(context[name], _join(path, name), errors)
            if not activity_object:
                _add(errors, _join(path, name), "Only allowed when the object is an Activity.")
    if "language" in context and not language_tag_ok(context["language"]):
        _add(errors, _join(path, "language"), "Must be an RFC 5646 language tag.")
    if "statement" in context:
        where = _join(path, "statement")
        if (ref := _object_at(context["statement"], where, errors)) is not None:
            _keys(ref, {"objectType", "id"}, where, errors)
            if ref.get("objectType") != "StatementRef":
                _add(errors, _join(where, "objectType"), "Must be StatementRef.")
            _uuid(ref.get("id"), _join(where, "id"), errors)
    if "extensions" in context:
        _extensions(context["extensions"], _join(path, "extensions"), errors)
    if "contextActivities" in context:
        _context_activities(context["contextActivities"], _join(path, "contextActivities"), errors)


def _context_activities(value: Any, path: str, errors: Errors) -> None:
    if (activities := _object_at(value, path, errors)) is None:
        return
    _keys(activities, CONTEXT_ACTIVITY_KEYS, path, errors)
    for name in CONTEXT_ACTIVITY_KEYS & activities.keys():
        entries = activities[name]
        for index, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            where = f"{path}.{name}[{index}]"
            if (activity := _object_at(entry, where, errors)) is not None:
                if activity.get("objectType", "Activity") != "Activity":
                    _add(errors, _join(where, "objectType"), "Must be Activity.")
                _activity(activity, where, errors)


def _attachments(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, list):
        _add(errors, path, "Must be a list.")
        return
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if (attachment := _object_at(item, where, errors)) is None:
            continue
        _keys(attachment, ATTACHMENT_KEYS, where, errors)
        for name in ("usageType", "display", "contentType", "length", "sha2"):
            if name not in attachment:
                _add(errors, _join(where, name), "This property is required.")
        if "usageType" in attachment:
            _iri(attachment["usageType"], _join(where, "usageType"), errors)
        for name in ("display", "description"):
            if name in attachment:
                _language_map(attachment[name], _join(where, name), errors)
        if "contentType" in attachment:
            _string(attachment["contentType"], _join(where, "contentType"), errors)
        length = attachment.get("length")
        if "length" in attachment and not (
            isinstance(length, int) and not isinstance(length, bool) and length >= 0
        ):
            _add(errors, _join(where, "length"), "Must be a non-negative integer.")
        if "sha2" in attachment:
            _string(attachment["sha2"], _join(where, "sha2"), errors)
        if "fileUrl" in attachment:
            _iri(attachment["fileUrl"], _join(where, "fileUrl"), errors)


def agent_errors(value: Any) -> Errors:
    """Why `value` is not an Agent or Group (the GET `agent` filter), or {}."""
    errors: Errors = {}
    _document(value, "agent", errors)
    _actor(value, "agent", errors)
    return errors
