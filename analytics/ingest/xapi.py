"""xAPI 1.0.3 statements -> NormalizedEvent.

Supported: actor as an Agent identified by `mbox` or `account`; verb IRI;
object an Activity (its IRI is a ContentItem's external id, or the course's
own IRI); context.contextActivities parent/grouping naming the course IRI;
timestamp; result.score (scaled or raw), result.duration (ISO 8601),
result.completion. Statement ids are UUIDs; missing ones are assigned, as the
LRS does in the specification.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.utils import timezone

from analytics.ingest.validation import (
    MAX_SCORE,
    NormalizedEvent,
    ValidationFailure,
    parse_timestamp,
)
from eduplatform.core.inputs import number_error, text_error

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_IRI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")
_MBOX = re.compile(r"^mailto:[^@\s]+@[^@\s]+$")
# Activity ids are ContentItem.external_id (500 characters); other IRIs get the same bound.
MAX_IRI = 500
MAX_NAME = 200
# A result may cover more than a day (a course attempt), not more than a year.
MAX_DURATION_SECONDS = 366 * 86400.0


def _iri_error(value: Any) -> str | None:
    """Why `value` is not an IRI the platform can store, or None."""
    if not isinstance(value, str) or not _IRI.match(value):
        return "Required IRI."
    return text_error(value, MAX_IRI)


def _text_ok(value: Any, errors: dict[str, list[str]], name: str, max_length: int | None) -> bool:
    """False (with the error noted) if the string `value` cannot be stored."""
    problem = text_error(value, max_length) if isinstance(value, str) else None
    if problem is not None:
        errors.setdefault(name, []).append(problem)
    return problem is None


def parse_duration(value: str) -> float | None:
    """ISO 8601 duration (the subset xAPI uses) in seconds, or None if malformed."""
    match = _DURATION.match(value)
    if not match or value in ("P", "PT") or value.endswith("T"):
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return (
        parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )


def _last_segment(iri: str) -> str:
    return re.split(r"[/#:]", iri.rstrip("/"))[-1] or iri


def _lang_string(value: Any) -> str:
    if isinstance(value, dict) and value:
        return str(value.get("en-US") or value.get("en") or next(iter(value.values())))
    return ""


def _agent(actor: Any, errors: dict[str, list[str]]) -> tuple[str, str, str, str] | None:
    """(namespace, identifier, email, name) of the actor."""
    if not isinstance(actor, dict):
        errors.setdefault("actor", []).append("Must be an Agent object.")
        return None
    if actor.get("objectType", "Agent") != "Agent":
        errors.setdefault("actor", []).append("Only Agent actors are supported.")
        return None
    name = actor["name"] if isinstance(actor.get("name"), str) else ""
    if not _text_ok(name, errors, "actor.name", MAX_NAME):
        return None
    mbox = actor.get("mbox")
    account = actor.get("account")
    if (mbox is None) == (account is None):
        errors.setdefault("actor", []).append("Exactly one of mbox or account is required.")
        return None
    if mbox is not None:
        if not isinstance(mbox, str) or not _MBOX.match(mbox):
            errors.setdefault("actor.mbox", []).append("Must be a mailto: IRI.")
            return None
        if not _text_ok(mbox, errors, "actor.mbox", MAX_IRI):
            return None
        email = mbox[len("mailto:") :].lower()
        return "mbox", email, email, name
    if (
        not isinstance(account, dict)
        or not isinstance(account.get("homePage"), str)
        or not _IRI.match(account["homePage"])
        or not isinstance(account.get("name"), str)
        or not account["name"]
    ):
        errors.setdefault("actor.account", []).append("Needs homePage (IRL) and name.")
        return None
    if not (
        _text_ok(account["homePage"], errors, "actor.account.homePage", MAX_IRI)
        and _text_ok(account["name"], errors, "actor.account.name", MAX_IRI)
    ):
        return None
    return "account", f"{account['homePage']}|{account['name']}", "", name


def _context_course_iris(statement: dict[str, Any]) -> list[str]:
    context = statement.get("context")
    if not isinstance(context, dict):
        return []
    activities = context.get("contextActivities")
    if not isinstance(activities, dict):
        return []
    iris: list[str] = []
    for key in ("parent", "grouping"):
        value = activities.get(key)
        entries = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        iris.extend(
            e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)
        )
    return iris


def object_ids(payload: Any) -> set[str]:
    """Activity ids named by the statements (to look their courses up in one query).

    Only ids that validation can accept: the others never reach the database.
    """
    statements = payload if isinstance(payload, list) else [payload]
    return {
        s["object"]["id"]
        for s in statements
        if isinstance(s, dict)
        and isinstance(s.get("object"), dict)
        and _iri_error(s["object"].get("id")) is None
    }


def parse_statements(
    payload: Any,
    *,
    max_batch: int,
    known_course_iris: set[str],
    item_course_iris: dict[str, str] | None = None,
) -> list[NormalizedEvent]:
    """Validate statements (one or a list) and map each to an event; raise ValidationFailure.

    The course is the context's parent/grouping activity that is a known course
    IRI, else the course of the already known activity (`item_course_iris`).
    """
    item_course_iris = item_course_iris or {}
    statements = payload if isinstance(payload, list) else [payload]
    if not statements:
        raise ValidationFailure(message="No statements.")
    if len(statements) > max_batch:
        raise ValidationFailure(message=f"At most {max_batch} statements per request.")
    events: list[NormalizedEvent] = []
    all_errors: list[dict[str, list[str]] | None] = []
    seen: set[str] = set()
    for statement in statements:
        if not isinstance(statement, dict):
            all_errors.append({"non_field_errors": ["A statement must be a JSON object."]})
            continue
        errors: dict[str, list[str]] = {}
        event = _statement_event(statement, seen, known_course_iris, item_course_iris, errors)
        all_errors.append(errors or None)
        if event is not None:
            events.append(event)
    if any(all_errors):
        raise ValidationFailure(errors=all_errors, message="invalid statements")
    return events


def _statement_event(
    statement: dict[str, Any],
    seen: set[str],
    known_course_iris: set[str],
    item_course_iris: dict[str, str],
    errors: dict[str, list[str]],
) -> NormalizedEvent | None:
    """One statement as an event, or None with `errors` filled; adds its id to `seen`."""
    statement_id = _statement_id(statement, seen, errors)
    agent = _agent(statement.get("actor"), errors)
    verb = statement.get("verb")
    verb_id = verb.get("id") if isinstance(verb, dict) else None
    verb_problem = _iri_error(verb_id)
    if verb_problem is not None:
        errors.setdefault("verb.id", []).append(verb_problem)
    obj = statement.get("object")
    object_id = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or obj.get("objectType", "Activity") != "Activity":
        errors.setdefault("object", []).append("Must be an Activity.")
    elif (object_problem := _iri_error(object_id)) is not None:
        errors.setdefault("object.id", []).append(object_problem)
    definition = obj.get("definition") if isinstance(obj, dict) else None
    definition = definition if isinstance(definition, dict) else {}
    activity_type = definition.get("type")
    title = _lang_string(definition.get("name"))
    _text_ok(activity_type, errors, "object.definition.type", MAX_IRI)
    _text_ok(title, errors, "object.definition.name", None)
    occurred = timezone.now()
    if "timestamp" in statement:
        occurred = parse_timestamp(statement["timestamp"], errors, "timestamp") or occurred
    score, duration = _result(statement, errors)
    course_iri = next((i for i in _context_course_iris(statement) if i in known_course_iris), None)
    if course_iri is None and isinstance(object_id, str):
        if object_id in known_course_iris:
            course_iri = object_id
        else:
            course_iri = item_course_iris.get(object_id)
    if course_iri is None and not errors:
        errors.setdefault("context.contextActivities", []).append(
            "Name the course's activity IRI as parent or grouping."
        )
    if errors:
        return None
    assert agent is not None and isinstance(verb_id, str) and isinstance(object_id, str)
    return NormalizedEvent(
        client_event_id=str(statement_id),
        learner_namespace=agent[0],
        learner_identifier=agent[1],
        learner_email=agent[2],
        learner_name=agent[3],
        verb=_last_segment(verb_id)[:40],
        occurred_at=occurred,
        course_iri=course_iri,
        item_external_id=None if object_id == course_iri else object_id,
        new_item_type=(
            _last_segment(activity_type) if isinstance(activity_type, str) else "activity"
        ),
        new_item_title=title,
        duration_seconds=duration,
        score=score,
    )


def _statement_id(statement: dict[str, Any], seen: set[str], errors: dict[str, list[str]]) -> str:
    """The statement's id as a canonical UUID (a new one if it has none, as an LRS assigns)."""
    statement_id = statement.get("id")
    if statement_id is None:
        statement_id = str(uuid.uuid4())
    else:
        try:
            statement_id = str(uuid.UUID(str(statement_id)))
        except ValueError:
            errors.setdefault("id", []).append("Must be a UUID.")
    if isinstance(statement_id, str) and statement_id in seen:
        errors.setdefault("id", []).append("Repeated statement id in this batch.")
    seen.add(str(statement_id))
    return str(statement_id)


