"""An xAPI 1.0.3 statement as the OpenAPI schema documents it (clients and the fuzz suite).

A summary: statement_rules.py is what decides. Bounds are the platform's (IRIs of at most
500 characters, scores within +-1e6).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from analytics.ingest.statement_rules import MAX_IRI, MAX_NAME
from analytics.ingest.validation import MAX_SCORE

_IRI = {"type": "string", "format": "iri", "minLength": 1, "maxLength": MAX_IRI}
_LANGUAGE_MAP = {
    "type": "object",
    "description": "RFC 5646 language tag -> text",
    "additionalProperties": {"type": "string"},
}
_ACTIVITY = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "objectType": {"type": "string", "enum": ["Activity"]},
        "id": _IRI,
        "definition": {
            "type": "object",
            "properties": {"type": _IRI, "name": _LANGUAGE_MAP, "description": _LANGUAGE_MAP},
        },
    },
}
_ACTIVITIES = {"oneOf": [_ACTIVITY, {"type": "array", "items": _ACTIVITY}]}
_NUMBER = {"type": "number", "minimum": -MAX_SCORE, "maximum": MAX_SCORE}
_AGENT_PROPERTIES: dict[str, Any] = {
    "objectType": {"type": "string", "enum": ["Agent", "Group"]},
    "name": {"type": "string", "maxLength": MAX_NAME},
    "mbox": {"type": "string", "pattern": "^mailto:[^@\\s]+@[^@\\s]+$"},
    "mbox_sha1sum": {"type": "string", "pattern": "^[0-9a-fA-F]{40}$"},
    "openid": _IRI,
    "account": {
        "type": "object",
        "required": ["homePage", "name"],
        "properties": {"homePage": _IRI, "name": {"type": "string", "minLength": 1}},
    },
}
_AGENT = {
    "type": "object",
    "description": "An Agent (exactly one of mbox, mbox_sha1sum, openid, account), or a "
    "Group (objectType Group: members, an identifier, or both)",
    "properties": {
        **_AGENT_PROPERTIES,
        "member": {"type": "array", "items": {"type": "object", "properties": _AGENT_PROPERTIES}},
    },
}
STATEMENT_SCHEMA = {
    "type": "object",
    "required": ["actor", "verb", "object"],
    "properties": {
        "id": {"type": "string", "format": "uuid", "description": "Assigned when missing"},
        "actor": _AGENT,
        "verb": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": _IRI, "display": _LANGUAGE_MAP},
        },
        "object": {
            "type": "object",
            "description": "An Activity (the default objectType), Agent, Group, StatementRef "
            "or SubStatement; a course run's activity IRI, a content item's, or any other",
            "properties": {
                "objectType": {
                    "type": "string",
                    "enum": ["Activity", "Agent", "Group", "StatementRef", "SubStatement"],
                },
                "id": {"type": "string", "minLength": 1, "maxLength": MAX_IRI},
                "definition": _ACTIVITY["properties"]["definition"],  # type: ignore[index]
            },
        },
        "timestamp": {"type": "string", "format": "date-time"},
        "result": {
            "type": "object",
            "properties": {
                "score": {
                    "type": "object",
                    "properties": {
                        "scaled": {"type": "number", "minimum": -1, "maximum": 1},
                        "raw": _NUMBER,
                        "min": _NUMBER,
                        "max": _NUMBER,
                    },
                },
                "success": {"type": "boolean"},
                "completion": {"type": "boolean"},
                "response": {"type": "string"},
                "duration": {"type": "string", "description": "ISO 8601, e.g. PT2M30S"},
            },
        },
        "context": {
            "type": "object",
            "properties": {
                "registration": {"type": "string", "format": "uuid"},
                "contextActivities": {
                    "type": "object",
                    "description": "The course run's activity IRI as parent or grouping "
                    "places the statement; otherwise it is held until an admin maps the IRI",
                    "properties": {
                        "parent": _ACTIVITIES,
                        "grouping": _ACTIVITIES,
                        "category": _ACTIVITIES,
                        "other": _ACTIVITIES,
                    },
                },
            },
        },
        "version": {"type": "string", "pattern": "^1\\.0(\\.[0-9]+)?$"},
    },
}
STATEMENT_REQUEST = {
    "oneOf": [
        STATEMENT_SCHEMA,
        {
            "type": "array",
            "minItems": 1,
            "maxItems": settings.EVENTS_MAX_BATCH,
            "items": STATEMENT_SCHEMA,
        },
    ]
}
