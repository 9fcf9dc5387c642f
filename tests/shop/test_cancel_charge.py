"""A buyer who cancels an unpaid order can no longer pay its PIX code."""

from __future__ import annotations

import pytest

from shop.errors import PaymentProviderError
from shop.ledger import account_total, seller_account
from shop.models import Order, Payment
from shop.orders import cancel_order
from shop.payments.cancel import cancel_charge
from shop.payments.service import create_pix_payment
from shop.states import OrderStatus, PaymentStatus
from tests.shop.helpers import make_order, make_store


async def test_cancelled_order_cancels_its_pix_at_the_provider(svc, mp):
    store = await make_store()
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await cancel_order(order.id, "buyer:555")
    result = await cancel_charge(svc, order.id, "buyer:555")
    assert result is not None and result.changed
    remote = await mp.control.payment(int(payment.provider_payment_id))
    assert remote["status"] == "cancelled"
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.CANCELLED
    with pytest.raises(Exception):  # noqa: B017, PT011 - the stand-in refuses to approve it
        await mp.control.approve(int(payment.provider_payment_id))
    assert await cancel_charge(svc, order.id, "buyer:555") is None  # nothing left to cancel


async def test_pix_paid_just_before_the_cancel_is_refunded(svc, mp):
    store = await make_store()
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await mp.control.approve(int(payment.provider_payment_id))  # webhook not applied yet
    await cancel_order(order.id, "buyer:555")
    result = await cancel_charge(svc, order.id, "buyer:555")
    assert result is not None
    assert any("refund requested" in c for c in result.changes), result.changes
    remote = await mp.control.payment(int(payment.provider_payment_id))
    assert remote["status"] == "refunded"
    assert (await Order.get(id=order.id)).status == OrderStatus.CANCELLED
    assert await account_total(seller_account(store["tenant"].id)) == 0


async def test_provider_down_leaves_the_order_cancelled(svc, mp):
    store = await make_store()
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await cancel_order(order.id, "buyer:555")
    await mp.control.set_faults(api_error_status=503, api_error_count=50)
    try:
        assert await cancel_charge(svc, order.id, "buyer:555") is None
    except PaymentProviderError as exc:  # pragma: no cover - must not escape
        pytest.fail(f"cancel_charge raised {exc!r}")
    finally:
        await mp.control.clear_faults()
    assert (await Order.get(id=order.id)).status == OrderStatus.CANCELLED
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.PENDING
