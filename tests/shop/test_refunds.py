"""Refunds asked by the seller (portal) or an operator: money back at Mercado Pago, order
refunded, the sale reversed in the ledger, and asking twice changes nothing."""

import pytest

from shop import ledger
from shop.errors import InvalidStateChange
from shop.models import LedgerEntry, Order, Payment
from shop.payments.refunds import refund_order
from shop.payments.service import create_pix_payment
from shop.payments.sync import sync_payment
from shop.states import OrderStatus, PaymentStatus
from tests.shop.helpers import make_order, make_store


async def test_refund_returns_the_money_and_reverses_the_sale_once(svc, mp):
    store = await make_store(price_cents=1990)
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await mp.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "test")
    assert (await ledger.balance(store["tenant"].id)).total_cents == 1990 - 100

    result = await refund_order(svc, order.id, "account:1")
    assert result.changed
    remote = await mp.control.payment(int(payment.provider_payment_id))
    assert remote["status"] == "refunded"
    assert (await Order.get(id=order.id)).status == OrderStatus.REFUNDED
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.REFUNDED
    assert (await ledger.balance(store["tenant"].id)).total_cents == 0
    entries = await LedgerEntry.all().count()

    again = await refund_order(svc, order.id, "account:1")
    assert not again.changed
    assert await LedgerEntry.all().count() == entries
    # Asked twice, refunded once: the route template counts every refund request.
    refunds = (await mp.control.requests()).get(r"POST /v1/payments/{id}/refunds", 0)
    assert refunds == 1


async def test_an_unpaid_order_cannot_be_refunded(svc, mp):
    store = await make_store()
    order = await make_order(store)
    await create_pix_payment(svc, order.id, "buyer:555")
    with pytest.raises(InvalidStateChange):
        await refund_order(svc, order.id, "account:1")
    assert (await Order.get(id=order.id)).status == OrderStatus.PENDING
