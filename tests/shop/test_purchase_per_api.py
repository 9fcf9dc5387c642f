"""The payment path once per Mercado Pago API (Payments API and Orders API): a charge, the
signed notification Mercado Pago sends, the sale booked; a refund notified about the same
resource; a lost answer reconciled without a second charge. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import redis as core_redis
from sandbox.mercadopago.testing import mp_harness
from shop import ledger
from shop.errors import PaymentProviderUnavailable
from shop.models import Order, Payment, WebhookEvent
from shop.payments.gateways import MercadoPagoApis
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.mp_ids import ORDERS, PAYMENTS, api_of
from shop.payments.orders_gateway import MercadoPagoOrdersGateway
from shop.payments.payment_reconciler import Policy, reconcile_once
from shop.payments.refunds import refund_order
from shop.payments.service import PaymentServices, create_pix_payment
from shop.payments.sync import sync_payment
from shop.payments.webhook_intake import DUPLICATE, process_events, receive_mercadopago
from shop.states import OrderStatus, PaymentStatus
from tests.shop.helpers import MP_FAST, SECRET, make_order, make_store

pytestmark = pytest.mark.parametrize("mp_api", [PAYMENTS, ORDERS])


@pytest.fixture
async def mp():
    async with mp_harness(MP_FAST) as harness:
        # the Orders API notifies the URL configured in the panel
        harness.state.config.default_notification_url = harness.notification_url
        yield harness


def services(mp: Any, redis: Any, api: str, **http: Any) -> PaymentServices:
    def build(name: str) -> Any:
        cls = MercadoPagoOrdersGateway if name == ORDERS else MercadoPagoGateway
        return cls(mp.url, "TEST-token", mp.notification_url, backoff_base=0.01, **http)

    return PaymentServices(MercadoPagoApis(build, api), redis, fee_bps=500, hold_days=7)


@pytest.fixture
async def svc(mp, redis_url, db, mp_api):
    redis = core_redis.connect(redis_url)
    built = services(mp, redis, mp_api)
    yield built
    await built.gateway.aclose()
    await redis.aclose()


async def deliver(mp: Any, nth: int) -> tuple[Any, Any]:
    """Mercado Pago's `nth` notification (1-based), handed to our intake; (receipt, it)."""
    got = (await mp.receiver.wait_for(nth))[nth - 1]
    receipt = await receive_mercadopago(SECRET, got.query, got.headers, got.raw)
    return receipt, got


async def test_webhook_pays_the_order_once(svc, mp, mp_api):
    store = await make_store(price_cents=1990)
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    assert api_of(payment.provider_payment_id) == mp_api
    await mp.control.approve(payment.provider_payment_id)
    receipt, got = await deliver(mp, 2)  # 1: created, 2: approved
    assert got.query["type"] == ("order" if mp_api == ORDERS else "payment")
    assert got.query["data.id"] == payment.provider_payment_id
    assert receipt.status == 200 and receipt.to_process
    await process_events(svc, [receipt.dedupe_key], receipt.provider_payment_id)
    assert (await Order.get(id=order.id)).status == OrderStatus.PAID
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.APPROVED
    assert (await ledger.balance(store["tenant"].id)).total_cents == 1990 - 100
    again = await receive_mercadopago(SECRET, got.query, got.headers, got.raw)
    assert again.outcome == DUPLICATE and not again.to_process  # a retried delivery
    assert await WebhookEvent.filter(outcome="processed").count() == 1


async def test_refund_notification_about_the_same_resource_is_processed(svc, mp, mp_api):
    store = await make_store(price_cents=1990)
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await mp.control.approve(payment.provider_payment_id)
    paid, _ = await deliver(mp, 2)
    await process_events(svc, [paid.dedupe_key], paid.provider_payment_id)
    await refund_order(svc, order.id, "seller:1", 990)
    refunded, got = await deliver(mp, 3)
    assert got.query["data.id"] == payment.provider_payment_id  # the same resource id
    assert refunded.to_process and refunded.dedupe_key != paid.dedupe_key
    if mp_api == ORDERS:
        assert refunded.dedupe_key == f"mpo:{got.headers['x-request-id']}"
    await process_events(svc, [refunded.dedupe_key], refunded.provider_payment_id)
    local = await Payment.get(id=payment.id)
    assert local.refunded_cents == 990 and local.status == PaymentStatus.APPROVED
    replay = await receive_mercadopago(SECRET, got.query, got.headers, got.raw)
    assert replay.outcome == DUPLICATE
    assert await WebhookEvent.all().count() == 2


async def test_lost_answer_is_reconciled_without_a_second_charge(mp, redis_url, db, mp_api):
    redis = core_redis.connect(redis_url)
    svc = services(mp, redis, mp_api, max_attempts=1)
    try:
        store = await make_store()
        order = await make_order(store)
        await mp.control.set_faults(lose_answers=1)
        with pytest.raises(PaymentProviderUnavailable):
            await create_pix_payment(svc, order.id, "buyer:555")
        payment = await Payment.get(order_id=order.id)
        assert payment.provider_payment_id is None  # the charge exists; we never heard
        result = await sync_payment(svc, str(payment.id), "system:reconciler")
        assert result.outcome == "processed"
        again = await create_pix_payment(svc, order.id, "buyer:555")
        assert again.id == payment.id and again.provider_payment_id
        assert api_of(again.provider_payment_id) == mp_api
    finally:
        await svc.gateway.aclose()
        await redis.aclose()
    made = mp.state.orders if mp_api == ORDERS else mp.state.payments
    assert len(made) == 1


async def test_accepted_event_left_unprocessed_is_finished_by_the_reconciler(svc, mp, mp_api):
    """The portal answered 200 and died before processing: the reconciler does it."""
    store = await make_store(price_cents=1990)
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await mp.control.approve(payment.provider_payment_id)
    receipt, _ = await deliver(mp, 2)
    assert receipt.to_process  # ... and then the process died
    await WebhookEvent.all().update(received_at=datetime.now(UTC) - timedelta(minutes=1))
    report = await reconcile_once(svc, Policy(webhook_grace=timedelta(hours=1)))
    assert report.events_retried == 1
    assert (await WebhookEvent.get(dedupe_key=receipt.dedupe_key)).outcome == "processed"
    assert (await Order.get(id=order.id)).status == OrderStatus.PAID
