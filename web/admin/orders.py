"""Orders: list with filters, one order, and retrying the ones waiting for stock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, current_app
from quart_schema import tag, validate_querystring, validate_response
from tortoise.queryset import QuerySet

from core import audit
from shop.cart_lookup import payment_for_order
from shop.cart_summary import cart_summary
from shop.models import DeliveryPath, Order
from shop.states import OrderStatus
from shop.waiting_stock import retry_waiting_stock
from web.admin.api import (
    MAX_ID,
    ErrorBody,
    PageInfo,
    PageQuery,
    Strict,
    actor,
    error,
    iso,
    json_body,
)
from web.admin.cart_json import CartLineOut, lines_json

bp = Blueprint("orders", __name__)


class OrdersQuery(PageQuery):
    status: OrderStatus | None = None
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)
    product_id: int | None = Field(None, ge=0, le=MAX_ID)
    instance_id: int | None = Field(None, ge=0, le=MAX_ID)
    buyer_discord_id: str | None = Field(None, max_length=32)
    delivery_path: DeliveryPath | None = None
    since: datetime | None = Field(None, description="created at or after (ISO 8601)")
    until: datetime | None = Field(None, description="created before (ISO 8601)")


class OrderOut(BaseModel):
    id: int
    tenant_id: int
    instance_id: int | None
    product_id: int
    variation_id: int
    buyer_discord_id: str
    buyer_name: str
    quantity: int
    unit_price_cents: int
    discount_cents: int
    total_cents: int
    status: OrderStatus
    delivery_path: DeliveryPath | None
    delivery_attempts: int
    created_at: str | None
    paid_at: str | None
    delivered_at: str | None
    closed_at: str | None
    cart_id: int | None = None  # a line of a cart paid by one PIX (issue 17)
    cart_lines: list[CartLineOut] | None = None  # one order's answer, for the cart's lead line
    payment_id: str | None = None  # one order's answer: its payment (a cart line's: the cart's)


class OrdersOut(BaseModel):
    items: list[OrderOut]
    page: PageInfo


class RetryIn(Strict):
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)
    product_id: int | None = Field(None, ge=0, le=MAX_ID)


class RetryOut(BaseModel):
    """`delivered`: orders filled and handed to delivery; `still_waiting`: not enough stock."""

    delivered: int
    still_waiting: int
    order_ids: list[int]
    not_enqueued: list[int]


def order_json(o: Order) -> dict[str, Any]:
    return {
        "id": o.id,
        "tenant_id": o.tenant_id,
        "instance_id": o.instance_id,
        "product_id": o.product_id,
        "variation_id": o.variation_id,
        "buyer_discord_id": o.buyer_discord_id,
        "buyer_name": o.buyer_name,
        "quantity": o.quantity,
        "unit_price_cents": o.unit_price_cents,
        "discount_cents": o.discount_cents,
        "total_cents": o.total_cents,
        "status": str(o.status),
        "delivery_path": str(o.delivery_path) if o.delivery_path else None,
        "delivery_attempts": o.delivery_attempts,
        "created_at": iso(o.created_at),
        "paid_at": iso(o.paid_at),
        "delivered_at": iso(o.delivered_at),
        "closed_at": iso(o.closed_at),
        "cart_id": o.cart_id,
    }


@bp.get("/api/orders")
@tag(["orders"])
@validate_querystring(OrdersQuery)
@validate_response(OrdersOut)
async def list_orders(query_args: OrdersQuery):
    """Orders, newest first, filtered by status, store, product, instance, buyer or period."""
    query = filtered_orders(query_args)
    total = await query.count()
    rows = (
        await query.order_by("-created_at", "-id").offset(query_args.offset).limit(query_args.limit)
    )
    return {
        "items": [order_json(o) for o in rows],
        "page": {"total": total, "limit": query_args.limit, "offset": query_args.offset},
    }


def filtered_orders(query_args: OrdersQuery) -> QuerySet[Order]:
    """The orders matching the list's filters (the CSV export's too, web.admin.carts)."""
    query = Order.all()
    for name in (
        "status",
        "tenant_id",
        "product_id",
        "instance_id",
        "buyer_discord_id",
        "delivery_path",
    ):
        if (value := getattr(query_args, name)) is not None:
            query = query.filter(**{name: value})
    if query_args.since is not None:
        query = query.filter(created_at__gte=query_args.since)
    if query_args.until is not None:
        query = query.filter(created_at__lt=query_args.until)
    return query


@bp.get("/api/orders/<int:order_id>")
@tag(["orders"])
@validate_response(OrderOut)
@validate_response(ErrorBody, 404)
async def get_order(order_id: int):
    """One order; the lead line of a cart (line 1, which carries its payment) also lists the
    cart's lines (`GET /api/carts/<id>` has the whole cart)."""
    order = await Order.get_or_none(id=order_id)
    if order is None:
        return error(404, "not_found", f"no order {order_id}")
    body = order_json(order)
    payment = await payment_for_order(order.id)  # a cart line: its cart's one payment
    body["payment_id"] = str(payment.id) if payment else None
    summary = await cart_summary(order.cart_id) if order.cart_id else None
    if summary is not None and summary.lead_order_id == order.id:
        body["cart_lines"] = lines_json(summary)
    return body


@bp.post("/api/orders/retry-waiting-stock")
@tag(["orders"])
@json_body(RetryIn, optional=True)
@validate_response(RetryOut)
async def retry_waiting(data: RetryIn):
    """Fill `waiting_stock` orders (all, or one store / product) from the stock now available.

    Oldest first; each filled order is handed to its bot for delivery.
    """
    return await run_retry(data.tenant_id, data.product_id, actor())


async def run_retry(tenant_id: int | None, product_id: int | None, who: str) -> dict[str, Any]:
    """Retry waiting orders and audit the run (the console's button calls this too)."""
    report = await retry_waiting_stock(
        tenant_id, product_id, redis=current_app.config.get("REDIS"), actor=who
    )
    body = {
        "delivered": report.delivered,
        "still_waiting": report.still_waiting,
        "order_ids": report.order_ids,
        "not_enqueued": report.not_enqueued,
    }
    await audit.record(
        who,
        "orders.retry_waiting_stock",
        "orders",
        "waiting_stock",
        tenant_id=tenant_id,
        before={"tenant_id": tenant_id, "product_id": product_id},
        after=body,
    )
    return body
