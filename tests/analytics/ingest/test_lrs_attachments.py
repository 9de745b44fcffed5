"""xAPI attachments (#25): multipart/mixed with SHA-2 checks, stored, returned by GET."""

import hashlib
import json

import pytest

from analytics.models import Statement, StatementAttachment
from tests.analytics.ingest.test_lrs import URL, lrs_client, statement

pytestmark = pytest.mark.django_db
BOUNDARY = "-------314159265358979323846"
DATA = b"here is a simple attachment"
SHA = hashlib.sha256(DATA).hexdigest()


def with_attachment(n: int = 1, **attachment):
    body = statement(n)
    body["attachments"] = [
        {"usageType": "http://example.com/usage", "display": {"en-US": "a"},
         "contentType": "text/plain", "length": len(DATA), "sha2": SHA, **attachment}
    ]  # fmt: skip
    return body


def multipart(statements, parts) -> bytes:
    chunks = [f"--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n".encode(),
              json.dumps(statements).encode(), b"\r\n"]  # fmt: skip
    for digest, data in parts:
        head = (
            f"--{BOUNDARY}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {digest}\r\n\r\n"
        )
        chunks += [head.encode(), data, b"\r\n"]
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


def post(client, body: bytes):
    content_type = f"multipart/mixed; boundary={BOUNDARY}"
    return client.generic("POST", URL, body, content_type=content_type)


@pytest.fixture
def lrs():
    return lrs_client()[0]


def test_attachment_stored_and_returned_by_get(lrs):
    response = post(lrs, multipart(with_attachment(), [(SHA, DATA)]))
    assert response.status_code == 200, response.content
    assert bytes(StatementAttachment.objects.get(sha2=SHA).content) == DATA
    got = lrs.get(URL, {"statementId": statement(1)["id"], "attachments": "true"})
    assert got["Content-Type"].startswith("multipart/mixed; boundary=")
    assert DATA in got.content and f"X-Experience-API-Hash: {SHA}".encode() in got.content
    plain = lrs.get(URL, {"statementId": statement(1)["id"]})
    assert plain["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "parts",
    [
        [],  # the bytes of an attachment without fileUrl are missing
        [(SHA, DATA + b"x")],  # bytes that do not hash to the header
        [("", DATA)],  # no hash header
        [(SHA, DATA), (hashlib.sha256(b"other").hexdigest(), b"other")],  # an extra part
    ],
)
def test_bad_parts_are_400_and_store_nothing(lrs, parts):
    response = post(lrs, multipart(with_attachment(), parts))
    assert response.status_code == 400
    assert not Statement.objects.exists() and not StatementAttachment.objects.exists()


def test_file_url_attachments_need_no_part_but_may_have_one(lrs):
    assert (
        lrs.post(URL, with_attachment(1, fileUrl="http://x.org/f"), format="json").status_code
        == 200
    )
    assert (
        post(
            lrs, multipart(with_attachment(2, fileUrl="http://x.org/f"), [(SHA, DATA)])
        ).status_code
        == 200
    )
    assert lrs.post(URL, with_attachment(3), format="json").status_code == 400


def test_form_data_is_400_not_415(lrs):
    response = lrs.post(URL, {"statement": "x"}, format="multipart")
    assert response.status_code == 400
