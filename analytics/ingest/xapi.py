"""Valid xAPI 1.0.3 statements (statement_rules.py) -> what the LRS stores and the events.

`statement_facts` reads the columns the Statement resource filters on and the course
IRIs a statement may belong to; `statement_events` maps a placed statement to learner
events: one per Agent actor, one per member of a Group actor (client ids
``<statement id>`` and ``<statement id>:<n>``). The course is the first context
parent / grouping / other activity, or the object, that is a known course IRI, else
the course of the already known object activity.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from analytics.ingest.statement_rules import MAX_DURATION_SECONDS, MAX_NAME, VOIDED
from analytics.ingest.validation import NormalizedEvent

__all__ = ["MAX_NAME", "StatementFacts", "parse_duration", "statement_events", "statement_facts"]

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
# Activity types that name a course: ADL's, and the one Moodle's logstore_xapi uses.
COURSE_TYPES = {
    "http://adlnet.gov/expapi/activities/course",
    "http://id.tincanapi.com/activitytype/lms/course",
}


def parse_duration(value: str) -> float | None:
    """ISO 8601 duration (days, hours, minutes, seconds) in seconds, or None otherwise."""
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


def agent_key(agent: Any) -> str | None:
    """The identity of an Agent or identified Group: its IFI as one string."""
    if not isinstance(agent, dict):
        return None
    if isinstance(agent.get("mbox"), str):
        return "mbox:" + agent["mbox"].lower()
    if isinstance(agent.get("mbox_sha1sum"), str):
        return "mbox_sha1sum:" + agent["mbox_sha1sum"].lower()
    if isinstance(agent.get("openid"), str):
        return "openid:" + agent["openid"]
    account = agent.get("account")
    if isinstance(account, dict):
        return f"account:{account.get('homePage')}|{account.get('name')}"
    return None


def _identity(agent: dict[str, Any]) -> tuple[str, str, str] | None:
    """(namespace, identifier, email) of an Agent, as learners are pseudonymised."""
    if isinstance(agent.get("mbox"), str):
        email = agent["mbox"][len("mailto:") :].lower()
        return "mbox", email, email
    if isinstance(agent.get("account"), dict):
        account = agent["account"]
        return "account", f"{account['homePage']}|{account['name']}", ""
    if isinstance(agent.get("mbox_sha1sum"), str):
        return "mbox_sha1sum", agent["mbox_sha1sum"].lower(), ""
    if isinstance(agent.get("openid"), str):
        return "openid", agent["openid"], ""
    return None


def _entries(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _agents_in(value: Any) -> list[str]:
    """Keys of an Agent or Group and of the Group's members."""
    if not isinstance(value, dict):
        return []
    keys = [k for k in [agent_key(value)] if k is not None]
    for member in _entries(value.get("member", [])):
        if (key := agent_key(member)) is not None:
            keys.append(key)
    return keys


@dataclass(slots=True)
class StatementFacts:
    verb_id: str
    activity_id: str
    registration: str | None
    actor_key: str
    agents: list[str]
    related_agents: list[str]
    related_activities: list[str]
    # Course IRIs the statement may belong to, most specific first; the first is where an
    # unplaced statement is held (the data-quality page counts by it).
    candidates: list[str] = field(default_factory=list)
    voids: str | None = None
    # The statement a StatementRef object points to (filters also return statements
    # targeting a match).
    target: str | None = None
    # (namespace, identifier) of each learner: the Agent actor, or the Group actor's members.
    learners: list[tuple[str, str]] = field(default_factory=list)


def _part_facts(part: dict[str, Any], activities: list[str], agents: list[str]) -> None:
    """Activities and agents of a statement or SubStatement (object, context)."""
    obj = part.get("object", {})
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        activities.append(obj["id"])
    elif kind in ("Agent", "Group"):
        agents.extend(_agents_in(obj))
    elif kind == "SubStatement":
        agents.extend(_agents_in(obj.get("actor")))
        _part_facts(obj, activities, agents)
    context = part.get("context", {})
    for name in ("instructor", "team"):
        agents.extend(_agents_in(context.get(name)))
    for entries in context.get("contextActivities", {}).values():
        activities.extend(e["id"] for e in _entries(entries))


