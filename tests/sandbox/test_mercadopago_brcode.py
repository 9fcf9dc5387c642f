"""BR Code (EMV/CRC16), money helpers and webhook signing vectors."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.mercadopago.brcode import (
    BRCodeError,
    build_brcode,
    crc16_ccitt,
    format_amount,
    parse_brcode,
)
from sandbox.mercadopago.util import cents_to_number, parse_cents, snake_keys
from sandbox.mercadopago.validation import MAX_CENTS
from sandbox.mercadopago.webhooks import sign_webhook

SECRET = "your_secret_key_here"
REQUEST_ID = "2066ca19-c6f1-498a-be75-1923005edd06"
TS = "1742505638683"


def _code(cents: int = 1050, txid: str = "mpqrinter1320000001") -> str:
    return build_brcode(
        amount_cents=cents,
        txid=txid,
        merchant_name="Loja Açaí Ltda",
        merchant_city="São Paulo",
        pix_key="key@example.com",
    )


def test_crc16_ccitt_false_check_vector():
    assert crc16_ccitt("123456789") == "29B1"
    assert crc16_ccitt(b"") == "FFFF"


def test_build_and_parse_brcode_fields():
    code = _code()
    fields = parse_brcode(code)
    assert fields["00"] == "01" and fields["01"] == "12"
    assert fields["26"] == {"00": "br.gov.bcb.pix", "01": "key@example.com"}
    assert (fields["52"], fields["53"], fields["54"]) == ("0000", "986", "10.50")
    assert fields["58"] == "BR"
    assert fields["59"] == "LOJA ACAI LTDA"  # accents folded to ASCII, upper case
    assert fields["60"] == "SAO PAULO"
    assert fields["62"] == {"05": "mpqrinter1320000001"}
    assert code[-8:-4] == "6304" and code[-4:] == crc16_ccitt(code[:-4])


def test_parse_rejects_a_wrong_crc_and_broken_tlv():
    code = _code()
    bad_crc = code[:-4] + ("0000" if code[-4:] != "0000" else "0001")
    with pytest.raises(BRCodeError, match="CRC"):
        parse_brcode(bad_crc)
    # MP's own documentation sample carries an invalid CRC (E2CA).
    doc_sample = (
        "00020126600014br.gov.bcb.pix0117test@testuser.com0217dados adicionais"
        "520400005303986540510.005802BR5913Maria Silva6008Brasilia62070503***6304E2CA"
    )
    with pytest.raises(BRCodeError):
        parse_brcode(doc_sample)
    truncated = "000201" + "26990014br.gov.bcb.pix" + "6304"
    with pytest.raises(BRCodeError):
        parse_brcode(truncated + crc16_ccitt(truncated))


def test_merchant_name_and_city_are_cut_to_emv_limits():
    code = build_brcode(
        amount_cents=1,
        txid="x",
        merchant_name="N" * 40,
        merchant_city="C" * 30,
        pix_url="pix.example.com/qr/v2/abc",
    )
    fields = parse_brcode(code)
    assert len(fields["59"]) == 25 and len(fields["60"]) == 15
    assert fields["26"]["25"] == "pix.example.com/qr/v2/abc"
    assert fields["54"] == "0.01"


@given(st.integers(min_value=1, max_value=MAX_CENTS))
def test_amount_roundtrip_through_json_number_and_brcode(cents):
    number = cents_to_number(cents)
    assert parse_cents(number) == cents
    assert Decimal(parse_brcode(_code(cents))["54"]) * 100 == cents
    assert format_amount(cents) == f"{Decimal(cents) / 100:.2f}"


@pytest.mark.parametrize("value", [0.001, 10.123, "10.00", True, None, float("nan"), [1]])
def test_parse_cents_rejects_non_money(value):
    assert parse_cents(value) is None


def test_snake_keys_like_mp_metadata():
    assert snake_keys({"tenantId": 1, "nested": {"orderID": [{"aB": 2}]}}) == {
        "tenant_id": 1,
        "nested": {"order_id": [{"a_b": 2}]},
    }


def test_sign_webhook_documented_vectors():
    assert sign_webhook(SECRET, "123456789", REQUEST_ID, TS) == (
        "bcd78a744ce26743f9bc19f4f9402372dcda23c7ed773161dec8508734dd02f2"
    )
    assert sign_webhook(SECRET, None, None, TS) == (
        "3f075add3ddb923bebf0bc0648457b8244cf4420b98d5b445167d379bec0ca54"
    )
    # Alphanumeric ids are lower-cased in the manifest.
    assert sign_webhook(SECRET, "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3", REQUEST_ID, TS) == (
        "633f91233312dd391ec75fa0bea539cfc2d6c4918873305b84a96cc1c58db71c"
    )


def test_sign_webhook_drops_absent_parts():
    manifest = f"id:42;ts:{TS};"
    expected = hmac.new(SECRET.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    assert sign_webhook(SECRET, 42, "", TS) == expected
    assert sign_webhook(SECRET, 42, None, TS) == expected
