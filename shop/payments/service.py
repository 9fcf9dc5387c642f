"""Creating PIX charges for orders (handing paid orders to their worker is `shop.outbox`)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from redis.asyncio import Redis
from tortoise.transactions import in_transaction

from core import audit
from core.settings import Settings
from shop.errors import InvalidStateChange, OrderNotFound, PaymentProviderUnavailable
from shop.models import Cart, Order, Payment
from shop.payments.connected_gateway import ConnectedRouter
from shop.payments.gateway import PaymentGateway, PixCharge, ProviderPayment
from shop.payments.payment_transitions import transition_payment
from shop.states import OrderStatus, PaymentStatus

log = logging.getLogger(__name__)

PIX_VALIDITY = timedelta(minutes=30)  # Mercado Pago's minimum; reserve stock for as long
# Mercado Pago refuses a PIX `date_of_expiration` under 30 minutes from the moment it reads the
# request, by its own clock (docs: "between 30 minutes and 30 days" from issue,
# mercadopago/devsite-docs guides/checkout-api-v2/integrate-pix; raised from 5 min in 2023).
# now + 30 min computed here is a few milliseconds short by then, more if its clock is ahead
# of ours or the request is retried after a backoff, so we ask for a minute more.
PIX_EXPIRY_MARGIN = timedelta(seconds=60)


@dataclass
class PaymentServices:
    """What payment code needs from the process: the gateway, Redis and the money settings."""

    gateway: PaymentGateway
    redis: Redis | None
    fee_bps: int
    hold_days: int
    payer_email_domain: str = "example.com"

    @classmethod
    def from_settings(
        cls, settings: Settings, gateway: PaymentGateway, redis: Redis | None
    ) -> PaymentServices:
        host = urlparse(settings.public_base_url).hostname or "example.com"
        domain = host if "." in host and not host.replace(".", "").isdigit() else "example.com"
        if not isinstance(gateway, ConnectedRouter):  # connected sellers' charges (issue 20)
            gateway = ConnectedRouter.from_settings(settings, gateway)
        return cls(gateway, redis, settings.platform_fee_bps, settings.withdrawal_hold_days, domain)


def provider_snapshot(remote: ProviderPayment) -> dict[str, Any]:
    """The provider's object without the (large, reproducible) QR image."""
    raw = dict(remote.raw)
    poi = raw.get("point_of_interaction")
    if isinstance(poi, dict) and isinstance(poi.get("transaction_data"), dict):
        tx = {k: v for k, v in poi["transaction_data"].items() if k != "qr_code_base64"}
        raw["point_of_interaction"] = {**poi, "transaction_data": tx}
    return raw


async def _payment_for(order: Order, cart: Cart | None = None) -> Payment:
    """The order's open payment, or a new one (its UUID is the idempotency key); a cart's
    payment (`cart`, `order` its lead line) charges the cart's total."""
    existing = (
        await Payment.filter(order_id=order.id, status=PaymentStatus.PENDING)
        .order_by("-created_at")
        .first()
    )
    if existing is not None:
        return existing
    return await Payment.create(
        id=uuid.uuid4(),
        tenant_id=order.tenant_id,
        order_id=order.id,
        cart_id=cart.id if cart else None,
        amount_cents=cart.total_cents if cart else order.total_cents,
    )


async def create_pix_payment(
    svc: PaymentServices,
    order_id: int,
    actor: str,
    *,
    payer_email: str | None = None,
    description: str | None = None,
    expires_at: datetime | None = None,
    cart: Cart | None = None,
) -> Payment:
    """The PIX charge for a pending order (created once: calling again returns the same one);
    with `cart`, the one charge of a cart (`order_id` is its lead line, shop.cart_checkout).

    Raises `OrderNotFound`, `InvalidStateChange` (order not pending) or a
    `PaymentProviderError` with Mercado Pago's message (then nothing was charged).
    """
    order = await Order.get_or_none(id=order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    if order.status != OrderStatus.PENDING:
        raise InvalidStateChange(f"order {order_id} is {order.status}, not pending")
    payment = await _payment_for(order, cart)
    if payment.provider_payment_id:
        return payment
    floor = datetime.now(UTC) + PIX_VALIDITY + PIX_EXPIRY_MARGIN
    expiry = max(expires_at or order.reserved_until or floor, floor)
    charge = PixCharge(
        payment_id=str(payment.id),
        amount_cents=payment.amount_cents,
        description=description or f"Pedido #{order.id}",
        payer_email=payer_email or f"buyer{order.buyer_discord_id}@{svc.payer_email_domain}",
        expires_at=expiry,
        metadata={"tenant_id": order.tenant_id, "order_id": order.id}
        | ({"cart_id": cart.id} if cart else {}),
    )
    try:
        remote = await svc.gateway.create_pix(charge)
    except PaymentProviderUnavailable:
        raise  # the same payment id is retried next time: never two charges
    except Exception as exc:
        await _mark_create_failed(payment, actor, exc)
        raise
    async with in_transaction() as conn:
        payment.provider_payment_id = remote.id
        payment.status_detail = remote.status_detail
        payment.qr_code = remote.qr_code
        payment.ticket_url = remote.ticket_url[:500]
        payment.expires_at = remote.expires_at or expiry
        payment.provider_data = provider_snapshot(remote)
        await payment.save(using_db=conn)
        await audit.record(
            actor,
            "payment.created",
            "payment",
            payment.id,
            tenant_id=order.tenant_id,
            before=None,
            after={
                "provider_payment_id": remote.id,
                "order_id": order.id,
                "amount_cents": payment.amount_cents,
            },
            using_db=conn,
        )
    return payment


async def _mark_create_failed(payment: Payment, actor: str, exc: Exception) -> None:
    """A refused create (bad request) will not get better by retrying the same body."""
    async with in_transaction() as conn:
        await transition_payment(
            payment,
            [PaymentStatus.REJECTED],
            actor,
            using_db=conn,
            action="payment.create_failed",
            before=None,
            after={"error": str(exc)},
        )
        payment.status_detail = f"create_failed: {exc}"[:60]
        await payment.save(using_db=conn, update_fields=["status", "status_detail", "updated_at"])
