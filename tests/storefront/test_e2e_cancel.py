"""End to end: the buyer cancels a PIX order from the card."""

from __future__ import annotations

import pytest

from ops.fleet_harness import make_store
from shop.models import Coupon, CouponKind, Payment, StockItem
from shop.states import PaymentStatus, StockStatus
from tests.storefront.helpers import buy, order_id_of, post_panel, wait_ready, wait_status

# Once per Mercado Pago API: the cancel goes to the API that made the charge.
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("mp_api", ["payments", "orders"])]


async def test_cancel_releases_stock_coupon_and_the_pix_code(fleet, dc, mpc):
    store = await make_store(
        fleet, dc, stock={"1 mês": ["KEY-A1", "KEY-A2"]}, prices={"1 mês": 1990}
    )
    await Coupon.create(
        tenant=store.tenant, code="UNICO", kind=CouponKind.PERCENT, value=1000, max_uses=1
    )
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    pix = await buy(store.buyer, panel, store.variations[0].id, coupon="unico")
    order_id = order_id_of(pix)
    assert (await Coupon.get(code="UNICO")).uses == 1
    payment = await Payment.get(order_id=order_id)

    answer = await (await store.buyer.click(pix.message, f"vt:cancel:{order_id}")).wait_reply()
    assert "cancelado" in answer.message.text().lower()
    await wait_status(order_id, "cancelled")
    assert await StockItem.filter(order_id=order_id).count() == 0
    available = await StockItem.filter(status=StockStatus.AVAILABLE).count()
    assert available == 2
    assert (await Coupon.get(code="UNICO")).uses == 0  # the next buyer can use it

    async def cancelled_at_provider():
        remote = await mpc.payment(payment.provider_payment_id)  # an order: its PIX payment
        return remote["status"] == "cancelled"

    await fleet.wait_for("PIX cancelled at Mercado Pago", cancelled_at_provider, timeout=10)
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.CANCELLED
