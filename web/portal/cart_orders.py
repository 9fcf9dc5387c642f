"""Carts on the seller's order pages (issue 17): the order page of a cart line shows the
cart's lines, totals and coupon (`cart_context`), each line refundable on its own (the
order's refund form) or the whole cart at once (`POST /orders/<id>/refund-cart`)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, g, redirect, url_for

from shop.cart_summary import cart_summary
from shop.errors import ShopError
from shop.models import Order
from shop.payments.refunds import refund_order
from shop.states import OrderStatus
from web.common import payment_services
from web.portal.context import actor, owned, say, store_required

bp = Blueprint("cart_orders", __name__)

# what a refund can still act on (the same set as the order page's refund button)
REFUNDABLE = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.WAITING_STOCK,
        OrderStatus.AWAITING_FULFILMENT,
        OrderStatus.DELIVERED,
    }
)


async def cart_context(order: Order) -> dict[str, Any]:
    """Template variables of the order page's cart section (empty for a single order)."""
    if order.cart_id is None:
        return {"cart": None}
    summary = await cart_summary(order.cart_id, g.tenant.id)
    if summary is None:
        return {"cart": None}
    refundable = {ln.order_id for ln in summary.lines if ln.status in REFUNDABLE}
    return {"cart": summary, "cart_refundable": refundable}


@bp.post("/orders/<int:order_id>/refund-cart")
@store_required
async def refund_cart(order_id: int):
    """Refund every paid line of the order's cart (all that is left of its one PIX)."""
    order = await owned(Order, order_id)
    summary = await cart_summary(order.cart_id, g.tenant.id) if order.cart_id else None
    if summary is None or not any(ln.status in REFUNDABLE for ln in summary.lines):
        await say("portal.cart.nothing_to_refund", "error")
        return redirect(url_for("orders.order_detail", order_id=order.id))
    lead = next(ln.order_id for ln in summary.lines if ln.status in REFUNDABLE)
    try:
        await refund_order(payment_services(current_app), lead, actor(), whole_cart=True)
    except ShopError as exc:
        await say("portal.cart.refund_failed", "error", reason=exc.message(g.locale))
    else:
        await say("portal.cart.refunded")
    return redirect(url_for("orders.order_detail", order_id=order.id))
