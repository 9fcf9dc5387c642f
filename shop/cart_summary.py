"""What the cart's surfaces show of a paid cart (issue 17): its lines (the cart's orders, in
order: line 1 is the lead, which carries the cart's payment), its totals and coupon, and
where one order sits in its cart ("line 2/3"). Read-only; the cart itself is `shop.cart` and
`shop.cart_checkout`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shop.models import Cart, Order


@dataclass(frozen=True)
class CartLineRow:
    order_id: int
    index: int  # 1-based, in the order the lines were created (1 = the lead line)
    product_name: str
    variation_name: str
    quantity: int
    unit_price_cents: int
    discount_cents: int
    total_cents: int
    status: str


@dataclass(frozen=True)
class CartSummary:
    cart_id: int
    tenant_id: int
    buyer_discord_id: str
    coupon_code: str | None
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    created_at: datetime
    lines: list[CartLineRow]

    @property
    def lead_order_id(self) -> int | None:
        return self.lines[0].order_id if self.lines else None


@dataclass(frozen=True)
class LinePosition:
    """Where an order sits in its cart: line `index` of `count`, and the cart's total."""

    cart_id: int
    index: int
    count: int
    cart_total_cents: int


async def cart_summary(cart_id: int, tenant_id: int | None = None) -> CartSummary | None:
    """The cart with its lines; None when there is no such cart (in `tenant_id`'s store)."""
    query = Cart.filter(id=cart_id)
    if tenant_id is not None:  # a seller or buyer sees their own store's carts only
        query = query.filter(tenant_id=tenant_id)
    cart = await query.prefetch_related("coupon").first()
    if cart is None:
        return None
    orders = (
        await Order.filter(cart_id=cart.id, tenant_id=cart.tenant_id)
        .order_by("id")
        .prefetch_related("product", "variation")
    )
    lines = [
        CartLineRow(
            order_id=o.id,
            index=i,
            product_name=o.product.name,
            variation_name=o.variation.name,
            quantity=o.quantity,
            unit_price_cents=o.unit_price_cents,
            discount_cents=o.discount_cents,
            total_cents=o.total_cents,
            status=str(o.status),
        )
        for i, o in enumerate(orders, start=1)
    ]
    return CartSummary(
        cart_id=cart.id,
        tenant_id=cart.tenant_id,
        buyer_discord_id=cart.buyer_discord_id,
        coupon_code=cart.coupon.code if cart.coupon else None,
        subtotal_cents=cart.subtotal_cents,
        discount_cents=cart.discount_cents,
        total_cents=cart.total_cents,
        created_at=cart.created_at,
        lines=lines,
    )


async def positions(orders: Iterable[Order]) -> dict[int, LinePosition]:
    """Order id -> its position in its cart, for the orders that are cart lines (one query
    for the lines, one for the totals, whatever the number of orders)."""
    cart_ids = {o.cart_id for o in orders if o.cart_id is not None}
    if not cart_ids:
        return {}
    members: dict[int, list[int]] = {}
    for order_id, cart_id in await Order.filter(cart_id__in=cart_ids).values_list("id", "cart_id"):
        members.setdefault(int(cart_id), []).append(int(order_id))
    totals = dict(await Cart.filter(id__in=cart_ids).values_list("id", "total_cents"))
    out: dict[int, LinePosition] = {}
    for cart_id, ids in members.items():
        ids.sort()
        for i, order_id in enumerate(ids, start=1):
            out[order_id] = LinePosition(cart_id, i, len(ids), int(totals.get(cart_id, 0)))
    return out


async def position(order: Order) -> LinePosition | None:
    """`positions` for one order; None when it is not a cart line."""
    return (await positions([order])).get(order.id)
