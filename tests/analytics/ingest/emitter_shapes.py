"""Statements in the shapes Moodle's logstore_xapi and Open edX's event-routing-backends send.

Written for these tests from the two projects' documented formats (logstore_xapi's
src/transformer/events/* and its expected-statement fixtures; event-routing-backends'
xAPI transformers): same verbs, activity types, context activities and extensions, with
made-up sites, users and ids. Site-level statements (login, logout, user created, search)
name no course; the group-activity statements carry a Group as actor or team.
"""

from __future__ import annotations

import uuid
from typing import Any

MOODLE = "https://moodle.example.edu"
MOODLE_COURSE = f"{MOODLE}/course/view.php?id=3"
EDX = "https://lms.example.org"
EDX_COURSE = f"{EDX}/course/course-v1:edX+DemoX+Demo_Course"
_SITE = {
    "id": MOODLE,
    "objectType": "Activity",
    "definition": {"type": "http://id.tincanapi.com/activitytype/lms", "name": {"en": "Moodle U"}},
}
_SOURCE = {
    "id": "https://moodle.org/",
    "objectType": "Activity",
    "definition": {"type": "http://id.tincanapi.com/activitytype/source", "name": {"en": "Moodle"}},
}
_COURSE = {
    "id": MOODLE_COURSE,
    "objectType": "Activity",
    "definition": {
        "type": "http://id.tincanapi.com/activitytype/lms/course",
        "name": {"en": "Statistics 101"},
        "extensions": {
            "https://w3id.org/learning-analytics/learning-management-system/short-id": "STAT101"
        },
    },
}


def _moodle_user(n: int) -> dict[str, Any]:
    return {"name": f"Student {n}", "account": {"homePage": MOODLE, "name": str(100 + n)}}


def _moodle_context(event: str, grouping: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "platform": "Moodle",
        "language": "en",
        "extensions": {
            "http://lrs.learninglocker.net/define/extensions/info": {
                "https://moodle.org/": "4.3",
                "https://github.com/xAPI-vle/moodle-logstore_xapi": "v4.7.0",
                "event_name": f"\\core\\event\\{event}",
                "event_function": f"\\src\\transformer\\events\\core\\{event}",
            }
        },
        "contextActivities": {"grouping": grouping, "category": [_SOURCE]},
    }


def moodle_statement(kind: str, n: int) -> dict[str, Any]:
    """One Moodle statement: course_viewed, quiz_attempt, login, logout, user_created,
    search, group_activity."""
    stamp = f"2026-10-{1 + n % 28:02d}T10:{n % 60:02d}:00+01:00"
    actor = _moodle_user(n)
    if kind == "course_viewed":
        return {
            "actor": actor,
            "verb": {"id": "http://id.tincanapi.com/verb/viewed", "display": {"en": "viewed"}},
            "object": _COURSE,
            "timestamp": stamp,
            "context": _moodle_context("course_viewed", [_SITE]),
        }
    if kind == "quiz_attempt":
        quiz = {
            "id": f"{MOODLE}/mod/quiz/view.php?id={40 + n % 3}",
            "objectType": "Activity",
            "definition": {
                "type": "http://adlnet.gov/expapi/activities/assessment",
                "name": {"en": f"Quiz {n % 3}"},
            },
        }
        return {
            "actor": actor,
            "verb": {
                "id": "http://adlnet.gov/expapi/verbs/completed",
                "display": {"en": "completed"},
            },
            "object": {
                "id": f"{MOODLE}/mod/quiz/attempt.php?attempt={n}",
                "objectType": "Activity",
                "definition": {
                    "type": "http://adlnet.gov/expapi/activities/attempt",
                    "name": {"en": "Attempt"},
                    "extensions": {"http://id.tincanapi.com/extension/attempt-id": n},
                },
            },
            "result": {
                "score": {"raw": n % 11, "min": 0, "max": 10, "scaled": (n % 11) / 10},
                "completion": True,
                "success": n % 11 >= 5,
                "duration": "PT7M12S",
            },
            "timestamp": stamp,
            "context": _moodle_context("attempt_submitted", [_SITE, _COURSE, quiz]),
        }
    if kind in ("login", "logout", "user_created", "search"):
        verbs = {
            "login": "https://brindlewaye.com/xAPITerms/verbs/loggedin/",
            "logout": "https://brindlewaye.com/xAPITerms/verbs/loggedout/",
            "user_created": "http://adlnet.gov/expapi/verbs/registered",
            "search": "http://id.tincanapi.com/verb/viewed",
        }
        return {
            "actor": actor,
            "verb": {"id": verbs[kind], "display": {"en": kind.replace("_", " ")}},
            "object": _SITE,
            "timestamp": stamp,
            "context": _moodle_context(kind, []) | {"contextActivities": {"category": [_SOURCE]}},
        }
    if kind == "group_activity":
        group = {
            "objectType": "Group",
            "name": "Team Blue",
            "member": [_moodle_user(n), _moodle_user(n + 1)],
        }
        return {
            "actor": group,
            "verb": {"id": "http://adlnet.gov/expapi/verbs/shared", "display": {"en": "shared"}},
            "object": {
                "id": f"{MOODLE}/mod/forum/discuss.php?d={n}",
                "objectType": "Activity",
                "definition": {
                    "type": "http://id.tincanapi.com/activitytype/discussion",
                    "name": {"en": "Group discussion"},
                },
            },
            "timestamp": stamp,
            "context": _moodle_context("discussion_created", [_SITE, _COURSE]),
        }
    raise ValueError(kind)


