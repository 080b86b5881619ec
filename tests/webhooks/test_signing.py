"""The contract's signature: ``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<exact body bytes>">``."""

from __future__ import annotations

import hashlib
import hmac

from herewith.webhooks.signing import compact_json, sign, verify_signature


def test_sign_matches_the_contract_algorithm():
    body = compact_json({"id": "e1", "apiVersion": "1.0", "data": {"displayName": "Zoë"}})
    assert body == '{"id":"e1","apiVersion":"1.0","data":{"displayName":"Zoë"}}'.encode()
    header = sign("whsec_s", body, 1_700_000_000)
    expected = hmac.new(b"whsec_s", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_verify():
    body = b'{"a":1}'
    header = sign("k", body, 1000)
    assert verify_signature("k", header, body)
    assert verify_signature("k", header, body, now=1200)
    assert not verify_signature("k", header, body, now=1400)  # outside the 300 s tolerance
    assert not verify_signature("other", header, body)
    assert not verify_signature("k", header, body + b" ")  # the exact bytes are signed
    assert not verify_signature("k", "garbage", body)
    assert not verify_signature("k", "t=abc,v1=00", body)
    assert verify_signature("k", header.replace(",", ", ") + ",v1=deadbeef", body)  # extra v1 values allowed
