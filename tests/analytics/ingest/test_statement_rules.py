"""Conformance-style cases for statement_rules.py: per MUST of xAPI 1.0.3 (Data, section 2),
statements an LRS must reject and statements it must accept. Written for this project after
the ADL conformance suite's statement structure cases (not copied from it)."""

import copy
from typing import Any

import pytest

from analytics.ingest.statement_rules import statement_errors

MBOX = {"mbox": "mailto:ada@example.org"}
ACTIVITY = {"id": "http://example.org/activity"}
UUID = "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"


def base() -> dict[str, Any]:
    return {
        "actor": {"objectType": "Agent", **MBOX},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted", "display": {"en-US": "tried"}},
        "object": {"objectType": "Activity", **ACTIVITY},
        "timestamp": "2026-10-05T10:00:00.123Z",
    }


def with_(path: str, value: Any) -> dict[str, Any]:
    """The base statement with `value` at dotted `path` (value DELETE removes it)."""
    statement = copy.deepcopy(base())
    *parents, last = path.split(".")
    node = statement
    for key in parents:
        node = node.setdefault(key, {})
    if value == "DELETE":
        node.pop(last, None)
    else:
        node[last] = value
    return statement


SUB = {"objectType": "SubStatement", "actor": MBOX, "verb": {"id": "http://v.org/v"},
       "object": ACTIVITY}  # fmt: skip
GROUP_ANON = {"objectType": "Group", "member": [MBOX, {"openid": "http://openid.example.org/a"}]}

MUST_ACCEPT = {
    "minimal": base(),
    "no timestamp, id or display": with_("verb", {"id": "http://v.org/v"}),
    "uuid upper case": with_("id", UUID.upper()),
    "version 1.0.0": with_("version", "1.0.0"),
    "version 1.0": with_("version", "1.0"),
    "actor mbox_sha1sum": with_(
        "actor", {"mbox_sha1sum": "ebd31e95054c018b10727ccffd2ef2ec3a016ee9"}
    ),
    "actor openid": with_("actor", {"openid": "http://openid.example.org/ada"}),
    "actor account": with_("actor", {"account": {"homePage": "http://lms.org", "name": "7"}}),
    "anonymous group actor": with_("actor", GROUP_ANON),
    "identified group with members": with_("actor", {**GROUP_ANON, "mbox": "mailto:g@x.org"}),
    "identified group without members": with_("actor", {"objectType": "Group", **MBOX}),
    "agent object": with_("object", {"objectType": "Agent", **MBOX}),
    "group object": with_("object", GROUP_ANON),
    "statement ref object": with_("object", {"objectType": "StatementRef", "id": UUID}),
    "substatement object": with_("object", SUB),
    "activity definition": with_(
        "object.definition",
        {
            "name": {"en-US": "A", "zh-Hans-CN": "甲"},
            "description": {"de": "b"},
            "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
            "moreInfo": "http://example.org/more",
            "interactionType": "choice",
            "correctResponsesPattern": ["a[,]b"],
            "choices": [{"id": "a", "description": {"en": "A"}}, {"id": "b"}],
            "extensions": {"http://ext.org/x": None},
        },
    ),
    "result": with_(
        "result",
        {
            "score": {"scaled": -1, "raw": 0, "min": 0, "max": 5},
            "success": False,
            "completion": True,
            "response": "",
            "duration": "P1DT2H3M4.5S",
            "extensions": {"http://ext.org/r": {"any": [1, None]}},
        },
    ),
    "duration in weeks": with_("result", {"duration": "P2W"}),
    "context": with_(
        "context",
        {
            "registration": UUID,
            "instructor": MBOX,
            "team": GROUP_ANON,
            "contextActivities": {
                "parent": ACTIVITY,
                "grouping": [ACTIVITY],
                "category": [ACTIVITY],
                "other": [ACTIVITY],
            },
            "revision": "r1",
            "platform": "Moodle",
            "language": "en-GB",
            "statement": {"objectType": "StatementRef", "id": UUID},
        },
    ),
    "group instructor": with_("context", {"instructor": GROUP_ANON}),
    "timestamp offset": with_("timestamp", "2026-10-05T10:00:00+05:30"),
    "voiding": {
        **with_("verb", {"id": "http://adlnet.gov/expapi/verbs/voided"}),
        "object": {"objectType": "StatementRef", "id": UUID},
    },
    "attachment": with_(
        "attachments",
        [
            {
                "usageType": "http://adlnet.gov/expapi/attachments/signature",
                "display": {"en-US": "sig"},
                "contentType": "application/octet-stream",
                "length": 4235,
                "sha2": "672fa5fa658017f1b72d65036f13379c6ab05d4ab3b6664908d8acf0b6a0c634",
            }
        ],
    ),
    "stored and authority sent": {
        **base(),
        "stored": "2026-10-05T10:00:00Z",
        "authority": {"objectType": "Agent", **MBOX},
    },
}