MOODLE_KINDS = ["course_viewed", "quiz_attempt", "quiz_attempt", "course_viewed", "login",
                "logout", "user_created", "search", "group_activity", "course_viewed"]  # fmt: skip


_OPENEDX = "https://w3id.org/xapi/openedx"


def _edx_actor(n: int) -> dict[str, Any]:
    return {
        "objectType": "Agent",
        "account": {"homePage": EDX, "name": str(uuid.UUID(int=1000 + n))},
    }


def _edx_context(parent: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "extensions": {
            f"{_OPENEDX}/extension/transformer-version": "event-routing-backends@9.0.0",
            f"{_OPENEDX}/extensions/session-id": "e4858858443cd99828b9d8ad5e0de8e3",
            **(extra or {}),
        },
    }
    if parent:
        context["contextActivities"] = {
            "parent": [
                {
                    "id": EDX_COURSE,
                    "objectType": "Activity",
                    "definition": {
                        "name": {"en-US": "Demonstration Course"},
                        "type": "http://adlnet.gov/expapi/activities/course",
                    },
                }
            ]
        }
    return context


def edx_statement(kind: str, n: int) -> dict[str, Any]:
    """One Open edX statement: video_played, problem_answered, enrolled, navigated,
    team_posted."""
    base = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"edx/{kind}/{n}")),
        "actor": _edx_actor(n),
        "timestamp": f"2026-10-{1 + n % 28:02d}T09:{n % 60:02d}:30.123456+00:00",
        "version": "1.0.3",
    }
    block = f"{EDX}/xblock/block-v1:edX+DemoX+Demo_Course+type@"
    if kind == "video_played":
        return base | {
            "verb": {"id": "https://w3id.org/xapi/video/verbs/played", "display": {"en": "played"}},
            "object": {
                "id": f"{block}video+block@{n % 4:032x}",
                "objectType": "Activity",
                "definition": {
                    "type": "https://w3id.org/xapi/video/activity-type/video",
                    "name": {"en-US": "Welcome video"},
                },
            },
            "result": {"extensions": {"https://w3id.org/xapi/video/extensions/time": 12.5}},
            "context": _edx_context(True, {"https://w3id.org/xapi/video/extensions/length": 195.0}),
        }
    if kind == "problem_answered":
        return base | {
            "verb": {
                "id": "http://adlnet.gov/expapi/verbs/answered",
                "display": {"en": "answered"},
            },
            "object": {
                "id": f"{block}problem+block@{n % 5:032x}",
                "objectType": "Activity",
                "definition": {
                    "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
                    "name": {"en-US": "Checkbox problem"},
                    "interactionType": "choice",
                    "description": {"en-US": "Which are prime?"},
                },
            },
            "result": {
                "success": bool(n % 2),
                "score": {"scaled": 0.5, "raw": 1.0, "min": 0.0, "max": 2.0},
                "response": "choice_0[,]choice_2",
            },
            "context": _edx_context(True, {"http://id.tincanapi.com/extension/attempt-id": 1}),
        }
    if kind == "enrolled":
        return base | {
            "verb": {
                "id": "http://adlnet.gov/expapi/verbs/registered",
                "display": {"en": "registered"},
            },
            "object": {
                "id": EDX_COURSE,
                "objectType": "Activity",
                "definition": {
                    "type": "http://adlnet.gov/expapi/activities/course",
                    "name": {"en-US": "Demonstration Course"},
                    "extensions": {"https://w3id.org/xapi/acrossx/extensions/type": "audit"},
                },
            },
            "context": _edx_context(False),
        }
    if kind == "navigated":
        return base | {
            "verb": {
                "id": "https://w3id.org/xapi/dod-isd/verbs/navigated",
                "display": {"en": "navigated"},
            },
            "object": {
                "id": f"{block}sequential+block@{n % 3:032x}",
                "objectType": "Activity",
                "definition": {
                    "type": "http://id.tincanapi.com/activitytype/resource",
                    "extensions": {"http://id.tincanapi.com/extension/ending-point": 3},
                },
            },
            "context": _edx_context(
                True, {"http://id.tincanapi.com/extension/starting-position": 1}
            ),
        }
    if kind == "team_posted":
        return base | {
            "verb": {"id": "http://adlnet.gov/expapi/verbs/shared", "display": {"en": "shared"}},
            "object": {
                "id": f"{EDX}/api/discussion/v1/threads/{n:024x}",
                "objectType": "Activity",
                "definition": {"type": "http://id.tincanapi.com/activitytype/discussion"},
            },
            "context": _edx_context(True)
            | {
                "team": {
                    "objectType": "Group",
                    "name": "Team 4",
                    "account": {"homePage": EDX, "name": "team-4"},
                }
            },
        }
    raise ValueError(kind)


EDX_KINDS = ["video_played", "problem_answered", "enrolled", "navigated", "team_posted"]


def moodle_batches(batches: int = 10, size: int = 20) -> list[list[dict[str, Any]]]:
    return [
        [
            moodle_statement(MOODLE_KINDS[(b * size + i) % len(MOODLE_KINDS)], b * size + i)
            for i in range(size)
        ]
        for b in range(batches)
    ]


def edx_batches(batches: int = 5, size: int = 20) -> list[list[dict[str, Any]]]:
    return [
        [
            edx_statement(EDX_KINDS[(b * size + i) % len(EDX_KINDS)], b * size + i)
            for i in range(size)
        ]
        for b in range(batches)
    ]
