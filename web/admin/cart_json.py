"""The admin API's view of a cart (issue 17): its lines as JSON, shared by one order's answer
(`GET /api/orders/<id>`, for the cart's lead line) and `GET /api/carts/<id>`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shop.cart_summary import CartSummary


class CartLineOut(BaseModel):
    order_id: int
    index: int
    product_name: str
    variation_name: str
    quantity: int
    unit_price_cents: int
    discount_cents: int
    total_cents: int
    status: str


def lines_json(summary: CartSummary) -> list[dict[str, Any]]:
    return [
        {
            "order_id": ln.order_id,
            "index": ln.index,
            "product_name": ln.product_name,
            "variation_name": ln.variation_name,
            "quantity": ln.quantity,
            "unit_price_cents": ln.unit_price_cents,
            "discount_cents": ln.discount_cents,
            "total_cents": ln.total_cents,
            "status": ln.status,
        }
        for ln in summary.lines
    ]
