"""The `format` of statements a GET answers (xAPI 1.0.3 Communication 2.1.3).

exact: as stored. ids: Agents and Groups reduced to objectType and their identifier
(Groups keep their members, reduced), Activities to their id. canonical: each
language map reduced to the entry of the best language the caller accepts (else its
first entry).
"""

from __future__ import annotations

from typing import Any

from analytics.ingest.statement_terms import IFIS

FORMATS = ("exact", "ids", "canonical")
_LANGUAGE_MAPS = {"display", "name", "description"}


def _agent_ids(agent: dict[str, Any]) -> dict[str, Any]:
    out = {k: agent[k] for k in ("objectType", *IFIS) if k in agent}
    if "member" in agent:
        out["member"] = [_agent_ids(m) for m in agent["member"]]
    return out


def _ids(value: dict[str, Any]) -> dict[str, Any]:
    out = dict(value)
    for name in ("actor", "authority"):
        if name in out:
            out[name] = _agent_ids(out[name])
    obj = out.get("object", {})
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        out["object"] = {"id": obj["id"]}
    elif kind in ("Agent", "Group"):
        out["object"] = _agent_ids(obj)
    elif kind == "SubStatement":
        out["object"] = _ids(obj)
    if "context" in out:
        context = dict(out["context"])
        for name in ("instructor", "team"):
            if name in context:
                context[name] = _agent_ids(context[name])
        if "contextActivities" in context:
            context["contextActivities"] = {
                key: [
                    {"id": a["id"]} for a in (entries if isinstance(entries, list) else [entries])
                ]
                for key, entries in context["contextActivities"].items()
            }
        out["context"] = context
    return out


def _canonical(value: Any, languages: list[str]) -> Any:
    if isinstance(value, list):
        return [_canonical(v, languages) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "extensions":
            out[key] = item
        elif key in _LANGUAGE_MAPS and isinstance(item, dict) and item:
            best = next((t for t in languages if t in item), None)
            if best is None:  # a caller's "en" matches "en-US"
                prefixes = {t.split("-")[0].lower() for t in languages}
                best = next((t for t in item if t.split("-")[0].lower() in prefixes), None)
            tag = best or next(iter(item))
            out[key] = {tag: item[tag]}
        else:
            out[key] = _canonical(item, languages)
    return out


def accepted_languages(header: str) -> list[str]:
    """Accept-Language tags, best first (q-values respected, invalid ones ignored)."""
    weighted = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*":
            weighted.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def formatted(data: dict[str, Any], fmt: str, languages: list[str]) -> dict[str, Any]:
    if fmt == "ids":
        return _ids(data)
    if fmt == "canonical":
        result: dict[str, Any] = _canonical(data, languages)
        return result
    return data
