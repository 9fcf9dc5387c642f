"""The 50-buyers-for-10-items race with carts (issue 17), SQLite and PostgreSQL: every buyer
checks out a two-line cart (one of the 10 scarce items + one plentiful item) at once. No item
is reserved twice, and no cart is half-reserved: a cart exists with every line reserved, or
not at all (its plentiful line's item is back on the shelf)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shop import cart
from shop.cart_checkout import CartLineUnavailable, cancel_cart, place_cart
from shop.models import Cart, Order, StockItem
from shop.states import OrderStatus, StockStatus
from tests.shop.cart_helpers import add_variation, request
from tests.shop.helpers import make_store

BUYERS, ITEMS = 50, 10


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    delays=st.lists(st.integers(0, 3), min_size=BUYERS, max_size=BUYERS),
    cancels=st.sets(st.integers(0, BUYERS - 1), max_size=4),
)
async def test_50_carts_race_for_10_items_no_item_twice_no_cart_half_reserved(db, delays, cancels):
    store = await make_store(price_cents=1000, stock=ITEMS)
    scarce = store["variation"]
    plenty = await add_variation(store, "Plenty", 500, stock=BUYERS)
    tid = store["tenant"].id
    for n in range(BUYERS):
        await cart.add_line(tid, str(n), scarce.id, 1)
        await cart.add_line(tid, str(n), plenty.id, 1)

    async def buyer(n: int) -> Cart | None:
        await asyncio.sleep(delays[n] / 1000)
        try:
            placed, _ = await place_cart(request(store, buyer=str(n)))
        except CartLineUnavailable as exc:
            assert exc.params["variation_id"] == scarce.id
            return None
        if n in cancels:
            await cancel_cart(placed.id, "test")  # frees both lines for later buyers
            return None
        return placed

    carts = [c for c in await asyncio.gather(*(buyer(n) for n in range(BUYERS))) if c]
    assert 0 < len(carts) <= ITEMS
    reserved = await StockItem.filter(tenant_id=tid, status=StockStatus.RESERVED)
    by_order: dict[int, int] = {}
    for item in reserved:
        by_order[item.order_id] = by_order.get(item.order_id, 0) + 1
    assert all(count == 1 for count in by_order.values())  # no item held twice
    for placed in carts:  # every live cart: both lines pending, each holding its item
        lines = await Order.filter(cart_id=placed.id)
        assert len(lines) == 2 and {o.status for o in lines} == {OrderStatus.PENDING}
        assert all(by_order.get(o.id) == 1 for o in lines)
    # no reservation outside a live cart (hypothesis runs every example in one database:
    # each has its own store)
    live = {o.id for o in await Order.filter(tenant_id=tid, status=OrderStatus.PENDING)}
    assert set(by_order) == live and len(live) == 2 * len(carts)
    assert await Order.filter(tenant_id=tid, cart_id__isnull=True).count() == 0
    scarce_held = await StockItem.filter(variation=scarce, status=StockStatus.RESERVED).count()
    plenty_held = await StockItem.filter(variation=plenty, status=StockStatus.RESERVED).count()
    assert scarce_held == plenty_held == len(carts)
    shelf = await StockItem.filter(variation=scarce, status=StockStatus.AVAILABLE).count()
    assert scarce_held + shelf == ITEMS  # nothing lost
    if not cancels:
        assert len(carts) == ITEMS
