"""Learner pseudonyms and field encryption.

Learners are named by a keyed HMAC pseudonym everywhere outside the two
encrypted columns (name, email): URLs, logs, exports and training data.
Encryption uses Fernet (AES-128-CBC + HMAC-SHA256) through MultiFernet so keys
rotate: put the new key first in FIELD_ENCRYPTION_KEYS, run
`manage.py rotate_field_keys`, then drop the old key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

PSEUDONYM_LENGTH = 24  # hex chars = 96 bits: collision-free at platform scale, short in URLs


def _derived_key(purpose: str) -> bytes:
    # Dev and test derive keys from SECRET_KEY so they work with zero config;
    # production settings require explicit keys.
    return hashlib.sha256(f"{purpose}:{settings.SECRET_KEY}".encode()).digest()


def _pseudonym_key() -> bytes:
    key = settings.PSEUDONYM_KEY
    return key.encode() if key else _derived_key("pseudonym")


def pseudonymise(namespace: str, identifier: str) -> str:
    """Keyed pseudonym of an external learner identity (e.g. ("oulad", "11391"))."""
    message = f"{namespace}\x1f{identifier}".encode()
    return hmac.new(_pseudonym_key(), message, hashlib.sha256).hexdigest()[:PSEUDONYM_LENGTH]


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret: str) -> MultiFernet:
    if keys:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    return MultiFernet([Fernet(base64.urlsafe_b64encode(_derived_key("field-encryption")))])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt field: unknown key or tampered value") from exc


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; empty strings stay empty (nothing to hide)."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str:
        if not value:
            return ""
        return decrypt_text(value)

    def get_prep_value(self, value: Any) -> str:
        value = super().get_prep_value(value)
        if not value:
            return ""
        return encrypt_text(str(value))

    def rotate(self, token: str) -> str:
        return fernet().rotate(token.encode()).decode()
