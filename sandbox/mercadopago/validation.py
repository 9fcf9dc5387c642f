"""Validate POST /v1/payments bodies the way Mercado Pago does (PIX subset).

Cause codes 23, 4020, 4037 and 4050 match codes MP is known to return; the
other codes are placeholders (MP does not publish a complete list).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .errors import MPError, bad_request
from .util import parse_cents, parse_mp_date, snake_keys

MAX_CENTS = 999_999_999_999  # "9999999999.99" fills the 13 chars of BR Code field 54
# PIX `date_of_expiration` must be "between 30 minutes and 30 days" from the payment's issue
# (mercadopago/devsite-docs guides/checkout-api-v2/integrate-pix.*.md, minimum raised from
# 5 to 30 minutes in devsite-docs PR #2062), measured by Mercado Pago's clock when it reads
# the request: no slack, so a client asking for exactly now+30min is refused like by MP.
MIN_EXPIRY = timedelta(minutes=30)
MAX_EXPIRY = timedelta(days=30)
DEFAULT_EXPIRY = timedelta(hours=24)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_KNOWN_FIELDS = frozenset(
    {
        "transaction_amount",
        "payment_method_id",
        "payer",
        "description",
        "external_reference",
        "notification_url",
        "date_of_expiration",
        "metadata",
        "additional_info",
        "statement_descriptor",
        "installments",
        "binary_mode",
        "callback_url",
        "capture",
        "sponsor_id",
        "application_fee",
        "issuer_id",
        "token",
        "campaign_id",
        "coupon_amount",
        "coupon_code",
        "differential_pricing_id",
        "point_of_interaction",
        "transaction_details",
        "three_d_secure_mode",
        "net_amount",
        "taxes",
        "forward_data",
        "payment_method",
        "processing_mode",
        "merchant_account_id",
        "counter_currency",
    }
)
DATE_FORMAT_MESSAGE = (
    "The following parameters must be valid date and format "
    "(yyyy-MM-dd'T'HH:mm:ssz) date_of_expiration"
)


def _amount(body: dict[str, Any]) -> int:
    if body.get("transaction_amount") is None:
        raise bad_request("transaction_amount attribute can't be null", 4037)
    cents = parse_cents(body["transaction_amount"])
    if cents is None or cents <= 0 or cents > MAX_CENTS:
        raise bad_request("Invalid transaction_amount", 4037)
    return cents


def _payer(body: dict[str, Any]) -> dict[str, Any]:
    payer = body.get("payer")
    email = payer.get("email") if isinstance(payer, dict) else None
    if not isinstance(email, str) or not _EMAIL_RE.match(email):
        raise bad_request("payer.email must be a valid email", 4050)
    assert isinstance(payer, dict)
    identification = payer.get("identification") or {}
    return {
        "id": None,
        "type": None,
        "entity_type": payer.get("entity_type"),
        "email": email,
        "first_name": payer.get("first_name"),
        "last_name": payer.get("last_name"),
        "identification": {
            "type": identification.get("type"),
            "number": identification.get("number"),
        },
        "phone": {"area_code": None, "number": None, "extension": None},
        "operator_id": None,
    }


def _optional_str(body: dict[str, Any], name: str, limit: int, code: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string", code)
    if len(value) > limit:
        raise bad_request(f"{name} must have at most {limit} characters", code)
    return value


def _notification_url(body: dict[str, Any]) -> str | None:
    url = body.get("notification_url")
    if url is None:
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > 248
    ):
        # Sic: MP's own message has the "notificaction" typo.
        raise MPError(
            400, "invalid_notification_url", "notificaction_url attribute must be a valid url", 4020
        )
    return url


def _expiration(body: dict[str, Any], now: datetime) -> datetime:
    raw = body.get("date_of_expiration")
    if raw is None:
        return now + DEFAULT_EXPIRY
    moment = parse_mp_date(raw)
    if moment is None:
        raise bad_request(DATE_FORMAT_MESSAGE, 23)
    if not (MIN_EXPIRY <= moment - now <= MAX_EXPIRY):
        raise bad_request(
            "date_of_expiration must be between 30 minutes and 30 days from now", 4027
        )
    return moment


def _application_fee(body: dict[str, Any], amount_cents: int) -> int:
    """Marketplace fee of a charge made with a seller's OAuth token (developers/en/docs/
    split-payments/integration-configuration/integrate-marketplace): 0..amount."""
    if body.get("application_fee") is None:
        return 0
    cents = parse_cents(body["application_fee"])
    if cents is None or not 0 <= cents <= amount_cents:
        raise bad_request("Invalid application_fee", 4037)
    return cents


def validate_create(body: Any, now: datetime, collector_id: int) -> dict[str, Any]:
    """Checked fields for MPState.create_payment; raises MPError(400) like MP."""
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: a JSON object is required", 4)
    unknown = sorted(set(body) - _KNOWN_FIELDS)
    if unknown:
        raise bad_request(f"The name of the following parameters is wrong : {unknown}", 8)
    method = body.get("payment_method_id")
    if method is None:
        raise bad_request("payment_method_id attribute can't be null", 4033)
    if method != "pix":
        raise bad_request("Invalid payment_method_id: this sandbox only supports pix", 4033)
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object", 4000)
    amount = _amount(body)
    payer = _payer(body)
    return {
        "collector_id": collector_id,
        "amount_cents": amount,
        "payer": payer,
        "description": _optional_str(body, "description", 600, 4001),
        "external_reference": _optional_str(body, "external_reference", 256, 4002),
        "metadata": snake_keys(metadata),
        "notification_url": _notification_url(body),
        "expires": _expiration(body, now),
        "application_fee_cents": _application_fee(body, amount),
    }
