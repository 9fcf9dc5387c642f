"""Paying a cart (issue 17): one `Cart`, one `Order` per line, one PIX for the cart's total.

A paid cart is a group of orders (docs/decisions.md): each line is an ordinary order with
`Order.cart` set, so delivery, `waiting_stock`, refunds, access, ratings and tickets work on
a line unchanged. The cart's one `Payment` has `Payment.cart` set and `Payment.order` = the
lead line (lowest order id); `payment_for_order` finds it from any line.

Checkout is keyed by a Discord id (`Cart.interaction_id`) like `shop.checkout`: a double click
finds the cart the first one created. Cart, orders, the coupon's one use and every line's
reservation are one DB transaction: a line that cannot be reserved raises `CartLineUnavailable`
naming it and nothing is written, reserved or charged (no cart is ever half-reserved).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from core import audit
from shop import allocation, buyer_limits, cart_pricing, kinds, pricing
from shop.cart import CartEmpty, lines_of
from shop.cart_lookup import cart_for_order, cart_orders, payment_for_order
from shop.checkout import (
    Offer,
    ProductUnavailable,
    buyer_fields,
    check_quantity,
    create_once,
    reserve,
    sellable,
)
from shop.errors import InvalidStateChange, ShopError
from shop.models import Cart, CartLine, Order, Payment
from shop.orders import transition
from shop.payments.cancel import cancel_charge
from shop.payments.service import PIX_VALIDITY, PaymentServices, create_pix_payment
from shop.states import OrderStatus

__all__ = ["cart_for_order", "cart_orders", "checkout_cart", "payment_for_order"]

CHARGE_WAIT = 5.0  # seconds a second click waits for the first one's PIX
_LINE_ERRORS = (ProductUnavailable, kinds.NotDeliverable, allocation.OutOfStock)


class CartLineUnavailable(ShopError):
    """One line of the cart cannot be reserved now: nothing was reserved nor charged."""

    code = "cart_line_unavailable"
    message_key = "storefront.error.cart_line_unavailable"


@dataclass(frozen=True)
class CartCheckoutRequest:
    tenant_id: int
    instance_id: int | None
    buyer_id: str
    key: str  # idempotency key: the checkout card's message id (or an interaction id)
    buyer_name: str = ""
    guild_id: str | None = None
    channel_id: str | None = None
    locale: str = "pt-BR"
    coupon_code: str | None = None


def _line_error(line: CartLine, offer: Offer | None, exc: ShopError) -> CartLineUnavailable:
    item = f"{offer.product.name} - {offer.variation.name}" if offer else f"#{line.variation_id}"
    return CartLineUnavailable(
        f"line {line.variation_id}: {exc.code}",
        item=item,
        variation_id=line.variation_id,
        problem=exc.code,
    )


async def _offers(req: CartCheckoutRequest, lines: list[CartLine]) -> list[Offer]:
    offers = []
    for line in lines:
        try:
            offer = await sellable(req.tenant_id, line.variation_id)
        except _LINE_ERRORS as exc:
            raise _line_error(line, None, exc) from exc
        check_quantity(offer, line.quantity)
        offers.append(offer)
    return offers


async def place_cart(
    req: CartCheckoutRequest, *, hold: timedelta = PIX_VALIDITY, now: datetime | None = None
) -> tuple[Cart, bool]:
    """Create the cart, its orders and every reservation, once per `req.key`; (cart, created).

    Raises `CartEmpty`, `CartLineUnavailable`, `InvalidQuantity`, `CouponRejected`,
    `BuyerBlocked` or `TooManyOpenOrders` (then nothing was written).
    """
    existing = await Cart.get_or_none(interaction_id=req.key, tenant_id=req.tenant_id)
    if existing is not None:
        return existing, False
    now = now or datetime.now(UTC)
    lines = await lines_of(req.tenant_id, req.buyer_id)
    if not lines:
        raise CartEmpty(f"buyer {req.buyer_id} has no cart lines")
    offers = await _offers(req, lines)
    # a double click: the first one's cart holds the key (and counts as an open order)
    return await create_once(
        lambda: _create_reserved(req, lines, offers, now, now + hold),
        lambda: Cart.get_or_none(interaction_id=req.key, tenant_id=req.tenant_id),
        also=(buyer_limits.TooManyOpenOrders,),
    )


async def _reserve(conn: Any, order: Order, line: CartLine, offer: Offer, until: datetime) -> None:
    try:
        await reserve(conn, order.id, offer.variation, line.quantity, until)
    except allocation.Raced:
        raise
    except allocation.OutOfStock as exc:  # the whole transaction rolls back
        raise _line_error(line, offer, exc) from exc


async def _create_reserved(
    req: CartCheckoutRequest,
    lines: list[CartLine],
    offers: list[Offer],
    now: datetime,
    until: datetime,
) -> Cart:
    code = pricing.normalize_code(req.coupon_code)
    priced = [
        cart_pricing.PricedLine(o.product.id, o.variation.price_cents, line.quantity)
        for line, o in zip(lines, offers, strict=True)
    ]
    async with in_transaction() as conn:
        await buyer_limits.guard(conn, req.tenant_id, req.buyer_id)
        coupon, bound = None, set[int]()
        if code:
            coupon, bound = await cart_pricing.find_cart_coupon(
                req.tenant_id, code, priced, now=now, using_db=conn
            )
            await pricing.claim_use(coupon, conn)  # one use per cart
        q = cart_pricing.quote_cart(priced, coupon, bound)
        cart = await Cart.create(
            using_db=conn,
            tenant_id=req.tenant_id,
            buyer_discord_id=req.buyer_id,
            interaction_id=req.key,
            coupon_id=coupon.id if coupon else None,
            subtotal_cents=q.subtotal_cents,
            discount_cents=q.discount_cents,
            total_cents=q.total_cents,
        )
        # The coupon sits on one line only (the first it applies to): an unpaid close gives
        # back one use per order that carries it (shop.orders), and the cart took one.
        eligible = [i for i, p in enumerate(priced) if not bound or p.product_id in bound]
        coupon_line = eligible[0] if eligible else -1
        for i, (line, offer, p) in enumerate(zip(lines, offers, priced, strict=True)):
            order = await Order.create(
                using_db=conn,
                **buyer_fields(req),
                product_id=offer.product.id,
                variation_id=offer.variation.id,
                coupon_id=coupon.id if coupon and i == coupon_line else None,
                cart_id=cart.id,
                interaction_id=f"{req.key}-{i}",
                quantity=line.quantity,
                unit_price_cents=p.unit_price_cents,
                discount_cents=q.line_discounts[i],
                total_cents=q.line_total(i, p),
                reserved_until=until,
            )
            await _reserve(conn, order, line, offer, until)
        await audit.record(
            f"buyer:{req.buyer_id}",
            "cart.created",
            "cart",
            cart.id,
            tenant_id=req.tenant_id,
            after={
                "lines": [
                    {"variation_id": o.variation.id, "quantity": line.quantity}
                    for line, o in zip(lines, offers, strict=True)
                ],
                "total_cents": q.total_cents,
                "coupon": coupon.code if coupon else None,
            },
            using_db=conn,
        )
    return cart


async def checkout_cart(svc: PaymentServices, req: CartCheckoutRequest) -> tuple[Cart, Payment]:
    """Cart + orders + reservations + one PIX charge for the cart's total; the buyer's cart
    lines are cleared once it is charged. A charge that cannot be created cancels the cart
    (every reservation is released) and the error is raised: nothing is charged."""
    cart, created = await place_cart(req)
    if not created:  # another click made this cart: its PIX, once that click charged it
        charged = await _charged(cart.id)
        if charged is not None:
            return cart, charged
    orders = await cart_orders(cart.id)
    lead = orders[0]
    if lead.status != OrderStatus.PENDING:
        raise InvalidStateChange(f"cart {cart.id} is {lead.status}", status=lead.status)
    actor = f"buyer:{req.buyer_id}"
    try:
        payment = await create_pix_payment(
            svc,
            lead.id,
            actor,
            expires_at=lead.reserved_until,
            description=f"Carrinho #{cart.id} ({len(orders)} itens)",
            cart=cart,
        )
    except ShopError:
        if created:  # a second click's failure must not cancel the first one's charged cart
            await cancel_cart(cart.id, actor, reason="PIX charge could not be created")
        raise
    await CartLine.filter(tenant_id=req.tenant_id, buyer_discord_id=req.buyer_id).delete()
    return cart, payment


async def _charged(cart_id: int, within: float = CHARGE_WAIT) -> Payment | None:
    """The cart's PIX once another click has created it (polls up to `within` seconds; the
    worker's per-key lock makes this rare). Two clicks creating the same charge at once would
    send Mercado Pago one idempotency key with two bodies (the expiry differs): refused."""
    deadline = time.monotonic() + within
    while True:
        payment = await Payment.filter(cart_id=cart_id, provider_payment_id__isnull=False).first()
        if payment is not None or time.monotonic() >= deadline:
            return payment
        await asyncio.sleep(0.05)


async def cancel_cart(
    cart_id: int,
    actor: str,
    reason: str = "cancelled by buyer",
    *,
    svc: PaymentServices | None = None,
) -> None:
    """The buyer gives up an unpaid cart: every pending line closes in one transaction (its
    reservation released, the coupon's use given back), then, with `svc`, the PIX is cancelled
    at the provider (`cancel_charge` on the lead line; a PIX paid a moment ago is synced and,
    the cart being closed, refunded automatically)."""
    async with in_transaction() as conn:
        orders = await cart_orders(cart_id, conn)
        for order in orders:
            if order.status == OrderStatus.PENDING:
                await transition(
                    order.id, OrderStatus.CANCELLED, actor, reason=reason, using_db=conn
                )
    if svc is not None and orders:
        await cancel_charge(svc, orders[0].id, actor)
