"""Mercado Pago notifications: verify, record what is worth acting on, then reconcile.

`receive_mercadopago` is the fast part the HTTP handler awaits (signature check + the insert);
`process_events` is the slow part (GET the payment, move states), run after the answer by a
`WebhookProcessor`. A crash between the two leaves the event `accepted`; the reconciler
processes it again. Accepted events are identified by their unique `dedupe_key`.

Only deliveries Mercado Pago signed, and legacy IPNs about a payment we created, are stored
or fetched; forged, unsigned, unknown and repeated ones are answered and counted
(`shop.payments.webhook_guard`), so a flood costs neither rows nor Mercado Pago requests.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from shop.errors import PaymentProviderUnavailable
from shop.models import WebhookEvent
from shop.payments.mp_ids import is_order_id, is_payment_id
from shop.payments.payment_bookings import SyncResult
from shop.payments.service import PaymentServices
from shop.payments.signature import SignatureCheck, verify
from shop.payments.sync import sync_provider_payment
from shop.payments.webhook_guard import (
    IPN_IGNORED,
    IPN_REPEATED,
    IPN_UNKNOWN,
    WebhookGuard,
    is_our_payment,
)

log = logging.getLogger(__name__)

ACCEPTED = "accepted"  # recorded, processing pending (or lost: the reconciler retries it)
DUPLICATE = "duplicate"
TRANSIENT = "transient: "  # prefix of `detail` for errors worth retrying
_MAX_BODY = 4096

# Stores one event (WebhookEvent fields) and returns its outcome: an `accepted` event whose
# dedupe_key exists already is a `duplicate`, and is not stored (a replay costs no row).
Recorder = Callable[[dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class Receipt:
    """How to answer the delivery, and what to process afterwards (if anything)."""

    status: int
    outcome: str
    dedupe_key: str | None = None
    provider_payment_id: str | None = None

    @property
    def to_process(self) -> bool:
        return self.outcome == ACCEPTED and self.provider_payment_id is not None


async def record_one(fields: dict[str, Any]) -> str:
    """The plain recorder: one INSERT (`shop.payments.webhook_workers.EventWriter` batches)."""
    try:
        await WebhookEvent.create(**fields)
    except IntegrityError:  # the same notification again (retry, duplicate, replay)
        if not fields.get("dedupe_key"):
            raise
        return DUPLICATE
    return str(fields["outcome"])


def _parse_body(raw: bytes) -> dict[str, Any] | None:
    if len(raw) > _MAX_BODY:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _store(
    recorder: Recorder, outcome: str, status: int, provider_id: str | None = None, **fields: Any
) -> Receipt:
    stored = await recorder({"outcome": outcome, **fields})
    key = fields.get("dedupe_key") if stored == ACCEPTED else None
    return Receipt(status, stored, key, provider_id if stored == ACCEPTED else None)


# What a signed notification is about: `payment` (Payments API: data.id is a payment id) or
# `order` (Orders API: data.id is the order id, docs/checkout-api-orders/notifications).
_RESOURCE_CHECK = {"payment": is_payment_id, "order": is_order_id}


def dedupe_key(topic: str, notification_id: str, pid: str, action: str, request_id: str) -> str:
    """What makes two deliveries the same notification.

    A payment notification is its `id` (stable across Mercado Pago's retries) with the payment
    and action. An order notification is its `x-request-id`: a refund of an order is notified
    with the same data.id (the order) and may repeat an action, so only the request id tells a
    new notification from a retried one (developers/en/docs/checkout-api-orders/notifications).
    """
    if topic == "order" and request_id:
        return f"mpo:{request_id}"[:200]
    return f"mp:{notification_id}:{pid}:{action}"[:200]


async def _receive_ipn(
    recorder: Recorder, query: Mapping[str, str], headers: Mapping[str, str], guard: WebhookGuard
) -> Receipt:
    """Legacy IPN (`?topic=payment&id=…`): unsigned, so it only triggers a fetch, and only of
    a payment we created, once per window. Every IPN about a payment id gets the same answer,
    whether we know it or not."""
    topic, pid = query.get("topic", ""), query.get("id", "")
    if topic != "payment" or not is_payment_id(pid):
        await guard.count(IPN_IGNORED)
        return Receipt(200, "ignored")
    if await guard.throttled():
        return Receipt(429, "rate_limited")
    if not await is_our_payment(pid):
        await guard.count(IPN_UNKNOWN)
        return Receipt(200, ACCEPTED)
    if not await guard.claim_ipn(pid):
        await guard.count(IPN_REPEATED)
        return Receipt(200, ACCEPTED)
    common = {
        "topic": topic[:40],
        "data_id": pid[:64],
        "request_id": headers.get("x-request-id", "")[:100],
    }
    try:
        return await _store(
            recorder,
            ACCEPTED,
            200,
            pid,
            dedupe_key=f"ipn:{pid}:{uuid.uuid4().hex}",
            detail="legacy IPN: verified by fetching the payment",
            **common,
        )
    except Exception:
        await guard.release_ipn(pid)  # not stored: Mercado Pago's retry must not be dropped
        raise


async def receive_mercadopago(
    secret: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    raw_body: bytes,
    now: float | None = None,
    recorder: Recorder = record_one,
    guard: WebhookGuard | None = None,
) -> Receipt:
    """Check and record one delivery; 401 on a bad signature (counted, nothing stored), 429
    when an unsigned caller is over its limit."""
    guard = guard or WebhookGuard()
    if "topic" in query and "data.id" not in query:
        return await _receive_ipn(recorder, query, headers, guard)
    data_id = query.get("data.id")
    request_id = headers.get("x-request-id")
    check = verify(
        secret,
        headers.get("x-signature"),
        request_id,
        data_id,
        now=time.time() if now is None else now,
    )
    body = _parse_body(raw_body)
    common: dict[str, Any] = {
        "request_id": (request_id or "")[:100],
        "data_id": (data_id or "")[:64],
        "body": body,
        "notification_id": str((body or {}).get("id", ""))[:64],
        "topic": str((body or {}).get("type") or query.get("type") or "")[:40],
        "action": str((body or {}).get("action", ""))[:60],
    }
    if check is not SignatureCheck.VALID:
        # Not stored: anyone can send these. Mercado Pago retries a delivery we refuse
        # (it expects 200/201, https://www.mercadopago.com.br/developers/en/docs/
        # your-integrations/notifications/webhooks), so after a secret mix-up is fixed its
        # real notifications still arrive.
        await guard.bad_signature(str(check), now)
        if await guard.throttled():
            return Receipt(429, "rate_limited")
        return Receipt(401, "stale" if check is SignatureCheck.STALE else "invalid_signature")
    if body is None:
        return await _store(
            recorder,
            "ignored",
            400,
            signature_valid=True,
            detail="body is not a JSON object",
            **common,
        )
    pid = data_id or str((body.get("data") or {}).get("id", ""))
    check_id = _RESOURCE_CHECK.get(common["topic"])
    if check_id is None or not check_id(pid):
        return await _store(
            recorder,
            "ignored",
            200,
            signature_valid=True,
            detail="not a payment or order notification",
            **common,
        )
    common["data_id"] = pid[:64]
    dedupe = dedupe_key(
        common["topic"], common["notification_id"], pid, common["action"], common["request_id"]
    )
    receipt = await _store(
        recorder, ACCEPTED, 200, pid, signature_valid=True, dedupe_key=dedupe, **common
    )
    if receipt.outcome == DUPLICATE:  # a retry or a replay: answered, not stored
        await guard.count(DUPLICATE)
    return receipt


async def process_events(
    svc: PaymentServices, dedupe_keys: list[str], provider_id: str, actor: str = "system:webhook"
) -> SyncResult | None:
    """One fetch-and-reconcile for events about the same payment; stores their outcome."""
    try:
        result = await sync_provider_payment(svc, provider_id, actor)
    except PaymentProviderUnavailable as exc:
        await _finish(dedupe_keys, "error", f"{TRANSIENT}{exc}")
        return None
    except Exception as exc:
        log.exception("webhook events %s: processing failed", dedupe_keys)
        await _finish(dedupe_keys, "error", f"{TRANSIENT}{type(exc).__name__}: {exc}")
        return None
    outcome = {"processed": "processed", "unknown_payment": "unknown_payment"}.get(
        result.outcome, "error"
    )
    detail = "; ".join(result.changes) or "no change"
    if result.detail:
        detail = f"{detail}; {result.detail}"
    await _finish(dedupe_keys, outcome, detail)
    return result


async def _finish(dedupe_keys: list[str], outcome: str, detail: str) -> None:
    for start in range(0, len(dedupe_keys), 500):  # keep under SQLite's variable limit
        await WebhookEvent.filter(dedupe_key__in=dedupe_keys[start : start + 500]).update(
            outcome=outcome, detail=detail[:2000]
        )
