"""xAPI attachments (Communication 1.5.2): statements sent as `multipart/mixed`.

The first part is the statement(s) as `application/json`; each further part is one
attachment's raw bytes with an `X-Experience-API-Hash` header, its SHA-2 (SHA-256, 384 or 512
by length). A part whose bytes do not hash to its header, a missing header, a statement
attachment without `fileUrl` that no part carries, or a part no statement names is a 400.
Attachments are stored once per hash (`StatementAttachment`) and sent back by GET with
`attachments=true` as `multipart/mixed`.
"""

from __future__ import annotations

import email.policy
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from eduplatform.core.inputs import json_too_deep

_HASHES = {64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512}


@dataclass
class MultipartStatements:
    """What a `multipart/mixed` request carried: the statement JSON and the parts by hash."""

    statements: Any
    parts: dict[str, tuple[str, bytes]] = field(default_factory=dict)


class MultipartMixedParser(BaseParser):
    media_type = "multipart/mixed"

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: dict[str, Any] | None = None,
    ) -> MultipartStatements:
        head = f"Content-Type: {media_type or ''}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = BytesParser(policy=email.policy.HTTP).parsebytes(head + stream.read())
        if not message.is_multipart() or not message.get_boundary():
            raise ParseError("multipart/mixed needs a boundary and parts.")
        payload = message.get_payload()
        parts: list[Message] = (
            [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
        )
        if not parts:
            raise ParseError("multipart/mixed needs a statement part.")
        first = parts[0]
        if first.get_content_type() != "application/json":
            raise ParseError("The first part must be the statements as application/json.")
        raw = _bytes(first)
        if json_too_deep(raw):
            raise ParseError("JSON nested too deep.")
        try:
            statements = json.loads(raw)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        found: dict[str, tuple[str, bytes]] = {}
        for part in parts[1:]:
            digest = str(part.get("X-Experience-API-Hash") or "").strip().lower()
            data = _bytes(part)
            algorithm = _HASHES.get(len(digest))
            if algorithm is None or algorithm(data).hexdigest() != digest:
                raise ParseError("Each attachment part needs X-Experience-API-Hash, its SHA-2.")
            found[digest] = (part.get_content_type(), data)
        return MultipartStatements(statements, found)


def _bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def attachment_errors(statements: list[Any], parts: dict[str, tuple[str, bytes]]) -> str | None:
    """Why the parts do not match the statements' attachments, or None."""
    needed: set[str] = set()
    named: set[str] = set()
    for statement in statements:
        if not isinstance(statement, dict) or not isinstance(statement.get("attachments"), list):
            continue
        for attachment in statement["attachments"]:
            if isinstance(attachment, dict):
                digest = str(attachment.get("sha2", "")).lower()
                named.add(digest)
                if "fileUrl" not in attachment:  # its bytes must come with the request
                    needed.add(digest)
    if needed - parts.keys():
        return "An attachment without fileUrl has no part with its sha2."
    if parts.keys() - named:
        return "A part matches no statement attachment."
    return None


def multipart_body(result: Any, attachments: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A `multipart/mixed` answer: the JSON result, then each attachment; (body, type)."""
    boundary = secrets.token_hex(16)
    chunks = [
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
        json.dumps(result).encode(),
        b"\r\n",
    ]
    for digest, (content_type, data) in attachments.items():
        chunks += [
            f"--{boundary}\r\nContent-Type: {content_type}\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {digest}\r\n\r\n".encode(),
            data,
            b"\r\n",
        ]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/mixed; boundary={boundary}"
