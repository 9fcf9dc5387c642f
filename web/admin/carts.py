"""Carts (issue 17), read-only: `GET /api/carts/<id>` (a cart with its lines and its one
payment) and `GET /api/orders.csv` (orders as CSV, with each cart line's cart, line number
and cart total)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, Response
from quart_schema import tag, validate_querystring, validate_response

from shop.cart_summary import cart_summary, positions
from shop.models import Order, Payment
from web.admin.api import ErrorBody, error, iso
from web.admin.cart_json import CartLineOut, lines_json
from web.admin.orders import OrdersQuery, filtered_orders, order_json
from web.admin.transactions import CSV_LIMIT, CSV_MEDIA_TYPE, CSV_OFFSET, to_csv

bp = Blueprint("carts", __name__)


class CartPaymentOut(BaseModel):
    id: str
    provider_payment_id: str | None
    status: str
    amount_cents: int
    refunded_cents: int


class CartOut(BaseModel):
    id: int
    tenant_id: int
    buyer_discord_id: str
    coupon_code: str | None
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    created_at: str | None
    lines: list[CartLineOut]
    payment: CartPaymentOut | None


class OrdersCsvQuery(OrdersQuery):
    limit: int = CSV_LIMIT
    offset: int = CSV_OFFSET


CART_COLUMNS = ["cart_id", "cart_line", "cart_lines", "cart_total_cents"]
ORDER_CSV_COLUMNS = [
    "id",
    "tenant_id",
    "instance_id",
    "product_id",
    "variation_id",
    "buyer_discord_id",
    "buyer_name",
    "quantity",
    "unit_price_cents",
    "discount_cents",
    "total_cents",
    "status",
    "delivery_path",
    "created_at",
    "paid_at",
    "delivered_at",
    "closed_at",
    *CART_COLUMNS,
]


@bp.get("/api/carts/<int:cart_id>")
@tag(["orders"])
@validate_response(CartOut)
@validate_response(ErrorBody, 404)
async def get_cart(cart_id: int):
    """One cart paid by one PIX: its lines (each an order, line 1 the lead) and payment."""
    summary = await cart_summary(cart_id)
    if summary is None:
        return error(404, "not_found", f"no cart {cart_id}")
    payment = await Payment.filter(cart_id=cart_id).order_by("-created_at").first()
    return {
        "id": summary.cart_id,
        "tenant_id": summary.tenant_id,
        "buyer_discord_id": summary.buyer_discord_id,
        "coupon_code": summary.coupon_code,
        "subtotal_cents": summary.subtotal_cents,
        "discount_cents": summary.discount_cents,
        "total_cents": summary.total_cents,
        "created_at": iso(summary.created_at),
        "lines": lines_json(summary),
        "payment": _payment(payment),
    }


def _payment(payment: Payment | None) -> dict[str, Any] | None:
    if payment is None:
        return None
    return {
        "id": str(payment.id),
        "provider_payment_id": payment.provider_payment_id,
        "status": str(payment.status),
        "amount_cents": payment.amount_cents,
        "refunded_cents": payment.refunded_cents,
    }


async def order_rows(orders: list[Order]) -> list[dict[str, Any]]:
    """Orders as CSV rows: the order's fields and, for a cart line, its cart columns."""
    where = await positions(orders)
    rows = []
    for order in orders:
        row = {k: v for k, v in order_json(order).items() if k in ORDER_CSV_COLUMNS}
        pos = where.get(order.id)
        row.update(
            cart_id=pos.cart_id if pos else None,
            cart_line=pos.index if pos else None,
            cart_lines=pos.count if pos else None,
            cart_total_cents=pos.cart_total_cents if pos else None,
        )
        rows.append(row)
    return rows


@bp.get("/api/orders.csv")
@tag(["orders"])
@validate_querystring(OrdersCsvQuery)
async def orders_csv(query_args: OrdersCsvQuery):
    """Orders as CSV, oldest first (same filters as `/api/orders`; up to 50 000 rows per file,
    page with offset); a cart line carries `cart_id`, `cart_line`, `cart_lines` and
    `cart_total_cents`."""
    query = filtered_orders(query_args)
    orders = (
        await query.order_by("created_at", "id").offset(query_args.offset).limit(query_args.limit)
    )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Response(
        to_csv(ORDER_CSV_COLUMNS, await order_rows(orders)),
        mimetype=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="vitrine-orders-{stamp}.csv"'},
    )
