"""Cancelling the PIX of an order that was cancelled before it was paid."""

from __future__ import annotations

import logging

from shop.cart_lookup import payments_of
from shop.errors import PaymentProviderError
from shop.models import Order, Payment
from shop.payments.payment_bookings import SyncResult
from shop.payments.service import PaymentServices
from shop.payments.sync import apply_provider_payment, sync_provider_payment
from shop.states import OrderStatus, PaymentStatus

log = logging.getLogger(__name__)


async def cancel_charge(svc: PaymentServices, order_id: int, actor: str) -> SyncResult | None:
    """Cancel the pending PIX of an order that was cancelled unpaid, so the buyer cannot pay a
    code for an order that no longer exists. Best effort, after the order is closed: when the
    provider refuses (the PIX was paid a moment ago) the payment is synced instead, and a
    payment for a closed order is refunded automatically; when the provider cannot be reached,
    the charge simply expires. None when there was nothing to cancel or nothing could be done.
    A cart line's PIX is its cart's, cancelled only once no line of the cart is pending."""
    order = await Order.get_or_none(id=order_id).only("id", "cart_id")
    if order is None:
        return None
    if (
        order.cart_id is not None
        and await Order.filter(cart_id=order.cart_id, status=OrderStatus.PENDING).exists()
    ):  # the cart's one PIX still pays its other lines (shop.payments.cart_closed_lines)
        return None
    payment = (
        await Payment.filter(
            payments_of(order),
            status__in=(PaymentStatus.PENDING, PaymentStatus.IN_PROCESS),
            provider_payment_id__isnull=False,
        )
        .order_by("-created_at")
        .first()
    )
    if payment is None or not payment.provider_payment_id:
        return None
    try:
        remote = await svc.gateway.cancel(payment.provider_payment_id)
    except PaymentProviderError as exc:
        log.info(
            "payment %s: not cancelled at the provider (%s): syncing",
            payment.id,
            exc.provider_message or exc.status,
        )
        try:
            return await sync_provider_payment(svc, payment.provider_payment_id, actor)
        except PaymentProviderError:
            return None
    return await apply_provider_payment(svc, remote, actor)
