"""HmacKey (the pads hashed once per key) gives hmac.digest's bytes, and verifies STUN."""

from __future__ import annotations

import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.analysis import stun
from harness.analysis.hmackey import HmacKey
from tests.unit.test_stun_vectors import PASSWORD, REQUEST


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=200), data=st.binary(max_size=300))
def test_same_bytes_as_hmac_digest(key: bytes, data: bytes) -> None:
    """Keys shorter and longer than the 64-byte block, empty ones, any message."""
    prepared = HmacKey(key)
    for digest in ("sha1", "sha256"):
        assert prepared(data, digest) == hmac.digest(key, data, digest)
        assert prepared(data, digest) == hmac.digest(key, data, digest)  # reusable


def test_rfc5769_request_with_a_prepared_key() -> None:
    assert stun.check_integrity(REQUEST, HmacKey(PASSWORD)) is True
    assert stun.check_integrity(REQUEST, HmacKey(b"wrong password")) is False
