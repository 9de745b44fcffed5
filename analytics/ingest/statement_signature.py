"""Signed statements (xAPI 1.0.3 Data 2.6): the LRS refuses a malformed signature (400).

A signed statement carries a JWS (compact serialization) as an attachment with usageType
`SIGNATURE`, its bytes in the request's multipart/mixed parts. The LRS must decode it,
check that its payload is the statement as sent (logically equivalent, ignoring what the
LRS may set: `id`, `authority`, `stored`, `timestamp`, `version`, and the signature
attachment itself, added after signing), that the algorithm is RS256, RS384 or RS512,
and, when the header has an X.509 chain (`x5c`), that the signature verifies with its
first certificate. The spec says this catches mistakes, not forgeries: without `x5c`
nothing says whose key signed, so the signature is not verified.

PyJWT decodes the JWS (base64url, header, algorithm allow-list, RSA verification through
`cryptography`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import jwt
from cryptography import x509
from django.utils.translation import gettext as _

from analytics.ingest.lrs import normalised

SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"
ALGORITHMS = ("RS256", "RS384", "RS512")
# Set or filled by the LRS: a difference there is not a different statement.
LRS_PROPERTIES = ("authority", "stored")
FILLED_PROPERTIES = ("id", "timestamp", "version")


def signature_errors(statement: Any, parts: dict[str, tuple[str, bytes]]) -> str | None:
    """Why the statement's signature is malformed, or None (also when it is not signed)."""
    if not isinstance(statement, dict) or not isinstance(statement.get("attachments"), list):
        return None
    signatures = [
        a
        for a in statement["attachments"]
        if isinstance(a, dict) and a.get("usageType") == SIGNATURE
    ]
    if not signatures:
        return None
    if len(signatures) > 1:
        return _("A statement takes one signature attachment.")
    (signature,) = signatures
    if signature.get("contentType") != "application/octet-stream":
        return _("A signature attachment's contentType must be application/octet-stream.")
    part = parts.get(str(signature.get("sha2", "")).lower())
    if part is None:
        return _("A signature's JWS must be sent as a part of the request.")
    try:
        token = part[1].decode("ascii").strip()
        header = jwt.get_unverified_header(token)
    except (UnicodeDecodeError, jwt.PyJWTError):
        return _("The signature is not a JWS in compact serialization.")
    if header.get("alg") not in ALGORITHMS:
        return _("The signature's algorithm must be RS256, RS384 or RS512.")
    try:
        payload = _payload(token, header)
    except (jwt.PyJWTError, ValueError, TypeError):
        return _("The signature does not verify with its x5c certificate.")
    try:
        original = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _("The signature's payload is not a JSON statement.")
    if not isinstance(original, dict) or not _equivalent(original, statement):
        return _("The signature's payload differs from the statement.")
    return None


def _payload(token: str, header: dict[str, Any]) -> bytes:
    """The JWS payload, verified against the first x5c certificate when there is one."""
    chain = header.get("x5c")
    if chain is None:
        decoded = jwt.api_jws.decode_complete(token, options={"verify_signature": False})
        return bytes(decoded["payload"])
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise ValueError("x5c must be a list of certificates")
    try:
        der = base64.b64decode(chain[0], validate=True)
    except binascii.Error as exc:
        raise ValueError("x5c is not base64") from exc
    key = x509.load_der_x509_certificate(der).public_key()
    decoded = jwt.api_jws.decode_complete(token, key=key, algorithms=[header["alg"]])  # type: ignore[arg-type]
    return bytes(decoded["payload"])


def _equivalent(original: dict[str, Any], received: dict[str, Any]) -> bool:
    """The signed statement and the received one, compared as the spec's statement
    comparison does after LRS processing: what the LRS sets is left out, what it fills
    only counts when both sides have it."""
    signed, sent = _comparable(original), _comparable(received)
    for name in FILLED_PROPERTIES:
        if name not in signed or name not in sent:
            signed.pop(name, None)
            sent.pop(name, None)
    if isinstance(signed.get("id"), str) and isinstance(sent.get("id"), str):
        signed["id"], sent["id"] = signed["id"].lower(), sent["id"].lower()
    return signed == sent


def _comparable(statement: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in normalised(statement).items() if k not in LRS_PROPERTIES}
    kept = [
        a
        for a in data.get("attachments", [])
        if not (isinstance(a, dict) and a.get("usageType") == SIGNATURE)
    ]
    if kept:
        data["attachments"] = kept
    else:
        data.pop("attachments", None)
    return data