def statement_facts(statement: dict[str, Any]) -> StatementFacts:
    """The filter columns of a valid statement."""
    obj = statement["object"]
    kind = obj.get("objectType", "Activity")
    actor_agents = _agents_in(statement["actor"])
    agents = list(actor_agents)
    if kind in ("Agent", "Group"):
        agents += _agents_in(obj)
    activities: list[str] = []
    related_agents = list(actor_agents) + _agents_in(statement.get("authority"))
    _part_facts(statement, activities, related_agents)
    context = statement.get("context", {})
    return StatementFacts(
        verb_id=statement["verb"]["id"],
        activity_id=obj["id"] if kind == "Activity" else "",
        registration=context.get("registration"),
        actor_key=agent_key(statement["actor"]) or "",
        agents=sorted(set(agents)),
        related_agents=sorted(set(related_agents)),
        related_activities=sorted(set(activities)),
        candidates=_candidates(statement),
        voids=obj["id"].lower() if statement["verb"]["id"] == VOIDED else None,
        target=obj["id"].lower() if kind == "StatementRef" else None,
        learners=[
            identity[:2]
            for agent in _learner_agents(statement["actor"])
            if (identity := _identity(agent)) is not None
        ],
    )


def _learner_agents(actor: dict[str, Any]) -> list[dict[str, Any]]:
    if actor.get("objectType") == "Group":
        return _entries(actor.get("member", []))
    return [actor]


def _candidates(statement: dict[str, Any]) -> list[str]:
    """Course IRIs in order: course-typed activities, then the last grouping (Moodle lists
    site then course), the parents, the other groupings, the object (a course view)."""
    obj = statement["object"]
    context = statement.get("context", {}).get("contextActivities", {})
    parents, groupings = _entries(context.get("parent", [])), _entries(context.get("grouping", []))
    others = _entries(context.get("other", []))
    activity = [obj] if obj.get("objectType", "Activity") == "Activity" else []
    ordered = [*groupings[-1:], *parents, *groupings[:-1], *others, *activity]
    typed = [a for a in ordered if a.get("definition", {}).get("type") in COURSE_TYPES]
    out: list[str] = []
    for entry in typed + ordered:
        if entry["id"] not in out:
            out.append(entry["id"])
    return out


def course_of(
    facts: StatementFacts, known_course_iris: set[str], item_course_iris: dict[str, str]
) -> str | None:
    """The known course IRI a statement belongs to, or None (held as unplaced)."""
    for iri in facts.candidates:
        if iri in known_course_iris:
            return iri
    return item_course_iris.get(facts.activity_id) if facts.activity_id else None


def _last_segment(iri: str) -> str:
    return re.split(r"[/#:]", iri.rstrip("/"))[-1] or iri


def _lang_string(value: Any) -> str:
    if isinstance(value, dict) and value:
        return str(value.get("en-US") or value.get("en") or next(iter(value.values())))
    return ""


def _score(result: dict[str, Any]) -> float | None:
    """A score out of 100 (scaled x 100, else raw within min..max, else raw)."""
    score = result.get("score", {})
    if score.get("scaled") is not None:
        return float(score["scaled"]) * 100
    raw, low, high = score.get("raw"), score.get("min"), score.get("max")
    if raw is None:
        return None
    if low is not None and high is not None and high > low:
        return 100 * (raw - low) / (high - low)
    return float(raw)


def statement_events(
    statement: dict[str, Any], *, course_iri: str, occurred_at: dt.datetime
) -> list[NormalizedEvent]:
    """The learner events of a placed, valid statement (none for a voiding statement)."""
    if statement["verb"]["id"] == VOIDED:
        return []
    actor = statement["actor"]
    learners = _learner_agents(actor)
    if actor.get("objectType") == "Group":
        ids = [f"{statement['id']}:{n}" for n in range(len(learners))]
    else:
        ids = [statement["id"]]
    obj = statement["object"]
    is_activity = obj.get("objectType", "Activity") == "Activity"
    definition = obj.get("definition", {}) if is_activity else {}
    activity_type = definition.get("type")
    item = obj["id"] if is_activity and obj["id"] != course_iri else None
    result = statement.get("result", {})
    duration = parse_duration(result["duration"]) if "duration" in result else None
    if duration is not None and duration > MAX_DURATION_SECONDS:
        duration = None
    verb = _last_segment(statement["verb"]["id"])[:40]
    events = []
    for client_id, learner in zip(ids, learners, strict=True):
        identity = _identity(learner)
        if identity is None:
            continue
        events.append(
            NormalizedEvent(
                client_event_id=client_id,
                learner_namespace=identity[0],
                learner_identifier=identity[1],
                learner_email=identity[2],
                learner_name=str(learner.get("name", ""))[:MAX_NAME],
                verb=verb,
                occurred_at=occurred_at,
                course_iri=course_iri,
                item_external_id=item,
                new_item_type=(_last_segment(activity_type)[:40] if activity_type else "activity"),
                new_item_title=_lang_string(definition.get("name"))[:200],
                duration_seconds=duration,
                score=_score(result),
            )
        )
    return events
