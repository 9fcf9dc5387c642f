"""Admin payments API: list/inspect payments, resync one with Mercado Pago.

Also the single translation of `ShopError`s to HTTP for the admin app.
"""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint, current_app, g, jsonify, request

from core.i18n import normalize_locale
from shop import errors, ledger
from shop.models import Payment, WebhookEvent
from shop.payments.service import close_services, services_for
from shop.payments.sync import sync_payment
from shop.states import IllegalTransition, PaymentStatus
from web.admin.api import query_id

bp = Blueprint("admin_payments", __name__)

SHOP_ERROR_STATUS: dict[type[errors.ShopError], int] = {
    errors.OrderNotFound: 404,
    errors.PaymentNotFound: 404,
    errors.WithdrawalNotFound: 404,
    errors.InvalidStateChange: 409,
    errors.InvalidAmount: 400,
    errors.InvalidPixKey: 400,
    errors.InsufficientBalance: 409,
    errors.PaymentProviderUnavailable: 503,
    errors.PaymentProviderError: 502,
}


def shop_error_status(exc: errors.ShopError) -> int:
    """The HTTP status of a shop error (most specific class wins)."""
    for cls in type(exc).__mro__:
        if cls in SHOP_ERROR_STATUS:
            return SHOP_ERROR_STATUS[cls]
    return 400


def _locale() -> str:
    return normalize_locale(request.accept_languages.best_match(["pt-BR", "en"]) or None)


@bp.app_errorhandler(errors.ShopError)
async def _shop_error(exc: errors.ShopError):  # type: ignore[no-untyped-def]
    body: dict[str, Any] = {"error": exc.code, "message": exc.message(_locale())}
    if isinstance(exc, errors.PaymentProviderError):
        body["provider_message"] = exc.provider_message
    return jsonify(body), shop_error_status(exc)


@bp.app_errorhandler(IllegalTransition)
async def _illegal(exc: IllegalTransition):  # type: ignore[no-untyped-def]
    return jsonify({"error": "invalid_state", "message": str(exc)}), 409


@bp.after_app_serving
async def _close_gateway() -> None:
    await close_services(current_app.config)


def payment_json(p: Payment) -> dict[str, Any]:
    return {
        "id": str(p.id), "tenant_id": p.tenant_id, "order_id": p.order_id,
        "provider_payment_id": p.provider_payment_id, "status": str(p.status),
        "status_detail": p.status_detail, "amount_cents": p.amount_cents,
        "refunded_cents": p.refunded_cents, "created_at": p.created_at.isoformat(),
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
async def list_payments():  # type: ignore[no-untyped-def]
    """Newest first; filters: status, tenant_id, order_id; limit (≤ 500)."""
    query = Payment.all().order_by("-created_at")
    if status := request.args.get("status"):
        if status not in {s.value for s in PaymentStatus}:
            return jsonify({"error": "bad_request", "message": f"unknown status {status}"}), 400
        query = query.filter(status=status)
    for name in ("tenant_id", "order_id"):
        if (value := query_id(name)) is not None:
            query = query.filter(**{name: value})
    limit = min(max(request.args.get("limit", 100, type=int) or 100, 1), 500)
    return jsonify({"payments": [payment_json(p) for p in await query.limit(limit)]})


@bp.get("/api/payments/<ref>")
async def get_payment(ref: str):  # type: ignore[no-untyped-def]
    """One payment (our UUID or the Mercado Pago id), its webhooks and ledger entries."""
    payment = await _find(ref)
    events = await WebhookEvent.filter(data_id=payment.provider_payment_id or "-") \
        .order_by("id").limit(100) if payment.provider_payment_id else []
    entries = await ledger.payment_entries(str(payment.id))  # sale, partial refunds, reversal
    return jsonify({
        **payment_json(payment),
        "webhooks": [{"id": e.id, "received_at": e.received_at.isoformat(),
                      "action": e.action, "outcome": e.outcome,
                      "signature_valid": e.signature_valid, "detail": e.detail}
                     for e in events],
        "ledger": [{"account": e.account, "amount_cents": e.amount_cents, "kind": e.kind,
                    "available_at": e.available_at.isoformat()} for e in entries],
    })


@bp.post("/api/payments/<ref>/resync")
async def resync_payment(ref: str):  # type: ignore[no-untyped-def]
    """Ask Mercado Pago about this payment now and apply it; says what changed."""
    payment = await _find(ref)
    result = await sync_payment(services_for(current_app.config), str(payment.id), g.actor)
    body = result.as_dict()
    body["message"] = "changed" if result.changed else "no change"
    return jsonify(body)
