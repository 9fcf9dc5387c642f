"""A limited coupon is not used up by checkouts that are never paid."""

from __future__ import annotations

import uuid

import pytest

from core.models import AuditLog
from shop import checkout
from shop.models import Coupon
from shop.models.catalog import CouponKind
from shop.orders import cancel_order, transition
from shop.pricing import CouponUsedUp
from shop.states import OrderStatus
from tests.shop.helpers import make_store


def request(store, coupon: str = "PRIMEIROS") -> checkout.CheckoutRequest:
    return checkout.CheckoutRequest(
        tenant_id=store["tenant"].id,
        instance_id=store["instance"].id,
        variation_id=store["variation"].id,
        quantity=1,
        buyer_id="555",
        key=uuid.uuid4().hex,
        coupon_code=coupon,
    )


@pytest.fixture
async def store(db):
    store = await make_store(stock=10)
    await Coupon.create(
        tenant=store["tenant"], code="PRIMEIROS", kind=CouponKind.PERCENT, value=1000, max_uses=1
    )
    return store


async def uses() -> int:
    return (await Coupon.get(code="PRIMEIROS")).uses


@pytest.mark.parametrize("close", ["expired", "cancelled"])
async def test_an_unpaid_order_gives_its_coupon_use_back(store, close):
    first, _ = await checkout.place_order(request(store))
    assert first.discount_cents == 199 and await uses() == 1
    with pytest.raises(CouponUsedUp):
        await checkout.place_order(request(store))
    if close == "expired":
        await transition(first.id, OrderStatus.EXPIRED, "system:test")
    else:
        await cancel_order(first.id, "buyer:555")
    assert await uses() == 0
    await transition(first.id, OrderStatus(close), "system:test")  # replayed: no-op
    assert await uses() == 0
    audit = await AuditLog.get(action=f"order.{close}", target_id=str(first.id))
    assert audit.after["coupon_use_returned"] is True
    second, _ = await checkout.place_order(request(store))
    assert second.discount_cents == 199 and await uses() == 1


async def test_a_paid_order_keeps_its_coupon_use(store):
    order, _ = await checkout.place_order(request(store))
    await transition(order.id, OrderStatus.PAID, "system:test")
    await transition(order.id, OrderStatus.DELIVERED, "system:test")
    assert await uses() == 1
    with pytest.raises(CouponUsedUp):
        await checkout.place_order(request(store))


async def test_an_order_without_coupon_leaves_coupons_alone(store):
    await Coupon.filter(code="PRIMEIROS").update(uses=1)
    order, _ = await checkout.place_order(request(store, coupon=None))
    await transition(order.id, OrderStatus.EXPIRED, "system:test")
    assert await uses() == 1
