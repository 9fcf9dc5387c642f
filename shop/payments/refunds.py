"""Refunds the seller or an operator asks for: Mercado Pago returns the money, then the same
sync path as a webhook moves the order to `refunded` and reverses the sale in the ledger."""

from __future__ import annotations

from core import audit
from shop.errors import InvalidStateChange, OrderNotFound, PaymentNotFound
from shop.models import Order, Payment
from shop.payments.service import PaymentServices
from shop.payments.sync import SyncResult, sync_provider_payment
from shop.states import PAID_ORDER_STATES, OrderStatus, PaymentStatus


async def refund_order(svc: PaymentServices, order_id: int, actor: str) -> SyncResult:
    """Fully refund a paid order's PIX (what partial refunds left of it). Safe to call twice:
    the refund request carries an idempotency key per payment, and the sync only moves
    forward."""
    order = await Order.get_or_none(id=order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    if OrderStatus(order.status) not in PAID_ORDER_STATES | {OrderStatus.REFUNDED}:
        raise InvalidStateChange(f"order {order_id} is {order.status}: nothing was paid")
    payment = await Payment.filter(order_id=order.id, status__in=(
        PaymentStatus.APPROVED, PaymentStatus.REFUNDED)).order_by("-created_at").first()
    if payment is None or not payment.provider_payment_id:
        raise PaymentNotFound(f"order {order_id} has no approved payment")
    if payment.status == PaymentStatus.APPROVED:
        await svc.gateway.refund(payment.provider_payment_id, f"refund-{payment.id}")
        await audit.record(actor, "payment.refund_requested", "payment", payment.id,
                           tenant_id=order.tenant_id, before={"status": "approved"},
                           after={"order_id": order.id,
                                  "amount_cents": payment.amount_cents - payment.refunded_cents})
    return await sync_provider_payment(svc, payment.provider_payment_id, actor)
