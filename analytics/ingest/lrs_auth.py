"""Who calls the xAPI routes: LRS clients (HTTP Basic key:secret, or Bearer secret), and the
platform's own users (token or session), each with xAPI scopes.

LRS clients are made in the admin (analytics.admin.LrsClientAdmin). Users keep the
existing ``Authorization: Token`` access: admins have every scope, users granted
analytics.add_learningevent (an LMS's ingestion token) statements/write.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from analytics.ingest.api import CanIngestEvents
from analytics.models import LrsClient

WRITE = LrsClient.Scope.WRITE.value
READ = LrsClient.Scope.READ.value
READ_MINE = LrsClient.Scope.READ_MINE.value
ALL_READ = LrsClient.Scope.ALL_READ.value
ALL_SCOPES = frozenset({WRITE, READ, READ_MINE, ALL_READ})
REALM = 'Basic realm="xapi"'


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_credentials() -> tuple[str, str]:
    """A fresh (key, secret) pair: the admin shows the secret once."""
    return secrets.token_hex(16), secrets.token_urlsafe(32)


class LrsPrincipal:
    """request.user of a request made with LRS client credentials."""

    is_authenticated = True
    is_active = True
    is_superuser = False
    is_staff = False

    def __init__(self, client: LrsClient) -> None:
        self.client = client
        self.pk = f"lrs-{client.pk}"
        self.username = client.name

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class LrsClientAuthentication(authentication.BaseAuthentication):
    """HTTP Basic (key:secret) and Bearer (secret) for LrsClient rows; other schemes are
    left to the next authenticator (Token, session)."""

    def authenticate(self, request: Request) -> tuple[LrsPrincipal, LrsClient] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from None
            key, colon, secret = decoded.partition(":")
            if not colon:
                raise exceptions.AuthenticationFailed("Malformed Basic credentials.")
            client = LrsClient.objects.filter(key=key, is_active=True).first()
            if client is None or not hmac.compare_digest(
                client.secret_sha256, secret_digest(secret)
            ):
                raise exceptions.AuthenticationFailed("Unknown key or wrong secret.")
        elif scheme == "bearer":
            client = LrsClient.objects.filter(
                secret_sha256=secret_digest(value.strip()), is_active=True
            ).first()
            if client is None:
                raise exceptions.AuthenticationFailed("Unknown token.")
        else:
            return None
        return LrsPrincipal(client), client

    def authenticate_header(self, request: Request) -> str:
        return REALM


def scopes_of(request: Request) -> frozenset[str]:
    """The xAPI scopes of the caller (none when anonymous)."""
    if isinstance(request.auth, LrsClient):
        return frozenset(request.auth.scopes)
    user = request.user
    if not (user and user.is_authenticated and user.is_active):
        return frozenset()
    if user.is_superuser:
        return ALL_SCOPES
    if CanIngestEvents().has_permission(request, None):
        return frozenset({WRITE})
    return frozenset()


def may_read(scopes: frozenset[str]) -> bool:
    return bool(scopes & {READ, READ_MINE, ALL_READ})


def reads_only_own(scopes: frozenset[str]) -> bool:
    return not scopes & {READ, ALL_READ}


class HasXapiScope(permissions.BasePermission):
    """Writes need statements/write; reads statements/read, statements/read/mine or all/read."""

    message = "These credentials may not use this resource this way."

    def has_permission(self, request: Request, view: Any) -> bool:
        scopes = scopes_of(request)
        if request.method in ("GET", "HEAD"):
            return may_read(scopes)
        return WRITE in scopes


class LrsClientScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The schema names LRS clients' credentials (HTTP Basic key:secret; Bearer takes the
    secret alone), so `check --deploy` has no drf-spectacular warning to report."""

    target_class = LrsClientAuthentication
    name = "lrsClient"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "LRS client key:secret (admin: LRS clients); Bearer <secret> too.",
        }
