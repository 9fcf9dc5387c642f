"""Which cart an order is a line of, and the payment of a line (a cart's one payment)."""

from __future__ import annotations

from typing import Any, cast

from tortoise.expressions import Q

from shop.models import Cart, Order, Payment


async def cart_orders(cart_id: int, using_db: Any = None) -> list[Order]:
    """The cart's lines as orders, lead line (lowest id) first."""
    return await Order.filter(cart_id=cart_id).using_db(using_db).order_by("id").all()


async def cart_for_order(order_id: int) -> Cart | None:
    """The cart an order is a line of (None: a single order)."""
    order = await Order.get_or_none(id=order_id).only("id", "cart_id")
    if order is None or order.cart_id is None:
        return None
    return await Cart.get_or_none(id=order.cart_id)


async def payment_for_order(order_id: int) -> Payment | None:
    """The order's latest payment; a cart line's is its cart's one payment."""
    order = await Order.get_or_none(id=order_id).only("id", "cart_id")
    if order is None:
        return None
    if order.cart_id is not None:
        return await Payment.filter(cart_id=order.cart_id).order_by("-created_at").first()
    return await Payment.filter(order_id=order_id).order_by("-created_at").first()


def payments_of(order: Order) -> Q:
    """A filter for the payments that pay `order`: its own, or a cart line's cart's."""
    if order.cart_id is None:
        return Q(order_id=order.id)
    return Q(order_id=order.id) | Q(cart_id=order.cart_id)


async def payment_order_ids(payment: Payment, using_db: Any = None) -> list[int]:
    """The orders a payment pays: its order, or every line of its cart (lead first)."""
    if payment.cart_id is None:
        return [payment.order_id]
    ids = (
        await Order.filter(cart_id=payment.cart_id)
        .using_db(using_db)
        .order_by("id")
        .values_list("id", flat=True)
    )
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    return cast(list[int], ids) or [payment.order_id]
