"""Mercado Pago notifications: verify, record every delivery, deduplicate, then reconcile.

`receive_mercadopago` is the fast part the HTTP handler awaits (signature check + the insert);
`process_events` is the slow part (GET the payment, move states), run after the answer by a
`WebhookProcessor`. A crash between the two leaves the event `accepted`; the reconciler
processes it again. Accepted events are identified by their unique `dedupe_key`.
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
from shop.payments.service import PaymentServices
from shop.payments.signature import SignatureCheck, verify
from shop.payments.sync import SyncResult, sync_provider_payment

log = logging.getLogger(__name__)

ACCEPTED = "accepted"  # recorded, processing pending (or lost: the reconciler retries it)
DUPLICATE = "duplicate"
TRANSIENT = "transient: "  # prefix of `detail` for errors worth retrying
_MAX_BODY = 4096

# Stores one event (WebhookEvent fields) and returns the outcome stored: an `accepted`
# event whose dedupe_key exists already is stored as a `duplicate` instead.
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


def as_duplicate(fields: dict[str, Any]) -> dict[str, Any]:
    return {**fields, "outcome": DUPLICATE, "dedupe_key": None,
            "detail": f"duplicate of {fields['dedupe_key']}"}


async def record_one(fields: dict[str, Any]) -> str:
    """The plain recorder: one INSERT (see `shop.webhook_writer` for the batched one)."""
    try:
        await WebhookEvent.create(**fields)
    except IntegrityError:  # the same notification again (retry, duplicate, replay)
        if not fields.get("dedupe_key"):
            raise
        fields = as_duplicate(fields)
        await WebhookEvent.create(**fields)
    return str(fields["outcome"])


def _parse_body(raw: bytes) -> dict[str, Any] | None:
    if len(raw) > _MAX_BODY:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _store(recorder: Recorder, outcome: str, status: int, provider_id: str | None = None,
                 **fields: Any) -> Receipt:
    stored = await recorder({"outcome": outcome, **fields})
    key = fields.get("dedupe_key") if stored == ACCEPTED else None
    return Receipt(status, stored, key, provider_id if stored == ACCEPTED else None)


async def _receive_ipn(recorder: Recorder, query: Mapping[str, str],
                       headers: Mapping[str, str]) -> Receipt:
    """Legacy IPN (`?topic=payment&id=…`): unsigned, so it only triggers a fetch."""
    topic, pid = query.get("topic", ""), query.get("id", "")
    common = {"topic": topic[:40], "data_id": pid[:64],
              "request_id": headers.get("x-request-id", "")[:100]}
    if topic != "payment" or not pid.isdigit():
        return await _store(recorder, "ignored", 200, detail="IPN topic not handled", **common)
    return await _store(recorder, ACCEPTED, 200, pid, dedupe_key=f"ipn:{pid}:{uuid.uuid4().hex}",
                        detail="legacy IPN: verified by fetching the payment", **common)


async def receive_mercadopago(secret: str, query: Mapping[str, str],
                              headers: Mapping[str, str], raw_body: bytes,
                              now: float | None = None,
                              recorder: Recorder = record_one) -> Receipt:
    """Check and record one delivery; 401 on a bad signature (nothing else changes)."""
    if "topic" in query and "data.id" not in query:
        return await _receive_ipn(recorder, query, headers)
    data_id = query.get("data.id")
    request_id = headers.get("x-request-id")
    check = verify(secret, headers.get("x-signature"), request_id, data_id,
                   now=time.time() if now is None else now)
    body = _parse_body(raw_body)
    common: dict[str, Any] = {
        "request_id": (request_id or "")[:100], "data_id": (data_id or "")[:64], "body": body,
        "notification_id": str((body or {}).get("id", ""))[:64],
        "topic": str((body or {}).get("type") or query.get("type") or "")[:40],
        "action": str((body or {}).get("action", ""))[:60],
    }
    if check is not SignatureCheck.VALID:
        outcome = "stale" if check is SignatureCheck.STALE else "invalid_signature"
        return await _store(recorder, outcome, 401, detail=str(check), **common)
    if body is None:
        return await _store(recorder, "ignored", 400, signature_valid=True,
                            detail="body is not a JSON object", **common)
    pid = data_id or str((body.get("data") or {}).get("id", ""))
    if common["topic"] != "payment" or not pid.isdigit():
        return await _store(recorder, "ignored", 200, signature_valid=True,
                            detail="not a payment notification", **common)
    common["data_id"] = pid[:64]
    dedupe = f"mp:{common['notification_id']}:{pid}:{common['action']}"[:200]
    return await _store(recorder, ACCEPTED, 200, pid, signature_valid=True, dedupe_key=dedupe,
                        **common)


async def process_events(svc: PaymentServices, dedupe_keys: list[str], provider_id: str,
                         actor: str = "system:webhook") -> SyncResult | None:
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
        result.outcome, "error")
    detail = "; ".join(result.changes) or "no change"
    if result.detail:
        detail = f"{detail}; {result.detail}"
    await _finish(dedupe_keys, outcome, detail)
    return result


async def _finish(dedupe_keys: list[str], outcome: str, detail: str) -> None:
    for start in range(0, len(dedupe_keys), 500):  # keep under SQLite's variable limit
        await WebhookEvent.filter(dedupe_key__in=dedupe_keys[start:start + 500]).update(
            outcome=outcome, detail=detail[:2000])
