"""A store with three products for cart tests, and a buyer's cart filled from it."""

from __future__ import annotations

import uuid
from typing import Any

from core.vault import TokenVault, generate_key
from shop import cart
from shop.cart_checkout import CartCheckoutRequest
from shop.models import Coupon, CouponKind, Product, StockItem, Variation
from shop.states import StockStatus
from shop.stock import add_stock
from tests.shop.helpers import make_store

BUYER = "777"
VAULT = TokenVault([generate_key()])


async def stock_up(store: dict[str, Any], variation: Variation, count: int) -> None:
    """`count` real (encrypted) items, as the seller adds them."""
    if count:
        text = "\n".join(f"ITEM-{uuid.uuid4().hex}" for _ in range(count))
        await add_stock(VAULT, store["tenant"].id, variation.id, text, "t", hash_key="k")


async def add_variation(
    store: dict[str, Any], name: str, price_cents: int, stock: int = 0, **extra: Any
) -> Variation:
    """Another product with one variation (and `stock` items) in `store`'s tenant."""
    product = await Product.create(tenant=store["tenant"], name=name)
    variation = await Variation.create(
        tenant=store["tenant"], product=product, name="v", price_cents=price_cents, **extra
    )
    await stock_up(store, variation, stock)
    return variation


async def three_line_store(stock: int = 5) -> dict[str, Any]:
    """Lines A (19,90), B (10,00) and C (5,55), `stock` items each."""
    store = await make_store(price_cents=1990, stock=0)
    store["a"] = store["variation"]
    await stock_up(store, store["a"], stock)
    store["b"] = await add_variation(store, "B", 1000, stock)
    store["c"] = await add_variation(store, "C", 555, stock)
    return store


async def fill_cart(store: dict[str, Any], quantities: dict[str, int], buyer: str = BUYER) -> None:
    for name, qty in quantities.items():
        await cart.add_line(store["tenant"].id, buyer, store[name].id, qty)


async def coupon(store: dict[str, Any], code: str = "DEZ", **fields: Any) -> Coupon:
    values: dict[str, Any] = {"kind": CouponKind.PERCENT, "value": 1000} | fields
    return await Coupon.create(tenant=store["tenant"], code=code, **values)


def request(
    store: dict[str, Any],
    key: str | None = None,
    coupon_code: str | None = None,
    buyer: str = BUYER,
) -> CartCheckoutRequest:
    return CartCheckoutRequest(
        store["tenant"].id,
        store["instance"].id,
        buyer,
        key or uuid.uuid4().hex[:20],
        coupon_code=coupon_code,
    )


async def held(variation: Variation, status: StockStatus = StockStatus.RESERVED) -> int:
    return await StockItem.filter(variation_id=variation.id, status=status).count()
