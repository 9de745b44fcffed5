"""The property names xAPI 1.0.3 allows on each object of a statement (Data, section 2)
and its duration format, for the rules in statement_rules.py and the formats in
statement_formats.py."""

from __future__ import annotations

import re

# ISO 8601 durations: PnYnMnDTnHnMnS, or weeks alone (PnW).
DURATION = re.compile(
    r"^P(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$|^P\d+(?:\.\d+)?W$"
)
_DURATION_PARTS = re.compile(r"(\d+(?:\.\d+)?)([YMWDHS])")
# Seconds per unit; M before T is months, after it minutes (an approximate year and month
# are enough for a bound).
_UNIT_SECONDS = {"Y": 365.25 * 86400, "W": 7 * 86400, "D": 86400, "H": 3600, "S": 1}

STATEMENT_KEYS = {
    "id", "actor", "verb", "object", "result", "context", "timestamp", "stored",
    "authority", "version", "attachments",
}  # fmt: skip
SUBSTATEMENT_KEYS = {
    "objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments",
}  # fmt: skip
AGENT_KEYS = {"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"}
GROUP_KEYS = AGENT_KEYS | {"member"}
IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
ACTIVITY_KEYS = {"objectType", "id", "definition"}
DEFINITION_KEYS = {
    "name", "description", "type", "moreInfo", "extensions", "interactionType",
    "correctResponsesPattern", "choices", "scale", "source", "target", "steps",
}  # fmt: skip
INTERACTION_TYPES = {
    "true-false", "choice", "fill-in", "long-fill-in", "matching", "performance",
    "sequencing", "likert", "numeric", "other",
}  # fmt: skip
COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")
RESULT_KEYS = {"score", "success", "completion", "response", "duration", "extensions"}
SCORE_KEYS = {"scaled", "raw", "min", "max"}
CONTEXT_KEYS = {
    "registration", "instructor", "team", "contextActivities", "revision", "platform",
    "language", "statement", "extensions",
}  # fmt: skip
CONTEXT_ACTIVITY_KEYS = {"parent", "grouping", "category", "other"}
ATTACHMENT_KEYS = {
    "usageType", "display", "description", "contentType", "length", "sha2", "fileUrl",
}  # fmt: skip


def duration_seconds(value: str) -> float:
    """Length in seconds of a duration `DURATION` matched (months as 30 days)."""
    date, _, time = value[1:].partition("T")
    total = 0.0
    for part, month in ((date, 30 * 86400), (time, 60)):
        for number, unit in _DURATION_PARTS.findall(part):
            total += float(number) * (month if unit == "M" else _UNIT_SECONDS[unit])
    return total
