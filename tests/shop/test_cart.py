"""The cart's domain (issue 17): lines, the view with its problems before paying, a coupon on
the cart split over lines, and an all-or-nothing checkout (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop import cart, cart_pricing, pricing
from shop.cart_checkout import CartLineUnavailable, cancel_cart, place_cart
from shop.checkout import InvalidQuantity, ProductUnavailable
from shop.models import Cart, CartLine, Coupon, Order, ProductKind, StockItem
from shop.states import OrderStatus, StockStatus
from tests.shop.cart_helpers import (
    BUYER,
    add_variation,
    coupon,
    fill_cart,
    held,
    request,
    three_line_store,
)


async def test_add_sets_quantity_remove_and_the_line_limit(db):
    store = await three_line_store()
    tid = store["tenant"].id
    v = await cart.add_line(tid, BUYER, store["a"].id, 2)
    v = await cart.add_line(tid, BUYER, store["a"].id, 3)  # sets, not adds
    assert [(line.variation_id, line.quantity) for line in v.lines] == [(store["a"].id, 3)]
    assert v.total_cents == 3 * 1990 and v.ok
    with pytest.raises(InvalidQuantity):
        await cart.add_line(tid, BUYER, store["b"].id, 0)
    with pytest.raises(ProductUnavailable):
        await cart.add_line(tid, BUYER, 999_999, 1)
    extra = [await add_variation(store, f"X{i}", 100, 1) for i in range(cart.MAX_CART_LINES)]
    for variation in extra[: cart.MAX_CART_LINES - 1]:
        await cart.add_line(tid, BUYER, variation.id, 1)
    with pytest.raises(cart.CartFull):
        await cart.add_line(tid, BUYER, extra[-1].id, 1)
    assert await CartLine.filter(buyer_discord_id=BUYER).count() == cart.MAX_CART_LINES
    v = await cart.remove_line(tid, BUYER, store["a"].id)
    assert store["a"].id not in [line.variation_id for line in v.lines]
    # another buyer's and another store's carts are their own
    assert (await cart.view(tid, "someone-else")).empty
    await cart.clear(tid, BUYER)
    assert (await cart.view(tid, BUYER)).empty


async def test_view_shows_a_line_that_cannot_be_reserved_before_paying(db):
    store = await three_line_store(stock=2)
    tid = store["tenant"].id
    await fill_cart(store, {"a": 1, "b": 2, "c": 2})
    first_b = await StockItem.filter(variation_id=store["b"].id).first()
    assert first_b is not None
    await first_b.delete()  # B: 1 left for 2
    await StockItem.filter(variation_id=store["c"].id).delete()  # C: sold out
    v = await cart.view(tid, BUYER)
    problems = {line.variation_id: (line.problem, line.available) for line in v.lines}
    assert problems == {
        store["a"].id: (None, 2),
        store["b"].id: ("not_enough", 1),
        store["c"].id: ("out_of_stock", 0),
    }
    assert not v.ok
    store["a"].active = False
    await store["a"].save()
    v = await cart.view(tid, BUYER)
    assert v.lines[0].problem == "unavailable"
    # and checkout refuses, naming the first line it cannot reserve, writing nothing
    with pytest.raises(CartLineUnavailable) as err:
        await place_cart(request(store))
    assert err.value.params["variation_id"] == store["a"].id
    assert await Cart.all().count() == 0 and await Order.all().count() == 0


async def test_a_line_out_of_stock_at_checkout_reserves_no_line(db):
    """Stock gone between the view and the click: nothing is written, nothing held."""
    store = await three_line_store(stock=3)
    await coupon(store, max_uses=5)
    await fill_cart(store, {"a": 2, "b": 1, "c": 3})
    # the view was fine; now C loses one item (another buyer)
    assert (await cart.view(store["tenant"].id, BUYER)).ok
    item = await StockItem.filter(variation_id=store["c"].id).first()
    assert item is not None
    item.status = StockStatus.SOLD
    await item.save()
    with pytest.raises(CartLineUnavailable) as err:
        await place_cart(request(store, coupon_code="DEZ"))
    assert err.value.params["variation_id"] == store["c"].id
    assert "C" in err.value.message("en")
    assert await Cart.all().count() == 0 and await Order.all().count() == 0
    assert await StockItem.filter(status=StockStatus.RESERVED).count() == 0
    assert (await Coupon.get(code="DEZ")).uses == 0
    assert await CartLine.filter(buyer_discord_id=BUYER).count() == 3  # the cart stays


async def test_double_click_creates_one_cart(db):
    store = await three_line_store()
    await fill_cart(store, {"a": 1, "b": 2})
    req = request(store)
    results = await asyncio.gather(*(place_cart(req) for _ in range(5)))
    assert len({c.id for c, _ in results}) == 1 and sum(new for _, new in results) == 1
    assert await Order.all().count() == 2
    assert await held(store["a"]) == 1 and await held(store["b"]) == 2


async def test_coupon_bound_to_one_product_discounts_its_line_only_and_counts_once(db):
    store = await three_line_store()
    c = await coupon(store, "SO-B", kind="fixed", value=300, max_uses=1, min_order_cents=3000)
    await c.products.add(store["b"].product)
    await fill_cart(store, {"a": 1, "b": 2, "c": 1})  # 19,90 + 20,00 + 5,55
    v = await cart.view(store["tenant"].id, BUYER, "so-b")
    assert v.coupon_error is None and v.discount_cents == 300
    assert [line.discount_cents for line in v.lines] == [0, 300, 0]
    assert v.total_cents == 1990 + 2000 + 555 - 300
    placed, _ = await place_cart(request(store, coupon_code="so-b"))
    orders = await Order.filter(cart_id=placed.id).order_by("id")
    assert [o.total_cents for o in orders] == [1990, 1700, 555]
    assert sum(o.total_cents for o in orders) == placed.total_cents == 4245
    assert [o.coupon_id for o in orders] == [None, c.id, None]
    assert (await Coupon.get(id=c.id)).uses == 1
    # its one use went to that cart: the next cart is refused
    await cart.add_line(store["tenant"].id, "other", store["b"].id, 2)
    v = await cart.view(store["tenant"].id, "other", "SO-B")
    assert v.coupon_error == "coupon_used_up" and v.discount_cents == 0
    assert v.coupon_message("en") is not None


async def test_coupon_minimum_and_products_are_checked_against_the_cart(db):
    store = await three_line_store()
    c = await coupon(store, "MIN", min_order_cents=3000)
    await fill_cart(store, {"b": 2})
    v = await cart.view(store["tenant"].id, BUYER, "MIN")
    assert v.coupon_error == "coupon_minimum"
    await fill_cart(store, {"c": 2})  # 20,00 + 11,10: now over 30,00
    v = await cart.view(store["tenant"].id, BUYER, "MIN")
    assert v.coupon_error is None and v.discount_cents == 311
    await c.products.add(store["a"].product)  # bound to A, not in the cart
    v = await cart.view(store["tenant"].id, BUYER, "MIN")
    assert v.coupon_error == "coupon_not_for_product" and v.total_cents == 3110
    with pytest.raises(pricing.CouponNotForProduct):
        await place_cart(request(store, coupon_code="MIN"))
    assert await Order.all().count() == 0


async def test_cancel_releases_every_line_and_gives_the_coupon_use_back_once(db):
    store = await three_line_store()
    await coupon(store, max_uses=3)
    capped = await add_variation(store, "Role", 700, kind=ProductKind.ROLE_ONLY, sales_cap=4)
    store["r"] = capped
    await fill_cart(store, {"a": 2, "b": 1, "r": 3})
    placed, _ = await place_cart(request(store, coupon_code="DEZ"))
    assert await held(store["a"]) == 2 and await held(store["b"]) == 1
    await capped.refresh_from_db()
    assert capped.sold_count == 3  # units against the cap, like stock
    assert (await Coupon.get(code="DEZ")).uses == 1
    await cancel_cart(placed.id, f"buyer:{BUYER}")
    statuses = {o.status for o in await Order.filter(cart_id=placed.id)}
    assert statuses == {OrderStatus.CANCELLED}
    assert await StockItem.filter(status=StockStatus.RESERVED).count() == 0
    await capped.refresh_from_db()
    assert capped.sold_count == 0
    assert (await Coupon.get(code="DEZ")).uses == 0


async def test_units_over_the_sales_cap_refuse_the_whole_cart(db):
    store = await three_line_store()
    capped = await add_variation(store, "Role", 700, kind=ProductKind.ROLE_ONLY, sales_cap=2)
    store["r"] = capped
    await fill_cart(store, {"a": 1, "r": 2})
    capped.sold_count = 1  # someone bought one since
    await capped.save()
    with pytest.raises(CartLineUnavailable):
        await place_cart(request(store))
    assert await held(store["a"]) == 0 and await Order.all().count() == 0


@given(
    subtotals=st.lists(st.integers(1, 500_000), min_size=1, max_size=10),
    data=st.data(),
)
def test_discount_split_sums_to_the_cart_and_never_exceeds_a_line(subtotals, data):
    eligible = data.draw(st.lists(st.booleans(), min_size=len(subtotals), max_size=len(subtotals)))
    kind = data.draw(st.sampled_from(["percent", "fixed"]))
    value = data.draw(st.integers(0, 10_000 if kind == "percent" else 10_000_000))
    base = sum(s for s, ok in zip(subtotals, eligible, strict=True) if ok)
    discount = pricing.discount_for(kind, value, base) if base else 0
    shares = cart_pricing.split_discount(subtotals, eligible, discount)
    assert sum(shares) == discount
    totals = [s - d for s, d in zip(subtotals, shares, strict=True)]
    assert sum(totals) == sum(subtotals) - discount
    for share, sub, ok in zip(shares, subtotals, eligible, strict=True):
        assert 0 <= share <= sub and (ok or share == 0)
    if any(eligible):
        assert sum(totals) >= pricing.MIN_TOTAL_CENTS


def test_remainder_goes_to_the_last_eligible_line():
    # 10 % of 3 × 3,33 = 0,99 → 0,33 each; 1,00 of 3 lines → 33, 33, 34
    assert cart_pricing.split_discount([333, 333, 333], [True] * 3, 99) == [33, 33, 33]
    assert cart_pricing.split_discount([333, 333, 334], [True, True, True], 100) == [33, 33, 34]
    assert cart_pricing.split_discount([100, 100, 100], [True, True, False], 101) == [50, 51, 0]
