"""Orders: filterable list, detail with a timeline, re-deliver and refund (through Payments)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from quart import Blueprint, current_app, g, redirect, request, url_for

from core import audit
from core.models import AuditLog
from shop import inputs
from shop.cart_lookup import payments_of
from shop.errors import ShopError
from shop.models import Order, Payment
from shop.outbox import enqueue_delivery
from shop.payments.refunds import refund_order
from shop.states import OrderStatus, PaymentStatus
from shop.tickets import tickets_of_order
from web.common import payment_services
from web.portal.cart_orders import cart_context
from web.portal.cart_timeline import cart_events
from web.portal.context import _, actor, owned, redis, render, say, store_required
from web.portal.dashboard import BRT
from web.portal.order_rating import rating_context

bp = Blueprint("orders", __name__)
log = logging.getLogger(__name__)

PAGE_SIZE = 50
REDELIVERABLE = frozenset({OrderStatus.PAID, OrderStatus.WAITING_STOCK, OrderStatus.DELIVERED})
REFUNDABLE = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.WAITING_STOCK,
        OrderStatus.AWAITING_FULFILMENT,
        OrderStatus.DELIVERED,
    }
)


def _day(raw: str | None) -> datetime | None:
    try:
        return datetime.strptime(raw or "", "%Y-%m-%d").replace(tzinfo=BRT)
    except ValueError:
        return None


def _filters() -> tuple[dict[str, Any], dict[str, str]]:
    args = request.args
    query: dict[str, Any] = {}
    shown = {k: (args.get(k) or "").strip() for k in ("status", "from", "to", "buyer")}
    if shown["status"] in {s.value for s in OrderStatus}:
        query["status"] = shown["status"]
    else:
        shown["status"] = ""
    if start := _day(shown["from"]):
        query["created_at__gte"] = start
    if end := _day(shown["to"]):
        query["created_at__lt"] = end + timedelta(days=1)
    return query, shown


@bp.get("/orders")
@store_required
async def orders():
    query, shown = _filters()
    qs = Order.filter(tenant_id=g.tenant.id, **query)
    if shown["buyer"]:
        buyer = shown["buyer"][:100]
        qs = (
            qs.filter(buyer_discord_id=buyer)
            if buyer.isdigit()
            else qs.filter(buyer_name__icontains=buyer)
        )
    page = inputs.page_number(request.args.get("page"))
    total = await qs.count()
    items = (
        await qs.order_by("-id")
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
        .prefetch_related("product", "variation")
    )
    return await render(
        "portal/orders.html",
        orders=items,
        shown=shown,
        page=page,
        total=total,
        pages=max(1, -(-total // PAGE_SIZE)),
        statuses=[s.value for s in OrderStatus],
    )


def _timeline(
    order: Order, logs: list[AuditLog], extra: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    events = [{"at": order.created_at, "what": _("portal.order.event.created"), "who": ""}]
    events += extra  # a cart line: its cart's creation and the refunds of its payment
    for name, key in (("paid_at", "paid"), ("delivered_at", "delivered"), ("closed_at", "closed")):
        moment = getattr(order, name)
        if moment is not None:
            text = _(f"portal.order.event.{key}")
            if key == "delivered" and order.delivery_path:
                text += f" ({_('portal.order.path.' + str(order.delivery_path))})"
            events.append({"at": moment, "what": text, "who": ""})
    for entry in logs:
        if entry.action == "order.created" or (
            entry.action.startswith("order.") and entry.action[6:] in {s.value for s in OrderStatus}
        ):
            continue  # already shown from the order's own timestamps
        key = f"portal.audit.{entry.action}"
        text = _(key)
        events.append(
            {"at": entry.at, "what": entry.action if text == key else text, "who": entry.actor}
        )
    return sorted(events, key=lambda e: e["at"])


@bp.get("/orders/<int:order_id>")
@store_required
async def order_detail(order_id: int):
    order = await owned(Order, order_id)
    await order.fetch_related("product", "variation", "coupon")
    # a cart line's payment is its cart's one PIX (shop.cart_lookup)
    payments = await Payment.filter(payments_of(order), tenant_id=g.tenant.id).order_by(
        "created_at"
    )
    logs = (
        await AuditLog.filter(tenant_id=g.tenant.id, target_type="order", target_id=str(order.id))
        .order_by("id")
        .limit(200)
    )
    status = OrderStatus(order.status)
    # what a full refund gives back now: the total less what was partially refunded already
    refunded = sum(p.refunded_cents for p in payments if p.status == PaymentStatus.APPROVED)
    if order.cart_id is not None:  # a cart line's refund gives back the line's own total
        refunded = 0
    return await render(
        "portal/order_detail.html",
        order=order,
        payments=payments,
        timeline=_timeline(order, logs, await cart_events(order, g.tenant.id)),
        can_redeliver=status in REDELIVERABLE,
        can_refund=status in REFUNDABLE,
        refundable_cents=max(0, order.total_cents - refunded),
        tickets=await tickets_of_order(g.tenant.id, order.id),
        **await rating_context(order),  # issue 17: the buyer's rating and the reply
        **await cart_context(order),  # issue 17: the cart's lines, totals, refund per line
    )


@bp.post("/orders/<int:order_id>/redeliver")
@store_required
async def redeliver(order_id: int):
    """Queue the order for its bot again; the worker re-sends the items it already holds."""
    order = await owned(Order, order_id)
    if OrderStatus(order.status) not in REDELIVERABLE:
        await say("portal.order.cannot_redeliver", "error")
    elif await enqueue_delivery(redis(), order) is None:
        await say("portal.order.redeliver_failed", "error")
    else:
        await audit.record(
            actor(), "order.redeliver_requested", "order", order.id, tenant_id=g.tenant.id
        )
        await say("portal.order.redeliver_queued")
    return redirect(url_for("orders.order_detail", order_id=order.id))


@bp.post("/orders/<int:order_id>/refund")
@store_required
async def refund(order_id: int):
    order = await owned(Order, order_id)
    if OrderStatus(order.status) not in REFUNDABLE:
        await say("portal.order.cannot_refund", "error")
    else:
        try:
            # empty: all that is left; else a partial refund (bounded before it is parsed)
            raw = ((await request.form).get("amount") or "").strip()
            amount = inputs.parse_money(raw, min_cents=1) if raw else None
            await refund_order(
                payment_services(current_app), order.id, actor(), amount_cents=amount
            )
        except ShopError as exc:
            await say("portal.order.refund_failed", "error", reason=exc.message(g.locale))
        else:
            await say("portal.order.refunded")
    return redirect(url_for("orders.order_detail", order_id=order.id))