def _result(
    statement: dict[str, Any], errors: dict[str, list[str]]
) -> tuple[float | None, float | None]:
    """(score, duration in seconds) of the statement's result, each None if absent."""
    score = duration = None
    result = statement.get("result", {})
    if not isinstance(result, dict):
        errors.setdefault("result", []).append("Must be an object.")
        result = {}
    score_obj = result.get("score")
    if score_obj is not None:
        score = _score(score_obj, errors)
    if "duration" in result:
        duration = (
            parse_duration(result["duration"]) if isinstance(result["duration"], str) else None
        )
        if duration is None:
            errors.setdefault("result.duration", []).append("Must be an ISO 8601 duration.")
        elif (problem := number_error(duration, 0, MAX_DURATION_SECONDS)) is not None:
            errors.setdefault("result.duration", []).append(problem)
            duration = None
    if "completion" in result and not isinstance(result["completion"], bool):
        errors.setdefault("result.completion", []).append("Must be a boolean.")
    return score, duration


def _score(score: Any, errors: dict[str, list[str]]) -> float | None:
    if not isinstance(score, dict):
        errors.setdefault("result.score", []).append("Must be an object.")
        return None
    for key in ("scaled", "raw", "min", "max"):
        value = score.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            errors.setdefault(f"result.score.{key}", []).append("Must be a number.")
            return None
        if value is not None and (problem := number_error(value, -MAX_SCORE, MAX_SCORE)):
            errors.setdefault(f"result.score.{key}", []).append(problem)
            return None
    scaled = score.get("scaled")
    if scaled is not None:
        if not -1 <= scaled <= 1:
            errors.setdefault("result.score.scaled", []).append("Must be between -1 and 1.")
            return None
        return float(scaled) * 100
    raw = score.get("raw")
    if raw is None:
        return None
    low, high = score.get("min"), score.get("max")
    if low is not None and high is not None:
        if not low <= raw <= high:
            errors.setdefault("result.score.raw", []).append("Must lie between min and max.")
            return None
        return 100 * (raw - low) / (high - low) if high > low else float(raw)
    return float(raw)
