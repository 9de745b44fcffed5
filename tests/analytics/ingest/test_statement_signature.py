"""Signed statements (#25, xAPI 1.0.3 Data 2.6): a malformed signature is a 400, nothing
stored; a well-formed one (with or without an x5c chain) is accepted."""

import base64
import datetime as dt
import hashlib
import json

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from analytics.ingest.statement_signature import SIGNATURE
from analytics.models import Statement
from tests.analytics.ingest.test_lrs import lrs_client, statement
from tests.analytics.ingest.test_lrs_attachments import multipart, post

pytestmark = pytest.mark.django_db


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer.example.org")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.fixture(scope="module")
def keys():
    signer, other = _key(), _key()
    return signer, _certificate(signer), _certificate(other)


def signed(original, token: bytes, content_type="application/octet-stream"):
    """The statement as sent: `original` plus the signature attachment; and the request."""
    sha = hashlib.sha256(token).hexdigest()
    attachment = {"usageType": SIGNATURE, "display": {"en-US": "signature"},
                  "contentType": content_type, "length": len(token), "sha2": sha}  # fmt: skip
    sent = {**original, "attachments": [*original.get("attachments", []), attachment]}
    return multipart(sent, [(sha, token)])


def sign(payload, key, alg="RS256", headers=None) -> bytes:
    return jwt.api_jws.encode(
        json.dumps(payload).encode() if isinstance(payload, dict) else payload,
        key,
        algorithm=alg,
        headers=headers,
    ).encode()


def test_well_formed_signatures_are_accepted(keys):
    signer, cert, _ = keys
    lrs = lrs_client()[0]
    original = statement(1)
    assert (
        post(lrs, signed(original, sign(original, signer, "RS256", {"x5c": [cert]}))).status_code
        == 200
    )
    # Without x5c nothing names the key: the payload is still compared.
    second = statement(2)
    assert post(lrs, signed(second, sign(second, signer, "RS512"))).status_code == 200
    # What the LRS may fill (id, timestamp, version) can be missing from the payload.
    third = statement(3)
    bare = {k: v for k, v in third.items() if k not in ("id", "timestamp")}
    assert post(lrs, signed(third, sign(bare, signer, "RS384", {"x5c": [cert]}))).status_code == 200
    assert Statement.objects.count() == 3


def _refused(body: bytes, words: str) -> None:
    response = post(lrs_client()[0], body)
    assert response.status_code == 400, response.content
    assert words in response.json()["detail"], response.json()
    assert Statement.objects.count() == 0


def test_payload_differing_from_the_statement_is_refused(keys):
    signer, cert, _ = keys
    original = statement(1)
    changed = {**original, "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}
    _refused(signed(changed, sign(original, signer, headers={"x5c": [cert]})), "differs")
    other_id = {**original, "id": str(statement(2)["id"])}
    _refused(signed(original, sign(other_id, signer)), "differs")
    _refused(signed(original, sign(b"[1, 2]", signer)), "differs")
    _refused(signed(original, sign(b"not json", signer)), "not a JSON statement")


def test_malformed_jws_algorithm_certificate_and_attachment_are_refused(keys):
    signer, cert, other_cert = keys
    original = statement(1)
    _refused(signed(original, b"not.a-jws"), "not a JWS")
    _refused(signed(original, b"\xff\xfe"), "not a JWS")
    hmac = jwt.api_jws.encode(
        json.dumps(original).encode(), "a shared secret key of 32 bytes!", algorithm="HS256"
    )
    _refused(signed(original, hmac.encode()), "RS256, RS384 or RS512")
    wrong_cert = sign(original, signer, headers={"x5c": [other_cert]})
    _refused(signed(original, wrong_cert), "x5c")
    _refused(signed(original, sign(original, signer, headers={"x5c": ["%%%"]})), "x5c")
    good = sign(original, signer, headers={"x5c": [cert]})
    _refused(signed(original, good, content_type="text/plain"), "application/octet-stream")
    # A signature only referenced by fileUrl cannot be checked.
    sha = hashlib.sha256(good).hexdigest()
    by_url = {**original, "attachments": [{
        "usageType": SIGNATURE, "display": {"en-US": "s"},
        "contentType": "application/octet-stream",
        "length": len(good), "sha2": sha, "fileUrl": "https://example.org/sig"}]}  # fmt: skip
    _refused(multipart(by_url, []), "part of the request")


def test_two_signatures_are_refused(keys):
    signer, _, _ = keys
    original = statement(1)
    token = sign(original, signer)
    sha = hashlib.sha256(token).hexdigest()
    attachment = {"usageType": SIGNATURE, "display": {"en-US": "s"}, "sha2": sha,
                  "contentType": "application/octet-stream", "length": len(token)}  # fmt: skip
    twice = {**original, "attachments": [attachment, attachment]}
    _refused(multipart(twice, [(sha, token)]), "one signature")