MUST_ACCEPT.update(
    {
        "duration in years": with_("result", {"duration": "P3Y1M29DT4H35M59.14S"}),
        "timestamp in the future": with_("timestamp", "2999-01-01T00:00:00Z"),
        "authority OAuth pair": {
            **base(),
            "authority": {"objectType": "Group", "member": [MBOX, {"openid": "http://o.org/app"}]},
        },
    }
)

MUST_REJECT = {
    "unknown top-level property": (with_("foo", 1), "foo"),
    "null property": (with_("result", None), "result"),
    "id not a uuid": (with_("id", "not-a-uuid"), "id"),
    "version 2.0": (with_("version", "2.0.0"), "version"),
    "actor missing": (with_("actor", "DELETE"), "actor"),
    "verb missing": (with_("verb", "DELETE"), "verb"),
    "object missing": (with_("object", "DELETE"), "object"),
    "actor without ifi": (with_("actor", {"name": "x"}), "actor"),
    "actor with two ifis": (with_("actor", {**MBOX, "openid": "http://o.org/a"}), "actor"),
    "mbox without mailto": (with_("actor", {"mbox": "ada@example.org"}), "actor.mbox"),
    "bad sha1": (with_("actor", {"mbox_sha1sum": "xyz"}), "actor.mbox_sha1sum"),
    "openid not iri": (with_("actor", {"openid": "not an iri"}), "actor.openid"),
    "account without homePage": (
        with_("actor", {"account": {"name": "7"}}),
        "actor.account.homePage",
    ),
    "account without name": (
        with_("actor", {"account": {"homePage": "http://l.org"}}),
        "actor.account.name",
    ),
    "agent unknown property": (with_("actor", {**MBOX, "age": 3}), "actor.age"),
    "anonymous group without members": (with_("actor", {"objectType": "Group"}), "actor.member"),
    "group member a group": (
        with_("actor", {"objectType": "Group", "member": [GROUP_ANON]}),
        "actor.member[0].objectType",
    ),
    "verb id not iri": (with_("verb", {"id": "attempted"}), "verb.id"),
    "verb display bad language": (
        with_("verb", {"id": "http://v.org/v", "display": {"en_US": "x"}}),
        "verb.display.en_US",
    ),
    "verb display not a map": (
        with_("verb", {"id": "http://v.org/v", "display": "x"}),
        "verb.display",
    ),
    "activity id not iri": (with_("object", {"id": "activity"}), "object.id"),
    "agent object without objectType": (with_("object", {**MBOX}), "object.id"),
    "unknown objectType": (
        with_("object", {"objectType": "Thing", **ACTIVITY}),
        "object.objectType",
    ),
    "statement ref bad id": (
        with_("object", {"objectType": "StatementRef", "id": "x"}),
        "object.id",
    ),
    "substatement with id": (with_("object", {**SUB, "id": UUID}), "object.id"),
    "substatement with stored": (
        with_("object", {**SUB, "stored": "2026-10-05T10:00:00Z"}),
        "object.stored",
    ),
    "nested substatement": (with_("object", {**SUB, "object": SUB}), "object.object.objectType"),
    "bad interaction type": (
        with_("object.definition", {"interactionType": "essay"}),
        "object.definition.interactionType",
    ),
    "definition unknown property": (
        with_("object.definition", {"colour": "red"}),
        "object.definition.colour",
    ),
    "extension key not iri": (
        with_("object.definition", {"extensions": {"key": 1}}),
        "object.definition.extensions.key",
    ),
    "scaled above 1": (with_("result", {"score": {"scaled": 1.5}}), "result.score.scaled"),
    "raw above max": (with_("result", {"score": {"raw": 11, "max": 10}}), "result.score.raw"),
    "raw below min": (with_("result", {"score": {"raw": -1, "min": 0}}), "result.score.raw"),
    "max not above min": (with_("result", {"score": {"min": 5, "max": 5}}), "result.score.max"),
    "score not a number": (with_("result", {"score": {"raw": "5"}}), "result.score.raw"),
    "success not boolean": (with_("result", {"success": "yes"}), "result.success"),
    "bad duration": (with_("result", {"duration": "1 hour"}), "result.duration"),
    "empty duration": (with_("result", {"duration": "PT"}), "result.duration"),
    "registration not uuid": (with_("context", {"registration": "r1"}), "context.registration"),
    "team an agent": (with_("context", {"team": MBOX}), "context.team"),
    "revision with agent object": (
        {**with_("context", {"revision": "1"}), "object": {"objectType": "Agent", **MBOX}},
        "context.revision",
    ),
    "platform with statement ref": (
        {
            **with_("context", {"platform": "x"}),
            "object": {"objectType": "StatementRef", "id": UUID},
        },
        "context.platform",
    ),
    "bad language": (with_("context", {"language": "english!"}), "context.language"),
    "unknown context activity key": (
        with_("context", {"contextActivities": {"sibling": [ACTIVITY]}}),
        "context.contextActivities.sibling",
    ),
    "context statement not a ref": (
        with_("context", {"statement": {"id": UUID}}),
        "context.statement.objectType",
    ),
    "timestamp without timezone": (with_("timestamp", "2026-10-05T10:00:00"), "timestamp"),
    "timestamp -00:00": (with_("timestamp", "2026-10-05T10:00:00-00:00"), "timestamp"),
    "timestamp not a date": (with_("timestamp", "2026-13-45T10:00:00Z"), "timestamp"),
    "voiding an activity": (
        with_("verb", {"id": "http://adlnet.gov/expapi/verbs/voided"}),
        "object",
    ),
    "attachment without sha2": (
        with_(
            "attachments",
            [
                {
                    "usageType": "http://u.org",
                    "display": {"en": "a"},
                    "contentType": "text/plain",
                    "length": 1,
                }
            ],
        ),
        "attachments[0].sha2",
    ),
    "NUL in text": (with_("verb", {"id": "http://v.org/v\x00"}), "verb.id"),
    "not an object": ([], "non_field_errors"),
    "interactionType an object": (
        with_("object.definition", {"interactionType": {"a": 1}}),
        "object.definition.interactionType",
    ),
    "choices without interactionType": (
        with_("object.definition", {"choices": [{"id": "a"}]}),
        "object.definition.choices",
    ),
    "weeks with days": (with_("result", {"duration": "P4W1D"}), "result.duration"),
    "authority identified group": (
        {**base(), "authority": {"objectType": "Group", **MBOX, "member": [MBOX, MBOX]}},
        "authority",
    ),
    "authority group of three": (
        {**base(), "authority": {"objectType": "Group", "member": [MBOX, MBOX, MBOX]}},
        "authority",
    ),
}


@pytest.mark.parametrize("name", MUST_ACCEPT)
def test_must_accept(name):
    assert statement_errors(MUST_ACCEPT[name]) == {}


@pytest.mark.parametrize("name", MUST_REJECT)
def test_must_reject(name):
    statement, field = MUST_REJECT[name]
    errors = statement_errors(statement)
    assert field in errors, errors
