"""Personal data inside stored statements: encrypted at rest like a learner's name and email.

A statement is kept as sent (JSONB), except that the identifying fields of its Agents and
Groups (name, mbox, mbox_sha1sum, openid, account.name) are encrypted in place with the
field keys (eduplatform/core/privacy.py) and decrypted when the statement is read. The
filter columns hold pseudonyms of identities (`identity_pseudonym`), never the identities.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings

from eduplatform.core.privacy import decrypt_text, encrypt_text, pseudonymise

_FIELDS = ("name", "mbox", "mbox_sha1sum", "openid")


@lru_cache(maxsize=65536)
def _pseudonym(key: str, secret: str, identity: str) -> str:
    return pseudonymise("xapi-agent", identity)


def identity_pseudonym(key: str) -> str:
    """The pseudonym of an agent identity, memoised per pseudonym key (the same agents send
    statement after statement)."""
    return _pseudonym(settings.PSEUDONYM_KEY or "", settings.SECRET_KEY, key)


def _agent(agent: Any, change: Callable[[str], str]) -> Any:
    if not isinstance(agent, dict):
        return agent
    out = dict(agent)
    for name in _FIELDS:
        if isinstance(out.get(name), str):
            out[name] = change(out[name])
    if isinstance(out.get("account"), dict) and isinstance(out["account"].get("name"), str):
        out["account"] = {**out["account"], "name": change(out["account"]["name"])}
    if isinstance(out.get("member"), list):
        out["member"] = [_agent(m, change) for m in out["member"]]
    return out


def _statement(data: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    out = dict(data)
    if "actor" in out:
        out["actor"] = _agent(out["actor"], change)
    obj = out.get("object")
    if isinstance(obj, dict) and obj.get("objectType") in ("Agent", "Group"):
        out["object"] = _agent(obj, change)
    elif isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
        out["object"] = _statement(obj, change)
    context = out.get("context")
    if isinstance(context, dict) and ("instructor" in context or "team" in context):
        context = dict(context)
        for name in ("instructor", "team"):
            if name in context:
                context[name] = _agent(context[name], change)
        out["context"] = context
    return out


@lru_cache(maxsize=65536)
def _token(keys: tuple[str, ...], secret: str, value: str) -> str:
    return encrypt_text(value)


def _encrypted(value: str) -> str:
    """`value`'s token, memoised per field key: the same agents send statement after
    statement, and a Fernet token costs about 20 us. Equal values then share a token,
    which tells no more than the pseudonym columns already do (equal identities)."""
    return _token(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY, value)


def sealed(data: dict[str, Any]) -> dict[str, Any]:
    """The statement to store: its agents' identifying fields encrypted."""
    return _statement(data, _encrypted)


def opened(data: dict[str, Any]) -> dict[str, Any]:
    """The statement as it was sent (with the LRS's fields)."""
    return _statement(data, decrypt_text)


@lru_cache(maxsize=65536)
def _learner(key: str, secret: str, namespace: str, identifier: str) -> str:
    return pseudonymise(namespace, identifier)


def learner_pseudonym(namespace: str, identifier: str) -> str:
    """Learner.pseudonym of an identity (the one ingestion gives the learner's events)."""
    return _learner(settings.PSEUDONYM_KEY or "", settings.SECRET_KEY, namespace, identifier)
