"""Operator refunds: `POST /api/orders/{id}/refund` (what `vitrine refund` calls).

Unlike a seller's refund from the portal, it skips the balance check, so it can leave the
seller's balance negative (withdrawals then stay blocked, and operators get an alert); the
reason is required and kept in the audit log with the operator's name.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from quart import Blueprint, current_app
from quart_schema import tag, validate_response

from shop import ledger
from shop.cart_lookup import payment_for_order
from shop.inputs import MAX_CENTS
from shop.models import Order
from shop.payments.refunds import MAX_REASON, operator_refund
from web.admin.api import ErrorBody, Strict, actor, json_body
from web.common import payment_services

bp = Blueprint("admin_refunds", __name__)


class RefundIn(Strict):
    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON,
        pattern=r"\S",
        description="why (kept in the audit log)",
    )
    amount_cents: int | None = Field(
        None, ge=1, le=MAX_CENTS, description="partial refund; omitted: all that is left"
    )


class RefundOut(BaseModel):
    """The order and payment after the refund, the seller's balance, what the sync did."""

    order_id: int
    order_status: str
    payment_status: str
    refunded_cents: int
    balance_cents: int
    changes: list[str]
    message: str


@bp.post("/api/orders/<int:order_id>/refund")
@tag(["orders"])
@json_body(RefundIn)
@validate_response(RefundOut)
@validate_response(ErrorBody, 404)
@validate_response(ErrorBody, 409)
async def refund_order(order_id: int, data: RefundIn):
    """Refund a paid order at Mercado Pago as an operator (all, or `amount_cents`).

    No balance check: the seller's balance may go negative, which blocks their withdrawals.
    """
    result = await operator_refund(
        payment_services(current_app), order_id, actor(), data.reason, data.amount_cents
    )
    order = await Order.get(id=order_id)
    payment = await payment_for_order(order_id)  # a cart line: its cart's one payment
    return {
        "order_id": order_id,
        "order_status": str(order.status),
        "payment_status": str(payment.status) if payment else "",
        "refunded_cents": payment.refunded_cents if payment else 0,
        "balance_cents": (await ledger.balance(order.tenant_id)).total_cents,
        "changes": result.changes or ["no change"],
        "message": "refunded" if result.changed else "no change",
    }
