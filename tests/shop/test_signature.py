"""Mercado Pago webhook signatures: documented vectors, freshness, every one-byte change."""

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shop.payments.signature import SignatureCheck, manifest, sign, verify

SECRET = "your_secret_key_here"
REQUEST_ID = "2066ca19-c6f1-498a-be75-1923005edd06"
TS = "1742505638683"
NOW = int(TS) / 1000
V1 = "bcd78a744ce26743f9bc19f4f9402372dcda23c7ed773161dec8508734dd02f2"
HEADER = f"ts={TS},v1={V1}"


def test_documented_vectors():
    assert sign(SECRET, "123456789", REQUEST_ID, TS) == V1
    assert (
        sign(SECRET, "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3", REQUEST_ID, TS)
        == "633f91233312dd391ec75fa0bea539cfc2d6c4918873305b84a96cc1c58db71c"
    )
    assert (
        sign(SECRET, None, None, TS)
        == "3f075add3ddb923bebf0bc0648457b8244cf4420b98d5b445167d379bec0ca54"
    )
    assert manifest("123456789", REQUEST_ID, TS) == f"id:123456789;request-id:{REQUEST_ID};ts:{TS};"


def test_vector_verifies_and_independent_hmac_agrees():
    assert verify(SECRET, HEADER, REQUEST_ID, "123456789", now=NOW) is SignatureCheck.VALID
    text = f"id:123456789;request-id:{REQUEST_ID};ts:{TS};"
    assert hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest() == V1


def test_alphanumeric_data_id_is_lower_cased():
    v1 = sign(SECRET, "ord01jq4s4ky8hwq6na5pxb65b3d3", REQUEST_ID, TS)
    header = f"ts={TS},v1={v1}"
    assert (
        verify(SECRET, header, REQUEST_ID, "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3", now=NOW)
        is SignatureCheck.VALID
    )


def test_absent_parts_are_dropped():
    header = f"ts={TS},v1={sign(SECRET, None, None, TS)}"
    assert verify(SECRET, header, None, None, now=NOW) is SignatureCheck.VALID
    assert verify(SECRET, header, REQUEST_ID, None, now=NOW) is SignatureCheck.MISMATCH


def test_spaces_and_several_v1_values_are_accepted():
    header = f" ts={TS} , v1=deadbeef, v1={V1}"
    assert verify(SECRET, header, REQUEST_ID, "123456789", now=NOW) is SignatureCheck.VALID


@pytest.mark.parametrize(
    "ts_now, expected",
    [
        (NOW + 299, SignatureCheck.VALID),
        (NOW + 301, SignatureCheck.STALE),
        (NOW - 301, SignatureCheck.STALE),
    ],
)
def test_ts_older_than_five_minutes_is_stale(ts_now, expected):
    assert verify(SECRET, HEADER, REQUEST_ID, "123456789", now=ts_now) is expected


def test_ts_in_seconds_is_accepted():
    ts = "1742505638"
    header = f"ts={ts},v1={sign(SECRET, '123', REQUEST_ID, ts)}"
    assert verify(SECRET, header, REQUEST_ID, "123", now=1742505638.0) is SignatureCheck.VALID
    assert verify(SECRET, header, REQUEST_ID, "123", now=1742505638.0 + 400) is SignatureCheck.STALE


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, SignatureCheck.MISSING),
        ("", SignatureCheck.MISSING),
        (f"v1={V1}", SignatureCheck.MALFORMED),
        (f"ts={TS}", SignatureCheck.MALFORMED),
        (f"ts=abc,v1={V1}", SignatureCheck.MALFORMED),
        ("garbage", SignatureCheck.MALFORMED),
    ],
)
def test_missing_or_malformed_header(header, expected):
    assert verify(SECRET, header, REQUEST_ID, "123456789", now=NOW) is expected


def _mutations(text: str):
    """Every string that differs from `text` in exactly one byte (printable ASCII)."""
    for i in range(len(text)):
        for code in range(32, 127):
            if chr(code) != text[i]:
                yield text[:i] + chr(code) + text[i + 1 :]


def test_every_one_byte_change_of_the_header_is_rejected():
    for header in _mutations(HEADER):
        assert (
            verify(SECRET, header, REQUEST_ID, "123456789", now=NOW) is not SignatureCheck.VALID
        ), header


def test_every_one_byte_change_of_signed_inputs_is_rejected():
    for rid in _mutations(REQUEST_ID):
        assert verify(SECRET, HEADER, rid, "123456789", now=NOW) is not SignatureCheck.VALID
    for data_id in _mutations("123456789"):
        assert verify(SECRET, HEADER, REQUEST_ID, data_id, now=NOW) is not SignatureCheck.VALID, (
            data_id
        )
    for secret in _mutations(SECRET):
        assert verify(secret, HEADER, REQUEST_ID, "123456789", now=NOW) is not SignatureCheck.VALID


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(V1) - 1),
    byte=st.integers(min_value=0, max_value=255),
)
def test_any_byte_replacing_one_in_v1_is_rejected(position, byte):
    mutated = V1.encode()[:position] + bytes([byte]) + V1.encode()[position + 1 :]
    if mutated == V1.encode():
        return
    header = f"ts={TS},v1=" + mutated.decode("latin-1")
    assert verify(SECRET, header, REQUEST_ID, "123456789", now=NOW) is not SignatureCheck.VALID
