"""Admin payments API: list/inspect payments, resync one with Mercado Pago.

Shop errors raised here become HTTP answers in `web.admin.api.install_api_errors`.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field
from quart import Blueprint, current_app, g, jsonify
from quart_schema import tag, validate_querystring
from tortoise.expressions import Q

from shop import errors, ledger
from shop.cart_lookup import payments_of
from shop.models import Order, Payment, WebhookEvent
from shop.payments.sync import sync_payment
from shop.states import PaymentStatus
from web.admin.api import MAX_ID, MAX_LIMIT, BlankIsAbsent
from web.common import payment_services

bp = Blueprint("admin_payments", __name__)


class PaymentsQuery(BlankIsAbsent):
    """`GET /api/payments`: newest first, at most `limit` (1–500, default 100)."""

    status: PaymentStatus | None = None
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)
    order_id: int | None = Field(None, ge=0, le=MAX_ID)
    limit: int = Field(100, ge=1, le=MAX_LIMIT)


def payment_json(p: Payment) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "tenant_id": p.tenant_id,
        "order_id": p.order_id,
        "provider_payment_id": p.provider_payment_id,
        "status": str(p.status),
        "status_detail": p.status_detail,
        "amount_cents": p.amount_cents,
        "refunded_cents": p.refunded_cents,
        "created_at": p.created_at.isoformat(),
        "approved_at": p.approved_at.isoformat() if p.approved_at else None,
        "expires_at": p.expires_at.isoformat() if p.expires_at else None,
        "last_checked_at": p.last_checked_at.isoformat() if p.last_checked_at else None,
    }


async def _find(ref: str) -> Payment:
    try:
        payment = await Payment.get_or_none(id=uuid.UUID(ref))
    except ValueError:
        payment = await Payment.get_or_none(provider_payment_id=ref)
    if payment is None:
        raise errors.PaymentNotFound(f"no payment {ref!r}")
    return payment


@bp.get("/api/payments")
@tag(["payments"])
@validate_querystring(PaymentsQuery)
async def list_payments(query_args: PaymentsQuery):
    """Newest first; filters: status, tenant_id, order_id; limit (≤ 500)."""
    query = Payment.all().order_by("-created_at")
    for name in ("status", "tenant_id"):
        if (value := getattr(query_args, name)) is not None:
            query = query.filter(**{name: value})
    if query_args.order_id is not None:  # a cart line: its cart's one payment too
        order = await Order.get_or_none(id=query_args.order_id).only("id", "cart_id")
        query = query.filter(payments_of(order) if order else Q(order_id=query_args.order_id))
    rows = await query.limit(query_args.limit)
    return jsonify({"payments": [payment_json(p) for p in rows]})


@bp.get("/api/payments/<ref>")
@tag(["payments"])
async def get_payment(ref: str):
    """One payment (our UUID or the Mercado Pago id), its webhooks and ledger entries."""
    payment = await _find(ref)
    events = (
        await WebhookEvent.filter(data_id=payment.provider_payment_id or "-")
        .order_by("id")
        .limit(100)
        if payment.provider_payment_id
        else []
    )
    entries = await ledger.payment_entries(str(payment.id))  # sale, partial refunds, reversal
    return jsonify(
        {
            **payment_json(payment),
            "webhooks": [
                {
                    "id": e.id,
                    "received_at": e.received_at.isoformat(),
                    "action": e.action,
                    "outcome": e.outcome,
                    "signature_valid": e.signature_valid,
                    "detail": e.detail,
                }
                for e in events
            ],
            "ledger": [
                {
                    "account": e.account,
                    "amount_cents": e.amount_cents,
                    "kind": e.kind,
                    "available_at": e.available_at.isoformat(),
                }
                for e in entries
            ],
        }
    )


@bp.post("/api/payments/<ref>/resync")
@tag(["payments"])
async def resync_payment(ref: str):
    """Ask Mercado Pago about this payment now and apply it; says what changed."""
    payment = await _find(ref)
    result = await sync_payment(payment_services(current_app), str(payment.id), g.actor)
    body = result.as_dict()
    body["message"] = "changed" if result.changed else "no change"
    return jsonify(body)
